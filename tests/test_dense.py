"""Dense retrievers: the faiss index, negatives, and that DPR / ANCE training learns."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from benchmark.evaluate import per_query_scores
from benchmark.records import Query
from systems.base import recording_shared
from systems.dense import (
    ANCE, DPR, DenseIndex, bm25_negatives, in_batch_batches, pair_batches, sample_negative, training_triples,
)
from systems.encoders import encode, load_encoder

SMALL = {"batch_size": 16, "warmup": 5}


def _brute_force(vectors, queries, ids, k):
    scores = queries @ vectors.T
    out = []
    for row in scores:
        pairs = sorted(zip(ids, np.round(row, 5)), key=lambda p: p[0], reverse=True)
        out.append([s for s, _ in sorted(pairs, key=lambda p: -p[1])[:k]])
    return out


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_index_returns_the_brute_force_neighbours(kind, tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(800, 16)).astype(np.float32)
    queries = rng.normal(size=(25, 16)).astype(np.float32)
    ids = [f"s{i:04d}" for i in range(800)]
    index = DenseIndex.build(vectors, ids, kind=kind, nlist=8, nprobe=8)  # all lists probed: exact
    index.save(tmp_path)
    found = [[s for s, _ in r] for r in DenseIndex.load(tmp_path).search(queries, 10)]
    assert found == _brute_force(vectors, queries, ids, 10)


def test_hnsw_index_is_close_to_exact():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(2000, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    ids = [str(i) for i in range(2000)]
    found = DenseIndex.build(vectors, ids, kind="hnsw").search(queries, 10)
    exact = _brute_force(vectors, queries, ids, 10)
    recall = np.mean([len({s for s, _ in f} & set(e)) / 10 for f, e in zip(found, exact)])
    assert recall > 0.9


def test_ivfpq_index_compresses_and_finds_near_duplicates():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(10_000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"s{i:05d}" for i in range(10_000)]
    index = DenseIndex.build(vectors, ids, kind="ivfpq", nlist=16, nprobe=16, pq_m=8)
    assert index.index.code_size == 8  # 8 bytes a vector instead of 64
    queries = vectors[:100] + 0.01 * rng.normal(size=(100, 16)).astype(np.float32)
    found = index.search(queries, 10)
    assert np.mean([ids[i] in {s for s, _ in f} for i, f in enumerate(found)]) > 0.9


def test_negatives_never_include_positives(tiny):
    data = tiny.training_data()
    triples = training_triples(data)
    docs = data.sticker_documents(labelled=True)
    negatives = bm25_negatives(data)
    for t in triples:
        assert not set(negatives[t.qid]) & t.positives
    with recording_shared() as uses:  # the second system to ask (DPR, then ANCE) reuses them
        assert bm25_negatives(data) == negatives
    assert [(u["kind"], u["built"]) for u in uses] == [("bm25-negatives", False)]
    rng = np.random.default_rng(0)
    for batch in itertools.islice(in_batch_batches(triples, negatives, docs, 16, rng), 30):
        assert batch.allowed.shape == (16, 32)
        assert all(batch.allowed[i, t] for i, t in enumerate(batch.targets))
    for batch in itertools.islice(pair_batches(triples, negatives, docs, 16, rng), 30):
        for i, target in enumerate(batch.targets):
            allowed = np.flatnonzero(batch.allowed[i])
            assert list(allowed) == [target, target + 1]
    positives = frozenset({"a", "b"})
    assert {sample_negative(["a", "b", "c"], positives, rng, ["a"]) for _ in range(20)} == {"c"}
    assert sample_negative(["a"], positives, rng, ["a", "z"]) == "z"


def _mrr_on_training_queries(data, query_model, doc_model=None, index=None):
    """MRR@10 of the training queries against the labelled sticker texts, encoded by
    ``doc_model`` (or already in ``index``)."""
    if index is None:
        docs = data.sticker_documents(labelled=True)
        ids = sorted(docs)
        index = DenseIndex.build(encode(doc_model, [docs[s] for s in ids]), ids)
    queries = sorted(data.queries, key=lambda q: q.qid)
    rankings = index.search(encode(query_model, [q.text for q in queries]), 10)
    run = {q.qid: [s for s, _ in r] for q, r in zip(queries, rankings)}
    return per_query_scores(data.qrels, run, ["mrr@10"])["mrr@10"].mean()


def test_dpr_learns_and_beats_the_untuned_encoder(tiny, tmp_path):
    data = tiny.training_data()
    dpr = DPR(dataclasses.replace(DPR.Config(), steps=40, **SMALL), seed=0)
    dpr.fit(data, tmp_path)
    dpr.load(tmp_path)
    notes = dpr.notes()
    assert notes["train_steps"] == 40 and notes["loss_last_20"] < 0.8 * notes["loss_first_20"]
    docs = data.sticker_documents(labelled=True)
    assert dpr.index.ids == sorted(docs)  # the saved index holds every sticker, encoded by the saved sticker encoder
    sticker_encoder = load_encoder(str(tmp_path / "sticker_encoder"), 48, normalize=False)
    first = encode(sticker_encoder, [docs[s] for s in dpr.index.ids[:8]])
    assert np.allclose(first, dpr.index.index.reconstruct_n(0, 8), atol=1e-5)
    untuned = load_encoder("all-MiniLM-L6-v2", 48, normalize=False)
    tuned = _mrr_on_training_queries(data, dpr.query_model, index=dpr.index)
    assert tuned > 1.2 * _mrr_on_training_queries(data, untuned, untuned)
    (ranking,) = dpr.search([Query("x", None, data.queries[0].text)], 5)
    assert len(ranking) == 5 and ranking == sorted(ranking, key=lambda p: -p[1])


def test_ance_refreshes_its_negatives_and_learns(tiny, tmp_path):
    config = dataclasses.replace(ANCE.Config(), warmup_steps=10, refreshes=2, refresh_every=10, **SMALL)
    ance = ANCE(config, seed=0)
    ance.fit(tiny.training_data(), tmp_path)
    ance.load(tmp_path)
    notes = ance.notes()
    assert notes["train_steps"] == 30 and notes["refreshes"] == 2
    assert notes["loss_last_20"] < notes["loss_first_20"]
    assert not (tmp_path / "sticker_encoder").exists()  # one shared encoder
