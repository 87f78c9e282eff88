"""The Retriever protocol every system implements, and its metadata card.

A system is a class with a :class:`SystemCard` and a ``Config`` dataclass. The harness builds it
with a config, calls :meth:`Retriever.fit` once per (config, dataset, seed) into a fresh
artifact folder, then :meth:`Retriever.load` from that folder, then :meth:`Retriever.search`.
Artifacts are cached: a later run with the same key only calls ``load``.
"""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from benchmark.io import stable_hash
from benchmark.paths import CHECKPOINTS, cache_dir
from benchmark.records import Query, TrainingData
from systems import distributed

FAMILIES: tuple[str, ...] = ("Popularity-based", "Traditional", "Cross-modal", "Generative")
"""Table 1's groups, in the paper's order; other families are listed after them."""

Ranking = list[tuple[str, float]]
"""A ranked list of ``(sticker_id, score)``, best first."""


@dataclass(frozen=True)
class SystemCard:
    """What a system is: the MTEB-style metadata card shown by ``bench list`` and in runs.

    Attributes:
        name: registry name (``bm25``), also the row label source.
        label: the row label in tables (``BM25``).
        family: one of :data:`FAMILIES` (or any other string for plugins).
        paper: the citation of the method.
        deviations: how this implementation departs from the paper, and why.
        deterministic: same output for every seed (the harness then fits once).
        baseline: False for the proposed method(s), which are tested against the best baseline.
    """

    name: str
    label: str
    family: str
    paper: str
    deviations: tuple[str, ...] = ()
    deterministic: bool = False
    baseline: bool = True


def top_k(scored: Iterable[tuple[str, float]], k: int | None = None) -> Ranking:
    """Sort ``(sticker_id, score)`` best first and keep ``k``.

    Ties are broken as trec_eval's ``comp_sim_docno`` does: by sticker id in descending
    string order, so every ranking (and every metric) is the same from run to run.
    """
    ranked = sorted(sorted(scored, key=lambda x: x[0], reverse=True), key=lambda x: -x[1])
    return ranked if k is None else ranked[:k]


class NotApplicable(Exception):
    """Raised by ``fit`` when a dataset lacks what the system needs (e.g. sticker images for a
    cross-modal system): the harness records the run as not applicable instead of failed."""


def has_checkpoints(folder: Path) -> bool:
    """Whether an interrupted fit left checkpoints in ``folder`` for the next one to resume from."""
    return (folder / CHECKPOINTS).is_dir() and any((folder / CHECKPOINTS).iterdir())


_shared_uses: list[dict] | None = None
"""The shared artifacts asked for inside :func:`recording_shared`, else None."""


@contextmanager
def recording_shared() -> Iterator[list[dict]]:
    """Record each :func:`shared_artifact` asked for inside the block, as
    ``{"kind", "key", "built", "resumed"}``: built here (else reused from the cache), and
    resumed from an interrupted build's checkpoints. The harness keeps them with a fit's
    wall time, which includes a shared build only where it was built here."""
    global _shared_uses
    outer, _shared_uses = _shared_uses, []
    try:
        yield _shared_uses
    finally:
        _shared_uses = outer


def shared_artifact(kind: str, key: Mapping, build: Callable[[Path], None]) -> Path:
    """A folder under ``.cache/shared/<kind>/`` built once per key and reused by every system
    that asks with the same key (PEARL and PEARL-IG share a trained model; the cross-modal
    systems share a pre-trained CLIP). ``build`` may be interrupted: it runs again in the same
    folder, where its ``checkpoints/`` are kept."""
    folder = cache_dir() / "shared" / kind / stable_hash(dict(key))
    built = not (folder / ".complete").exists()
    resumed = built and has_checkpoints(folder)
    if _shared_uses is not None:
        _shared_uses.append({"kind": kind, "key": folder.name, "built": built, "resumed": resumed})
    if built:
        folder.mkdir(parents=True, exist_ok=True)
        with distributed.building(folder) as own:  # under torchrun, rank 0 alone writes here
            build(own)
        if distributed.is_main():
            shutil.rmtree(folder / CHECKPOINTS, ignore_errors=True)
            (folder / ".complete").write_text("ok\n")
        distributed.barrier()
    return folder


@dataclass(frozen=True)
class NoConfig:
    """Config of a system without hyper-parameters."""


@runtime_checkable
class Retriever(Protocol):
    """The interface of a sticker retriever."""

    card: ClassVar[SystemCard]
    Config: ClassVar[type]

    def __init__(self, config: Any, seed: int) -> None: ...

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        """Train or index on the training side of a dataset; write what ``load`` needs.

        ``artifacts/checkpoints/`` survives an interrupted fit (the harness calls ``fit`` again
        in the same folder): keep training checkpoints there to resume from them.
        """

    def load(self, artifacts: Path) -> None:
        """Restore the fitted system from ``artifacts``."""

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        """Up to ``k`` stickers per query, best first, one ranking per query."""

    def notes(self) -> dict[str, Any]:
        """Run-time facts for the run metadata (e.g. fallbacks taken, sizes)."""


class BaseRetriever:
    """Convenience base: stores config and seed, no notes. Subclasses set ``card``/``Config``."""

    card: ClassVar[SystemCard]
    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        self.config = config if config is not None else self.Config()
        self.seed = seed
        self._notes: dict[str, Any] = {}

    def notes(self) -> dict[str, Any]:
        return dict(self._notes)


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (the cache key and the run metadata)."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})


def parse_overrides(config_cls: type, overrides: dict[str, str]) -> Any:
    """Build ``config_cls`` with string overrides (``--set bm25.k1=1.2``) cast to field types.

    Raises:
        ValueError: an unknown field or a value that does not parse.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise ValueError(f"unknown config field {key!r} (fields: {', '.join(fields) or 'none'})")
        default = getattr(config_cls(), key)
        kind = type(default)
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                values[key] = raw.lower() in ("true", "1")
            elif kind is tuple:
                values[key] = tuple(v for v in raw.split(",") if v)
            else:
                values[key] = kind(raw)
        except ValueError:
            raise ValueError(f"config field {key!r} expects {kind.__name__}, got {raw!r}") from None
    return config_cls(**values)


__all__ = [
    "FAMILIES", "Ranking", "SystemCard", "top_k", "NotApplicable", "shared_artifact", "recording_shared",
    "has_checkpoints",
    "NoConfig", "Retriever", "BaseRetriever", "config_dict", "parse_overrides",
]
