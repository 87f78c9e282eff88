"""Speed benchmarks (not timed tests): measured on this machine, printed and saved as JSON.

``bench profile dense`` reports the text encoder's corpus throughput (stickers/s) and the
per-query latency of encoding a query and searching each faiss index kind at batch 1, after
a warm-up, with the thread count used.
"""

from __future__ import annotations

import time
from typing import Callable

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
