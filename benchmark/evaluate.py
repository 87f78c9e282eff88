"""Metrics with ranx, and significance tests over per-query scores.

The paper reports MRR and Recall at 1/5/10/20 and marks significant gains over the best
baseline at p <= 0.05. We run two paired tests per comparison, a Student t-test and a
deterministic sign-flip permutation test, and correct each across the compared systems with
Holm's step-down procedure.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

CUTOFFS: tuple[int, ...] = (1, 5, 10, 20)
METRICS: tuple[str, ...] = tuple(f"{m}@{k}" for m in ("mrr", "recall") for k in CUTOFFS)
KEY_METRIC = "mrr@10"
"""The metric that picks the best baseline (the paper's headline metric)."""

Run = Mapping[str, Sequence[str]]
"""qid -> ranked sticker ids, best first (ties already broken)."""


def per_query_scores(
    qrels: Mapping[str, Mapping[str, int]], run: Run, metrics: Sequence[str] = METRICS
) -> pd.DataFrame:
    """Score every query of ``qrels`` with ranx; a query the run misses or leaves empty scores 0.

    Rankings are scored in the given order: each list gets strictly decreasing pseudo-scores,
    so ranx cannot reorder ties.

    Returns:
        A DataFrame indexed by qid (sorted) with one column per metric.
    """
    import ranx  # slow first import (numba); only needed here

    qids = sorted(qrels)
    scores = pd.DataFrame(0.0, index=pd.Index(qids, name="qid"), columns=list(metrics))
    judged = [q for q in qids if run.get(q)]
    if not judged:
        return scores
    ranx_qrels = ranx.Qrels({q: {d: int(r) for d, r in qrels[q].items()} for q in judged})
    ranked = {q: list(dict.fromkeys(run[q])) for q in judged}  # a repeated id counts once, first
    ranx_run = ranx.Run({q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in ranked.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64 cast notice
        values = ranx.evaluate(ranx_qrels, ranx_run, list(metrics), return_mean=False, make_comparable=False)
    if len(metrics) == 1:
        values = {metrics[0]: values}
    for m in metrics:
        scores.loc[sorted(judged), m] = np.asarray(values[m], dtype=float)
    return scores


def t_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired Student t-test p-value; 1.0 when the scores never differ or there is a
    single pair (no variance to test against)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) < 2 or not np.any(d):
        return 1.0
    if np.all(d == d[0]):
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def permutation_test(a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired permutation (sign-flip) test on the mean difference.

    Deterministic for a given seed. The p-value counts the observed assignment, so it is never 0:
    ``(1 + #{|mean(flipped)| >= |mean(observed)|}) / (1 + n_resamples)``.
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    if not np.any(d):
        return 1.0
    rng = np.random.default_rng(seed)
    observed = abs(d.mean())
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, len(d)))
    flipped = np.abs((signs * d).mean(axis=1))
    hits = np.count_nonzero(flipped >= observed - 1e-12)
    return float((1 + hits) / (1 + n_resamples))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
