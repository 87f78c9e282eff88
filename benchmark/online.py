"""The simulated online test of the PEARL paper (Sec. 5.4, Appendix E; Table 4).

Sticker level: Team-Draft Interleaving (Schuth et al., 2015) as the paper describes it. A fair
coin picks the system that drafts first; the active drafter appends its next sticker not yet
in the list, then control passes to the other system; drafting alternates strictly until both
top-10 lists are exhausted, so the list holds up to 20 stickers, each labelled with the
system that drafted it. Clicks are attributed to their owners and compared per query:
ΔCTR (Eq. 17) and ΔACP (Eq. 18).

Session level: each system's top 10 is judged side by side (better, same or worse), giving
ΔGSB (Eq. 19).

Who clicks and judges is the caller's business (:mod:`benchmark.online_sim` simulates the
experts); this module holds the procedure and the formulas.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmark.records import Query

A, B = "A", "B"
"""Ownership labels: ``A`` the system under test (PEARL), ``B`` the baseline (online system)."""


@dataclass(frozen=True)
class Interleaving:
    """An interleaved list: the stickers in order and the system that drafted each."""

    stickers: tuple[str, ...]
    owners: tuple[str, ...]


def team_draft(a: Sequence[str], b: Sequence[str], a_first: bool, depth: int = 10) -> Interleaving:
    """Team-Draft Interleaving of the top ``depth`` of ``a`` and ``b``.

    Args:
        a, b: the two rankings (best first).
        a_first: the outcome of the fair coin: ``a`` drafts first.
        depth: how much of each ranking is drafted (the paper's 10).

    Returns:
        The interleaved list; a sticker both systems return appears once, owned by the system
        that drafted it first, and each system keeps its internal order.
    """
    lists = {A: list(a[:depth]), B: list(b[:depth])}
    cursor = {A: 0, B: 0}
    stickers: list[str] = []
    owners: list[str] = []
    taken: set[str] = set()
    turn = A if a_first else B
    while any(cursor[t] < len(lists[t]) for t in (A, B)):
        ranking = lists[turn]
        while cursor[turn] < len(ranking) and ranking[cursor[turn]] in taken:
            cursor[turn] += 1  # the drafter's next sticker is already in the list: skip it
        if cursor[turn] < len(ranking):
            sticker = ranking[cursor[turn]]
            stickers.append(sticker)
            owners.append(turn)
            taken.add(sticker)
            cursor[turn] += 1
        turn = B if turn == A else A
    return Interleaving(tuple(stickers), tuple(owners))


def position_based_clicks(attractiveness: np.ndarray, examination: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
    """The position-based click model: the sticker at rank r is clicked with probability
    ``examination[r] * attractiveness[r]``, independently. Returns a boolean per rank."""
    n = len(attractiveness)
    return rng.random(n) < examination[:n] * attractiveness


def examination_probabilities(n: int, eta: float) -> np.ndarray:
    """P(examined at rank r) = 1 / r**eta for r = 1..n (the simulator's click log uses 0.8)."""
    return 1.0 / np.arange(1, n + 1) ** eta


@dataclass(frozen=True)
class QueryOutcome:
    """One query's interleaved clicks, per system: CTR and average click position."""

    ctr_a: float
    ctr_b: float
    acp_a: float | None
    acp_b: float | None


def query_outcome(interleaving: Interleaving, clicked: Sequence[bool]) -> QueryOutcome:
    """CTR: the fraction of a system's exposed stickers that were clicked; ACP: the mean rank
    (1-based, in the interleaved list) of its clicks, None without clicks."""
    out = {}
    for team in (A, B):
        ranks = [r for r, owner in enumerate(interleaving.owners, start=1) if owner == team]
        hits = [r for r in ranks if clicked[r - 1]]
        out[team] = (len(hits) / len(ranks) if ranks else 0.0, float(np.mean(hits)) if hits else None)
    return QueryOutcome(out[A][0], out[B][0], out[A][1], out[B][1])


def delta_ctr(outcomes: Sequence[QueryOutcome]) -> float:
    """Eq. 17: mean over queries of CTR_A(q) - CTR_B(q)."""
    return float(np.mean([o.ctr_a - o.ctr_b for o in outcomes]))


def delta_acp(outcomes: Sequence[QueryOutcome]) -> tuple[float | None, int]:
    """Eq. 18: mean over queries of ACP_A(q) - ACP_B(q), over the queries where both systems
    got clicks (ACP is undefined otherwise); returns the mean (None if no such query) and the
    number of queries it averages."""
    both = [o.acp_a - o.acp_b for o in outcomes if o.acp_a is not None and o.acp_b is not None]
    return (float(np.mean(both)) if both else None), len(both)


def delta_gsb(judgements: Sequence[int]) -> float:
    """Eq. 19: (#Good - #Bad) / (#Good + #Same + #Bad), judgements +1 (A better), 0, -1."""
    judgements = list(judgements)
    if not judgements:
        raise ValueError("no judgements")
    good, bad = judgements.count(1), judgements.count(-1)
    return (good - bad) / len(judgements)


# --------------------------------------------------------------------------- the simulated test


@dataclass(frozen=True)
class OnlineConfig:
    """The simulated online test's settings (every one a knob: ``--online NAME=VALUE``).

    Attributes:
        system: the system under test (A).
        online_system: the non-personalized "online system" it is compared with (B).
        experts: simulated experts, the 8 groups taken in turn (the paper's 20).
        queries: valid queries they enter (the paper's 1,000).
        depth: each system's top ``depth`` is drafted and shown (the paper's 10).
        examination_eta: P(examined at rank r) = 1 / r**eta (the click log's 0.8).
        mismatch_attractiveness: click probability of an examined sticker that misses the
            query's top intent.
        gsb_tie: side by side, the expert prefers a session only when its expected clicks
            exceed the other's by more than this; otherwise "same".
        seeds: repetitions (coin flips, utility noise, clicks) for the confidence intervals.
    """

    system: str = "pearl"
    online_system: str = "ance"
    experts: int = 20
    queries: int = 1000
    depth: int = 10
    examination_eta: float = 0.8
    mismatch_attractiveness: float = 0.02
    gsb_tie: float = 0.1
    seeds: int = 5


def judge(expected_a: float, expected_b: float, tie: float) -> int:
    """Session-level judgement: +1 (A's session better), -1 (worse) or 0 (same)."""
    if abs(expected_a - expected_b) <= tie:
        return 0
    return 1 if expected_a > expected_b else -1


def simulate(experts, sessions: Sequence, run_a: dict[str, list[str]], run_b: dict[str, list[str]],
             config: OnlineConfig, seed: int) -> dict:
    """One repetition of the online test over ``sessions``.

    Args:
        experts: gives ``attractiveness(session, sticker_ids, rng)`` (see
            :class:`benchmark.online_sim.SimulatedExperts`).
        run_a, run_b: each system's ranking per session qid.

    Returns:
        ΔCTR (Eq. 17), ΔACP (Eq. 18) with the number of queries it averages, ΔGSB (Eq. 19) with
        the counts of good, same and bad sessions.
    """
    rng = np.random.default_rng([seed, 4])
    examination = examination_probabilities(2 * config.depth, config.examination_eta)
    outcomes, judgements = [], []
    for session in sessions:
        a, b = run_a.get(session.qid, [])[: config.depth], run_b.get(session.qid, [])[: config.depth]
        shown = sorted(set(a) | set(b))
        attract = dict(zip(shown, experts.attractiveness(session, shown, rng))) if shown else {}
        interleaving = team_draft(a, b, a_first=bool(rng.random() < 0.5), depth=config.depth)
        clicked = position_based_clicks(np.array([attract[s] for s in interleaving.stickers]), examination, rng)
        outcomes.append(query_outcome(interleaving, clicked))
        expected = [float(sum(examination[r] * attract[s] for r, s in enumerate(ranking))) for ranking in (a, b)]
        judgements.append(judge(*expected, config.gsb_tie))
    acp, acp_queries = delta_acp(outcomes)
    return {"seed": seed, "delta_ctr": delta_ctr(outcomes), "delta_acp": acp, "acp_queries": acp_queries,
            "delta_gsb": delta_gsb(judgements), "good": judgements.count(1), "same": judgements.count(0),
            "bad": judgements.count(-1), "queries": len(sessions)}


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (0 for one value)."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None], dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, 0.0
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(half)


# --------------------------------------------------------------------------- Table 4

PAPER_TABLE4 = {"delta_ctr": 7.12, "delta_acp": -0.19, "delta_gsb": 5.98}
"""The paper's Table 4 (WeChat online system, human experts): ΔCTR and ΔGSB in %, ΔACP in ranks."""


def applies(dataset) -> bool:
    """Whether the online test can be simulated: the dataset comes from wechat-sim, whose
    utility model the experts click by (real data has none)."""
    return dataset.card.get("generator", {}).get("module") == "benchmark.simulator"


def _experts(dataset, config: OnlineConfig):
    """The simulated experts of a wechat-sim dataset and their sessions; None for a dataset
    without a simulator (real data has no utility model to click by)."""
    from benchmark import simulator
    from benchmark.online_sim import SimulatedExperts

    if not applies(dataset):
        return None, []
    experts = SimulatedExperts(simulator.SimConfig(**dataset.card["generator"]["config"]), config.experts,
                               config.mismatch_attractiveness)
    return experts, experts.sessions(config.queries)


def _queries(dataset, sessions: Sequence) -> list[Query]:
    """The sessions as the systems see them: bare queries of the experts (dataset users)."""
    users = dataset.training_data().users
    return [Query(s.qid, users[s.user_id], s.text) for s in sessions]


def online_runs(dataset, classes: dict[str, type], configs: dict, out_dir: Path, config: OnlineConfig,
                force: bool = False, progress: bool = True) -> list:
    """Retrieve the experts' queries with both systems (fitting them if needed) into
    ``out_dir/online/runs/<system>/seed-0.trec``; returns the harness outcomes (none for a
    dataset without a simulator)."""
    from benchmark.harness import run_system

    experts, sessions = _experts(dataset, config)
    if experts is None:
        return []
    queries = _queries(dataset, sessions)
    return [run_system(classes[name], configs.get(name, classes[name].Config()), 0, dataset, out_dir / "online",
                       k=config.depth, force=force, progress=progress, queries=queries)
            for name in (config.system, config.online_system)]


def online_test(dataset, out_dir: Path, config: OnlineConfig) -> dict | None:
    """Table 4's measurements from the saved online runs: every seed's ΔCTR, ΔACP and ΔGSB and
    their means with 95% confidence intervals; None without the runs or a simulator."""
    from benchmark.harness import queries_key, read_run, run_paths

    paths = {name: run_paths(out_dir / "online", name, 0) for name in (config.system, config.online_system)}
    if not all(run.exists() and meta.exists() for run, meta in paths.values()):
        return None
    experts, sessions = _experts(dataset, config)
    if experts is None:
        return None
    current = queries_key(_queries(dataset, sessions))
    for name, (_, meta) in paths.items():
        saved = json.loads(meta.read_text())
        if saved.get("status") != "ok" or saved.get("queries") != current:
            print(f"warning: {meta}: not a finished run of these {len(sessions):,} expert queries; "
                  "no Table 4 until bench run redoes it", file=sys.stderr)
            return None
    run_a, run_b = (read_run(paths[name][0]) for name in (config.system, config.online_system))
    seeds = [simulate(experts, sessions, run_a, run_b, config, seed) for seed in range(config.seeds)]
    summary = {}
    for metric, scale in (("delta_ctr", 100.0), ("delta_acp", 1.0), ("delta_gsb", 100.0)):
        mean, half = confidence_interval([s[metric] * scale if s[metric] is not None else None for s in seeds])
        summary[metric] = {"mean": mean, "ci95": half}
    labels = {name: json.loads(paths[name][1].read_text())["card"]["label"] for name in paths}
    return {"config": asdict(config), "labels": labels, "summary": summary, "seeds": seeds,
            "groups": sorted({s.group for s in sessions}), "experts": len({s.user_id for s in sessions})}


def _table4_cells(summary: dict) -> list[str]:
    ctr, acp, gsb = (summary[m] for m in ("delta_ctr", "delta_acp", "delta_gsb"))
    return [f"{ctr['mean']:+.2f}% ± {ctr['ci95']:.2f}", f"{acp['mean']:+.2f} ± {acp['ci95']:.2f}",
            f"{gsb['mean']:+.2f}% ± {gsb['ci95']:.2f}"]


def _table4_rows(result: dict) -> list[list[str]]:
    a, b = (result["labels"][result["config"][k]] for k in ("system", "online_system"))
    paper = PAPER_TABLE4
    return [[f"{a} vs {b} (simulated)", *_table4_cells(result["summary"])],
            ["PEARL vs WeChat online (paper)", f"{paper['delta_ctr']:+.2f}%", f"{paper['delta_acp']:+.2f}",
             f"{paper['delta_gsb']:+.2f}%"]]


def _table4_footnote(result: dict) -> str:
    c = result["config"]
    return (f"Simulated online test: {c['queries']:,} queries from {result['experts']} simulated experts of "
            f"{len(result['groups'])} groups; Team-Draft Interleaving of each system's top {c['depth']}; "
            f"position-based clicks (examination 1/r^{c['examination_eta']}, attractiveness from the simulator's "
            f"utility; {c['mismatch_attractiveness']} for a sticker missing the top intent); side-by-side "
            f"judgement by expected clicks (tie within {c['gsb_tie']}). Mean ± 95% CI over {c['seeds']} seeds "
            f"(coin flips, utility noise and clicks; the queries and rankings are fixed). ΔACP averages the "
            f"queries where both systems were clicked. The paper's row is its human-expert test on WeChat.")


def write_table4(out_dir: Path, dataset, config: OnlineConfig | None = None) -> list[Path]:
    """Write Table 4 (csv, md, tex, and the per-seed JSON) from the saved online runs; none
    without them. Without ``config``, the one the last Table 4 was made with (else the default)."""
    from benchmark.io import read_json, write_json, write_text
    from benchmark.tables import md_row, latex_escape

    saved = out_dir / "online" / "table4.json"
    if config is None:
        config = OnlineConfig(**read_json(saved)["config"]) if saved.exists() else OnlineConfig()
    result = online_test(dataset, out_dir, config)
    if result is None:
        return []
    header = ["Comparison", "ΔCTR ↑", "ΔACP ↓", "ΔGSB ↑"]
    rows = _table4_rows(result)
    caption = f"Table 4: simulated online test on {dataset.name}."
    markdown = "\n".join([f"**{caption}**", "", md_row(header), "|---|---:|---:|---:|",
                          *(md_row(r) for r in rows), "", _table4_footnote(result)]) + "\n"
    latex = "\n".join(["% Requires \\usepackage{booktabs}.", "\\begin{table}[t]", "\\centering", "\\small",
                       "\\begin{tabular}{lrrr}", "\\toprule",
                       " & ".join(latex_escape(h) for h in header) + " \\\\", "\\midrule",
                       *(" & ".join(latex_escape(c) for c in r) + " \\\\" for r in rows), "\\bottomrule",
                       "\\end{tabular}", f"\\caption{{{latex_escape(caption + ' ' + _table4_footnote(result))}}}",
                       "\\label{tab:online}", "\\end{table}"]) + "\n"
    csv = "comparison,metric,mean,ci95\n" + "".join(
        f"{rows[0][0]},{m},{v['mean']:.6f},{v['ci95']:.6f}\n" for m, v in result["summary"].items())
    write_json(saved, result)
    files = {"table4.md": markdown, "table4.tex": latex, "table4.csv": csv}
    for name, text in files.items():
        write_text(out_dir / name, text)
    return [out_dir / name for name in files]
