"""The scale profile: its datasets, its resumable encoding, that every component builds and
answers, and that its memory and report measure what they claim (no timing targets here)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import scale
from benchmark.profile import peak_rss_mb


def test_scale_points_keep_the_papers_vocabulary_proportions():
    full = scale.scale_config(1_092_122)
    assert (full.n_stickers, full.n_ips, full.n_entities) == (1_092_122, 17_906, 38_895)
    small = scale.scale_config(100_000)
    assert small.n_ips == round(17_906 * 100_000 / 1_092_122) and small.n_entities == 3_561
    assert small.click_sessions == full.click_sessions == scale.SCALE_CLICK_SESSIONS
    assert small.n_users == full.n_users == scale.PAPER.n_users


class CountingModel:
    """Stands in for a sentence-transformers model: a text's vector is its length."""

    def __init__(self):
        self.encoded = 0

    def encode(self, texts, **kwargs):
        self.encoded += len(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    def get_embedding_dimension(self):
        return 2


def test_chunked_encoding_resumes_from_its_cached_chunks():
    texts = [f"text {i}" * (1 + i % 3) for i in range(25)]
    model = CountingModel()
    vectors, timing = scale.chunked_encode(model, "counting", texts, "resume-test", chunk=10, progress=False)
    assert model.encoded == 25 and vectors[:, 0].tolist() == [len(t) for t in texts]
    assert timing["texts"] == 25 and len(timing["chunk_load_average"]) == 3
    again, timing_again = scale.chunked_encode(model, "counting", texts, "resume-test", chunk=10, progress=False)
    assert model.encoded == 25  # every chunk came from the cache
    assert np.array_equal(again, vectors) and timing_again["encode_s"] == timing["encode_s"]
    changed = texts[:20] + ["new"] * 5
    scale.chunked_encode(model, "counting", changed, "resume-test", chunk=10, progress=False)
    assert model.encoded == 30  # only the chunk whose texts changed


def test_peak_memory_starts_afresh_after_a_reset():
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    high = peak_rss_mb()
    del block
    scale._reset_peak()
    assert peak_rss_mb() < high - 32


@pytest.mark.parametrize("component", list(scale.COMPONENTS))
def test_every_component_builds_and_answers_on_tiny(component, tiny, monkeypatch):
    monkeypatch.setattr(scale, "scale_dataset", lambda n: tiny)
    record = scale._measure(component, 0, "all-MiniLM-L6-v2", threads=1, n_queries=5)
    assert record["component"] == component and record["stickers"] == len(tiny.stickers)
    assert record["build_s"] > 0 and record["latency_ms"]["n"] == 5 and record["latency_ms"]["p50_ms"] > 0
    assert record["build_peak_mb"] >= record["held_mb"] - 1
    on_disk = component in ("bm25", "dense-flat", "dense-ivfpq")
    assert (record["disk_mb"] > 0) == on_disk and (record["size_mb"] is None) == on_disk
    encoded = record["encoding"]
    if component.startswith("dense"):
        assert encoded["texts"] == len(tiny.stickers) and encoded["encode_s"] > 0
    else:
        assert encoded is None or component == "pearl-identifiers"


def test_deep_size_counts_arrays_and_containers_once():
    import sys

    array = np.zeros(1000, dtype=np.int64)
    shared = [array, array]
    size = scale.deep_size({"a": shared, "b": shared})
    assert 8000 <= size - sys.getsizeof(shared) < 8000 + 2000
    assert scale.deep_size(array[:10]) == 0  # a view owns no buffer


def test_walk_looks_up_every_prefix_of_the_beam():
    from systems.constrained import PrefixTrie

    identifiers = [[10, 11], [10, 12, 13], [14]]
    trie = PrefixTrie(identifiers, eos_token_id=2)
    seen = []
    trie.allowed_after = lambda prefix: seen.append(tuple(prefix))
    rows = scale._walk(trie, identifiers, np.random.default_rng(0), beams=3)
    assert sorted(rows) == [0, 1, 2]
    assert sorted(seen) == sorted([(), (10,), (10, 11), (), (10,), (10, 12), (10, 12, 13), (), (14,)])


def test_report_writes_the_table_and_the_plot(tmp_path):
    from benchmark.io import write_json

    for component, n, build in (("bm25", 10_000, 2.0), ("bm25", 100_000, 15.0), ("dsi-trie", 10_000, 0.5)):
        write_json(tmp_path / f"{component}-{n}.json", {
            "component": component, "stickers": n, "threads": 2, "encoder": "e", "build_s": build,
            "held_mb": 10.0, "build_peak_mb": 20.0, "disk_mb": 1.5 if component == "bm25" else 0.0,
            "size_mb": None if component == "bm25" else 0.4,
            "latency_ms": {"p50_ms": 1.0, "p95_ms": 2.0, "n": 5}, "encoding": None})
    paths = scale.write_scale_report(tmp_path)
    assert [p.name for p in paths] == ["scale.csv", "scale.md", "scale.png"]
    table = (tmp_path / "scale.md").read_text()
    assert "| bm25 | 100,000 | — | 15.0 | — | 10 | 20 | 1.5 | 1.000 | 2.000 |" in table
    assert "| dsi-trie | 10,000 | — | 0.5 | 0.4 | 10 | 20 | — |" in table
    assert table.index("| bm25 | 10,000") < table.index("| bm25 | 100,000") < table.index("| dsi-trie")
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert scale.write_scale_report(tmp_path / "empty") == []
