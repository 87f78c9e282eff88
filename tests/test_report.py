"""The plots and the Markdown report written beside the tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmark import harness, tables
from benchmark.evaluate import per_query_scores
from benchmark.report import table1_bars, write_report
from systems.lexical import BM25
from systems.popularity import GPop, UPop


def test_report_embeds_the_tables_and_plots_present(tiny, tmp_path):
    harness.run_all([GPop, UPop, BM25], {}, tiny, 1, tmp_path, progress=False)
    collected = tables.collect(tmp_path, tiny)
    tables.write_table1(tmp_path, tiny, collected)
    assert [s.seed_means.index.tolist() for s in collected] == [[0], [0], [0]]
    bm25 = next(s for s in collected if s.name == "bm25")
    assert bm25.seed_means.loc[0, "mrr@10"] == bm25.means["mrr@10"]
    records = [{"system": "bm25", "threads": 2, "latency_ms": {"p50_ms": 7.0}},
               {"system": "gpop", "threads": 2, "latency_ms": {"p50_ms": 0.0}}]
    paths = write_report(tmp_path, collected, records)
    assert [p.name for p in paths] == ["table1.png", "quality_latency.png", "report.md"]
    for png in paths[:2]:
        assert png.read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "report.md").read_text()
    assert (tmp_path / "table1.md").read_text().strip() in report
    assert "![Table 1 as bars](table1.png)" in report and "![Quality against latency](quality_latency.png)" in report
    assert "table4" not in report and "Scale profile" not in report  # absent parts are left out


def test_no_latency_records_means_no_scatter(tiny, tmp_path):
    harness.run_all([GPop], {}, tiny, 1, tmp_path, progress=False)
    paths = write_report(tmp_path, tables.collect(tmp_path, tiny), [])
    assert [p.name for p in paths] == ["table1.png", "report.md"]


class NoisyGPop(GPop):
    """GPop whose ranking a seed shuffles: a stochastic system that costs nothing."""

    card = dataclasses.replace(GPop.card, name="noisy", label="Noisy", deterministic=False)

    def search(self, queries, k):
        rankings = super().search(queries, 200)
        rng = np.random.default_rng(self.seed)
        return [[ranking[i] for i in sorted(rng.permutation(len(ranking))[:k])] for ranking in rankings]


def test_bars_show_the_spread_over_seeds(tiny, tmp_path, monkeypatch):
    import matplotlib.axes

    harness.run_all([NoisyGPop, BM25], {}, tiny, 2, tmp_path, progress=False)
    collected = tables.collect(tmp_path, tiny)
    noisy = next(s for s in collected if s.name == "noisy")
    assert noisy.seed_means.index.tolist() == [0, 1]
    per_seed = [per_query_scores(tiny.test_qrels, harness.read_run(tmp_path / f"runs/noisy/seed-{seed}.trec"))
                for seed in (0, 1)]
    assert noisy.seed_means["mrr@10"].tolist() == pytest.approx([s["mrr@10"].mean() for s in per_seed])
    errors = []
    original = matplotlib.axes.Axes.bar
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", lambda self, x, h, **kw: errors.append(kw["yerr"]) or
                        original(self, x, h, **kw))
    table1_bars(collected, tmp_path / "bars.png")
    spread = noisy.seed_means["mrr@10"].std(ddof=1)
    assert spread > 0
    assert errors[0] == pytest.approx([spread if s.name == "noisy" else 0.0 for s in collected])
