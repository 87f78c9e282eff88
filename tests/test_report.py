"""The plots and the Markdown report written beside the tables."""

from __future__ import annotations

from benchmark import harness, tables
from benchmark.report import write_report
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
