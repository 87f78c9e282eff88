"""The online test's procedure and formulas against hand-worked examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.online import (
    A, B, Interleaving, QueryOutcome, delta_acp, delta_ctr, delta_gsb, examination_probabilities,
    position_based_clicks, query_outcome, team_draft,
)


def test_disjoint_lists_alternate_strictly_from_the_coins_winner():
    a, b = ["a1", "a2", "a3"], ["b1", "b2", "b3"]
    first_a = team_draft(a, b, a_first=True)
    assert first_a.stickers == ("a1", "b1", "a2", "b2", "a3", "b3")
    assert first_a.owners == (A, B, A, B, A, B)
    first_b = team_draft(a, b, a_first=False)
    assert first_b.stickers == ("b1", "a1", "b2", "a2", "b3", "a3")
    assert first_b.owners == (B, A, B, A, B, A)


def test_a_sticker_already_drafted_is_skipped_and_keeps_its_first_owner():
    # a: x, y, z ; b: y, x, w.  A drafts x; B drafts y; A's next is y (taken) -> z;
    # B's next is x (taken) -> w.
    out = team_draft(["x", "y", "z"], ["y", "x", "w"], a_first=True)
    assert out == Interleaving(("x", "y", "z", "w"), (A, B, A, B))


def test_the_longer_list_continues_alone_once_the_other_is_exhausted():
    out = team_draft(["a1"], ["b1", "b2", "b3"], a_first=True)
    assert out.stickers == ("a1", "b1", "b2", "b3") and out.owners == (A, B, B, B)


def test_identical_lists_are_shared_by_alternation():
    out = team_draft(["s1", "s2", "s3", "s4"], ["s1", "s2", "s3", "s4"], a_first=False)
    assert out.stickers == ("s1", "s2", "s3", "s4") and out.owners == (B, A, B, A)


def test_only_the_top_depth_of_each_ranking_is_drafted_into_twenty_items():
    a = [f"a{i}" for i in range(15)]
    b = [f"b{i}" for i in range(15)]
    out = team_draft(a, b, a_first=True, depth=10)
    assert len(out.stickers) == 20 and "a10" not in out.stickers and out.owners.count(A) == 10


def test_each_system_keeps_its_internal_order():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pool = [f"s{i}" for i in range(15)]
        a = list(rng.permutation(pool)[:10])
        b = list(rng.permutation(pool)[:10])
        out = team_draft(a, b, a_first=bool(rng.integers(2)))
        assert len(set(out.stickers)) == len(out.stickers) == len(set(a) | set(b))
        for team, ranking in ((A, a), (B, b)):
            mine = [s for s, o in zip(out.stickers, out.owners) if o == team]
            assert mine == [s for s in ranking if s in mine]


def test_query_outcome_attributes_clicks_to_their_owners():
    inter = Interleaving(("x", "y", "z", "w"), (A, B, A, B))
    outcome = query_outcome(inter, [True, False, True, True])
    # A owns ranks 1 and 3, both clicked: CTR 2/2, ACP (1+3)/2; B owns 2 and 4, 4 clicked.
    assert outcome == QueryOutcome(ctr_a=1.0, ctr_b=0.5, acp_a=2.0, acp_b=4.0)
    assert query_outcome(inter, [False] * 4) == QueryOutcome(0.0, 0.0, None, None)


def test_eq17_and_eq18_by_hand():
    outcomes = [QueryOutcome(1.0, 0.5, 2.0, 4.0), QueryOutcome(0.2, 0.4, 3.0, 1.0), QueryOutcome(0.0, 0.1, None, 2.0)]
    assert delta_ctr(outcomes) == pytest.approx(((1.0 - 0.5) + (0.2 - 0.4) + (0.0 - 0.1)) / 3)
    mean, n = delta_acp(outcomes)
    assert n == 2 and mean == pytest.approx(((2.0 - 4.0) + (3.0 - 1.0)) / 2)
    assert delta_acp(outcomes[2:]) == (None, 0)


def test_eq19_by_hand():
    assert delta_gsb([1, 1, 0, -1, 1]) == pytest.approx((3 - 1) / 5)
    assert delta_gsb([0, 0]) == 0.0
    with pytest.raises(ValueError):
        delta_gsb([])


def test_position_based_clicks_follow_examination_times_attractiveness():
    examination = examination_probabilities(3, eta=1.0)
    assert examination.tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    rng = np.random.default_rng(0)
    clicks = np.array([position_based_clicks(np.array([0.8, 0.8, 0.0]), examination, rng) for _ in range(20_000)])
    assert clicks.mean(axis=0) == pytest.approx([0.8, 0.4, 0.0], abs=0.01)


class FixedExperts:
    """Every examined sticker of ``liked`` is clicked, no other."""

    def __init__(self, liked):
        self.liked = set(liked)

    def attractiveness(self, session, sticker_ids, rng):
        return np.array([1.0 if s in self.liked else 0.0 for s in sticker_ids])


class Session:
    def __init__(self, qid):
        self.qid = qid


def test_simulate_credits_clicks_and_sessions_to_the_better_system():
    from benchmark.online import OnlineConfig, simulate

    sessions = [Session(f"q{i}") for i in range(6)]
    run_a = {s.qid: [f"{s.qid}-a{j}" for j in range(10)] for s in sessions}
    run_b = {s.qid: [f"{s.qid}-b{j}" for j in range(10)] for s in sessions}
    experts = FixedExperts(x for r in run_a.values() for x in r)
    config = OnlineConfig(examination_eta=0.0)  # every rank examined: clicks are deterministic
    out = simulate(experts, sessions, run_a, run_b, config, seed=0)
    assert out["delta_ctr"] == 1.0 and out["delta_gsb"] == 1.0 and out["good"] == 6
    assert out["delta_acp"] is None and out["acp_queries"] == 0  # B was never clicked


def test_simulate_finds_no_difference_between_identical_systems():
    from benchmark.online import OnlineConfig, confidence_interval, simulate

    sessions = [Session(f"q{i}") for i in range(400)]
    run = {s.qid: [f"{s.qid}-{j}" for j in range(10)] for s in sessions}
    experts = FixedExperts(x for r in run.values() for x in r[::2])
    outs = [simulate(experts, sessions, run, run, OnlineConfig(), seed) for seed in range(3)]
    assert all(o["delta_gsb"] == 0.0 and o["same"] == 400 for o in outs)
    mean, half = confidence_interval([o["delta_ctr"] for o in outs])
    assert abs(mean) < 0.05 and half > 0
    assert simulate(experts, sessions, run, run, OnlineConfig(), 1) == outs[1]  # same seed, same result


def test_confidence_interval_by_hand():
    from benchmark.online import confidence_interval

    mean, half = confidence_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
    assert confidence_interval([5.0]) == (5.0, 0.0)


def test_simulated_experts_cover_the_groups_and_click_on_intent(tiny):
    from benchmark import simulator
    from benchmark.online_sim import SimulatedExperts

    experts = SimulatedExperts(simulator.SimConfig(**tiny.card["generator"]["config"]), n_experts=20)
    sessions = experts.sessions(80)
    assert len({s.user_id for s in sessions}) == 20 and len({s.group for s in sessions}) == 8
    assert [s.text for s in sessions] == [s.text for s in experts.sessions(80)]  # fixed by the dataset seed
    users = tiny.training_data().users
    assert all(users[s.user_id].age_group and users[s.user_id].gender for s in sessions)
    rng = np.random.default_rng(0)
    ids = [s.id for s in tiny.stickers]
    matching, missing = [], []
    for s in sessions:
        a = experts.attractiveness(s, ids, rng)
        hit = a != experts.mismatch
        matching += a[hit].tolist()
        missing += a[~hit].tolist()
    assert set(missing) == {0.02} and np.mean(matching) > 0.2


def test_bench_run_writes_table4_and_bench_tables_rebuilds_it(tmp_path, tiny):
    from benchmark.online import OnlineConfig, online_test
    from conftest import bench, bench_here

    home = tmp_path / "home"
    out = bench("run", "--profile", "tiny", "--systems", "gpop,upop", "--no-profile", "--online", "system=upop",
                "--online", "online_system=gpop", "--online", "queries=100", "--online", "seeds=3", home=home)
    assert out.returncode == 0, out.stderr
    assert "online test: upop vs gpop" in out.stderr and "UPop vs GPop (simulated)" in out.stdout
    results = home / "results/wechat-sim-tiny"
    table = (results / "table4.md").read_bytes()
    saved = json.loads((results / "online/table4.json").read_text())
    assert saved["config"]["queries"] == 100 and len(saved["seeds"]) == 3
    assert len((results / "online/runs/upop/seed-0.trec").read_text().split("\n")) > 100
    rebuilt = bench("tables", "--profile", "tiny", home=home)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (results / "table4.md").read_bytes() == table  # same saved config, same seeds
    other = OnlineConfig(system="upop", online_system="gpop", queries=50)
    assert online_test(tiny, results, other) is None  # runs of other queries are never mixed in
    bad = bench_here("run", "--profile", "tiny", "--systems", "gpop", "--online", "nonsense=1")
    assert bad.returncode == 2 and "unknown config field 'nonsense'" in bad.stderr
