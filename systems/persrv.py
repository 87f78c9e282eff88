"""PerSRV (Chee et al., 2025): BM25 recall with a utility term, then a personalized rerank by
the user's style clusters.

1. **Recall.** BM25 over several text fields of a sticker, summed with the published boosts:
   its OCR text (1.0), the raw historical queries that led to clicks on it (0.5) and its
   description (1.0). Each field has its own Lucene index, so the sum is the multi-field
   Lucene query the published code sends to Elasticsearch. The published utility term
   ``sqrt(0.3 * utility)`` is added (stickers without clicks get ``missing_utility``). The best
   ``pool`` stickers are the candidates.
2. **Utility** (:func:`utility_metrics`) from the click log: popularity (clicks), cross-user
   adaptability (distinct users who clicked) and query adaptability (distinct queries that led
   to a click; the published code's "versatility", the default).
3. **Style clusters.** For each user, the image embeddings of the stickers in their history are
   standardized (per user) and clustered by KMeans into ``clusters`` groups; each cluster keeps
   its centroid and radius (the largest member distance). A candidate is standardized the
   same way (the published code compares raw candidates with standardized centroids), and
   for every cluster whose radius it lies within its score becomes ``S * (1 + 0.3 * cos)``;
   the best such score is kept if it beats ``S``.

Deviations (in the card): the sticker's meaning text stands in for the fine-tuned LLaVA
description; there is no emotion field; the image embeddings come from the suite's CLIP
(:mod:`systems.clip`) instead of CN-CLIP.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from benchmark.io import write_json
from benchmark.records import Query, TrainingData
from systems.base import BaseRetriever, Ranking, SystemCard, top_k
from systems.clip import CLIPConfig, pretrained_clip, require_images
from systems.lexical import BM25Config, build_index, open_searcher, search_texts

UTILITY_METRICS = ("popularity", "cross_user", "query")
FIELDS = ("ocr", "queries", "description")


@dataclass(frozen=True)
class PerSRVConfig(CLIPConfig):
    """PerSRV's published settings plus the CLIP whose image embeddings form style clusters."""

    ocr_boost: float = 1.0
    queries_boost: float = 0.5
    description_boost: float = 1.0
    utility: str = "query"
    utility_factor: float = 0.3
    missing_utility: float = 1.05
    pool: int = 5000
    clusters: int = 5
    rerank_weight: float = 0.3
    k1: float = 0.9
    b: float = 0.4
    language: str = "en"

    @property
    def bm25(self) -> BM25Config:
        return BM25Config(k1=self.k1, b=self.b, language=self.language)


def utility_metrics(data: TrainingData) -> dict[str, dict[str, float]]:
    """Each utility metric of :data:`UTILITY_METRICS` per clicked sticker, from the click log."""
    users, queries, clicks = defaultdict(set), defaultdict(set), defaultdict(int)
    for c in data.clicks:
        if c.clicked:
            clicks[c.sticker_id] += 1
            users[c.sticker_id].add(c.user_id)
            queries[c.sticker_id].add(c.query)
    return {"popularity": {s: float(n) for s, n in clicks.items()},
            "cross_user": {s: float(len(u)) for s, u in users.items()},
            "query": {s: float(len(q)) for s, q in queries.items()}}


def field_documents(data: TrainingData) -> dict[str, dict[str, str]]:
    """The text of each recall field for every sticker: OCR, the click-log queries that led to
    a click on it (or, without a click log, the training queries labelled relevant to it) and
    the description (the meaning text)."""
    history: dict[str, list[str]] = defaultdict(list)
    if data.clicks:
        for c in data.clicks:
            if c.clicked:
                history[c.sticker_id].append(c.query)
    else:
        history.update(data.train_queries_by_sticker())
    ids = sorted(s.id for s in data.stickers)
    by_id = {s.id: s for s in data.stickers}
    return {"ocr": {s: by_id[s].ocr for s in ids},
            "queries": {s: " ".join(history.get(s, [])) for s in ids},
            "description": {s: by_id[s].meaning for s in ids}}


@dataclass(frozen=True)
class StyleClusters:
    """One user's style clusters in their standardized embedding space."""

    mean: np.ndarray
    scale: np.ndarray
    centroids: np.ndarray
    radii: np.ndarray

    def standardize(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.mean) / self.scale

    def rerank(self, scores: np.ndarray, vectors: np.ndarray, weight: float) -> np.ndarray:
        """Candidates' ``scores`` after the rerank: for each cluster whose radius a candidate
        (row of ``vectors``) lies within, ``score * (1 + weight * cos(centroid, candidate))``,
        in the standardized space; the best of these and the original score."""
        x = self.standardize(vectors)
        distances = np.linalg.norm(x[:, None, :] - self.centroids[None, :, :], axis=2)
        norms = np.linalg.norm(x, axis=1)[:, None] * np.linalg.norm(self.centroids, axis=1)[None, :]
        cosines = x @ self.centroids.T / np.maximum(norms, 1e-12)
        boosted = np.where(distances <= self.radii[None, :], scores[:, None] * (1 + weight * cosines), -np.inf)
        return np.maximum(scores, boosted.max(axis=1))


def style_clusters(vectors: np.ndarray, k: int, seed: int) -> StyleClusters | None:
    """KMeans(``k``) over a user's standardized history embeddings (None for fewer than 2)."""
    from sklearn.cluster import KMeans

    if len(vectors) < 2:
        return None
    mean, scale = vectors.mean(axis=0), vectors.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # as scikit-learn's StandardScaler
    x = (vectors - mean) / scale
    k = min(k, len(np.unique(x, axis=0)))
    with threadpool_limits(limits=1, user_api="blas"):  # multi-threaded OpenBLAS crashes beside torch (intents.py)
        kmeans = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(x)
    radii = np.array([np.linalg.norm(x[kmeans.labels_ == c] - kmeans.cluster_centers_[c], axis=1).max()
                      for c in range(k)])
    return StyleClusters(mean, scale, kmeans.cluster_centers_, radii)


class PerSRV(BaseRetriever):
    """PerSRV: boosted multi-field BM25 plus utility, reranked by the user's style clusters."""

    card = SystemCard(
        name="persrv", label="PerSRV", family="Cross-modal",
        paper="Chee et al., 2025 (PerSRV: Personalized Sticker Retrieval with Vision-Language Model)",
        deviations=(
            "description field: the sticker's meaning text instead of a fine-tuned LLaVA-1.5 description; "
            "no emotion field",
            "style clusters over the suite's CLIP image embeddings (see cn-clip) instead of CN-CLIP's",
            "candidates are standardized like the centroids before the cluster test (the published code "
            "compares raw candidates with standardized centroids)",
        ),
    )
    Config = PerSRVConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        images = require_images(data)
        if self.config.utility not in UTILITY_METRICS:
            raise ValueError(f"persrv.utility must be one of {', '.join(UTILITY_METRICS)}, got {self.config.utility!r}")
        for name, docs in field_documents(data).items():
            build_index(docs, artifacts / f"index-{name}", self.config.bm25)
        clip, notes = pretrained_clip(data, self.config, self.seed)
        ids = sorted(s.id for s in data.stickers)
        np.save(artifacts / "image_vectors.npy", clip.encode_images(ids, images, progress=True))
        utility = utility_metrics(data)[self.config.utility]
        write_json(artifacts / "persrv.json", {"ids": ids, "utility": dict(sorted(utility.items())),
                                               "notes": {**notes, "clicked_stickers": len(utility)}})

    def load(self, artifacts: Path) -> None:
        saved = json.loads((artifacts / "persrv.json").read_text())
        self.ids, self.utility = saved["ids"], saved["utility"]
        self.row = {s: i for i, s in enumerate(self.ids)}
        self.vectors = np.load(artifacts / "image_vectors.npy")
        self.searchers = {f: open_searcher(artifacts / f"index-{f}", self.config.bm25) for f in FIELDS}
        self.clusters: dict[str, StyleClusters | None] = {}
        self._notes.update(saved["notes"])

    def recall(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Boosted field BM25 plus the utility term, for the ``pool`` best stickers of each text."""
        boosts = {"ocr": self.config.ocr_boost, "queries": self.config.queries_boost,
                  "description": self.config.description_boost}
        pools: list[dict[str, float]] = [defaultdict(float) for _ in texts]
        for name, searcher in self.searchers.items():
            for pool, ranking in zip(pools, search_texts(searcher, texts, self.config.pool, self.config.bm25)):
                for sid, score in ranking:
                    pool[sid] += boosts[name] * score
        cfg = self.config
        return [{sid: bm25 + math.sqrt(cfg.utility_factor * self.utility.get(sid, cfg.missing_utility))
                 for sid, bm25 in pool.items()} for pool in pools]

    def _user_clusters(self, history: Sequence[str]) -> StyleClusters | None:
        key = "\t".join(history)
        if key not in self.clusters:
            rows = [self.row[s] for s in history if s in self.row]
            self.clusters[key] = style_clusters(self.vectors[rows], self.config.clusters, self.seed)
        return self.clusters[key]

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        out = []
        for query, pool in zip(queries, self.recall([q.text for q in queries])):
            clusters = self._user_clusters(query.user.history) if query.user else None
            if clusters is not None and pool:
                ids = list(pool)
                scores = clusters.rerank(np.array([pool[s] for s in ids]), self.vectors[[self.row[s] for s in ids]],
                                         self.config.rerank_weight)
                pool = dict(zip(ids, scores.tolist()))
            out.append(top_k(pool.items(), k))
        return out


__all__ = ["PerSRV", "PerSRVConfig", "StyleClusters", "style_clusters", "utility_metrics", "field_documents"]
