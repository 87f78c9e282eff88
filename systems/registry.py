"""The registry of systems: built-ins, entry-point plugins and ad hoc ``module:Class`` plugins.

Third-party packages register a system by declaring, in their ``pyproject.toml``::

    [project.entry-points."stickerbench.systems"]
    my-retriever = "my_package.module:MyRetriever"

The class must follow :class:`systems.base.Retriever`: a ``card`` (whose ``name`` is the
registry key), a ``Config`` dataclass, ``fit``/``load``/``search``/``notes``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Sequence

from systems.base import Retriever, SystemCard, parse_overrides
from systems.crossmodal import CNCLIP, StickerCLIP
from systems.dense import ANCE, DPR
from systems.generative import DSI, DSIQG, GENRE, MINDER, Ultron
from systems.lexical import BM25
from systems.pearl import ABLATIONS, PEARL
from systems.persrv import PerSRV
from systems.popularity import GPop, UPop

ENTRY_POINT_GROUP = "stickerbench.systems"
BUILTINS: tuple[type, ...] = (GPop, UPop, BM25, DPR, ANCE, CNCLIP, StickerCLIP, PerSRV, DSI, DSIQG, GENRE, Ultron,
                              MINDER, PEARL, *ABLATIONS)


class RegistryError(Exception):
    """An unknown system name or a plugin that cannot be loaded."""


def check_system(cls: type, origin: str) -> type:
    """Verify that ``cls`` looks like a Retriever; return it."""
    card = getattr(cls, "card", None)
    if not isinstance(card, SystemCard):
        raise RegistryError(f"{origin}: {cls!r} has no SystemCard 'card' attribute")
    missing = [m for m in ("fit", "load", "search", "notes", "Config") if not hasattr(cls, m)]
    if missing:
        raise RegistryError(f"{origin}: {cls.__name__} lacks {', '.join(missing)} of the Retriever protocol")
    return cls


def load_plugin(spec: str) -> type:
    """Import ``module:Class`` and check it is a Retriever class."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise RegistryError(f"--plugin {spec!r}: expected 'module:Class'")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise RegistryError(f"--plugin {spec!r}: {e}") from None
    return check_system(obj, f"--plugin {spec}")


def registry(plugins: tuple[str, ...] = ()) -> dict[str, type]:
    """All available systems by name: built-ins, installed entry points, then ``plugins``."""
    systems: dict[str, type] = {cls.card.name: cls for cls in BUILTINS}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            loaded = ep.load()
        except Exception as e:  # a broken third-party package must say who it is
            raise RegistryError(f"entry point {ep.name!r} ({ep.value}) failed to load: {e}") from e
        cls = check_system(loaded, f"entry point {ep.name!r} ({ep.value})")
        systems[cls.card.name] = cls
    for spec in plugins:
        cls = load_plugin(spec)
        systems[cls.card.name] = cls
    return systems


def resolve(names: str, available: dict[str, type]) -> list[type]:
    """``all`` or a comma-separated list of names -> system classes, in the given order.

    ``all`` lists built-ins in Table 1 order, then plugins.
    """
    if names.strip() == "all":
        return list(available.values())
    out = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in available:
            raise RegistryError(f"unknown system {name!r} (available: {', '.join(available)})")
        out.append(available[name])
    return out


def configure(settings: Sequence[str], available: dict[str, type]) -> dict[str, Any]:
    """``SYSTEM.FIELD=VALUE`` settings (``--set``) -> a config object per system named; a later
    setting of the same field wins.

    Raises:
        ValueError: a malformed setting, an unknown system or field, or a value that does not parse.
    """
    grouped: dict[str, dict[str, str]] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        system, dot, field = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"{item!r}: expected SYSTEM.FIELD=VALUE")
        if system not in available:
            raise ValueError(f"{item!r}: unknown system {system!r}")
        grouped.setdefault(system, {})[field] = value
    configs = {}
    for name, fields in grouped.items():
        try:
            configs[name] = parse_overrides(available[name].Config, fields)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    return configs


__all__ = ["Retriever", "registry", "resolve", "configure", "load_plugin", "RegistryError", "ENTRY_POINT_GROUP"]
