"""Speed benchmarks (not timed tests): measured on this machine, printed and saved as JSON.

``bench profile systems`` (and the end of ``bench run``) measures Table 3: for each fitted
system, in a fresh process, its parameters, the size of its artifacts on disk, its peak
resident memory while loading and serving, its batch-1 search latency (p50/p95, after a
warm-up, at a fixed thread count) and its throughput at batch 32; the fit time is the one the
harness recorded when it fitted the artifacts.

``bench profile dense`` reports the text encoder's corpus throughput (stickers/s) and the
per-query latency of encoding a query and searching each faiss index kind at batch 1, after
a warm-up, with the thread count used.

``bench profile generative`` reports, per generative system, the batch-1 search latency and
where the time goes: inside the model's forward passes, in the constrained decoder's logits
processor, and elsewhere (beam bookkeeping, SEAL scoring).
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from benchmark.dataset import Dataset
from systems.encoders import usable_cores


TIMED_QUERIES = 50
"""Batch-1 queries timed per system for Table 3."""

SERVING_PRELOAD: tuple[str, ...] = (
    "torch", "transformers.models.bart.modeling_bart", "transformers.models.bert.modeling_bert",
    "sentence_transformers", "faiss", "open_clip", "sklearn.metrics", "benchmark.dataset", "systems.registry")
"""Modules the server that forks Table 3's measuring processes imports once. Each fresh
process would otherwise spend about 4 s importing them before loading its system. None of
them starts a thread pool or the JVM (BM25 starts it on first use), so forking after them
is safe."""


def latency_ms(fn: Callable[[int], object], n: int, warmup: int = 10) -> dict[str, float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``n`` times; p50/p95/mean in milliseconds."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(1000 * (time.perf_counter() - start))
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "mean_ms": float(np.mean(times)), "n": n}


def dense(dataset: Dataset, encoder: str, n_encode: int = 2000, n_queries: int = 200,
          threads: int | None = None) -> dict:
    """Encode throughput and batch-1 search latency of the dense machinery on ``dataset``."""
    from systems.dense import DenseIndex
    from systems.encoders import cached_encode, encode, load_encoder, set_threads

    used = set_threads(threads)
    model = load_encoder(encoder, 48, normalize=False)
    docs = dataset.training_data().sticker_documents(labelled=True)
    ids = sorted(docs)
    sample = [docs[s] for s in ids[:n_encode]]
    encode(model, sample[:64])  # warm-up
    start = time.perf_counter()
    encode(model, sample, batch_size=64)
    throughput = len(sample) / (time.perf_counter() - start)
    vectors = cached_encode(model, f"{encoder}:{dataset.fingerprint}", [docs[s] for s in ids], progress=True)
    queries = [q.text for q in dataset.test_queries()]
    out = {"dataset": dataset.name, "stickers": len(ids), "encoder": encoder, "threads": used,
           "encode_stickers_per_s": round(throughput, 1), "encoded_for_throughput": len(sample),
           "query_encode": latency_ms(lambda i: encode(model, [queries[i % len(queries)]]), n_queries),
           "search": {}}
    query_vectors = encode(model, queries)
    for kind in ("flat", "ivf", "hnsw"):
        start = time.perf_counter()
        index = DenseIndex.build(vectors, ids, kind=kind)
        build_s = time.perf_counter() - start
        stats = latency_ms(lambda i, index=index: index.search(query_vectors[i % len(queries)][None, :], 20), n_queries)
        out["search"][kind] = {"build_s": round(build_s, 3), **stats}
    return out


class _Clock:
    """Seconds spent in the model's forward passes, in the logits processor and in generate."""

    def __init__(self) -> None:
        self.forward = self.processor = self.generate = self.forward_in_generate = 0.0
        self._depth, self._start, self._in_generate = 0, 0.0, False


@contextlib.contextmanager
def _timed_decoding(model: Any) -> Iterator[_Clock]:
    """Time ``model``'s (a :class:`~systems.seq2seq.Seq2Seq`) forward passes (outermost only),
    its ``generate`` calls and the constrained logits processor, for the duration of the block."""
    from systems.constrained import ConstrainedLogitsProcessor

    clock = _Clock()

    def pre(*_):
        if clock._depth == 0:
            clock._start = time.perf_counter()
        clock._depth += 1

    def post(*_):
        clock._depth -= 1
        if clock._depth == 0:
            spent = time.perf_counter() - clock._start
            clock.forward += spent
            clock.forward_in_generate += spent if clock._in_generate else 0.0

    modules = [model.model, model.model.get_encoder()]
    hooks = [h for m in modules for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    original_call, original_generate = ConstrainedLogitsProcessor.__call__, model.generate

    def call(self, input_ids, scores):
        start = time.perf_counter()
        out = original_call(self, input_ids, scores)
        clock.processor += time.perf_counter() - start
        return out

    def generate(*args, **kwargs):
        start, clock._in_generate = time.perf_counter(), True
        try:
            return original_generate(*args, **kwargs)
        finally:
            clock._in_generate = False
            clock.generate += time.perf_counter() - start

    ConstrainedLogitsProcessor.__call__, model.generate = call, generate
    try:
        yield clock
    finally:
        ConstrainedLogitsProcessor.__call__ = original_call
        del model.generate
        for h in hooks:
            h.remove()


def _decode_split(system: Any, queries: list, batch_size: int) -> dict:
    """Search ``queries`` in batches under the decoding clock: ms per query and time shares."""
    with _timed_decoding(system.model) as clock:
        stats = latency_ms(lambda i: system.search(queries[i * batch_size: (i + 1) * batch_size], 20),
                           max(1, len(queries) // batch_size), warmup=0)
    total = stats["mean_ms"] * stats["n"] / 1000
    return {
        **({k: round(v, 3) for k, v in stats.items() if k != "n"} if batch_size == 1 else {}),
        "ms_per_query": round(1000 * total / (stats["n"] * batch_size), 3),
        "forward_share": round(clock.forward / total, 4),
        "outside_forward_share": round(1 - clock.forward / total, 4),
        "decode_outside_forward_share": round(1 - clock.forward_in_generate / max(clock.generate, 1e-9), 4),
        "decode_processor_share": round(clock.processor / max(clock.generate, 1e-9), 4),
    }


def generative(dataset: Dataset, systems: dict[str, tuple[type, Any]], n_queries: int = 64,
               threads: int | None = None, batch_size: int = 32) -> dict:
    """Search latency of generative systems and the share of time spent outside the model.

    Each system is fitted (or loaded from the artifact cache) with the given config, then
    searches ``n_queries`` test queries one at a time (latency) and in batches of
    ``batch_size`` (as the harness runs), after 5 warm-up queries.

    Returns:
        Per system and batch size: ms per query (and batch-1 percentiles) and the shares of time
        spent in forward passes, in the logits processor and elsewhere, over the whole search
        and within ``generate``.
    """
    from benchmark.harness import fit_or_load
    from systems.encoders import set_threads

    queries = dataset.test_queries()
    sample = [queries[i % len(queries)] for i in range(n_queries)]
    out: dict[str, Any] = {"dataset": dataset.name, "stickers": len(dataset.stickers), "queries": n_queries,
                           "batch_size": batch_size, "systems": {}}
    for name, (cls, config) in systems.items():
        system, _, _ = fit_or_load(cls, config, 0, dataset)
        out["threads"] = set_threads(threads)
        for query in sample[:5]:  # warm-up, untimed
            system.search([query], 20)
        out["systems"][name] = {"parameters": system.model.n_parameters(),
                                "batch_1": _decode_split(system, sample, 1),
                                f"batch_{batch_size}": _decode_split(system, sample, batch_size)}
    return out


def count_parameters(system: Any) -> int:
    """Parameters of every torch module a loaded system holds (in attributes, or in lists, dicts
    and plain objects inside them), each tensor counted once."""
    import torch

    seen_objects: set[int] = set()
    tensors: dict[int, int] = {}

    def visit(obj: Any, depth: int) -> None:
        if id(obj) in seen_objects or depth > 4:
            return
        seen_objects.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            tensors.update((id(p), p.numel()) for p in obj.parameters())
        elif isinstance(obj, dict):
            for value in obj.values():
                visit(value, depth + 1)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                visit(value, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            for value in vars(obj).values():
                visit(value, depth + 1)

    visit(system, 0)
    return sum(tensors.values())


def disk_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB: ``VmHWM``, which starts afresh with
    the process's own address space (``ru_maxrss`` would carry a forking parent's peak)."""
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    return int(kib) / 1024


def pin_threads(threads: int) -> None:
    """Run this process's torch, OpenMP and BLAS work on ``threads`` threads: the environment
    for libraries not loaded yet, threadpoolctl for those already loaded (a forked process
    inherits the fork server's), torch's own setting for torch."""
    from threadpoolctl import threadpool_limits

    from systems.encoders import set_threads

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    threadpool_limits(threads)
    set_threads(threads)


def preloaded() -> list[str]:
    """The modules a measuring process starts with: :data:`SERVING_PRELOAD`, or none where
    processes cannot be forked from a server (Windows: a spawned process imports them itself)."""
    return list(SERVING_PRELOAD) if "forkserver" in get_all_start_methods() else []


def fresh_process() -> ProcessPoolExecutor:
    """A pool of one fresh process, forked from a server that has imported
    :data:`SERVING_PRELOAD` (started on first use, then shared by later pools): the process has
    its own address space, so its peak memory is its own, without paying the imports again."""
    if not preloaded():
        return ProcessPoolExecutor(1, mp_context=get_context("spawn"))
    context = get_context("forkserver")
    context.set_forkserver_preload(list(SERVING_PRELOAD))
    return ProcessPoolExecutor(1, mp_context=context)


def _serve(cls: type, config: Any, dataset_path: Path, folder: Path, threads: int, n_queries: int,
           batch_size: int) -> dict:
    """In a fresh process: load a fitted system from ``folder`` and measure it serving."""
    from benchmark.dataset import load_dataset
    from systems.encoders import set_threads

    pin_threads(threads)
    dataset = load_dataset(dataset_path, verify_checksums=False)
    queries = dataset.test_queries()
    baseline = rss_mb()
    start = time.perf_counter()
    system = cls(config, 0)
    system.load(folder)
    load_s = time.perf_counter() - start
    set_threads(threads)  # after load: systems set their own configured count there
    for query in queries[:5]:  # warm-up, untimed (and lazily loaded parts get loaded)
        system.search([query], 20)
    one = latency_ms(lambda i: system.search([queries[(5 + i) % len(queries)]], 20), n_queries, warmup=0)
    n_batches = max(1, min(4, len(queries) // batch_size))
    start = time.perf_counter()
    for b in range(n_batches):
        system.search(queries[b * batch_size: (b + 1) * batch_size], 20)
    throughput = n_batches * batch_size / (time.perf_counter() - start)
    return {"parameters": count_parameters(system), "load_s": round(load_s, 3),
            "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "latency_ms": {k: round(v, 3) if isinstance(v, float) else v for k, v in one.items()},
            "throughput_qps": round(throughput, 2), "throughput_batch": batch_size,
            "throughput_queries": n_batches * batch_size}


def system_efficiency(cls: type, config: Any, dataset: Dataset, threads: int | None = None,
                      n_queries: int = TIMED_QUERIES, batch_size: int = 32) -> dict:
    """Table 3's measurements of one system (seed 0), fitting it first if it is not cached.

    Serving is measured in a fresh process (:func:`fresh_process`), so that peak memory is the
    serving process's own: Python, torch, the test queries and the loaded system.

    Returns:
        The card name and label, config, thread count, disk bytes of the artifacts, fit seconds
        (as recorded when fitted; None for artifacts fitted before the record existed, or for a
        resumed fit), the shared artifacts the fit used (``fit.json``'s ``shared``) and the
        serving measurements of :func:`_serve`.
    """
    from benchmark.harness import FIT_RECORD, artifact_folder, fit_or_load
    from benchmark.io import read_json
    from benchmark.provenance import git_commit, machine, versions
    from systems.base import config_dict

    threads = threads or usable_cores()
    folder = artifact_folder(cls, config, 0, dataset)
    if not (folder / ".complete").exists():
        fit_or_load(cls, config, 0, dataset)
    record = read_json(folder / FIT_RECORD) if (folder / FIT_RECORD).exists() else {}
    with fresh_process() as pool:
        served = pool.submit(_serve, cls, config, dataset.path, folder, threads, n_queries, batch_size).result()
    return {"system": cls.card.name, "label": cls.card.label, "family": cls.card.family,
            "config": config_dict(config), "dataset": dataset.name, "fingerprint": dataset.fingerprint,
            "artifacts": folder.name, "threads": threads, "preload": preloaded(),
            "disk_bytes": disk_bytes(folder), "machine": machine(),
            "fit_s": None if record.get("resumed") else record.get("fit_s"),  # a resumed fit's is partial
            "fit_shared": record.get("shared"),  # None: fitted before fit.json recorded them
            "commit": git_commit(), "versions": versions(), **served}


def profile_systems(classes: Sequence[type], configs: Mapping[str, Any], dataset: Dataset, out_dir: Path,
                    threads: int | None = None, n_queries: int = TIMED_QUERIES, force: bool = False,
                    fit: bool = True,
                    report: Callable[[str, dict | str], None] = lambda name, outcome: None) -> list[dict]:
    """Measure each system with :func:`system_efficiency` into
    ``out_dir/profile/systems/<system>.json``.

    A record made for the same artifacts, thread count, query count and preloaded modules is
    kept unless ``force``, so an interrupted profile resumes. A system that does not apply to
    the dataset, or fails, is reported and skipped; so is one that is not fitted, unless ``fit``.
    ``report(name, outcome)`` is called after each system with its new record, or a line saying
    why there is none (``kept``, ``not fitted ...``, ``n/a: ...``, ``failed: ...``).

    Returns:
        The records of the systems measured or kept.
    """
    from benchmark.harness import artifact_folder
    from benchmark.io import read_json, write_json
    from systems.base import NotApplicable

    threads = threads or usable_cores()
    records = []
    for cls in classes:
        config = configs.get(cls.card.name, cls.Config())
        path = out_dir / "profile" / "systems" / f"{cls.card.name}.json"
        old = read_json(path) if path.exists() else None
        folder = artifact_folder(cls, config, 0, dataset)
        wanted = (folder.name, threads, n_queries, preloaded())
        same = old is not None and wanted == (old.get("artifacts"), old.get("threads"), old["latency_ms"].get("n"),
                                              old.get("preload", []))
        if same and not force:
            records.append(old)
            report(cls.card.name, "kept")
            continue
        if not fit and not (folder / ".complete").exists():
            report(cls.card.name, "not fitted here (its run was reused)")
            continue
        try:
            record = system_efficiency(cls, config, dataset, threads, n_queries)
        except NotApplicable as e:
            report(cls.card.name, f"n/a: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - one system's failure does not stop the others
            report(cls.card.name, f"failed: {type(e).__name__}: {e}")
            continue
        write_json(path, record)
        records.append(record)
        report(cls.card.name, record)
    return records
