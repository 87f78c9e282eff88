"""Tests for :mod:`benchmark.evaluate` (metrics and significance) and :func:`systems.base.top_k`.

The metric tests check ``per_query_scores`` (which delegates to ranx) against values worked out
by hand and against a small, independent pure-Python implementation of MRR@k and Recall@k.
The significance tests check the paired t-test against scipy, the sign-flip permutation test
against exact enumeration, and Holm's procedure against hand-computed adjustments.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.evaluate import METRICS, holm, per_query_scores, permutation_test, t_test
from systems.base import top_k

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def reference_scores(qrels: dict, run: dict, metric: str) -> dict[str, float]:
    """Independent MRR@k / Recall@k for every qid of ``qrels``.

    A document is relevant when its grade is > 0. MRR@k is 1/rank of the first relevant
    document within the top k (0 if none); Recall@k is the share of relevant documents found
    in the top k (0 if the query has no relevant document).

    Args:
        qrels: qid -> {doc id: relevance grade}.
        run: qid -> ranked doc ids, best first.
        metric: ``"mrr@k"`` or ``"recall@k"``.

    Returns:
        qid -> score.
    """
    name, k = metric.split("@")
    k = int(k)
    out = {}
    for qid, judged in qrels.items():
        relevant = {d for d, r in judged.items() if r > 0}
        top = list(run.get(qid, []))[:k]
        if name == "mrr":
            ranks = [i + 1 for i, d in enumerate(top) if d in relevant]
            out[qid] = 1.0 / ranks[0] if ranks else 0.0
        else:
            out[qid] = len(relevant & set(top)) / len(relevant) if relevant else 0.0
    return out


def reference_holm(pvalues: list[float]) -> list[float]:
    """Holm adjustment written directly from its definition.

    For the i-th smallest p-value (1-based), the adjusted value is
    ``min(1, max_{j <= i} (m - j + 1) * p_(j))``.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    for pos, i in enumerate(order):
        candidates = [(m - j) * pvalues[order[j]] for j in range(pos + 1)]
        adjusted[i] = min(1.0, max(candidates))
    return adjusted


# --------------------------------------------------------------------------------------------
# per_query_scores: hand-computed examples
# --------------------------------------------------------------------------------------------

HAND_QRELS = {
    "q1": {"a": 1, "b": 1},  # two relevant docs, found at ranks 2 and 4
    "q2": {"c": 1},  # found at rank 1
    "q3": {"d": 1},  # empty ranking
    "q4": {"e": 2, "f": 0},  # grade 2 counts as relevant; grade 0 does not
    "q5": {"g": 1},  # found at rank 6: inside @10, outside @5
    "q6": {"h": 1},  # absent from the run
}
HAND_RUN = {
    "q1": ["x", "a", "y", "b"],
    "q2": ["c"],
    "q3": [],
    "q4": ["f", "e"],
    "q5": ["n1", "n2", "n3", "n4", "n5", "g"],
    "zz": ["a", "b"],  # not in qrels: must be ignored
}
# Worked out by hand, metric -> {qid: score}:
#   q1: first relevant at rank 2 -> MRR 0 @1, 1/2 from @5; both relevant within top 4 ->
#       Recall 0 @1, 1 from @5.
#   q2: rank 1 -> every metric 1.
#   q3, q6: no ranking -> every metric 0.
#   q4: "f" (grade 0) at rank 1 is not relevant, "e" (grade 2) at rank 2 is the only relevant
#       doc -> MRR 0 @1, 1/2 from @5; Recall 0 @1, 1/1 = 1 from @5.
#   q5: rank 6 -> MRR/Recall 0 @1 and @5, MRR 1/6 and Recall 1 @10 and @20.
HAND_EXPECTED = {
    "mrr@1": {"q1": 0.0, "q2": 1.0, "q3": 0.0, "q4": 0.0, "q5": 0.0, "q6": 0.0},
    "mrr@5": {"q1": 0.5, "q2": 1.0, "q3": 0.0, "q4": 0.5, "q5": 0.0, "q6": 0.0},
    "mrr@10": {"q1": 0.5, "q2": 1.0, "q3": 0.0, "q4": 0.5, "q5": 1 / 6, "q6": 0.0},
    "mrr@20": {"q1": 0.5, "q2": 1.0, "q3": 0.0, "q4": 0.5, "q5": 1 / 6, "q6": 0.0},
    "recall@1": {"q1": 0.0, "q2": 1.0, "q3": 0.0, "q4": 0.0, "q5": 0.0, "q6": 0.0},
    "recall@5": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 1.0, "q5": 0.0, "q6": 0.0},
    "recall@10": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 1.0, "q5": 1.0, "q6": 0.0},
    "recall@20": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 1.0, "q5": 1.0, "q6": 0.0},
}
# Means over the six qrels queries (missing/empty ones count as 0):
#   mrr@1    = (0 + 1 + 0 + 0 + 0 + 0) / 6             = 1/6
#   mrr@5    = (1/2 + 1 + 0 + 1/2 + 0 + 0) / 6         = 2/6 = 1/3
#   mrr@10   = (1/2 + 1 + 0 + 1/2 + 1/6 + 0) / 6       = (13/6) / 6 = 13/36
#   recall@1 = 1/6;  recall@5 = 3/6 = 1/2;  recall@10 = recall@20 = 4/6 = 2/3
HAND_MEANS = {
    "mrr@1": 1 / 6,
    "mrr@5": 1 / 3,
    "mrr@10": 13 / 36,
    "mrr@20": 13 / 36,
    "recall@1": 1 / 6,
    "recall@5": 1 / 2,
    "recall@10": 2 / 3,
    "recall@20": 2 / 3,
}


@pytest.fixture(scope="module")
def hand_scores() -> pd.DataFrame:
    """``per_query_scores`` on the hand-computed example (ranx compiles once per module)."""
    return per_query_scores(HAND_QRELS, HAND_RUN)


def test_frame_shape(hand_scores):
    """One row per qrels qid (sorted, run-only qids dropped) and one float column per metric."""
    assert list(hand_scores.index) == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert list(hand_scores.columns) == list(METRICS)
    assert all(dtype == np.float64 for dtype in hand_scores.dtypes)


@pytest.mark.parametrize("metric", METRICS)
def test_hand_per_query(hand_scores, metric):
    """Each query's score equals the value worked out by hand."""
    for qid, expected in HAND_EXPECTED[metric].items():
        assert hand_scores.loc[qid, metric] == pytest.approx(expected, abs=1e-12), (qid, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_hand_means(hand_scores, metric):
    """Means over all qrels queries (missing and empty ones included as 0)."""
    assert hand_scores[metric].mean() == pytest.approx(HAND_MEANS[metric], abs=1e-12)


def test_partial_recall_and_cutoff_20():
    """Recall counts a share of the relevant docs; a hit at rank 21 is outside every cutoff."""
    qrels = {"p": {"i": 1, "j": 1, "k": 1}, "r": {"t": 1}}
    filler = [f"n{i:02d}" for i in range(20)]
    run = {
        "p": ["i", "z", "j"],  # ranks 1 and 3 of 3 relevant -> R@1 = 1/3, R@5 = 2/3, MRR = 1
        "r": filler + ["t"],  # rank 21 -> 0 everywhere
    }
    scores = per_query_scores(qrels, run)
    assert scores.loc["p", "recall@1"] == pytest.approx(1 / 3)
    assert scores.loc["p", "recall@5"] == pytest.approx(2 / 3)
    assert scores.loc["p", "recall@20"] == pytest.approx(2 / 3)
    assert scores.loc["p", "mrr@1"] == pytest.approx(1.0)
    assert (scores.loc["r"] == 0.0).all()


def test_rank_20_is_inside_cutoff_20():
    """A first hit at rank 20 counts @20 (1/20) but not @10."""
    run = {"q": [f"n{i:02d}" for i in range(19)] + ["hit"]}
    scores = per_query_scores({"q": {"hit": 1}}, run)
    assert scores.loc["q", "mrr@10"] == 0.0
    assert scores.loc["q", "mrr@20"] == pytest.approx(1 / 20)
    assert scores.loc["q", "recall@20"] == pytest.approx(1.0)


def test_empty_run_scores_zero():
    """With no judged query at all the frame is all zeros, still indexed by every qrels qid."""
    scores = per_query_scores({"b": {"x": 1}, "a": {"y": 1}}, {"a": [], "other": ["x"]})
    assert list(scores.index) == ["a", "b"]
    assert (scores.to_numpy() == 0.0).all()


def test_single_metric():
    """A single requested metric gives a one-column frame with the right values."""
    scores = per_query_scores({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": ["x", "a"], "q2": ["b"]}, ["mrr@10"])
    assert list(scores.columns) == ["mrr@10"]
    assert scores["mrr@10"].tolist() == pytest.approx([0.5, 1.0])


def test_only_non_relevant_judgements():
    """A query whose judged docs all have grade 0 has nothing to find: every metric is 0."""
    scores = per_query_scores({"q": {"a": 0, "b": 0}}, {"q": ["a", "b"]})
    assert (scores.loc["q"] == 0.0).all()


# --------------------------------------------------------------------------------------------
# per_query_scores: order of the ranking is respected
# --------------------------------------------------------------------------------------------


def test_order_is_respected():
    """The same docs in another order give another MRR; ranx must not re-sort the list."""
    qrels = {"q": {"a": 1}}
    first = per_query_scores(qrels, {"q": ["a", "z", "m"]})
    last = per_query_scores(qrels, {"q": ["z", "m", "a"]})
    assert first.loc["q", "mrr@10"] == pytest.approx(1.0)
    assert last.loc["q", "mrr@10"] == pytest.approx(1 / 3)
    # Recall@5 is order-blind within the cutoff, so it stays the same.
    assert first.loc["q", "recall@5"] == last.loc["q", "recall@5"] == pytest.approx(1.0)


def test_order_not_alphabetical():
    """Ids that sort before the relevant one alphabetically (in either direction) keep their rank."""
    qrels = {"q": {"m": 1}}
    up = per_query_scores(qrels, {"q": ["a", "b", "m"]})
    down = per_query_scores(qrels, {"q": ["z", "y", "m"]})
    assert up.loc["q", "mrr@5"] == pytest.approx(1 / 3)
    assert down.loc["q", "mrr@5"] == pytest.approx(1 / 3)


# --------------------------------------------------------------------------------------------
# per_query_scores: cross-check with the independent implementation
# --------------------------------------------------------------------------------------------


def random_benchmark(seed: int, n_queries: int = 50, pool: int = 40) -> tuple[dict, dict]:
    """Random qrels and run with graded (0/1/2) judgements, varied list lengths and missing qids.

    Qids are inserted in shuffled order and mix upper/lower case and digits, so a mismatch
    between ranx's query order and the frame's sorted index would show up.
    """
    rng = np.random.default_rng(seed)
    docs = [f"s{i:03d}" for i in range(pool)]
    qids = [f"{'Qq'[i % 2]}{i}" for i in range(n_queries)]
    rng.shuffle(qids)
    qrels, run = {}, {}
    for qid in qids:
        judged = rng.choice(docs, size=int(rng.integers(1, 7)), replace=False)
        qrels[qid] = {str(d): int(rng.choice([0, 1, 1, 2])) for d in judged}
        roll = rng.random()
        if roll < 0.08:
            continue  # qid absent from the run
        length = 0 if roll < 0.14 else int(rng.integers(1, pool + 1))
        run[qid] = [str(d) for d in rng.permutation(docs)[:length]]
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference_implementation(seed):
    """Every metric of every query equals the pure-Python reference to 1e-9."""
    qrels, run = random_benchmark(seed)
    scores = per_query_scores(qrels, run)
    assert list(scores.index) == sorted(qrels)
    for metric in METRICS:
        expected = reference_scores(qrels, run, metric)
        got = scores[metric].to_dict()
        for qid in qrels:
            assert got[qid] == pytest.approx(expected[qid], abs=1e-9), (seed, qid, metric)


def test_random_benchmark_is_not_trivial():
    """Guard for the cross-check: the random data really exercises hits, misses and grades."""
    qrels, run = random_benchmark(0)
    mrr = reference_scores(qrels, run, "mrr@20")
    assert 0 < sum(v == 0 for v in mrr.values()) < len(mrr)
    assert any(0 < v < 1 for v in reference_scores(qrels, run, "recall@5").values())
    assert any(q not in run for q in qrels)
    assert any(r == 0 for judged in qrels.values() for r in judged.values())
    assert any(r == 2 for judged in qrels.values() for r in judged.values())


# --------------------------------------------------------------------------------------------
# top_k
# --------------------------------------------------------------------------------------------


def test_top_k_tie_break():
    """Best score first; equal scores by sticker id in descending string order."""
    ranked = top_k([("s1", 1.0), ("s3", 1.0), ("s2", 2.0)])
    assert [d for d, _ in ranked] == ["s2", "s3", "s1"]
    assert [s for _, s in ranked] == [2.0, 1.0, 1.0]


def test_top_k_string_order():
    """Ids compare as strings, not numbers: "s9" > "s10"."""
    ranked = top_k([("s10", 0.5), ("s9", 0.5), ("s100", 0.5)])
    assert [d for d, _ in ranked] == ["s9", "s100", "s10"]


def test_top_k_truncation():
    """``k`` keeps the best k; ``None`` or a k larger than the list keeps all; 0 keeps none."""
    scored = [("s1", 1.0), ("s3", 1.0), ("s2", 2.0), ("s4", -1.0)]
    assert [d for d, _ in top_k(scored, 2)] == ["s2", "s3"]
    assert [d for d, _ in top_k(scored, 1)] == ["s2"]
    assert [d for d, _ in top_k(scored)] == ["s2", "s3", "s1", "s4"]
    assert len(top_k(scored, 10)) == 4
    assert top_k(scored, 0) == []


def test_top_k_independent_of_input_order():
    """Any permutation of the input (and a generator) gives the same ranking."""
    scored = [("a", 0.3), ("b", 0.3), ("c", 0.9), ("d", 0.3), ("e", 0.1)]
    expected = top_k(scored)
    assert [d for d, _ in expected] == ["c", "d", "b", "a", "e"]
    for perm in itertools.permutations(scored):
        assert top_k(iter(perm)) == expected


# --------------------------------------------------------------------------------------------
# t_test and permutation_test
# --------------------------------------------------------------------------------------------


def shifted_pair(shift: float, noise: float, n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Paired scores ``a = b + shift + N(0, noise)``."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.0, 1.0, n)
    return b + shift + rng.normal(0.0, noise, n), b


def test_identical_scores_give_one():
    """No difference at all: both tests return exactly 1.0."""
    a = np.random.default_rng(3).uniform(size=30)
    assert t_test(a, a.copy()) == 1.0
    assert permutation_test(a, a.copy()) == 1.0


def test_clear_shift_is_significant():
    """A shift of 0.3 with noise 0.1 over 100 queries is detected by both tests."""
    a, b = shifted_pair(0.3, 0.1)
    assert t_test(a, b) < 0.01
    assert permutation_test(a, b) < 0.01


def test_tiny_noisy_difference_is_not_significant():
    """A mean difference of 0.001 against a noise of 0.3 is not significant."""
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 0.3, 100)
    d = noise - noise.mean() + 0.001  # exact mean difference 0.001
    b = rng.uniform(size=100)
    a = b + d
    assert t_test(a, b) > 0.05
    assert permutation_test(a, b) > 0.05


def test_t_test_matches_scipy():
    """On random paired data the p-value is scipy's ``ttest_rel``."""
    for seed in range(5):
        a, b = shifted_pair(0.02 * seed, 0.2, n=40, seed=seed)
        assert t_test(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12, abs=1e-300)


def test_t_test_accepts_lists_and_is_symmetric():
    """Plain lists work and swapping the systems leaves the two-sided p unchanged."""
    a, b = shifted_pair(0.05, 0.2, n=25, seed=11)
    p = t_test(list(a), list(b))
    assert 0.0 < p < 1.0
    assert t_test(b, a) == pytest.approx(p, rel=1e-12)


def test_permutation_deterministic():
    """Same seed -> identical p on repeated calls; the test is symmetric in its arguments."""
    a, b = shifted_pair(0.03, 0.2, n=50, seed=5)
    p = permutation_test(a, b, seed=42)
    assert permutation_test(a, b, seed=42) == p
    assert permutation_test(a, b, seed=42) == p
    assert permutation_test(b, a, seed=42) == p


def test_permutation_seed_matters():
    """A different seed draws other sign flips, so a borderline p changes slightly."""
    a, b = shifted_pair(0.03, 0.2, n=50, seed=5)
    p0, p1 = permutation_test(a, b, seed=0), permutation_test(a, b, seed=1)
    assert 0.01 < p0 < 0.99
    assert p0 != p1
    assert abs(p0 - p1) < 0.05


@pytest.mark.parametrize("n_resamples", [10, 999, 10_000])
def test_permutation_never_zero(n_resamples):
    """Even an overwhelming difference gives p = 1/(1 + n_resamples), never 0."""
    a, b = shifted_pair(1.0, 0.01)
    p = permutation_test(a, b, n_resamples=n_resamples)
    assert p > 0.0
    assert p >= 1.0 / (1 + n_resamples)
    # all 100 differences are positive: only flipping none or all reaches |mean|, chance 2**-99
    assert p == pytest.approx(1.0 / (1 + n_resamples))


def test_permutation_p_is_a_valid_fraction():
    """p is (1 + hits) / (1 + n) for an integer hits in [0, n], hence in (0, 1]."""
    n = 500
    for seed in range(5):
        a, b = shifted_pair(0.01 * seed, 0.3, n=20, seed=seed)
        p = permutation_test(a, b, n_resamples=n, seed=seed)
        hits = p * (1 + n) - 1
        assert 0.0 < p <= 1.0
        assert hits == pytest.approx(round(hits), abs=1e-6)
        assert 0 <= round(hits) <= n


def test_permutation_matches_exact_enumeration():
    """With 8 pairs all 2**8 sign flips can be enumerated; the sampled p is close to it."""
    d = np.array([0.4, 0.1, -0.05, 0.3, 0.2, -0.1, 0.25, 0.15])
    b = np.full_like(d, 0.5)
    a = b + d
    observed = abs(d.mean())
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=len(d))))
    exact = np.mean(np.abs((flips * d).mean(axis=1)) >= observed - 1e-12)
    sampled = permutation_test(a, b, n_resamples=20_000, seed=0)
    assert 0.01 < exact < 0.2  # a non-trivial case
    assert sampled == pytest.approx(exact, abs=0.01)


# --------------------------------------------------------------------------------------------
# holm
# --------------------------------------------------------------------------------------------


def test_holm_hand_example():
    """[0.01, 0.04, 0.03]: sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04).

    So the adjusted values in input order are [0.03, 0.06, 0.06].
    """
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=1e-12)


def test_holm_capped_at_one():
    """0.5*2 = 1.0, 0.6*1 = 0.6 -> monotone 1.0; 0.7*2 = 1.4 is capped to 1."""
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.7, 0.9]) == pytest.approx([1.0, 1.0])
    assert max(holm([0.9, 0.8, 0.95, 0.99])) <= 1.0


def test_holm_preserves_input_order():
    """[0.4, 0.9, 0.001]: 0.001*3 = 0.003, 0.4*2 = 0.8, 0.9*1 = 0.9 -> [0.8, 0.9, 0.003]."""
    assert holm([0.4, 0.9, 0.001]) == pytest.approx([0.8, 0.9, 0.003], abs=1e-12)


def test_holm_small_cases():
    """A single p is unchanged; ties share the larger factor; no p-values gives []."""
    assert holm([0.02]) == pytest.approx([0.02])
    assert holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])
    assert holm([]) == []


def test_holm_matches_definition():
    """On random p-values: equal to the textbook definition, >= raw, order-consistent, <= 1."""
    rng = np.random.default_rng(123)
    for size in (2, 3, 5, 9):
        p = rng.uniform(0.0, 0.3, size).tolist()
        adjusted = holm(p)
        assert isinstance(adjusted, list) and len(adjusted) == size
        assert adjusted == pytest.approx(reference_holm(p), abs=1e-12)
        assert all(adj >= raw - 1e-15 for adj, raw in zip(adjusted, p))
        assert all(adj <= 1.0 for adj in adjusted)
        by_raw = [adjusted[i] for i in np.argsort(p)]
        assert all(x <= y + 1e-15 for x, y in zip(by_raw, by_raw[1:]))
        assert not any(math.isnan(x) for x in adjusted)
