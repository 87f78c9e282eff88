"""wechat-sim's simulated experts for the online test (Table 4).

The experts are users of the dataset (with their click histories), spread over the 8 user
groups. They enter queries drawn exactly as the dataset's queries are, and judge stickers by
the simulator's own utility model: a sticker that satisfies the query's top intent attracts a
click with probability ``sigmoid(2 * (utility - 1))``, with ``utility = personalization *
(group taste + personal taste) + quality + noise + 1.5 * intent match`` (the click log's
model); a sticker that does not satisfy it attracts a click with a small fixed probability.

This lives beside :mod:`benchmark.simulator`, not in it: the generator's version is a hash of
its source, and every generated dataset would change with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark import simulator as sim


@dataclass(frozen=True)
class OnlineSession:
    """A query an expert enters: its id, the expert, the text, and the simulator's query."""

    qid: str
    user_id: str
    group: str
    text: str
    spec: sim._QuerySpec


class SimulatedExperts:
    """``n_experts`` users of a wechat-sim dataset, the groups taken in turn (users whose age
    and gender are both known, in id order within a group).

    Args:
        cfg: the dataset's generator config (its card's ``generator.config``).
        n_experts: how many experts (the paper's 20).
        mismatch_attractiveness: click probability of an examined sticker that does not
            satisfy the query's top intent.
    """

    def __init__(self, cfg: sim.SimConfig, n_experts: int = 20, mismatch_attractiveness: float = 0.02):
        self.world, self.index, people, _ = sim._population(cfg)
        by_group: dict[int, list[sim._Person]] = {}
        for p in people:
            if p.age_group is not None and p.gender is not None:
                by_group.setdefault(p.group, []).append(p)
        groups = sorted(by_group)
        self.experts = [by_group[groups[i % len(groups)]][i // len(groups)] for i in range(n_experts)]
        self._people = {p.id: p for p in self.experts}
        self.mismatch = mismatch_attractiveness
        self._seed = cfg.seed

    def sessions(self, n_queries: int, min_candidates: int = 10) -> list[OnlineSession]:
        """``n_queries`` valid queries (their top intent has ``min_candidates`` stickers or
        more), each expert entering an equal share in turn; fixed by the dataset's seed."""
        rng = np.random.default_rng([self._seed, 2024])
        out = []
        width = len(str(n_queries))
        while len(out) < n_queries:
            spec = sim._draw_query(self.world, self.index, rng)
            if len(self.index.candidates(spec.hard, spec.targets[spec.hard])) < min_candidates:
                continue
            expert = self.experts[len(out) % len(self.experts)]
            group = "/".join(sim.GROUPS[expert.group])
            out.append(OnlineSession(f"online-{len(out):0{width}d}", expert.id, group, spec.text, spec))
        return out

    def attractiveness(self, session: OnlineSession, sticker_ids: list[str], rng: np.random.Generator) -> np.ndarray:
        """Click probability of each examined sticker for this session's expert (one draw of
        the utility noise per call)."""
        idx = np.array([int(s[1:]) for s in sticker_ids], dtype=np.int64)
        spec, person = session.spec, self._people[session.user_id]
        utility = sim._utility(self.world, person, idx, rng) + 1.5 * sim._intent_match(self.world, spec, idx)
        satisfied = self.world.values(spec.hard)[idx] == spec.targets[spec.hard]
        return np.where(satisfied, 1.0 / (1.0 + np.exp(-2.0 * (utility - 1.0))), self.mismatch)
