"""Table 1 by user group: the grouping, the per-group means and tests, and the outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmark import harness
from benchmark.evaluate import per_query_scores
from benchmark.groups import GROUP_ORDER, UNKNOWN, pair_groups, write_group_table
from systems.lexical import BM25
from systems.popularity import GPop, UPop


def test_pairs_are_grouped_by_what_their_users_disclose(tiny):
    groups = pair_groups(tiny)
    assert set(groups) == {q.qid for q in tiny.test_pairs}
    users = tiny.training_data().users
    for pair in tiny.test_pairs:
        user = users.get(pair.user_id)
        expected = user.group if user is not None and user.group else UNKNOWN
        assert groups[pair.qid] == expected
    assert set(groups.values()) <= set(GROUP_ORDER) and len(set(groups.values()) - {UNKNOWN}) == 8


def test_group_means_are_the_means_of_their_pairs_and_files_are_written(tiny, tmp_path):
    harness.run_all([GPop, UPop, BM25], {}, tiny, 1, tmp_path, progress=False)
    paths = write_group_table(tmp_path, tiny)
    assert [p.name for p in paths] == ["groups.csv", "groups.md", "groups.png"]
    results = pd.read_csv(tmp_path / "groups.csv")
    groups = pair_groups(tiny)
    bm25 = per_query_scores(tiny.test_qrels, harness.read_run(tmp_path / "runs/bm25/seed-0.trec"))
    for group in set(groups.values()):
        qids = sorted(q for q, g in groups.items() if g == group)
        row = results[(results.system == "bm25") & (results.group == group) & (results.metric == "mrr@10")]
        assert row["mean"].item() == pytest.approx(bm25.loc[qids, "mrr@10"].mean(), abs=1e-6)
        assert row["pairs"].item() == len(qids)
    best = results["baseline"].unique()
    assert len(best) == 1  # one reference: Table 1's best baseline
    reference = results[results.system == best[0]]
    assert (reference["delta"] == 0).all() and not reference["significant"].any()
    others = results[results.system != best[0]]
    assert not (others["significant"] & (others["delta"] <= 0)).any()
    table = (tmp_path / "groups.md").read_text()
    assert "| BM25 |" in table and "0-19/male (n=" in table and "45-59/female" in table
    assert (tmp_path / "groups.png").read_bytes()[:4] == b"\x89PNG"


def test_a_dataset_without_users_has_no_group_table(tmp_path, monkeypatch, tiny):
    monkeypatch.setattr("benchmark.groups.pair_groups", lambda dataset: {q.qid: UNKNOWN for q in tiny.test_pairs})
    assert write_group_table(tmp_path, tiny) == []
