"""Typed records of the StickerBench data model (see DESIGN.md, "Data model").

A dataset is a folder of JSON Lines and TREC files; these frozen dataclasses are what the
loader turns each line into. Systems only ever receive :class:`Query` objects at search time
and a :class:`TrainingData` view at fit time: neither carries test qrels or simulator-only
fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from benchmark.images import StickerImages

PROPERTIES: tuple[str, ...] = ("ocr", "ip", "entity", "style", "meaning")
"""The five sticker properties of the PEARL paper (Section 2), in the paper's order."""

AGE_GROUPS: tuple[str, ...] = ("0-19", "20-29", "30-44", "45-59")
GENDERS: tuple[str, ...] = ("male", "female")


@dataclass(frozen=True)
class Sticker:
    """A sticker of the repository: an id, the five property texts (any may be empty) and an
    optional image path relative to the dataset folder."""

    id: str
    ocr: str = ""
    ip: str = ""
    entity: str = ""
    style: str = ""
    meaning: str = ""
    image: str | None = None

    def properties(self) -> dict[str, str]:
        """The non-empty properties, in :data:`PROPERTIES` order."""
        return {p: getattr(self, p) for p in PROPERTIES if getattr(self, p)}


@dataclass(frozen=True)
class User:
    """A user: demographic group (either part may be unknown) and click history."""

    id: str
    age_group: str | None = None
    gender: str | None = None
    history: tuple[str, ...] = ()

    @property
    def group(self) -> str | None:
        """The user group ``G_{a,g}`` as ``"<age>/<gender>"``, or None if either is unknown."""
        if self.age_group is None or self.gender is None:
            return None
        return f"{self.age_group}/{self.gender}"


@dataclass(frozen=True)
class Query:
    """One user-query pair as a system sees it at search time: nothing else."""

    qid: str
    user: User | None
    text: str


@dataclass(frozen=True)
class TrainQuery:
    """A training user-query pair; ``intents`` is the (possibly noisy) LLM-style annotation:
    property names ranked from most to least intended, or empty if not annotated."""

    qid: str
    user_id: str | None
    text: str
    intents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Click:
    """One impression of the click log: a sticker shown at ``position`` (1-based) for a query."""

    user_id: str
    query: str
    sticker_id: str
    position: int
    clicked: bool


Qrels = Mapping[str, Mapping[str, int]]
"""qid -> {sticker_id: relevance}."""


@dataclass(frozen=True)
class TrainingData:
    """Everything a system may learn from: the training side of a dataset.

    Built by :meth:`benchmark.dataset.Dataset.training_data`; it holds no test qrels, no test
    queries and no simulator-only field. ``images`` gives the stickers' pictures (files of a real
    dataset, or renders of the sticker properties for wechat-sim), None if the dataset has none.
    """

    name: str
    fingerprint: str
    stickers: tuple[Sticker, ...]
    users: Mapping[str, User]
    queries: tuple[TrainQuery, ...]
    qrels: Qrels
    clicks: tuple[Click, ...] = field(default=())
    images: StickerImages | None = None

    def train_queries_by_sticker(self) -> dict[str, list[str]]:
        """Texts of the training queries labelled relevant to each sticker (in qid order)."""
        text = {q.qid: q.text for q in self.queries}
        out: dict[str, list[str]] = {}
        for qid in sorted(self.qrels):
            for sid, rel in sorted(self.qrels[qid].items()):
                if rel > 0:
                    out.setdefault(sid, []).append(text[qid])
        return out

    def sticker_documents(self, labelled: bool = False) -> dict[str, str]:
        """The text each text-based system indexes for a sticker.

        A sticker's document is its property texts joined in :data:`PROPERTIES` order, with
        ``labelled`` as ``"ocr: ... | ip: ..."`` (for neural encoders). A sticker without any
        property text (StickerQueries) is described by the training queries labelled relevant
        to it instead, joined by ``" | "`` when labelled.
        """
        by_sticker: dict[str, list[str]] | None = None
        docs: dict[str, str] = {}
        for s in self.stickers:
            props = s.properties()
            if props:
                parts = [f"{p}: {t}" for p, t in props.items()] if labelled else list(props.values())
            else:
                if by_sticker is None:
                    by_sticker = self.train_queries_by_sticker()
                parts = by_sticker.get(s.id, [])
            docs[s.id] = (" | " if labelled else " ").join(parts)
        return docs
