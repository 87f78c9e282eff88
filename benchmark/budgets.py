"""The smoke budget of the tiny profile.

The tiny profile (1,500 stickers, 60 test pairs) is for checking the whole pipeline end to
end, not for comparing methods. The default configs size the training for the default profile
(DPR's 200 steps, the seq2seq backbone's 2,400-step cap, PEARL's 1,000 representation
steps), and they do not shrink with the data: a step costs the same on any corpus. At those
configs DPR's fit alone takes about 5 minutes on the tiny profile and PEARL's about 3.

So the tiny profile comes with a smoke budget: small models (a one-layer 64-wide backbone, a
tiny CLIP) and a few dozen optimizer steps per system, a short online test, and 10 timed
queries per system for Table 3 instead of 50. The settings
are ordinary ``--set SYSTEM.FIELD=VALUE`` and ``--online NAME=VALUE`` values. They are applied
before the command line's own, so an explicit ``--set`` wins; ``--full-budget`` turns them off.
They end up in every run's config and key, so a smoke run never mixes with a full one, and the
tables count them as the profile's defaults (no ``‡``).
Figures from the smoke budget say nothing about the methods.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from benchmark.dataset import Dataset

_SEQ2SEQ = ("d_model=64", "layers=1", "vocab_size=2000", "max_steps=30", "checkpoint_every=10")
_QUERY_GENERATION = ("n_queries=2",)
_CLIP = ("image_size=32", "patch_size=8", "width=64", "layers=1", "embed_dim=32", "context_length=16",
         "pretrain_epochs=1.0", "batch_size=32", "warmup=2")
_PEARLS = ("pearl", "pearl-ue", "pearl-click", "pearl-intent", "pearl-interest", "pearl-ial", "pearl-ig")


def _each(systems: tuple[str, ...], fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{system}.{field}" for system in systems for field in fields)


@dataclass(frozen=True)
class SmokeBudget:
    """A profile's smoke budget: ``--set`` and ``--online`` values, and Table 3's number of
    timed batch-1 queries per system (None: the default, ``benchmark.profile.TIMED_QUERIES``)."""

    settings: tuple[str, ...] = ()
    online: tuple[str, ...] = ()
    table3_queries: int | None = None


SMOKE: dict[str, SmokeBudget] = {
    "tiny": SmokeBudget(
        settings=(
            "dpr.steps=10", "dpr.batch_size=16", "dpr.warmup=2",
            "ance.warmup_steps=5", "ance.refreshes=1", "ance.refresh_every=5", "ance.batch_size=16", "ance.warmup=2",
            *_each(("cn-clip", "stickerclip", "persrv"), _CLIP), "stickerclip.finetune_epochs=1.0",
            *_each(("dsi", "dsi-qg", "genre", "ultron", "minder", *_PEARLS), _SEQ2SEQ),
            *_each(("dsi-qg", "ultron", "minder"), _QUERY_GENERATION),
            *_each(_PEARLS, ("repr_steps=20",)),
        ),
        online=("queries=200", "seeds=2"),
        table3_queries=10,
    ),
}
"""The smoke budget of each profile that has one (the others train at the defaults)."""


def profile_of(dataset: Dataset) -> str | None:
    """The wechat-sim profile ``dataset`` was generated at (None for other data)."""
    generator = dataset.card.get("generator", {})
    return generator.get("config", {}).get("profile") if generator.get("module") == "benchmark.simulator" else None


def smoke_budget(dataset: Dataset) -> SmokeBudget:
    """``dataset``'s smoke budget: empty unless it is wechat-sim at a profile that has one
    (knobs or not)."""
    return SMOKE.get(profile_of(dataset), SmokeBudget())


def default_configs(dataset: Dataset) -> dict[str, dict]:
    """Each built-in system's config as ``bench run`` makes it on ``dataset`` without ``--set``
    (its defaults plus the smoke budget), in the JSON types run metadata stores."""
    from systems.base import config_dict
    from systems.registry import BUILTINS, configure

    builtins = {cls.card.name: cls for cls in BUILTINS}
    configs = {name: cls.Config() for name, cls in builtins.items()}
    configs.update(configure(smoke_budget(dataset).settings, builtins))
    return {name: json.loads(json.dumps(config_dict(c))) for name, c in configs.items()}
