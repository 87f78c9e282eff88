"""Speed benchmarks (not timed tests): measured on this machine, printed and saved as JSON.

``bench profile dense`` reports the text encoder's corpus throughput (stickers/s) and the
per-query latency of encoding a query and searching each faiss index kind at batch 1, after
a warm-up, with the thread count used.

``bench profile generative`` reports, per generative system, the batch-1 search latency and
where the time goes: inside the model's forward passes, in the constrained decoder's logits
processor, and elsewhere (beam bookkeeping, SEAL scoring).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

import numpy as np

from benchmark.dataset import Dataset


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
