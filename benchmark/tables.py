"""Tables 1-3 from saved runs and efficiency records: evaluation, significance, and CSV / LaTeX /
Markdown output.

``bench tables`` calls :func:`write_table1`, :func:`write_table2` and :func:`write_table3` on
runs and ``bench profile systems`` records already on disk, so tables are rebuilt without
retraining. The output depends only on the run files, the qrels and,
for Table 2's intent report, the simulator's truth: the same runs give byte-identical tables.

Table 1 compares the systems; Table 2 is PEARL's ablation study (Sec. 5.2 of the paper): PEARL
against its variants, whose cards have the family :data:`ABLATION` and which Table 1 leaves out.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from benchmark import budgets
from benchmark.dataset import Dataset
from benchmark.evaluate import CUTOFFS, KEY_METRIC, METRICS, holm, per_query_scores, permutation_test, t_test
from benchmark.harness import read_run
from benchmark.io import read_jsonl, write_json, write_text
from systems.base import FAMILIES
from systems.registry import BUILTINS

ALPHA = 0.05
BUILTIN_ORDER = [cls.card.name for cls in BUILTINS]
NON_DEFAULT = "‡"

PEARL = "pearl"
ABLATION = "Ablation"
"""The card family of PEARL's variants: Table 2 only."""
ABLATION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("w/o personalized user embedding", ("pearl-ue", "pearl-click", "pearl-intent", "pearl-interest")),
    ("w/o intent-aware loss", ("pearl-ial",)),
    ("w/o intent guidance", ("pearl-ig",)),
)
"""Table 2's groups of variants, in the paper's order."""
OTHER_VARIANTS = "other variants"
"""The Table 2 group of ablation-family systems the paper does not have (plugins)."""
TABLE2_METRICS: tuple[str, ...] = ("mrr@10", "recall@10", "mrr@20", "recall@20")
DELTA_METRICS: tuple[str, ...] = ("mrr@10", "recall@10")
"""The paper's Table 2 metrics: their difference to PEARL gets a column."""
DAGGER = "†"
NOT_APPLICABLE = "n/a"
METRIC_NAMES = {"mrr": "MRR", "recall": "Recall"}


@dataclass
class SystemScores:
    """A system's evaluated runs: per-query scores averaged over its seeds."""

    name: str
    label: str
    family: str
    baseline: bool
    seeds: list[int]
    per_query: pd.DataFrame  # qid x metric, mean over seeds (NaN when not applicable)
    metas: list[dict]  # the run metadata of each seed
    not_applicable: str = ""  # why the system does not apply to the dataset, if it does not
    seed_means: pd.DataFrame | None = None  # seed x metric: each seed's mean over the queries
    defaults: dict | None = None  # the config bench run now makes on this dataset (None: a plugin)

    @property
    def means(self) -> pd.Series:
        return self.per_query.mean()

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        """Config fields where the runs differ from the system's current defaults on this dataset
        (with the profile's smoke budget, :mod:`benchmark.budgets`): field -> (run value,
        default). Empty for plugins, for runs made with the defaults and for runs whose metadata
        has no config."""
        default, config = self.defaults, self.metas[-1].get("config")
        if default is None or config is None:
            return {}
        return {k: (config.get(k), v) for k, v in default.items() if config.get(k) != v}

    @property
    def row_label(self) -> str:
        """The model label, marked with :data:`NON_DEFAULT` if the runs used other settings."""
        return self.label + (NON_DEFAULT if self.changes else "")


def collect(out_dir: Path, dataset: Dataset, include: Callable[[dict], bool] = lambda card: True) -> list[SystemScores]:
    """Evaluate every successful run under ``out_dir/runs`` made on this exact dataset.

    Args:
        out_dir: the results folder.
        dataset: the dataset the runs must have been made on.
        include: which runs to evaluate, by their system card (all by default).
    """
    runs_dir = out_dir / "runs"
    defaults = budgets.default_configs(dataset)
    found: list[SystemScores] = []
    for folder in sorted(p for p in runs_dir.glob("*") if p.is_dir()):
        metas, skipped = [], []
        for meta_path in sorted(folder.glob("seed-*.json")):
            meta = json.loads(meta_path.read_text())
            run_path = meta_path.with_suffix(".trec")
            if meta.get("status") not in ("ok", "not applicable") or not include(meta["card"]):
                continue
            if meta["dataset"]["fingerprint"] != dataset.fingerprint:
                print(f"warning: skipping {meta_path}: made on another version of {dataset.name}",
                      file=sys.stderr)
                continue
            if meta["status"] == "not applicable":
                skipped.append(meta)
            elif run_path.exists():
                metas.append((meta, run_path))
        if metas:
            found.append(_scored(dataset, metas))
        elif skipped:
            found.append(_not_applicable(dataset, skipped[-1]))
    for s in found:
        s.defaults = defaults.get(s.name)
    return sorted(found, key=_row_order)


def _scored(dataset: Dataset, metas: list[tuple[dict, Path]]) -> SystemScores:
    """A system's runs scored against the test qrels, averaged over its seeds."""
    scores = [per_query_scores(dataset.test_qrels, read_run(path)) for _, path in metas]
    card = metas[-1][0]["card"]
    seed_means = pd.DataFrame([s.mean() for s in scores], index=pd.Index([m["seed"] for m, _ in metas], name="seed"))
    return SystemScores(
        name=card["name"], label=card["label"], family=card["family"], baseline=card["baseline"],
        seeds=sorted(m["seed"] for m, _ in metas), per_query=sum(scores[1:], scores[0]) / len(scores),
        metas=[m for m, _ in metas], seed_means=seed_means.sort_index())


def _not_applicable(dataset: Dataset, meta: dict) -> SystemScores:
    """A table row for a system that does not apply to the dataset: no scores, a reason."""
    card = meta["card"]
    empty = pd.DataFrame(float("nan"), index=pd.Index(sorted(dataset.test_qrels), name="qid"), columns=list(METRICS))
    return SystemScores(name=card["name"], label=card["label"], family=card["family"], baseline=card["baseline"],
                        seeds=[], per_query=empty, metas=[meta], not_applicable=meta["reason"])


def _row_order(s: SystemScores) -> tuple:
    family = FAMILIES.index(s.family) if s.family in FAMILIES else len(FAMILIES)
    builtin = BUILTIN_ORDER.index(s.name) if s.name in BUILTIN_ORDER else len(BUILTIN_ORDER)
    return family, s.family, builtin, s.name


def significance(systems: list[SystemScores], seed: int = 0) -> pd.DataFrame:
    """Paired tests of every system against the best baseline (by MRR@10), Holm-corrected.

    Returns:
        One row per (system, metric) with the means, raw and Holm-adjusted p-values of the
        t-test and the permutation test, and ``significant``: better than the best baseline
        with both adjusted p-values <= 0.05.
    """
    systems = [s for s in systems if not s.not_applicable]
    baselines = [s for s in systems if s.baseline]
    if not baselines:
        return pd.DataFrame()
    best = max(baselines, key=lambda s: (s.means[KEY_METRIC], s.name))
    sig = paired_tests([s for s in systems if s is not best], best, METRICS, seed)
    if sig.empty:
        return sig
    sig.insert(2, "best_baseline", best.name)
    sig = sig.rename(columns={"reference_mean": "baseline_mean"})
    sig["significant"] = (sig["delta"] > 0) & _both_tests_pass(sig)
    return sig


def paired_tests(systems: Sequence[SystemScores], reference: SystemScores, metrics: Sequence[str],
                 seed: int = 0) -> pd.DataFrame:
    """Paired t-test and permutation test of each system against ``reference``, per metric.

    Each test's p-values are Holm-corrected over ``systems``, separately for every metric.

    Returns:
        One row per (system, metric) with ``mean``, ``reference_mean``, ``delta`` (their
        difference), the raw p-values ``p_t``, ``p_perm`` and the adjusted ``p_t_holm``,
        ``p_perm_holm``; empty without systems.
    """
    rows = []
    for metric in metrics:
        ref = reference.per_query[metric].to_numpy()
        p_t = [t_test(s.per_query[metric].to_numpy(), ref) for s in systems]
        p_perm = [permutation_test(s.per_query[metric].to_numpy(), ref, seed=seed) for s in systems]
        for s, pt, pp, pt_h, pp_h in zip(systems, p_t, p_perm, holm(p_t), holm(p_perm)):
            rows.append({
                "system": s.name, "metric": metric, "mean": s.means[metric],
                "reference_mean": reference.means[metric], "delta": s.means[metric] - reference.means[metric],
                "p_t": pt, "p_perm": pp, "p_t_holm": pt_h, "p_perm_holm": pp_h,
            })
    return pd.DataFrame(rows)


def _both_tests_pass(sig: pd.DataFrame) -> pd.Series:
    """Whether both Holm-adjusted p-values of each row are at most :data:`ALPHA`."""
    return (sig["p_t_holm"] <= ALPHA) & (sig["p_perm_holm"] <= ALPHA)


def _marked(sig: pd.DataFrame) -> set[tuple[str, str]]:
    """The (system, metric) pairs that ``sig`` flags as significant."""
    return {(r.system, r.metric) for r in sig.itertuples() if r.significant} if not sig.empty else set()


def _cells(systems: list[SystemScores], sig: pd.DataFrame, bold: str, star: str,
           metrics: Sequence[str] = METRICS) -> list[list[str]]:
    """Formatted metric cells with the column best in ``bold`` and significant results marked with ``star``."""
    starred = _marked(sig)
    scored = [s for s in systems if not s.not_applicable]
    best = {m: max((round(s.means[m], 4) for s in scored), default=None) for m in metrics}
    rows = []
    for s in systems:
        if s.not_applicable:
            rows.append([NOT_APPLICABLE] * len(metrics))
            continue
        row = []
        for m in metrics:
            value = round(s.means[m], 4)
            text = f"{value:.4f}"
            if value == best[m]:
                text = bold.format(text)
            if (s.name, m) in starred:
                text += star
            row.append(text)
        rows.append(row)
    return rows


def metric_label(metric: str) -> str:
    """``mrr@10`` -> ``MRR@10``, ``recall@10`` -> ``Recall@10``."""
    name, cutoff = metric.split("@")
    return f"{METRIC_NAMES[name]}@{cutoff}"


def md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def to_markdown(systems: list[SystemScores], sig: pd.DataFrame, caption: str) -> str:
    header = ["Group", "Model", *map(metric_label, METRICS)]
    lines = [f"**{caption}**", "", md_row(header), "|" + "---|" * 2 + "---:|" * len(METRICS)]
    previous = None
    for s, cells in zip(systems, _cells(systems, sig, "**{}**", "\\*")):
        group = s.family if s.family != previous else ""
        previous = s.family
        lines.append(md_row([group, s.row_label, *cells]))
    return "\n".join(lines) + "\n\n" + _footnote(systems, sig) + "\n"


def to_latex(systems: list[SystemScores], sig: pd.DataFrame, caption: str) -> str:
    n = len(CUTOFFS)
    lines = [
        "% Requires \\usepackage{booktabs} and \\usepackage{multirow}.",
        "\\begin{table}[t]", "\\centering", "\\small",
        "\\begin{tabular}{ll" + "r" * len(METRICS) + "}", "\\toprule",
        f" & & \\multicolumn{{{n}}}{{c}}{{MRR}} & \\multicolumn{{{n}}}{{c}}{{Recall}} \\\\",
        f"\\cmidrule(lr){{3-{2 + n}}}\\cmidrule(lr){{{3 + n}-{2 + 2 * n}}}",
        " & Model & " + " & ".join(f"@{k}" for k in CUTOFFS * 2) + " \\\\",
    ]
    cells = _cells(systems, sig, "\\textbf{{{}}}", "$^*$")
    families = [s.family for s in systems]
    for i, (s, row) in enumerate(zip(systems, cells)):
        if i == 0 or families[i] != families[i - 1]:
            lines.append("\\midrule")
            size = families.count(s.family)
            group = f"\\multirow{{{size}}}{{*}}{{{latex_escape(s.family)}}}"
        else:
            group = ""
        lines.append(f"{group} & {latex_escape(s.row_label)} & " + " & ".join(row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}",
              f"\\caption{{{latex_escape(caption)} {latex_escape(_footnote(systems, sig))}}}",
              "\\label{tab:main}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"), ("*", "$^*$"),
                 (DAGGER, "$^\\dagger$"), (NON_DEFAULT, "$^\\ddagger$"), ("Δ", "$\\Delta$")):
        text = text.replace(a, b)
    return text


def _seed_text(systems: Sequence[SystemScores]) -> str:
    """The distinct seed counts of ``systems``, e.g. ``1/3``."""
    return "/".join(map(str, sorted({len(s.seeds) for s in systems})))


def _footnote(systems: list[SystemScores], sig: pd.DataFrame) -> str:
    seed_text = _seed_text([s for s in systems if not s.not_applicable])
    if sig.empty:
        text = f"Means over {seed_text} seed(s); no baseline to test against."
    else:
        best = sig["best_baseline"].iloc[0]
        label = next(s.label for s in systems if s.name == best)
        text = (f"Means over {seed_text} seed(s). Bold: best in column. * marks a significant gain over "
                f"the best baseline ({label}, by MRR@10): paired t-test and permutation test, both "
                f"p <= {ALPHA} after Holm correction.")
    reasons = sorted({s.not_applicable for s in systems if s.not_applicable})
    if reasons:
        text += f" {NOT_APPLICABLE}: not applicable ({'; '.join(reasons)})."
    return text + _changes_note(systems)


def _changes_note(systems: Sequence[SystemScores]) -> str:
    """The footnote naming, for each row marked :data:`NON_DEFAULT`, the settings it ran with."""
    marked = [s for s in systems if s.changes]
    if not marked:
        return ""
    parts = [f"{s.label} ({', '.join(f'{k} {run} [now {now}]' for k, (run, now) in s.changes.items())})"
             for s in marked]
    return f" {NON_DEFAULT} run with settings other than the current defaults: {'; '.join(parts)}."


def _csv_row(s: SystemScores, group: str, metrics: Sequence[str], marked: set[tuple[str, str]]) -> dict:
    """A system's table row for CSV: identity, seed count, means and significance flags."""
    row = {"group": group, "system": s.name, "model": s.label, "seeds": len(s.seeds)}
    row.update({m: NOT_APPLICABLE if s.not_applicable else f"{s.means[m]:.4f}" for m in metrics})
    row.update({f"{m}_significant": (s.name, m) in marked for m in metrics})
    row["non_default_settings"] = ";".join(f"{k}={run}" for k, (run, _) in s.changes.items())
    return row


def _csv_text(rows: list[dict]) -> str:
    return pd.DataFrame(rows).to_csv(index=False, lineterminator="\n")


def to_csv(systems: list[SystemScores], sig: pd.DataFrame) -> str:
    marked = _marked(sig)
    return _csv_text([_csv_row(s, s.family, METRICS, marked) for s in systems])


def _significance_csv(sig: pd.DataFrame) -> str:
    return sig.round(6).to_csv(index=False, lineterminator="\n") if not sig.empty else ""


def _caption(title: str, dataset: Dataset) -> str:
    return f"{title} on {dataset.name} ({len(dataset.test_pairs)} test user-query pairs)."


def _write_files(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write each ``name -> text`` under ``out_dir``; return the paths in order."""
    for name, text in files.items():
        write_text(out_dir / name, text)
    return [out_dir / name for name in files]


def write_table1(out_dir: Path, dataset: Dataset, collected: list[SystemScores] | None = None) -> list[Path]:
    """Evaluate saved runs and write Table 1 (csv, tex, md) plus the significance details.

    Systems of the :data:`ABLATION` family are left to Table 2; ``provenance.json`` records the
    runs of both tables.

    Args:
        collected: the runs as :func:`collect` evaluates them (evaluated here if not given).

    Returns:
        The files written (none when there is no successful run of a Table 1 system).
    """
    collected = collect(out_dir, dataset) if collected is None else collected
    systems = [s for s in collected if s.family != ABLATION]
    if not systems:
        return []
    sig = significance(systems)
    caption = _caption("Table 1: retrieval performance", dataset)
    files = _write_files(out_dir, {
        "table1.csv": to_csv(systems, sig),
        "table1.md": to_markdown(systems, sig, caption),
        "table1.tex": to_latex(systems, sig, caption),
        "significance.csv": _significance_csv(sig),
    })
    write_json(out_dir / "provenance.json", provenance_record(collected, dataset))
    return files


def provenance_record(systems: list[SystemScores], dataset: Dataset) -> dict:
    """Where the tables come from: the dataset card and every run's metadata."""
    keep = ("status", "reason", "card", "config", "seed", "key", "versions", "commit", "machine", "fit_s",
            "fit_cached", "search_s", "ms_per_query", "notes", "wall_time_utc")
    return {
        "dataset": {k: dataset.card.get(k) for k in ("name", "version", "source", "licence", "generator",
                                                     "counts", "files")}
        | {"fingerprint": dataset.fingerprint},
        "runs": {s.name: [{k: m[k] for k in keep if k in m} for m in s.metas] for s in systems},
    }



# --------------------------------------------------------------------------- Table 2: ablations


def _pearl_family(card: dict) -> bool:
    return card["name"] == PEARL or card["family"] == ABLATION


def ablation_groups(systems: Sequence[SystemScores]) -> list[tuple[str, list[SystemScores]]]:
    """The ablation-family systems under Table 2's headings, in the paper's order.

    Variants the paper does not have come last, by name, under :data:`OTHER_VARIANTS`; headings
    without a system are left out.
    """
    ablations = {s.name: s for s in systems if s.family == ABLATION}
    groups = [(heading, [ablations.pop(n) for n in names if n in ablations]) for heading, names in ABLATION_GROUPS]
    groups.append((OTHER_VARIANTS, sorted(ablations.values(), key=lambda s: s.name)))
    return [(heading, members) for heading, members in groups if members]


def ablation_significance(pearl: SystemScores, variants: Sequence[SystemScores], seed: int = 0) -> pd.DataFrame:
    """Paired tests of every variant against PEARL on Table 2's metrics, Holm-corrected over the variants.

    Returns:
        :func:`paired_tests`' rows (``reference_mean`` named ``pearl_mean``) with ``significant``:
        a difference in either direction with both adjusted p-values <= 0.05. Empty without variants.
    """
    sig = paired_tests(variants, pearl, TABLE2_METRICS, seed)
    if sig.empty:
        return sig
    sig = sig.rename(columns={"reference_mean": "pearl_mean"})
    sig["significant"] = _both_tests_pass(sig)
    return sig


def _deltas(system: SystemScores, pearl: SystemScores) -> list[str]:
    """The differences to PEARL of the shown (rounded) values; empty cells for PEARL itself."""
    if system is pearl:
        return [""] * len(DELTA_METRICS)
    return [f"{round(system.means[m], 4) - round(pearl.means[m], 4):+.4f}" for m in DELTA_METRICS]


def _table2_cells(groups: list[tuple[str, list[SystemScores]]], sig: pd.DataFrame, mark: str) -> dict[str, list[str]]:
    """System name -> its metric cells (significant differences marked) and delta cells."""
    systems = [s for _, members in groups for s in members]
    pearl = systems[0]
    cells = _cells(systems, sig, "{}", mark, TABLE2_METRICS)
    return {s.name: row + _deltas(s, pearl) for s, row in zip(systems, cells)}


def _table2_header() -> list[str]:
    return ["Model", *map(metric_label, TABLE2_METRICS), *(f"Δ{metric_label(m)}" for m in DELTA_METRICS)]


def _table2_footnote(groups: list[tuple[str, list[SystemScores]]]) -> str:
    systems = [s for _, members in groups for s in members]
    text = f"Means over {_seed_text(systems)} seed(s)."
    if len(systems) == 1:
        return f"{text} No ablation runs to compare with PEARL.{_changes_note(systems)}"
    return (f"{text} Δ: difference to PEARL. {DAGGER} marks a significant difference from PEARL (either "
            f"direction): paired t-test and permutation test, both p <= {ALPHA} after Holm correction over "
            f"the {len(systems) - 1} variant(s), per metric.{_changes_note(systems)}")


def table2_markdown(groups: list[tuple[str, list[SystemScores]]], sig: pd.DataFrame, caption: str) -> str:
    """Table 2 in Markdown: PEARL first, then each heading (in italics) and its variants."""
    header = _table2_header()
    cells = _table2_cells(groups, sig, DAGGER)
    lines = [f"**{caption}**", "", md_row(header), "|---|" + "---:|" * (len(header) - 1)]
    for heading, members in groups:
        if heading:
            lines.append(md_row([f"*{heading}*", *[""] * (len(header) - 1)]))
        lines += [md_row([s.row_label, *cells[s.name]]) for s in members]
    return "\n".join(lines) + "\n\n" + _table2_footnote(groups) + "\n"


def table2_latex(groups: list[tuple[str, list[SystemScores]]], sig: pd.DataFrame, caption: str) -> str:
    """Table 2 in LaTeX (booktabs), headings as italic rows spanning the table."""
    header = _table2_header()
    cells = _table2_cells(groups, sig, latex_escape(DAGGER))
    lines = ["% Requires \\usepackage{booktabs}.", "\\begin{table}[t]", "\\centering", "\\small",
             "\\begin{tabular}{l" + "r" * (len(header) - 1) + "}", "\\toprule",
             " & ".join(map(latex_escape, header)) + " \\\\"]
    for heading, members in groups:
        lines.append("\\midrule")
        if heading:
            lines.append(f"\\multicolumn{{{len(header)}}}{{l}}{{\\textit{{{latex_escape(heading)}}}}} \\\\")
        lines += [f"{latex_escape(s.row_label)} & " + " & ".join(cells[s.name]) + " \\\\" for s in members]
    lines += ["\\bottomrule", "\\end{tabular}",
              f"\\caption{{{latex_escape(caption)} {latex_escape(_table2_footnote(groups))}}}",
              "\\label{tab:ablation}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def table2_csv(groups: list[tuple[str, list[SystemScores]]], sig: pd.DataFrame) -> str:
    """Table 2 as CSV: one row per system with its heading, means, significance flags and deltas."""
    marked = _marked(sig)
    pearl = groups[0][1][0]
    rows = [_csv_row(s, heading, TABLE2_METRICS, marked)
            | {f"delta_{m}": d for m, d in zip(DELTA_METRICS, _deltas(s, pearl))}
            for heading, members in groups for s in members]
    return _csv_text(rows)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _representation(system: SystemScores) -> dict[tuple[str, str], float]:
    """(task, metric) -> mean over the seeds of ``notes["representation"]["held_out"]`` that
    report it."""
    found: dict[tuple[str, str], list[float]] = {}
    for meta in system.metas:
        learned = (meta.get("notes") or {}).get("representation") or {}
        for task, metrics in (learned.get("held_out") or {}).items():
            if isinstance(metrics, Mapping):
                for metric, value in metrics.items():
                    found.setdefault((task, metric), []).append(float(value))
    return {key: float(np.mean(values)) for key, values in found.items()}


def representation_report(systems: Sequence[SystemScores]) -> str:
    """Markdown: the held-out scores of the representation-learning tasks each system reports.

    One row per system, one column per (task, metric) any of them reports, sorted; mean over seeds.
    """
    title = ("**Personalized representation learning**: held-out scores of the user-embedding tasks "
             "(run notes, mean over seeds; –: not reported).")
    scores = {s.name: _representation(s) for s in systems}
    columns = sorted({key for values in scores.values() for key in values})
    if not columns:
        return f"{title}\n\nNo representation-learning scores in the run notes.\n"
    lines = [title, "", md_row(["Model", *(f"{task} {metric}" for task, metric in columns)]),
             "|---|" + "---:|" * len(columns)]
    lines += [md_row([s.label, *(_fmt(scores[s.name].get(c)) for c in columns)]) for s in systems]
    return "\n".join(lines) + "\n"


def _kendall_tau(predicted: Sequence[str], truth: Sequence[str]) -> float | None:
    """Kendall tau between two rankings over the items both hold; None with fewer than two."""
    order = list(dict.fromkeys(predicted))
    common = [p for p in dict.fromkeys(truth) if p in order]
    if len(common) < 2:
        return None
    return float(stats.kendalltau([order.index(p) for p in common], range(len(common))).statistic)


def _pairs(predicted: Mapping[str, Sequence[str]], truth: Mapping[str, Sequence[str]]) -> list[tuple]:
    """(predicted, true) rankings of the qids both mappings hold, by qid."""
    return [(predicted[q], truth[q]) for q in sorted(predicted.keys() & truth.keys())]


def _agreement(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> dict:
    hits = [bool(p) and bool(t) and p[0] == t[0] for p, t in pairs]
    taus = [tau for tau in (_kendall_tau(p, t) for p, t in pairs) if tau is not None]
    return {"n": len(pairs), "top1_accuracy": sum(hits) / len(hits) if hits else None,
            "kendall_tau": float(np.mean(taus)) if taus else None, "n_tau": len(taus)}


def intent_agreement(predicted: Mapping[str, Sequence[str]], truth: Mapping[str, Sequence[str]]) -> dict:
    """Agreement of predicted intent rankings with the true ones, over the qids both hold.

    Args:
        predicted: qid -> predicted ranking of properties, most likely first.
        truth: qid -> true ranking of properties.

    Returns:
        ``n`` (qids compared), ``top1_accuracy`` (the top properties agree), ``kendall_tau``
        (mean over the queries whose rankings share at least two properties, compared on the
        shared ones) and ``n_tau`` (those queries); the scores are None without queries.
    """
    return _agreement(_pairs(predicted, truth))


def simulator_intents(folder: Path) -> dict[str, list[str]] | None:
    """The simulator's true intent ranking of each test query; None for a dataset without
    simulator truth (real data). Evaluation only: systems never see it."""
    path = folder / "sim" / "queries.jsonl"
    if not path.is_file():
        return None
    return {row["qid"]: row["intents"] for _, row in read_jsonl(path) if row["split"] == "test"}


def intent_report(systems: Sequence[SystemScores], truth: Mapping[str, Sequence[str]] | None) -> str:
    """Markdown: agreement of each system's detected test intents (``notes["intents"]``) with the truth.

    The seeds' predictions are pooled; systems without predictions get no row.
    """
    title = ("**Intent detection** against the simulator's true intent rankings of the test queries: "
             "top-1 accuracy and mean Kendall tau (on the properties both rankings hold); n: predictions "
             "compared, over all seeds.")
    if truth is None:
        return f"{title}\n\nNo simulator truth for this dataset: skipped.\n"
    rows = []
    for s in systems:
        predictions = [p for p in ((m.get("notes") or {}).get("intents") for m in s.metas) if p]
        if predictions:
            a = _agreement([pair for p in predictions for pair in _pairs(p, truth)])
            rows.append(md_row([s.label, str(a["n"]), _fmt(a["top1_accuracy"]), _fmt(a["kendall_tau"])]))
    if not rows:
        return f"{title}\n\nNo intent predictions in the run notes.\n"
    header = [md_row(["Model", "n", "Top-1 accuracy", "Kendall tau"]), "|---|---:|---:|---:|"]
    return "\n".join([title, "", *header, *rows]) + "\n"


def write_table2(out_dir: Path, dataset: Dataset) -> list[Path]:
    """Evaluate PEARL's and its variants' saved runs and write Table 2, the ablation study.

    Writes ``table2.csv``, ``table2.tex``, ``table2.md`` (followed by the representation-learning
    and intent-detection reports of the PEARL-family runs) and ``table2_significance.csv``.

    Returns:
        The files written; none without a successful PEARL run.
    """
    systems = collect(out_dir, dataset, include=_pearl_family)
    pearl = next((s for s in systems if s.name == PEARL), None)
    if pearl is None:
        return []
    groups = [("", [pearl]), *ablation_groups(systems)]
    members = [s for _, group in groups for s in group]
    sig = ablation_significance(pearl, members[1:])
    caption = _caption("Table 2: ablation study", dataset)
    reports = representation_report(members) + "\n" + intent_report(members, simulator_intents(dataset.path))
    return _write_files(out_dir, {
        "table2.csv": table2_csv(groups, sig),
        "table2.md": table2_markdown(groups, sig, caption) + "\n" + reports,
        "table2.tex": table2_latex(groups, sig, caption),
        "table2_significance.csv": _significance_csv(sig),
    })


# --------------------------------------------------------------------------- Table 3: efficiency

PAPER_LATENCY_MS = {"dpr": 179.0, "minder": 112.0, "pearl": 124.0}
"""The paper's Table 3 inference time per query (its hardware, its models)."""
LATENCY_RATIOS = (("pearl", "minder"), ("dpr", "pearl"))
"""The ratios of batch-1 latency the paper's Table 3 discusses."""
TABLE3_COLUMNS = ("Params (M)", "Disk (MB)", "Peak RSS (MB)", "p50 (ms)", "p95 (ms)", "q/s @32", "Fit (s)")


def efficiency_records(out_dir: Path, dataset: Dataset) -> list[dict]:
    """The ``bench profile systems`` records of ``dataset`` under ``out_dir/profile/systems/``,
    built-in systems in registry order, then the others by name."""
    folder = out_dir / "profile" / "systems"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    records = [r for r in records if r["fingerprint"] == dataset.fingerprint]
    order = {name: i for i, name in enumerate(BUILTIN_ORDER)}
    return sorted(records, key=lambda r: (order.get(r["system"], len(order)), r["system"]))


def _reused_shared(r: dict) -> bool:
    """Whether the fit took a shared artifact from the cache (built by an earlier fit)."""
    return any(not s["built"] for s in r.get("fit_shared") or [])


def _table3_cells(r: dict) -> list[str]:
    fit = "—" if r["fit_s"] is None else f"{r['fit_s']:,.0f}" if r["fit_s"] >= 10 else f"{r['fit_s']:.1f}"
    fit += DAGGER if r["fit_s"] is not None and _reused_shared(r) else ""
    disk = r["disk_bytes"] / 2**20
    return [f"{r['parameters'] / 1e6:.1f}", f"{disk:,.1f}" if disk >= 1 else f"{disk:.2f}", f"{r['peak_rss_mb']:,.0f}",
            f"{r['latency_ms']['p50_ms']:.1f}", f"{r['latency_ms']['p95_ms']:.1f}",
            f"{r['throughput_qps']:,.1f}", fit]


def latency_ratios(records: Sequence[dict]) -> list[tuple[str, float, float]]:
    """``(A/B, measured ratio, paper ratio)`` of batch-1 p50 latency for :data:`LATENCY_RATIOS`
    where both systems were profiled."""
    p50 = {r["system"]: r["latency_ms"]["p50_ms"] for r in records}
    labels = {r["system"]: r["label"] for r in records}
    return [(f"{labels[a]}/{labels[b]}", p50[a] / p50[b], PAPER_LATENCY_MS[a] / PAPER_LATENCY_MS[b])
            for a, b in LATENCY_RATIOS if a in p50 and b in p50]


def _process_clause(records: Sequence[dict]) -> str:
    """How the measuring processes started: forked from a server that had imported the common
    libraries (records with ``preload``), or spawned (records made before the fork server)."""
    spawned = [r["label"] for r in records if not r.get("preload")]
    forked = ("a fresh process forked from a server that had imported torch, transformers and the other common "
              "libraries (library code touched only while importing is not in Peak RSS)")
    if not spawned:
        return forked
    if len(spawned) == len(records):
        return "a fresh spawned process (Peak RSS includes importing the libraries)"
    return f"{forked}; {', '.join(spawned)} in a fresh spawned process (Peak RSS includes importing the libraries)"


def _commits_clause(records: Sequence[dict]) -> str:
    """Which rows were measured at which commit, when the records come from more than one: the
    machine's speed can differ between sessions, so latencies compare within one."""
    rows: dict[str, list[str]] = {}
    for r in records:
        rows.setdefault(str(r.get("commit") or "unknown")[:7], []).append(r["label"])
    if len(rows) < 2:
        return ""
    return (" Rows measured at different commits (compare latencies within one): "
            + "; ".join(f"{', '.join(labels)} at {commit}" for commit, labels in rows.items()) + ".")


def _table3_footnote(records: Sequence[dict]) -> str:
    threads = "/".join(map(str, sorted({r["threads"] for r in records})))
    queries = "/".join(map(str, sorted({r["latency_ms"]["n"] for r in records})))
    baseline = min(r["baseline_rss_mb"] for r in records)
    cpus = "/".join(map(str, sorted({r["machine"]["cpus"] for r in records})))
    text = (f"Measured at {threads} thread(s) on a {cpus}-CPU machine, each system in "
            f"{_process_clause(records)}. Params: "
            f"every model the loaded system holds (frozen encoders included). Disk: the fitted artifacts "
            f"(model and index). Peak RSS: the serving process's peak, of which about {baseline:,.0f} MB is "
            f"Python, the libraries and the test queries before loading. Latency: search at batch 1 over {queries} "
            f"queries after 5 warm-up queries. q/s @32: throughput at batch 32. Fit: wall time when the "
            f"artifacts were fitted (a system that reuses a cached shared artifact, such as a trained model or "
            f"encoded texts, shows only its own part, marked {DAGGER} "
            f"where recorded; —: not recorded, or resumed from an interrupted fit).{_commits_clause(records)}")
    ratios = latency_ratios(records)
    if ratios:
        text += " Latency ratios (p50, paper in brackets): " + "; ".join(
            f"{name} {ours:.2f} [{paper:.2f}]" for name, ours, paper in ratios) + "."
    return text


def table3_markdown(records: Sequence[dict], caption: str) -> str:
    lines = [f"**{caption}**", "", md_row(["Model", *TABLE3_COLUMNS]), "|---|" + "---:|" * len(TABLE3_COLUMNS)]
    lines += [md_row([r["label"], *_table3_cells(r)]) for r in records]
    return "\n".join(lines) + "\n\n" + _table3_footnote(records) + "\n"


def table3_latex(records: Sequence[dict], caption: str) -> str:
    lines = ["% Requires \\usepackage{booktabs}.", "\\begin{table}[t]", "\\centering", "\\small",
             "\\begin{tabular}{l" + "r" * len(TABLE3_COLUMNS) + "}", "\\toprule",
             "Model & " + " & ".join(latex_escape(c) for c in TABLE3_COLUMNS) + " \\\\", "\\midrule"]
    lines += [f"{latex_escape(r['label'])} & " + " & ".join(latex_escape(c) for c in _table3_cells(r)) + " \\\\"
              for r in records]
    lines += ["\\bottomrule", "\\end{tabular}",
              f"\\caption{{{latex_escape(caption)} {latex_escape(_table3_footnote(records))}}}",
              "\\label{tab:efficiency}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def table3_csv(records: Sequence[dict]) -> str:
    rows = [{"system": r["system"], "label": r["label"], "family": r["family"], "parameters": r["parameters"],
             "disk_bytes": r["disk_bytes"], "peak_rss_mb": r["peak_rss_mb"], "baseline_rss_mb": r["baseline_rss_mb"],
             "p50_ms": r["latency_ms"]["p50_ms"], "p95_ms": r["latency_ms"]["p95_ms"],
             "latency_queries": r["latency_ms"]["n"], "throughput_qps": r["throughput_qps"],
             "throughput_batch": r["throughput_batch"], "threads": r["threads"], "fit_s": r["fit_s"],
             "fit_reused_shared": None if r.get("fit_shared") is None else _reused_shared(r),
             "load_s": r["load_s"]} for r in records]
    return _csv_text(rows)


def write_table3(out_dir: Path, dataset: Dataset) -> list[Path]:
    """Write Table 3 (csv, tex, md) from the ``bench profile systems`` records; none without."""
    records = efficiency_records(out_dir, dataset)
    if not records:
        return []
    caption = f"Table 3: efficiency on {dataset.name} ({len(dataset.stickers):,} stickers)."
    return _write_files(out_dir, {
        "table3.csv": table3_csv(records),
        "table3.md": table3_markdown(records, caption),
        "table3.tex": table3_latex(records, caption),
    })
