"""The ``bench`` command line: run, tables, list, profile, data generate / validate.

Errors in the data or the command line print one line (``error: file:line: message``) and
exit with status 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from benchmark import budgets, catalog, scale, simulator
from benchmark.io import DatasetError
from benchmark.paths import datasets_dir, results_dir
from benchmark.profile import TIMED_QUERIES
from systems import distributed
from systems.encoders import DEFAULT_ENCODER, usable_cores



def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _dataset_options(f):
    f = click.option("--dataset", default="wechat-sim", show_default=True,
                     help="wechat-sim, sticker-queries, or a path to a dataset folder.")(f)
    f = click.option("--profile", default="default", show_default=True,
                     type=click.Choice(list(simulator.PROFILES)), help="wechat-sim size profile.")(f)
    f = click.option("--data-path", type=click.Path(path_type=Path),
                     help="sticker-queries: the CSV or the folder holding it.")(f)
    f = click.option("--knob", "knobs", multiple=True, metavar="NAME=VALUE",
                     help="wechat-sim knob override, e.g. --knob personalization=0 (repeatable).")(f)
    f = click.option("--results-dir", type=click.Path(path_type=Path),
                     help="Where results go [default: results/<dataset>].")(f)
    return f


def _budget_option(f):
    return click.option("--full-budget", is_flag=True,
                        help="Train at the default configs on a profile that has a smoke budget (tiny); "
                             "see benchmark/budgets.py.")(f)


def _smoke(ds, full_budget: bool) -> budgets.SmokeBudget:
    """The dataset's smoke budget (none with ``--full-budget``), announced on stderr."""
    smoke = budgets.SmokeBudget() if full_budget else budgets.smoke_budget(ds)
    if smoke.settings:
        click.echo(f"{budgets.profile_of(ds)} profile: smoke budget (small models, a few dozen steps; "
                   "benchmark/budgets.py); --full-budget trains at the default configs", err=True)
    return smoke


def _knobs(pairs: tuple[str, ...]) -> dict[str, Any]:
    fields = simulator.SimConfig.__dataclass_fields__
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in fields or name == "profile":
            _fail(f"--knob {pair!r}: expected NAME=VALUE with NAME one of "
                  f"{', '.join(f for f in fields if f != 'profile')}")
        kind = type(getattr(simulator.SimConfig(), name))
        try:
            out[name] = kind(raw)
        except ValueError:
            _fail(f"--knob {pair!r}: {name} expects {kind.__name__}")
    return out


def _online(pairs: tuple[str, ...]):
    """``--online NAME=VALUE`` options -> the online test's config."""
    from benchmark.online import OnlineConfig
    from systems.base import parse_overrides

    fields = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            _fail(f"--online {pair!r}: expected NAME=VALUE")
        fields[name] = raw
    try:
        return parse_overrides(OnlineConfig, fields)
    except ValueError as e:
        _fail(f"--online: {e}")


def _load(dataset: str, profile: str, data_path: Path | None, knobs: tuple[str, ...]):
    try:
        return catalog.resolve(dataset, profile, data_path, _knobs(knobs), progress=True)
    except DatasetError as e:
        _fail(str(e))


def _out_dir(results: Path | None, ds) -> Path:
    """``--results-dir``, else ``results/<dataset folder>``: a wechat-sim with changed knobs has
    its own folder (``wechat-sim-default-<hash>``), so its runs never replace the profile's."""
    if results is not None:
        return results
    inside = ds.path.resolve().parent == datasets_dir().resolve()
    return results_dir() / (ds.path.name if inside else ds.name)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stickerbench")
def main() -> None:
    """StickerBench: personalized sticker retrieval benchmark (PEARL paper, Tables 1-3)."""


@main.command()
@click.option("--systems", "system_names", default="all", show_default=True,
              help="'all' or a comma-separated list (see 'bench list').")
@_dataset_options
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1),
              help="Seeds per stochastic system (the paper averages 3).")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE:CLASS",
              help="Load a retriever class ad hoc (repeatable).")
@click.option("--set", "settings", multiple=True, metavar="SYSTEM.FIELD=VALUE",
              help="Override a system's config field, e.g. --set bm25.k1=1.2 (repeatable).")
@click.option("--k", default=20, show_default=True, type=click.IntRange(1), help="Ranking depth.")
@click.option("--force", is_flag=True, help="Redo runs (and efficiency records) even when finished ones exist.")
@click.option("--no-profile", is_flag=True, help="Skip the efficiency measurements of Table 3.")
@click.option("--online", "online_settings", multiple=True, metavar="NAME=VALUE",
              help="Simulated online test (Table 4) setting, e.g. --online online_system=bm25 (repeatable); "
                   "the test runs when both of its systems are among --systems.")
@click.option("--threads", type=click.IntRange(1), help="Threads for Table 3's measurements [default: all cores].")
@_budget_option
def run(system_names, dataset, profile, data_path, knobs, results_dir, seeds, plugins, settings, k, force,
        no_profile, online_settings, threads, full_budget):
    """Fit, search and evaluate systems; write runs, Tables 1-4 (CSV, LaTeX, Markdown), the
    per-group table, the plots and report.md."""
    from benchmark import harness, online

    classes, available = _systems(system_names, plugins, settings)
    _online(online_settings)  # bad options fail before any work
    started = time.perf_counter()
    ds = _load(dataset, profile, data_path, knobs)
    out = _out_dir(results_dir, ds)
    click.echo(f"dataset {ds.name} ({ds.fingerprint}): {len(ds.stickers):,} stickers, "
               f"{len(ds.test_pairs):,} test pairs -> {out}", err=True)
    smoke = _smoke(ds, full_budget)
    configs = _configs(smoke.settings + settings, available)
    online_config = _online(smoke.online + online_settings)

    def report(o: harness.RunOutcome) -> None:
        if not distributed.is_main():
            return
        if o.status == "failed":
            click.echo(f"  FAILED {o.system} seed {o.seed}: {o.error}", err=True)
        elif o.status == "n/a":
            click.echo(f"  n/a    {o.system} seed {o.seed}: not applicable ({o.error})", err=True)
        else:
            click.echo(f"  {o.status:6s} {o.system} seed {o.seed}: fit {o.fit_s:.1f}s, search {o.search_s:.1f}s", err=True)

    outcomes = harness.run_all(classes, configs, ds, seeds, out, k=k, force=force, report=report)
    if not distributed.is_main():  # under torchrun, rank 0 evaluates, profiles and writes the tables
        return
    failed_profiles = []
    if not no_profile:
        served = [c for c in classes if any(o.system == c.card.name and o.status in ("done", "cached")
                                            for o in outcomes)]
        failed_profiles = _profile(served, configs, ds, out, threads, smoke.table3_queries or TIMED_QUERIES,
                                   force, fit=False)
    by_name = {c.card.name: c for c in classes}
    if online.applies(ds) and {online_config.system, online_config.online_system} <= set(by_name):
        click.echo(f"online test: {online_config.system} vs {online_config.online_system}, "
                   f"{online_config.queries:,} simulated expert queries", err=True)
        online_outcomes = online.online_runs(ds, by_name, configs, out, online_config, force)
        for o in online_outcomes:
            report(o)
        outcomes += online_outcomes
    files = _write_tables(out, ds, online_config)
    _echo_markdown(files)
    failed = sorted({o.system for o in outcomes if o.status == "failed"} | set(failed_profiles))
    click.echo(f"wall time {time.perf_counter() - started:.1f}s; tables: {', '.join(str(f) for f in files) or 'none'}", err=True)
    if failed:
        click.echo(f"failed systems: {', '.join(failed)} (see runs/<system>/seed-*.json)", err=True)
        sys.exit(1)


def _profile(classes: list[type], configs: dict[str, Any], ds, out: Path, threads: int | None, n_queries: int,
             force: bool, fit: bool) -> list[str]:
    """Table 3's measurements of ``classes``, one line each on stderr (one for all those not fitted
    here); the systems that failed."""
    from benchmark import profile as speed

    failed, unfitted = [], []

    def report(name: str, r: dict | str) -> None:
        if isinstance(r, str) and r.startswith("not fitted here"):
            unfitted.append(name)
        elif isinstance(r, str):
            click.echo(f"  {name}: {r}", err=True)
            failed.extend([name] if r.startswith("failed") else [])
        else:
            click.echo(f"  profiled {name}: {r['parameters'] / 1e6:.1f}M params, {r['disk_bytes'] / 2**20:.1f} MB "
                       f"on disk, peak RSS {r['peak_rss_mb']:.0f} MB, p50 {r['latency_ms']['p50_ms']:.1f} ms "
                       f"({r['threads']} threads)", err=True)

    if classes:
        click.echo(f"profiling {len(classes)} system(s) for Table 3", err=True)
        speed.profile_systems(classes, configs, ds, out, threads, n_queries, force, fit, report)
    if unfitted:
        click.echo(f"  not fitted here (their runs were reused; Table 3 keeps any earlier record): "
                   f"{', '.join(unfitted)}. `bench profile systems` fits and measures them.", err=True)
    return failed


def _systems(names: str, plugins: tuple[str, ...], settings: tuple[str, ...]) -> tuple[list[type], dict[str, type]]:
    """The system classes named by ``--systems`` and every available system by name; checks
    ``--set`` (exit 2 on errors)."""
    from systems.registry import RegistryError, registry, resolve

    try:
        available = registry(tuple(plugins))
        classes = resolve(names, available)
    except RegistryError as e:
        _fail(str(e))
    _configs(settings, available)
    return classes, available


def _configs(settings: tuple[str, ...], available: dict[str, type]) -> dict[str, Any]:
    """``--set SYSTEM.FIELD=VALUE`` options -> a config object per system named."""
    from systems.registry import configure

    try:
        return configure(settings, available)
    except ValueError as e:
        _fail(f"--set {e}")


@main.command("tables")
@_dataset_options
def tables_cmd(dataset, profile, data_path, knobs, results_dir):
    """Rebuild Tables 1-4, the per-group table, the plots and the report from saved runs and
    efficiency records, without fitting anything."""

    ds = _load(dataset, profile, data_path, knobs)
    out = _out_dir(results_dir, ds)
    files = _write_tables(out, ds)
    if not files:
        _fail(f"no finished runs under {out / 'runs'}")
    _echo_markdown(files)


def _write_tables(out: Path, ds, online_config=None) -> list[Path]:
    """Tables 1-4, the per-group table, the plots and the report from the saved results (the
    runs evaluated once); Table 4 with ``online_config``, else the settings it was last made with."""
    from benchmark import groups, online, report, tables

    collected = tables.collect(out, ds)
    files = tables.write_table1(out, ds, collected)
    files += tables.write_table2(out, ds)
    files += tables.write_table3(out, ds)
    files += online.write_table4(out, ds, online_config)
    files += groups.write_group_table(out, ds, collected)
    if files:
        table1 = [s for s in collected if s.family != tables.ABLATION]
        files += report.write_report(out, table1, tables.efficiency_records(out, ds))
    return files


def _echo_markdown(files: list[Path]) -> None:
    """Print the Markdown tables among the files just written (not the report, which repeats them)."""
    for path in files:
        if path.suffix == ".md" and path.name != "report.md":
            click.echo(path.read_text())


@main.command("verify")
@_dataset_options
@click.option("--run", "run_missing", is_flag=True, help="First run what is missing (bench run --systems all).")
@click.option("--record", is_flag=True, help="Write the expected figures from the current results instead.")
def verify_cmd(dataset, profile, data_path, knobs, results_dir, run_missing, record):
    """Check the saved results against the expected figures (benchmark/expected/<dataset>.json):
    OK or FAIL per cell, exit 1 if any cell fails."""
    from benchmark import verify

    ds = _load(dataset, profile, data_path, knobs)
    out = _out_dir(results_dir, ds)
    if run_missing:  # bench run --systems all with the same dataset options; it exits on failure
        click.get_current_context().invoke(run, system_names="all", dataset=dataset, profile=profile,
                                           data_path=data_path, knobs=knobs, results_dir=results_dir)
    if record:
        click.echo(f"wrote {verify.record(out, ds)}")
        return
    try:
        cells = verify.check(out, ds)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    for cell in cells:
        click.echo(cell.line())
    failed = [c for c in cells if not c.ok]
    click.echo(f"{len(cells) - len(failed)} OK, {len(failed)} FAIL of {len(cells)} cells")
    if failed:
        sys.exit(1)


@main.command("list")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE:CLASS")
def list_cmd(plugins):
    """List the available systems with their family and paper."""
    from systems.registry import RegistryError, registry

    try:
        available = registry(tuple(plugins))
    except RegistryError as e:
        _fail(str(e))
    width = max(len(name) for name in available)
    for name, cls in available.items():
        card = cls.card
        click.echo(f"{name:{width}s} {card.family:18s} {card.paper}")


@main.group("profile")
def profile_group() -> None:
    """Speed benchmarks on this machine (results under results/<dataset>/profile/)."""


@profile_group.command("systems")
@_dataset_options
@click.option("--systems", "system_names", default="all", show_default=True,
              help="Comma-separated system names, or 'all'.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE:CLASS", help="Extra system class (repeatable).")
@click.option("--set", "settings", multiple=True, metavar="SYSTEM.FIELD=VALUE", help="Config override (repeatable).")
@click.option("--queries", "n_queries", type=click.IntRange(1),
              help=f"Batch-1 queries timed per system [default: {TIMED_QUERIES}, or the smoke budget's].")
@click.option("--threads", type=click.IntRange(1), help="Threads [default: all cores].")
@click.option("--force", is_flag=True, help="Measure again even when a record of the same artifacts exists.")
@_budget_option
def profile_systems(dataset, profile, data_path, knobs, results_dir, system_names, plugins, settings, n_queries,
                    threads, force, full_budget):
    """Table 3: parameters, disk, peak memory, latency, throughput and fit time per system
    (fits systems that are not fitted yet)."""
    from benchmark import tables

    classes, available = _systems(system_names, plugins, settings)
    ds = _load(dataset, profile, data_path, knobs)
    smoke = _smoke(ds, full_budget)
    configs = _configs(smoke.settings + settings, available)
    out = _out_dir(results_dir, ds)
    failed = _profile(classes, configs, ds, out, threads, n_queries or smoke.table3_queries or TIMED_QUERIES,
                      force, fit=True)
    _echo_markdown(tables.write_table3(out, ds))
    if failed:
        click.echo(f"profiling failed for: {', '.join(failed)}", err=True)
        sys.exit(1)


@profile_group.command("dense")
@_dataset_options
@click.option("--encoder", default="all-MiniLM-L6-v2", show_default=True, help="Encoder name, path or hub id.")
@click.option("--queries", "n_queries", default=200, show_default=True, help="Timed queries per index.")
@click.option("--threads", type=int, help="Torch threads [default: all cores].")
def profile_dense(dataset, profile, data_path, knobs, results_dir, encoder, n_queries, threads):
    """Encode throughput (stickers/s) and search latency (ms/query) of the dense machinery."""
    from benchmark import profile as speed
    from benchmark.io import write_json

    ds = _load(dataset, profile, data_path, knobs)
    report = speed.dense(ds, encoder, n_queries=n_queries, threads=threads)
    write_json(_out_dir(results_dir, ds) / "profile" / "dense.json", report)
    click.echo(f"{report['dataset']}: {report['stickers']:,} stickers, encoder {encoder}, {report['threads']} threads")
    click.echo(f"  encode: {report['encode_stickers_per_s']:.0f} stickers/s; "
               f"query encode p50 {report['query_encode']['p50_ms']:.1f} ms")
    for kind, stats in report["search"].items():
        click.echo(f"  {kind:5s} build {stats['build_s']:.2f}s, search p50 {stats['p50_ms']:.3f} ms, "
                   f"p95 {stats['p95_ms']:.3f} ms per query (top 20)")


@profile_group.command("generative")
@_dataset_options
@click.option("--systems", "system_names", default="dsi,dsi-qg,genre,minder", show_default=True,
              help="Comma-separated generative systems.")
@click.option("--set", "settings", multiple=True, metavar="SYSTEM.FIELD=VALUE", help="Config override (repeatable).")
@click.option("--queries", "n_queries", default=64, show_default=True, help="Timed queries per system.")
@click.option("--batch", "batch_size", default=32, show_default=True, help="Batch size of the batched measurement.")
@click.option("--threads", type=int, help="Torch threads [default: all cores].")
@_budget_option
def profile_generative(dataset, profile, data_path, knobs, results_dir, system_names, settings, n_queries,
                       batch_size, threads, full_budget):
    """Latency of generative systems and the share of decoding spent outside the model."""
    from benchmark import profile as speed
    from benchmark.io import write_json

    classes, available = _systems(system_names, (), settings)
    ds = _load(dataset, profile, data_path, knobs)
    configs = _configs(_smoke(ds, full_budget).settings + settings, available)
    systems = {c.card.name: (c, configs.get(c.card.name, c.Config())) for c in classes}
    report = speed.generative(ds, systems, n_queries=n_queries, threads=threads, batch_size=batch_size)
    write_json(_out_dir(results_dir, ds) / "profile" / "generative.json", report)
    click.echo(f"{report['dataset']}: {report['stickers']:,} stickers, {report['threads']} threads; "
               f"share of decoding outside the model's forward passes (logits processor part)")
    for name, r in report["systems"].items():
        one, many = r["batch_1"], r[f"batch_{batch_size}"]
        click.echo(f"  {name:8s} batch 1: p50 {one['p50_ms']:.1f} ms, p95 {one['p95_ms']:.1f} ms, "
                   f"{100 * one['decode_outside_forward_share']:.1f}% ({100 * one['decode_processor_share']:.1f}%) | "
                   f"batch {batch_size}: {many['ms_per_query']:.1f} ms/query, "
                   f"{100 * many['decode_outside_forward_share']:.1f}% ({100 * many['decode_processor_share']:.1f}%)")


@profile_group.command("scale")
@click.option("--sizes", default=",".join(map(str, scale.SIZES)), show_default=True,
              help="Comma-separated corpus sizes (stickers) of wechat-sim's paper profile.")
@click.option("--components", default="all", show_default=True,
              help=f"Comma-separated components ({', '.join(scale.COMPONENTS)}) or all.")
@click.option("--encoder", default=DEFAULT_ENCODER, show_default=True, help="Text encoder: name, path or hub id.")
@click.option("--queries", "n_queries", default=200, show_default=True, help="Timed queries per component and size.")
@click.option("--threads", type=int, default=usable_cores, show_default="all cores",
              help="Threads of torch, faiss and BLAS.")
@click.option("--force", is_flag=True, help="Measure again even where a record exists.")
def profile_scale(sizes, components, encoder, n_queries, threads, force):
    """Build time, memory and query latency of the corpus-sized structures as wechat-sim grows
    (results/scale/: one JSON per component and size, scale.csv/.md and the plot scale.png)."""
    try:
        counts = [int(n) for n in sizes.split(",")]
    except ValueError:
        _fail(f"--sizes {sizes!r}: expected comma-separated integers")
    names = list(scale.COMPONENTS) if components == "all" else [c.strip() for c in components.split(",")]
    out = results_dir() / "scale"

    def report(name: str, outcome: dict | str) -> None:
        if isinstance(outcome, str):
            click.echo(f"  {name}: {outcome}")
        else:
            click.echo(f"  {name}: build {outcome['build_s']:.1f}s, held {outcome['held_mb']:,.0f} MB "
                       f"(peak {outcome['build_peak_mb']:,.0f} MB), p50 {outcome['latency_ms']['p50_ms']:.3f} ms")

    click.echo(f"scale profile at {threads} thread(s): {', '.join(names)} x {', '.join(f'{n:,}' for n in counts)}")
    try:
        scale.profile_scale(counts, names, encoder, out, threads, n_queries, force, report)
    except ValueError as e:
        _fail(str(e))
    for path in scale.write_scale_report(out):
        click.echo(f"wrote {path}")


@main.group()
def data() -> None:
    """Generate or check datasets."""


@data.command("generate")
@click.option("--profile", default="default", show_default=True, type=click.Choice(list(simulator.PROFILES)))
@click.option("--knob", "knobs", multiple=True, metavar="NAME=VALUE",
              help="Simulator knob, e.g. --knob seed=1 --knob personalization=0.")
@click.option("--out", type=click.Path(path_type=Path), help="Destination [default: datasets/wechat-sim-<profile>].")
def generate_cmd(profile, knobs, out):
    """Generate wechat-sim (same knobs and seed -> byte-identical files)."""
    cfg = simulator.profile_config(profile, **_knobs(knobs))
    folder = out if out is not None else catalog.wechat_sim_folder(cfg)
    started = time.perf_counter()
    simulator.generate(cfg, folder, progress=True)
    click.echo(f"wrote {folder} in {time.perf_counter() - started:.1f}s")


@data.command("validate")
@click.argument("folder", type=click.Path(path_type=Path))
def validate_cmd(folder):
    """Validate a dataset folder (schema, ids, checksums)."""
    from benchmark.dataset import load_dataset

    try:
        ds = load_dataset(folder)
    except DatasetError as e:
        _fail(str(e))
    click.echo(f"ok: {ds.name} ({ds.fingerprint}) {ds.card.get('counts', {})}")


if __name__ == "__main__":
    main()
