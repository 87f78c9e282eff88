"""Dense retrievers of the PEARL paper's Table 1: DPR and ANCE, and their shared machinery.

Shared pieces: :class:`DenseIndex` (faiss: exact inner product by default, IVF or HNSW by
config), :class:`DualEncoderTrainer` (one contrastive loop for both methods: a batch of queries,
a list of candidate stickers, the positive of each query, and a mask of the candidates each
query may be compared with), and BM25 hard-negative mining with the suite's own BM25 (once per
dataset, shared by DPR and ANCE).

Both encoders start from the offline all-MiniLM-L6-v2 (any sentence-transformers path or hub
id by config), score by the dot product of mean-pooled vectors (the Normalize layer is
dropped, as DPR/ANCE use unnormalized dot products), and index the sticker text "ocr: ... |
ip: ... | ..." (for StickerQueries: its training queries).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from benchmark.io import read_json, write_json
from benchmark.records import Query, TrainingData
from systems import distributed
from systems.base import BaseRetriever, Ranking, SystemCard, config_dict, shared_artifact, top_k
from systems.encoders import DEFAULT_ENCODER, encode, load_encoder, set_threads
from systems.lexical import BM25, BM25Config
from systems.optim import adamw_schedule

# --------------------------------------------------------------------------- index


class DenseIndex:
    """A faiss inner-product index over sticker vectors, with the sticker ids of its rows."""

    def __init__(self, index, ids: Sequence[str]):
        self.index, self.ids = index, list(ids)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Sequence[str], kind: str = "flat", nlist: int = 256,
              nprobe: int = 16, hnsw_m: int = 32, ef_search: int = 128, pq_m: int = 48) -> "DenseIndex":
        """Build an index: ``flat`` (exact), ``ivf`` (inverted lists), ``ivfpq`` (inverted lists
        of product-quantized vectors, ``pq_m`` bytes each, trained on at most 64 vectors per
        list) or ``hnsw`` (graph)."""
        import faiss

        dim = vectors.shape[1]
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind in ("ivf", "ivfpq"):
            nlist = max(1, min(nlist, len(vectors) // 39))  # faiss wants ~39 points per list
            if kind == "ivf":
                index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
                index.train(vectors)
            else:  # trained on a fixed sample of 64 points per list: k-means over 1M vectors takes long
                index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
                sample = np.random.default_rng(0).permutation(len(vectors))[: 64 * nlist]
                index.train(vectors[np.sort(sample)])
            index.nprobe = min(nprobe, nlist)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = ef_search
        else:
            raise ValueError(f"unknown index kind {kind!r} (flat, ivf, ivfpq, hnsw)")
        index.add(vectors)
        return cls(index, ids)

    def search(self, queries: np.ndarray, k: int) -> list[Ranking]:
        """The ``k`` best stickers per query row, ties broken by the suite's rule."""
        k = min(k, len(self.ids))
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return [
            top_k(((self.ids[r], round(float(s), 5)) for s, r in zip(srow, rrow) if r >= 0), k)
            for srow, rrow in zip(scores, rows)
        ]

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(folder / "index.faiss"))
        (folder / "index_ids.json").write_text(json.dumps(self.ids))

    @classmethod
    def load(cls, folder: Path) -> "DenseIndex":
        import faiss

        return cls(faiss.read_index(str(folder / "index.faiss")), json.loads((folder / "index_ids.json").read_text()))


# --------------------------------------------------------------------------- training data


@dataclass(frozen=True)
class Triple:
    """A training query, one positive sticker, and the query's other positives (never negatives)."""

    qid: str
    query: str
    positive: str
    positives: frozenset[str]


def training_triples(data: TrainingData) -> list[Triple]:
    """One triple per (training query, relevant sticker), in qid then sticker order."""
    out = []
    for q in sorted(data.queries, key=lambda q: q.qid):
        positives = frozenset(s for s, r in data.qrels.get(q.qid, {}).items() if r > 0)
        out += [Triple(q.qid, q.text, s, positives) for s in sorted(positives)]
    return out


def bm25_negatives(data: TrainingData, depth: int = 100) -> dict[str, list[str]]:
    """For each training qid, the BM25 ranking of its query minus its positives (best first).

    Mined once per dataset and shared by DPR and ANCE (``.cache/shared/bm25-negatives/``).
    """
    key = {"dataset": data.fingerprint, "bm25": config_dict(BM25Config()), "depth": depth}
    folder = shared_artifact("bm25-negatives", key, lambda f: _mine_bm25_negatives(data, depth, f))
    return read_json(folder / "negatives.json")


def _mine_bm25_negatives(data: TrainingData, depth: int, folder: Path) -> None:
    """Index the stickers with the suite's BM25 in ``folder`` and write each training query's
    negatives to ``negatives.json``."""
    bm25 = BM25(BM25Config(), 0)
    bm25.fit(data, folder)
    bm25.load(folder)
    queries = sorted(data.queries, key=lambda q: q.qid)
    rankings = bm25.search([Query(q.qid, None, q.text) for q in queries], depth)
    out = {}
    for q, ranking in zip(queries, rankings):
        positives = {s for s, r in data.qrels.get(q.qid, {}).items() if r > 0}
        out[q.qid] = [s for s, _ in ranking if s not in positives]
    write_json(folder / "negatives.json", out)


def sample_negative(candidates: Sequence[str], positives: frozenset[str], rng: np.random.Generator,
                    fallback: Sequence[str]) -> str:
    """A negative from ``candidates`` (or, if they run out, from ``fallback``), never a positive."""
    pool = [s for s in candidates if s not in positives]
    if not pool:
        pool = [s for s in fallback if s not in positives]
    return pool[int(rng.integers(len(pool)))]


# --------------------------------------------------------------------------- training loop


@dataclass(frozen=True)
class Batch:
    """Queries, candidate sticker texts, each query's positive column, and which columns each
    query is scored against (other positives of the same query are masked out)."""

    queries: list[str]
    docs: list[str]
    targets: list[int]
    allowed: np.ndarray  # (len(queries), len(docs)) bool


class DualEncoderTrainer:
    """Minimizes the softmax NLL of each query's positive among its allowed candidates.

    ``query_model`` and ``doc_model`` may be the same object (a shared encoder). One AdamW
    optimizer with linear warm-up then linear decay over ``total_steps`` (so ANCE's rounds
    continue one schedule), gradient-norm clipping. Under ``torchrun`` each rank encodes its
    slice of every batch's queries and stickers through ``DistributedDataParallel``, and the
    embeddings of all ranks are gathered before scoring, so the in-batch negatives, the loss
    and the update are those of one process (:mod:`systems.distributed`).
    """

    def __init__(self, query_model, doc_model, total_steps: int, lr: float, warmup: int, grad_norm: float):
        self.query_model, self.doc_model, self.grad_norm = query_model, doc_model, grad_norm
        for model in (query_model, doc_model):  # mean pooling never reads BERT's pooler: no gradient
            for name, p in model.named_parameters():  # to wait for under DDP, none to step without it
                if ".pooler." in name:
                    p.requires_grad_(False)
        self.query_net = distributed.wrap(query_model)
        self.doc_net = self.query_net if doc_model is query_model else distributed.wrap(doc_model)
        self.params = [p for p in {id(p): p for m in (query_model, doc_model) for p in m.parameters()}.values()
                       if p.requires_grad]
        self.optimizer, self.schedule = adamw_schedule(self.params, lr, total_steps, warmup)
        self.losses: list[float] = []

    def train(self, batches: Iterator[Batch], steps: int, progress: bool = True, desc: str = "train") -> list[float]:
        """Run ``steps`` optimizer steps; return their losses."""
        import torch

        self.query_model.train(), self.doc_model.train()
        losses = []
        bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress, leave=False)
        for _, batch in zip(range(steps), batches):
            q = _embed(self.query_net, self.query_model, batch.queries)
            d = _embed(self.doc_net, self.doc_model, batch.docs)
            scores = (q @ d.T).masked_fill(~torch.from_numpy(batch.allowed), float("-inf"))
            loss = torch.nn.functional.cross_entropy(scores, torch.tensor(batch.targets))
            self.optimizer.zero_grad()
            (loss * distributed.world_size()).backward()  # see distributed.gather
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_norm)
            self.optimizer.step()
            self.schedule.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        bar.close()
        self.query_model.eval(), self.doc_model.eval()
        self.losses += losses
        return losses

    def notes(self) -> dict:
        return {"train_steps": len(self.losses),
                "loss_first_20": round(float(np.mean(self.losses[:20])), 4),
                "loss_last_20": round(float(np.mean(self.losses[-20:])), 4)}


def _embed(net, model, texts: list[str]):
    """The embeddings of a batch's ``texts``: this rank's slice through ``net`` (``model`` or
    its DDP wrapper), gathered from all ranks."""
    rows = net(model.preprocess(distributed.shard(texts)))["sentence_embedding"]
    return distributed.gather(rows, len(texts))


def in_batch_batches(triples: Sequence[Triple], negatives: dict[str, list[str]], docs: dict[str, str],
                     batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
    """DPR batches: every query against all positives and hard negatives of the batch."""
    all_ids = sorted(docs)
    while True:
        order = rng.permutation(len(triples))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            chunk = [triples[i] for i in order[start: start + batch_size]]
            negs = [sample_negative(negatives.get(t.qid, [])[:1], t.positives, rng, all_ids) for t in chunk]
            column = [t.positive for t in chunk] + negs
            allowed = np.array([[c == t.positive or c not in t.positives for c in column] for t in chunk])
            yield Batch([t.query for t in chunk], [docs[c] for c in column], list(range(len(chunk))), allowed)


def pair_batches(triples: Sequence[Triple], negatives: dict[str, list[str]], docs: dict[str, str],
                 batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
    """ANCE batches: each query against its positive and one sampled negative only."""
    all_ids = sorted(docs)
    while True:
        order = rng.permutation(len(triples))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            chunk = [triples[i] for i in order[start: start + batch_size]]
            column, allowed = [], np.zeros((len(chunk), 2 * len(chunk)), dtype=bool)
            for i, t in enumerate(chunk):
                column += [t.positive, sample_negative(negatives.get(t.qid, []), t.positives, rng, all_ids)]
                allowed[i, 2 * i: 2 * i + 2] = True
            yield Batch([t.query for t in chunk], [docs[c] for c in column], [2 * i for i in range(len(chunk))], allowed)


# --------------------------------------------------------------------------- systems


@dataclass(frozen=True)
class DPRConfig:
    """DPR hyper-parameters. The paper trains 40 epochs at lr 2e-5 on GPUs; the CPU default is a
    budget of ``steps`` optimizer steps (set ``steps=0`` to train ``epochs`` full epochs)."""

    encoder: str = DEFAULT_ENCODER
    max_seq_length: int = 48
    batch_size: int = 32
    lr: float = 5e-5
    steps: int = 200
    epochs: int = 40
    warmup: int = 20
    grad_norm: float = 2.0
    index: str = "flat"
    threads: int = 0


def _steps(config, n_triples: int) -> int:
    return config.steps if config.steps > 0 else config.epochs * max(1, n_triples // config.batch_size)


class _DenseRetriever(BaseRetriever):
    """Fit-time bookkeeping and search shared by DPR and ANCE."""

    def load(self, artifacts: Path) -> None:
        set_threads(self.config.threads or None)
        self.query_model = load_encoder(str(artifacts / "query_encoder"), self.config.max_seq_length, normalize=False)
        self.index = DenseIndex.load(artifacts)
        self._notes.update(json.loads((artifacts / "training.json").read_text()))

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        vectors = encode(self.query_model, [q.text for q in queries], batch_size=64)
        return self.index.search(vectors, k)

    def _prepare(self, data: TrainingData) -> tuple[int, np.random.Generator, dict[str, str], list[Triple]]:
        """Threads and seeds for a fit; the labelled sticker texts and the training triples."""
        import torch

        threads = set_threads(self.config.threads or None)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        return threads, rng, data.sticker_documents(labelled=True), training_triples(data)

    def _finish(self, artifacts: Path, query_model, doc_model, docs: dict[str, str],
                notes: dict) -> None:
        """Save the encoders, encode the corpus with the sticker encoder and index it."""
        query_model.save(str(artifacts / "query_encoder"))
        if doc_model is not query_model:
            doc_model.save(str(artifacts / "sticker_encoder"))
        ids = sorted(docs)
        start = time.perf_counter()
        vectors = distributed.map_rows(lambda texts: encode(doc_model, texts, progress=True), [docs[s] for s in ids])
        notes["corpus_encode_s"] = round(time.perf_counter() - start, 2)
        DenseIndex.build(vectors, ids, kind=self.config.index).save(artifacts)
        (artifacts / "training.json").write_text(json.dumps(notes, sort_keys=True))


class DPR(_DenseRetriever):
    """Dense Passage Retrieval: separate query and sticker encoders initialised from the same
    checkpoint, trained with in-batch negatives plus one BM25 hard negative per query."""

    card = SystemCard(
        name="dpr", label="DPR", family="Traditional",
        paper="Karpukhin et al., EMNLP 2020 (Dense Passage Retrieval)",
        deviations=(
            "encoders start from all-MiniLM-L6-v2 (offline) instead of BERT-base; mean pooling",
            "CPU budget: 200 steps (batch 32) at lr 5e-5 by default instead of 40 epochs at 2e-5 "
            "(set dpr.steps=0 for the paper's epochs)",
            "other positives of a query inside the batch are masked out instead of counted as negatives",
        ),
    )
    Config = DPRConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        threads, rng, docs, triples = self._prepare(data)
        negatives = bm25_negatives(data)
        query_model = load_encoder(self.config.encoder, self.config.max_seq_length, normalize=False)
        doc_model = load_encoder(self.config.encoder, self.config.max_seq_length, normalize=False)
        steps = _steps(self.config, len(triples))
        start = time.perf_counter()
        trainer = DualEncoderTrainer(query_model, doc_model, steps, self.config.lr, self.config.warmup,
                                     self.config.grad_norm)
        trainer.train(in_batch_batches(triples, negatives, docs, self.config.batch_size, rng), steps, desc="dpr train")
        notes = {**trainer.notes(), "train_triples": len(triples), "threads": threads,
                 "train_s": round(time.perf_counter() - start, 2)}
        self._finish(artifacts, query_model, doc_model, docs, notes)


@dataclass(frozen=True)
class ANCEConfig(DPRConfig):
    """ANCE: a BM25-negative warm-up (``warmup_steps``, DPR-style), then ``refreshes`` rounds of
    re-encoding the corpus, mining each training query's top ``ann_depth`` neighbours (positives
    dropped) and training ``refresh_every`` steps on (positive, one ANN negative) pairs."""

    steps: int = 0  # not used by ANCE (inherited from DPRConfig); its budget is the fields below
    warmup_steps: int = 100
    refreshes: int = 2
    refresh_every: int = 75
    ann_depth: int = 200


class ANCE(_DenseRetriever):
    """Approximate nearest neighbour Negative Contrastive Estimation: one shared encoder,
    warmed up on BM25 negatives, then trained on negatives retrieved by its own index."""

    card = SystemCard(
        name="ance", label="ANCE", family="Traditional",
        paper="Xiong et al., ICLR 2021 (ANCE)",
        deviations=(
            "encoder starts from all-MiniLM-L6-v2 (offline) instead of RoBERTa-base; mean pooling",
            "the index is refreshed synchronously every refresh_every steps (the original refreshes "
            "asynchronously every ~10k steps); budgets in the run metadata",
            "warm-up is DPR-style in-batch training with BM25 negatives on the shared encoder",
        ),
    )
    Config = ANCEConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        threads, rng, docs, triples = self._prepare(data)
        cfg = self.config
        ids = sorted(docs)
        model = load_encoder(cfg.encoder, cfg.max_seq_length, normalize=False)
        start = time.perf_counter()
        trainer = DualEncoderTrainer(model, model, cfg.warmup_steps + cfg.refreshes * cfg.refresh_every,
                                     cfg.lr, cfg.warmup, cfg.grad_norm)
        bm25 = bm25_negatives(data)
        trainer.train(in_batch_batches(triples, bm25, docs, cfg.batch_size, rng), cfg.warmup_steps, desc="ance warm-up")
        queries = sorted({t.qid: t.query for t in triples}.items())
        for r in range(cfg.refreshes):
            vectors = distributed.map_rows(lambda texts: encode(model, texts, progress=True), [docs[s] for s in ids])
            index = DenseIndex.build(vectors, ids)
            found = index.search(distributed.map_rows(lambda texts: encode(model, texts), [t for _, t in queries]),
                                 cfg.ann_depth)
            positives = {t.qid: t.positives for t in triples}
            negatives = {qid: [s for s, _ in ranking if s not in positives[qid]]
                         for (qid, _), ranking in zip(queries, found)}
            trainer.train(pair_batches(triples, negatives, docs, cfg.batch_size, rng), cfg.refresh_every,
                          desc=f"ance round {r + 1}/{cfg.refreshes}")
        notes = {**trainer.notes(), "train_triples": len(triples), "threads": threads,
                 "warmup_steps": cfg.warmup_steps, "refreshes": cfg.refreshes, "refresh_every": cfg.refresh_every,
                 "ann_depth": cfg.ann_depth, "train_s": round(time.perf_counter() - start, 2)}
        self._finish(artifacts, model, model, docs, notes)
