"""StickerBench retrievers: one module per system family, plus the registry.

>>> from systems import registry
>>> sorted(registry())  # doctest: +SKIP
['bm25', 'gpop', 'upop']
"""

from systems.base import BaseRetriever, Ranking, Retriever, SystemCard, top_k
from systems.registry import RegistryError, registry, resolve

__all__ = ["BaseRetriever", "Ranking", "Retriever", "SystemCard", "top_k", "registry", "resolve", "RegistryError"]
