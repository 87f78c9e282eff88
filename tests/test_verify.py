"""bench verify: expected figures as data, checked cell by cell with their tolerances."""

from __future__ import annotations

import json

import pytest

from benchmark import harness, verify
from benchmark.verify import Cell
from systems.lexical import BM25
from systems.popularity import GPop, UPop


def test_tolerances_by_hand():
    assert Cell("table1", "s", "mrr@10", 0.40, 0.4009, {"abs": 0.001}).ok
    assert not Cell("table1", "s", "mrr@10", 0.40, 0.4011, {"abs": 0.001}).ok
    assert Cell("table3", "s", "disk_mb", 10.0, 10.9, {"rel": 0.1}).ok
    assert not Cell("table3", "s", "disk_mb", 10.0, 11.1, {"rel": 0.1}).ok
    assert Cell("table3", "s", "p50_ms", 30.0, 89.0, {"factor": 3.0, "floor": 1.0}).ok
    assert not Cell("table3", "s", "p50_ms", 30.0, 91.0, {"factor": 3.0, "floor": 1.0}).ok
    assert Cell("table3", "s", "p50_ms", 0.002, 0.9, {"factor": 3.0, "floor": 1.0}).ok  # both under the floor
    assert not Cell("table1", "s", "mrr@10", 0.4, None, {"abs": 1.0}).ok  # missing fails
    assert Cell("table1", "s", "mrr@10", 0.4, None, {"abs": 1.0}).line().startswith("FAIL")


def test_recorded_figures_verify_and_a_changed_one_fails(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "EXPECTED_DIR", tmp_path / "expected")
    harness.run_all([GPop, UPop, BM25], {}, tiny, 1, tmp_path, progress=False)
    path = verify.record(tmp_path, tiny)
    cells = verify.check(tmp_path, tiny)
    assert cells and all(c.ok for c in cells) and {c.system for c in cells} == {"gpop", "upop", "bm25"}
    expected = json.loads(path.read_text())
    assert expected["deterministic"] == ["bm25", "gpop", "upop"]
    expected["table1"]["bm25"]["mrr@10"] += 0.01
    expected["table1"]["dpr"] = {"mrr@10": 0.4}
    path.write_text(json.dumps(expected))
    failed = [(c.system, c.field) for c in verify.check(tmp_path, tiny) if not c.ok]
    assert failed == [("bm25", "mrr@10"), ("dpr", "mrr@10")]
    expected["fingerprint"] = "another"
    path.write_text(json.dumps(expected))
    with pytest.raises(ValueError, match="expected figures are for"):
        verify.check(tmp_path, tiny)


def test_the_committed_expected_figures_match_the_committed_table1():
    import pandas as pd
    from conftest import ROOT

    expected = json.loads((verify.EXPECTED_DIR / "wechat-sim-default.json").read_text())
    rows = pd.read_csv(ROOT / "results/wechat-sim-default/table1.csv").set_index("system")
    assert set(expected["table1"]) == set(rows.index)
    for system, metrics in expected["table1"].items():
        for metric, value in metrics.items():
            assert rows.loc[system, metric] == pytest.approx(value, abs=1e-4), (system, metric)
