"""The harness: fit (cached) -> search top-k -> TREC run file, for each system and seed.

Data flows one way. A system's ``fit`` gets :meth:`Dataset.training_data` only and its
``search`` gets :class:`Query` objects only: test qrels and simulator truth stay here.

On disk, under ``results/<dataset>/runs/<system>/``:

* ``seed-<n>.trec``: the TREC run (``qid Q0 sticker rank score tag``), written atomically;
* ``seed-<n>.json``: its metadata (card, config, key, dataset fingerprint, versions, commit,
  wall times, the system's notes) or, for a failed system, the error.

A run whose metadata carries the same key (system, config, dataset fingerprint, seed, k) is
not redone, so an interrupted ``bench run`` resumes where it stopped. Fitted artifacts are
cached under ``.cache/artifacts/<system>/<key>/`` and reused by later runs; an interrupted fit
restarts in the same folder with only its ``checkpoints/`` kept, so training resumes. A
completed fit leaves ``fit.json`` there, which Table 3 reports: its wall time, whether it resumed
from checkpoints (then the time is the remainder's only), and the shared artifacts it used
(:func:`systems.base.recording_shared`: built during this fit, or reused from the cache).

Under ``torchrun`` every rank takes part in each fit (:mod:`systems.distributed`); rank 0
alone writes artifacts, runs and metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from benchmark import provenance
from benchmark.dataset import Dataset
from benchmark.io import atomic_open, replace_dir, stable_hash, write_json
from benchmark.paths import CHECKPOINTS, cache_dir
from benchmark.records import Query, TrainingData
from systems import distributed
from systems.base import NotApplicable, Ranking, config_dict, has_checkpoints, recording_shared, top_k

SEARCH_BATCH = 256
FIT_RECORD = "fit.json"
"""The file in a fitted artifact folder that records how long the fit took, and where."""


@dataclass
class RunOutcome:
    """What happened to one (system, seed)."""

    system: str
    seed: int
    status: str  # "done", "cached" (run reused), "n/a" (not applicable to the dataset) or "failed"
    fit_s: float = 0.0
    search_s: float = 0.0
    error: str = ""


def run_paths(out_dir: Path, system: str, seed: int) -> tuple[Path, Path]:
    """The run file and metadata file of a (system, seed)."""
    folder = out_dir / "runs" / system
    return folder / f"seed-{seed}.trec", folder / f"seed-{seed}.json"


def seeds_for(cls: type, n_seeds: int) -> list[int]:
    """Seeds to run: one for deterministic systems, else ``0..n_seeds-1``."""
    return [0] if cls.card.deterministic else list(range(n_seeds))


def run_key(cls: type, config: Any, dataset: Dataset, seed: int, k: int | None,
            queries: Sequence[Query] | None = None) -> str:
    """Cache key of a fitted system (``k=None``) or of a run (of the test pairs, or of
    ``queries``)."""
    key = {"system": cls.card.name, "config": config_dict(config), "dataset": dataset.fingerprint,
           "seed": seed, "k": k}
    if queries is not None:
        key["queries"] = queries_key(queries)
    return stable_hash(key)


def queries_key(queries: Sequence[Query]) -> str:
    """A hash of queries other than the test pairs (their qids, users and texts)."""
    return stable_hash([(q.qid, q.user.id if q.user else None, q.text) for q in queries])


def check_isolation(data: TrainingData, dataset: Dataset) -> None:
    """Refuse to hand a system anything of the test side (a guard against future edits)."""
    test_qids = {q.qid for q in dataset.test_pairs}
    leaked = test_qids & (set(data.qrels) | {q.qid for q in data.queries})
    if leaked:
        raise RuntimeError(f"test qids reached the training data: {sorted(leaked)[:5]}")


def _clear_partial(partial: Path) -> None:
    """Empty a fit folder left by an interrupted fit, keeping its training checkpoints."""
    if partial.exists():
        for child in partial.iterdir():
            if child.name != CHECKPOINTS:
                shutil.rmtree(child) if child.is_dir() else child.unlink()


def artifact_folder(cls: type, config: Any, seed: int, dataset: Dataset) -> Path:
    """Where the fitted artifacts of a (system, config, seed, dataset) are cached."""
    return cache_dir() / "artifacts" / cls.card.name / run_key(cls, config, dataset, seed, None)


def fit_or_load(cls: type, config: Any, seed: int, dataset: Dataset, progress: bool = True) -> tuple[Any, float, bool]:
    """A fitted, loaded system; fits into the artifact cache unless already there.

    Returns:
        (system, fit seconds, whether the artifacts came from the cache).
    """
    system = cls(config, seed)
    folder = artifact_folder(cls, config, seed, dataset)
    done = folder / ".complete"
    cached = done.exists()
    start = time.perf_counter()
    if not cached:
        data = dataset.training_data()
        check_isolation(data, dataset)
        partial = folder.with_name(folder.name + ".partial")
        if distributed.is_main():
            _clear_partial(partial)
            partial.mkdir(parents=True, exist_ok=True)
        resumed = has_checkpoints(partial)
        if progress:
            tqdm.write(f"[{cls.card.name} seed {seed}] fitting on {dataset.name}", file=sys.stderr)
        with recording_shared() as shared, distributed.building(partial) as own:  # rank 0 alone writes
            system.fit(data, own)
        if distributed.is_main():
            shutil.rmtree(partial / CHECKPOINTS, ignore_errors=True)
            write_json(partial / FIT_RECORD, {
                "fit_s": round(time.perf_counter() - start, 3), "machine": provenance.machine(),
                "processes": distributed.world_size(), "shared": shared,
                "resumed": resumed or any(s["resumed"] for s in shared),  # fit_s: the remainder only
                "load_average": [round(x, 2) for x in os.getloadavg()]})  # > cpus: other work ran beside
            (partial / ".complete").write_text("ok\n")
            replace_dir(partial, folder)
        distributed.barrier()
    system.load(folder)
    return system, time.perf_counter() - start, cached


def search_all(system: Any, queries: Sequence[Query], k: int, known: set[str], label: str,
               progress: bool = True) -> list[Ranking]:
    """Search every query in batches; validate and tie-break each ranking."""
    out: list[Ranking] = []
    bar = tqdm(total=len(queries), desc=f"{label} search", unit="q", disable=not progress, leave=False)
    for start in range(0, len(queries), SEARCH_BATCH):
        batch = queries[start: start + SEARCH_BATCH]
        rankings = system.search(batch, k)
        if len(rankings) != len(batch):
            raise ValueError(f"{label}: search returned {len(rankings)} rankings for {len(batch)} queries")
        for ranking in rankings:
            best: dict[str, float] = {}
            for sid, score in ranking:
                if sid not in known:
                    raise ValueError(f"{label}: returned unknown sticker id {sid!r}")
                best[sid] = max(float(score), best.get(sid, float("-inf")))
            out.append(top_k(best.items(), k))
        bar.update(len(batch))
    bar.close()
    return out


def write_run(path: Path, queries: Sequence[Query], rankings: Sequence[Ranking], tag: str) -> None:
    """Write a TREC run file atomically."""
    with atomic_open(path) as f:
        for q, ranking in zip(queries, rankings):
            for rank, (sid, score) in enumerate(ranking, start=1):
                f.write(f"{q.qid} Q0 {sid} {rank} {score:.6f} {tag}\n")


def read_run(path: Path) -> dict[str, list[str]]:
    """A TREC run file as qid -> sticker ids in rank order."""
    rows: dict[str, list[tuple[int, str]]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            qid, _, sid, rank, *_ = line.split()
            rows.setdefault(qid, []).append((int(rank), sid))
    return {q: [s for _, s in sorted(r)] for q, r in rows.items()}


def run_system(
    cls: type, config: Any, seed: int, dataset: Dataset, out_dir: Path, k: int = 20,
    force: bool = False, progress: bool = True, queries: Sequence[Query] | None = None,
) -> RunOutcome:
    """Fit (or load) one system for one seed, search all test pairs (or ``queries``), write
    run + metadata.

    A system that raises is recorded as failed (its metadata holds the error) and the outcome
    says so; the exception does not propagate. A system that raises
    :class:`~systems.base.NotApplicable` (the dataset lacks what it needs) is recorded as not
    applicable, with the reason; tables show it as such.
    """
    name = cls.card.name
    run_path, meta_path = run_paths(out_dir, name, seed)
    key = run_key(cls, config, dataset, seed, k, queries)
    if not force and run_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key and meta.get("status") == "ok":
            return RunOutcome(name, seed, "cached", meta["fit_s"], meta["search_s"])
    if not distributed.is_main():  # under torchrun: take part in the training; rank 0 does the rest
        try:
            fit_or_load(cls, config, seed, dataset, progress=False)
        except NotApplicable as e:
            return RunOutcome(name, seed, "n/a", error=str(e))
        return RunOutcome(name, seed, "done")
    base = {
        "system": name, "card": asdict(cls.card), "config": config_dict(config), "seed": seed,
        "k": k, "key": key, "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint,
                                         "files": dataset.card["files"]},
        "versions": provenance.versions(), "commit": provenance.git_commit(),
        "machine": provenance.machine(), **({} if queries is None else {"queries": queries_key(queries)}),
    }
    try:
        system, fit_s, cached = fit_or_load(cls, config, seed, dataset, progress)
        queries = dataset.test_queries() if queries is None else queries
        start = time.perf_counter()
        rankings = search_all(system, queries, k, {s.id for s in dataset.stickers}, f"{name} seed {seed}", progress)
        search_s = time.perf_counter() - start
    except NotApplicable as e:
        write_json(meta_path, {**base, "status": "not applicable", "reason": str(e)})
        return RunOutcome(name, seed, "n/a", error=str(e))
    except Exception as e:  # noqa: BLE001 - any system error is reported, the others go on
        write_json(meta_path, {**base, "status": "failed", "error": f"{type(e).__name__}: {e}",
                               "traceback": traceback.format_exc()})
        return RunOutcome(name, seed, "failed", error=f"{type(e).__name__}: {e}")
    write_run(run_path, queries, rankings, tag=name)
    write_json(meta_path, {
        **base, "status": "ok", "fit_s": round(fit_s, 3), "fit_cached": cached,
        "search_s": round(search_s, 3), "ms_per_query": round(1000 * search_s / max(1, len(queries)), 3),
        "notes": system.notes(), "wall_time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return RunOutcome(name, seed, "done", fit_s, search_s)


def run_all(
    classes: Sequence[type], configs: dict[str, Any], dataset: Dataset, n_seeds: int,
    out_dir: Path, k: int = 20, force: bool = False, progress: bool = True,
    report: Callable[[RunOutcome], None] = lambda o: None,
) -> list[RunOutcome]:
    """Run every system for its seeds; ``report`` is called after each (system, seed)."""
    outcomes = []
    for cls in classes:
        for seed in seeds_for(cls, n_seeds):
            outcome = run_system(cls, configs.get(cls.card.name, cls.Config()), seed, dataset,
                                 out_dir, k, force, progress)
            report(outcome)
            outcomes.append(outcome)
    return outcomes
