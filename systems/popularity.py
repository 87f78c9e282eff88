"""Popularity baselines of the PEARL paper's Table 1: GPop and UPop.

Both ignore the query text. Popularity is the number of clicks a sticker received in the click
log. Datasets without a click log (StickerQueries) fall back to the number of training
user-query pairs a sticker is relevant to, and the run metadata says so.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

from benchmark.io import write_json
from benchmark.records import Query, TrainingData
from systems.base import BaseRetriever, Ranking, SystemCard, top_k

ALL = "*"


def _counts(data: TrainingData, by_group: bool) -> tuple[dict[str, Counter], str]:
    """Click counts per user group (key ``*`` = everyone) and the popularity source used."""
    counts: dict[str, Counter] = {ALL: Counter()}
    if data.clicks:
        for c in data.clicks:
            if not c.clicked:
                continue
            counts[ALL][c.sticker_id] += 1
            group = data.users[c.user_id].group if by_group else None
            if group is not None:
                counts.setdefault(group, Counter())[c.sticker_id] += 1
        return counts, "click log"
    for q in data.queries:
        user = data.users.get(q.user_id) if q.user_id else None
        for sid, rel in data.qrels.get(q.qid, {}).items():
            if rel > 0:
                counts[ALL][sid] += 1
                if by_group and user is not None and user.group is not None:
                    counts.setdefault(user.group, Counter())[sid] += 1
    return counts, "training qrels (no click log)"


class _Popularity(BaseRetriever):
    by_group = False

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        counts, source = _counts(data, self.by_group)
        write_json(artifacts / "popularity.json", {
            "source": source,
            "counts": {g: dict(sorted(c.items())) for g, c in counts.items()},
        })

    def load(self, artifacts: Path) -> None:
        saved = json.loads((artifacts / "popularity.json").read_text())
        self._notes["popularity_source"] = saved["source"]
        overall = saved["counts"][ALL]
        # Rank by the group's count; ties (and stickers the group never clicked) by the global
        # count, which enters as a fraction below 1 so it never outweighs one group click.
        scale = 1.0 + sum(overall.values())
        self.rankings = {
            g: top_k((s, counts.get(s, 0) + n / scale) for s, n in overall.items())
            for g, counts in saved["counts"].items()
        }

    def _group_of(self, query: Query) -> str:
        return ALL

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        out = []
        for q in queries:
            ranking = self.rankings.get(self._group_of(q), self.rankings[ALL])
            out.append(ranking[:k])
        return out


class GPop(_Popularity):
    """Global popularity: the most clicked stickers overall, the same list for every query."""

    card = SystemCard(
        name="gpop", label="GPop", family="Popularity-based",
        paper="PEARL paper, Section 4 (Global Popularity)", deterministic=True,
    )


class UPop(_Popularity):
    """User-group popularity: the most clicked stickers of the user's group (age x gender).

    Users with an unknown group (or datasets without users) get the global list, as GPop.
    """

    card = SystemCard(
        name="upop", label="UPop", family="Popularity-based",
        paper="PEARL paper, Section 4 (User Group Popularity)", deterministic=True,
    )
    by_group = True

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        fallbacks = sum(self._group_of(q) == ALL for q in queries)
        key = "queries_without_group_fell_back_to_gpop"
        self._notes[key] = self._notes.get(key, 0) + fallbacks
        return super().search(queries, k)

    def _group_of(self, query: Query) -> str:
        group = query.user.group if query.user is not None else None
        return group if group in self.rankings else ALL
