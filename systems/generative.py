"""Generative retrievers of the PEARL paper's Table 1: DSI, DSI-QG, GENRE, Ultron and MINDER.

All of them share one seq2seq backbone (:mod:`systems.seq2seq`) and one constrained decoder
(:mod:`systems.constrained`); they differ in what identifies a sticker and what the model is
trained on:

* **DSI**: a docid per sticker (naive: its index as a digit string, one token per digit;
  atomic: one token per sticker); trained on indexing (sticker text -> docid) mixed with
  retrieval (query -> docid) pairs; beam search over the docid trie.
* **DSI-QG**: a query generator (sticker text -> query) trained on the labelled training pairs
  samples pseudo-queries per sticker (top-k sampling); the DSI model is indexed on the
  pseudo-queries only.
* **GENRE**: the sticker's title (its meaning) as identifier, disambiguated by a fixed rule
  (:func:`sticker_titles`); beam search over the title trie.
* **Ultron** (PQ docids): the product-quantized embedding of the sticker text is its docid;
  three training stages (sticker text, pseudo-queries, labelled queries -> docid).
* **MINDER**: three views (title, body n-grams, pseudo-queries): whole titles and
  pseudo-queries decoded under prefix tries, body n-grams under an n-gram index
  (:mod:`systems.ngrams`); keys weighted as in SEAL, a sticker's score summed over the views.

A sticker's text parts are its property texts, meaning first (``meaning, ocr, ip, entity,
style``); a sticker without property text (StickerQueries) is described by its labelled
training queries, and one with neither by its id.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from benchmark.io import atomic_open
from benchmark.paths import CHECKPOINTS
from benchmark.records import Query, TrainingData
from systems.base import BaseRetriever, Ranking, SystemCard, shared_artifact, top_k
from systems.constrained import PrefixTrie, decoded_items
from systems.encoders import DEFAULT_ENCODER, set_threads
from systems.ngrams import NgramIndex, document_score, key_weight
from systems.seq2seq import Example, Seq2Seq, Seq2SeqConfig

DECODE_BATCH = 32
BACKBONE_DEVIATION = (
    "shared backbone: a BART (d_model 256, 3+3 layers) trained from scratch with a word-level "
    "WordPiece vocabulary counted on the training side, instead of pretrained BART/T5 (none reachable "
    "offline; set backbone=<hub id or path> for the paper's setup); CPU budget of epochs capped "
    "at max_steps (see the run metadata)"
)
BEAM_DEVIATION = "beam raised from 10 to k (20) so that k stickers can be returned"

# --------------------------------------------------------------------------- sticker text


def text_parts(data: TrainingData) -> dict[str, list[str]]:
    """Each sticker's texts, meaning first, then ocr, ip, entity, style (non-empty only);
    without property text, its labelled training queries; without those, its id."""
    order = ("meaning", "ocr", "ip", "entity", "style")
    by_sticker = data.train_queries_by_sticker()
    out = {}
    for s in data.stickers:
        parts = [getattr(s, p) for p in order if getattr(s, p)]
        out[s.id] = parts or by_sticker.get(s.id, []) or [s.id]
    return out


def sticker_titles(parts: dict[str, list[str]]) -> dict[str, str]:
    """GENRE's unique title per sticker.

    The title is the first text part (the meaning). Stickers that share it are disambiguated
    as Wikipedia does, with a parenthesis: ``"good afternoon (good aft all of you)"`` adds the
    next part, and further parts (``", kermit the frog"``) are added one at a time until the
    title is unique; stickers still equal after all parts get ``" #2"``, ``" #3"``... in
    sticker-id order (the first keeps its title).
    """
    titles: dict[str, str] = {}
    pending = sorted(parts)
    for extra in range(max(len(p) for p in parts.values())):
        candidate = {s: _title(parts[s], extra) for s in pending}
        counts = Counter(candidate.values())
        for s in pending:
            if counts[candidate[s]] == 1 and candidate[s] not in titles.values():
                titles[s] = candidate[s]
        pending = [s for s in pending if s not in titles]
    taken = set(titles.values())
    seen: Counter = Counter()
    for s in pending:
        base = _title(parts[s], len(parts[s]))
        seen[base] += 1
        title = base if seen[base] == 1 and base not in taken else f"{base} #{seen[base]}"
        while title in taken:
            seen[base] += 1
            title = f"{base} #{seen[base]}"
        titles[s] = title
        taken.add(title)
    return titles


def _title(parts: list[str], extra: int) -> str:
    more = parts[1: 1 + extra]
    return f"{parts[0]} ({', '.join(more)})" if more else parts[0]


# --------------------------------------------------------------------------- shared machinery


def _fit_backbone(config: Seq2SeqConfig, corpus: Sequence[str], new_tokens: Sequence[str], folder: Path,
                  seed: int, desc: str, make_examples: Callable[[Seq2Seq], list[Example]]) -> tuple[Seq2Seq, dict]:
    """Create a backbone, train it on ``make_examples(model)`` (built once the tokenizer exists;
    resumable, checkpoints under ``folder/checkpoints``), save it to ``folder/model``; return it
    with its training notes."""
    model = Seq2Seq.create(config, corpus, new_tokens, seed)
    notes = model.train(make_examples(model), config, folder / CHECKPOINTS, seed, desc=desc)
    model.save(folder / "model")
    return model, {**notes, "parameters": model.n_parameters()}


def _write_json(path: Path, obj) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f)


def trie_search(model: Seq2Seq, trie: PrefixTrie, ids: Sequence[str], queries: Sequence[Query], k: int,
                config: Seq2SeqConfig, max_new_tokens: int) -> list[Ranking]:
    """Constrained beam search over identifiers; each sticker scored by its best hypothesis."""
    beams = max(config.beams, k)
    out: list[Ranking] = []
    for start in range(0, len(queries), DECODE_BATCH):
        batch = queries[start: start + DECODE_BATCH]
        sequences, scores, _ = model.generate([q.text for q in batch], trie, num_beams=beams,
                                              max_new_tokens=max_new_tokens,
                                              max_source_length=config.max_source_length)
        for i in range(len(batch)):
            rows = slice(i * beams, (i + 1) * beams)
            best: dict[str, float] = {}
            for items, score in decoded_items(trie, sequences[rows], scores[rows], 1, model.pad):
                for item in items:
                    best.setdefault(ids[item], round(score, 5))
            out.append(top_k(best.items(), k))
    return out


class _TrieRetriever(BaseRetriever):
    """Load and search for systems that decode one identifier per sticker from a trie."""

    def load(self, artifacts: Path) -> None:
        set_threads(self.config.threads or None)
        self.model = Seq2Seq.load(artifacts / "model")
        saved = json.loads((artifacts / "identifiers.json").read_text())
        self.ids = list(saved)
        identifiers = list(saved.values())
        self.trie = PrefixTrie(identifiers, self.model.eos)
        self.max_new_tokens = max(self.config.max_new_tokens, 1 + max(len(t) for t in identifiers))
        self._notes.update(json.loads((artifacts / "training.json").read_text()))
        self._notes["max_new_tokens"] = self.max_new_tokens

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        return trie_search(self.model, self.trie, self.ids, queries, k, self.config, self.max_new_tokens)

    def _save(self, artifacts: Path, identifiers: dict[str, list[int]], notes: dict) -> None:
        _write_json(artifacts / "identifiers.json", identifiers)
        _write_json(artifacts / "training.json", notes)


def retrieval_pairs(data: TrainingData) -> list[tuple[str, str]]:
    """(query text, relevant sticker id) for every labelled training pair, in qid order."""
    return [(q.text, s) for q in sorted(data.queries, key=lambda q: q.qid)
            for s, r in sorted(data.qrels.get(q.qid, {}).items()) if r > 0]


# --------------------------------------------------------------------------- DSI


@dataclass(frozen=True)
class DSIConfig(Seq2SeqConfig):
    """DSI: ``docid`` is ``naive`` (digit strings) or ``atomic`` (one token per sticker)."""

    docid: str = "naive"


def docids(ids: Sequence[str], kind: str) -> dict[str, list[str]]:
    """Docid tokens per sticker: its position in sorted-id order as digits, or one token."""
    if kind == "naive":
        return {s: [f"[D{c}]" for c in str(i)] for i, s in enumerate(sorted(ids))}
    if kind == "atomic":
        return {s: [f"[S{i}]"] for i, s in enumerate(sorted(ids))}
    raise ValueError(f"unknown docid kind {kind!r} (naive, atomic)")


def _docid_tokens(kind: str, n: int) -> list[str]:
    return [f"[D{c}]" for c in range(10)] if kind == "naive" else [f"[S{i}]" for i in range(n)]


class DSI(_TrieRetriever):
    """Differentiable Search Index: one seq2seq model memorizes sticker texts under their docids
    (indexing) while learning to map queries to docids (retrieval)."""

    card = SystemCard(
        name="dsi", label="DSI", family="Generative",
        paper="Tay et al., NeurIPS 2022 (Transformer Memory as a Differentiable Search Index)",
        deviations=(BACKBONE_DEVIATION, BEAM_DEVIATION,
                    "indexing and retrieval examples mixed in one shuffled stream (no tuned ratio)"),
    )
    Config = DSIConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        ids = docids([s.id for s in data.stickers], self.config.docid)
        corpus, pairs, notes = self.training_pairs(data)
        identifiers: dict[str, list[int]] = {}

        def examples(m: Seq2Seq) -> list[Example]:
            identifiers.update({s: [m.token_id(t) for t in ids[s]] for s in sorted(ids)})
            return [(src, tuple(identifiers[s])) for src, s in pairs]

        _, trained = _fit_backbone(self.config, corpus, _docid_tokens(self.config.docid, len(ids)), artifacts,
                                   self.seed, f"{self.card.name} train", make_examples=examples)
        self._save(artifacts, identifiers, {**trained, **notes, "docid": self.config.docid})

    def training_pairs(self, data: TrainingData) -> tuple[list[str], list[tuple[str, str]], dict]:
        """The vocabulary corpus, the (source text, sticker id) pairs, and notes: indexing
        (sticker text) and retrieval (labelled query) pairs."""
        docs = data.sticker_documents()
        pairs = [(docs[s], s) for s in sorted(docs) if docs[s]] + retrieval_pairs(data)
        return [*docs.values(), *(q.text for q in data.queries)], pairs, {}


# --------------------------------------------------------------------------- DSI-QG


@dataclass(frozen=True)
class DSIQGConfig(DSIConfig):
    """DSI-QG: ``n_queries`` pseudo-queries per sticker by top-``top_k`` sampling; beam 20."""

    beams: int = 20
    n_queries: int = 10
    top_k: int = 10
    query_tokens: int = 16


def generator_config(config: Seq2SeqConfig) -> dict:
    """The fields of a system config that define the query generator (its cache key)."""
    keep = {f.name for f in fields(Seq2SeqConfig)} - {"beams", "max_new_tokens", "threads", "checkpoint_every"}
    out = {k: v for k, v in asdict(config).items() if k in keep}
    return {**out, "n_queries": config.n_queries, "top_k": config.top_k, "query_tokens": config.query_tokens}


def pseudo_queries(data: TrainingData, config, seed: int, progress: bool = True) -> tuple[dict[str, list[str]], dict]:
    """DSI-QG's pseudo-queries: ``n_queries`` per sticker from a query generator trained on the
    labelled (sticker text -> query) pairs, sampled with top-``top_k``.

    Shared by DSI-QG and MINDER and cached under ``.cache/shared/pseudo-queries/<key>/`` (key:
    generator config, dataset fingerprint, seed); training resumes from its checkpoints.

    Returns:
        (sticker id -> pseudo-queries, generator notes).
    """
    key = {"generator": generator_config(config), "dataset": data.fingerprint, "seed": seed}
    folder = shared_artifact("pseudo-queries", key, lambda f: _sample_pseudo_queries(data, config, seed, f, progress))
    saved = json.loads((folder / "queries.json").read_text())
    return saved["queries"], saved["notes"]


def _sample_pseudo_queries(data: TrainingData, config, seed: int, folder: Path, progress: bool) -> None:
    """Train the query generator in ``folder`` and write its samples to ``queries.json``."""
    docs = data.sticker_documents()
    pairs = [(docs[s], text) for text, s in retrieval_pairs(data)]
    model, notes = _fit_backbone(
        config, [*docs.values(), *(q.text for q in data.queries)], (), folder, seed, "query generator",
        make_examples=lambda m: [(d, tuple(m.token_ids(q))) for d, q in pairs])
    ids = sorted(docs)
    queries: dict[str, list[str]] = {}
    bar = tqdm(total=len(ids), desc="sample pseudo-queries", unit="sticker", disable=not progress, leave=False)
    for start in range(0, len(ids), DECODE_BATCH):
        batch = ids[start: start + DECODE_BATCH]
        sampled = model.sample([docs[s] for s in batch], config.n_queries, config.top_k, config.query_tokens,
                               config.max_source_length, seed=seed + start)
        queries.update({s: [q for q in qs if q.strip()] for s, qs in zip(batch, sampled)})
        bar.update(len(batch))
    bar.close()
    notes = {**notes, "pseudo_queries": sum(len(v) for v in queries.values())}
    _write_json(folder / "queries.json", {"queries": queries, "notes": notes})


class DSIQG(DSI):
    """DSI-QG: DSI indexed on pseudo-queries generated for every sticker."""

    card = SystemCard(
        name="dsi-qg", label="DSI-QG", family="Generative",
        paper="Zhuang et al., 2022 (Bridging the Gap Between Indexing and Retrieval for DSI with Query Generation)",
        deviations=(BACKBONE_DEVIATION,
                    "the query generator is the shared backbone trained here on the labelled pairs "
                    "(the paper fine-tunes a pretrained docT5query-style T5); 10 queries per sticker",
                    "decoding over a docid trie instead of digit-only tokens (stricter)",
                    "no cross-encoder reranking of pseudo-queries"),
    )
    Config = DSIQGConfig

    def training_pairs(self, data: TrainingData) -> tuple[list[str], list[tuple[str, str]], dict]:
        """(pseudo-query, sticker id) pairs only: labelled queries train only the generator."""
        queries, gen_notes = pseudo_queries(data, self.config, self.seed)
        pairs = [(q, s) for s in sorted(queries) for q in queries[s]]
        return [q for q, _ in pairs], pairs, {"query_generator": gen_notes}


# --------------------------------------------------------------------------- GENRE


class GENRE(_TrieRetriever):
    """GENRE: generate the sticker's unique title under a prefix trie of all titles."""

    card = SystemCard(
        name="genre", label="GENRE", family="Generative",
        paper="De Cao et al., ICLR 2021 (Autoregressive Entity Retrieval)",
        deviations=(BACKBONE_DEVIATION, BEAM_DEVIATION,
                    "title = the sticker's meaning, disambiguated by its other texts "
                    "(systems.generative.sticker_titles); step limit raised to the longest title",
                    "sticker text -> title pairs stand in for GENRE's Wikipedia pre-training"),
    )
    Config = Seq2SeqConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        docs = data.sticker_documents()
        titles = sticker_titles(text_parts(data))
        source_target = [(docs[s], s) for s in sorted(docs) if docs[s]] + retrieval_pairs(data)
        model, notes = _fit_backbone(
            self.config, [*docs.values(), *(q.text for q in data.queries), *titles.values()], (),
            artifacts, self.seed, "genre train",
            make_examples=lambda m: [(src, tuple(m.token_ids(titles[s]))) for src, s in source_target])
        identifiers = {s: model.token_ids(titles[s]) for s in sorted(titles)}
        shared = len(identifiers) - len({tuple(t) for t in identifiers.values()})
        self._save(artifacts, identifiers, {**notes, "titles_sharing_tokens": shared})


# --------------------------------------------------------------------------- Ultron


@dataclass(frozen=True)
class UltronConfig(DSIQGConfig):
    """Ultron-PQ: docid = product quantization of the sticker's embedding by ``encoder`` into
    ``pq_m`` codes of ``pq_bits`` bits (one position-specific token per code); three training
    stages share the ``max_steps`` budget equally."""

    beams: int = 10
    encoder: str = DEFAULT_ENCODER
    pq_m: int = 4
    pq_bits: int = 8


def pq_docids(vectors: np.ndarray, m: int, bits: int) -> tuple[np.ndarray, int]:
    """Product-quantization codes (one row of ``m`` codes per vector) and the bits used (fewer
    than ``bits`` when there are too few vectors to train 2**bits centroids)."""
    import faiss

    bits = max(1, min(bits, int(np.log2(len(vectors)))))
    pq = faiss.ProductQuantizer(vectors.shape[1], m, bits)
    pq.cp.min_points_per_centroid = 1  # small corpora: no warning, the bits above already adapt
    pq.train(np.ascontiguousarray(vectors, dtype=np.float32))
    packed = pq.compute_codes(np.ascontiguousarray(vectors, dtype=np.float32))
    # faiss packs each row's m codes of `bits` bits least-significant bit first
    unpacked = np.unpackbits(packed, axis=1, bitorder="little")[:, : m * bits].reshape(len(vectors), m, bits)
    return (unpacked.astype(np.int64) << np.arange(bits)).sum(-1), bits


class Ultron(_TrieRetriever):
    """Ultron (PQ docids): the sticker's dense embedding, product-quantized, is its docid;
    the model learns it in three stages: sticker text, then pseudo-queries, then labelled
    queries -> docid."""

    card = SystemCard(
        name="ultron", label="Ultron", family="Generative",
        paper="Zhou et al., 2022 (Ultron: An Ultimate Retriever on Corpus with a Model-based Indexer)",
        deviations=(BACKBONE_DEVIATION, BEAM_DEVIATION,
                    "embeddings from the offline all-MiniLM-L6-v2 (Ultron uses BERT); PQ with 4 x 256 codes",
                    "the three stages share the max_steps budget equally; pseudo-queries are DSI-QG's"),
    )
    Config = UltronConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        from systems.encoders import cached_encode, load_encoder

        cfg = self.config
        docs = data.sticker_documents()
        labelled = data.sticker_documents(labelled=True)
        ids = sorted(docs)
        encoder = load_encoder(cfg.encoder)
        vectors = cached_encode(encoder, f"{cfg.encoder}:{data.fingerprint}", [labelled[s] for s in ids], progress=True)
        codes, bits = pq_docids(vectors, cfg.pq_m, cfg.pq_bits)
        tokens = {s: [f"[Q{j}_{c}]" for j, c in enumerate(row)] for s, row in zip(ids, codes)}
        vocabulary = [f"[Q{j}_{c}]" for j in range(cfg.pq_m) for c in range(2 ** bits)]
        queries, gen_notes = pseudo_queries(data, cfg, self.seed)
        stages = [
            [(docs[s], s) for s in ids if docs[s]],
            [(q, s) for s in ids for q in queries.get(s, [])],
            retrieval_pairs(data),
        ]
        model = Seq2Seq.create(cfg, [*docs.values(), *(q.text for q in data.queries)], vocabulary, self.seed)
        identifiers = {s: [model.token_id(t) for t in tokens[s]] for s in ids}
        stage_cfg = replace(cfg, max_steps=max(1, cfg.max_steps // len(stages)))
        notes: dict = {}
        for n, pairs in enumerate(stages, start=1):
            examples = [(src, tuple(identifiers[s])) for src, s in pairs]
            notes[f"stage_{n}"] = model.train(examples, stage_cfg, artifacts / CHECKPOINTS, self.seed,
                                              desc=f"ultron stage {n}")
        model.save(artifacts / "model")
        shared = len(ids) - len({tuple(t) for t in identifiers.values()})
        self._save(artifacts, identifiers, {**notes, "steps": sum(v["steps"] for v in notes.values()),
                                            "capped_by_max_steps": any(v["capped_by_max_steps"] for v in notes.values()),
                                            "pq_bits": bits, "stickers_sharing_a_docid": shared,
                                            "query_generator": gen_notes, "parameters": model.n_parameters()})


# --------------------------------------------------------------------------- MINDER

VIEWS = ("title", "body", "query")
VIEW_TOKENS = {"title": "[TITLE]", "body": "[BODY]", "query": "[PQ]"}


@dataclass(frozen=True)
class MINDERConfig(DSIQGConfig):
    """MINDER: beam 15, body n-grams up to 10 tokens, pseudo-query keys +14 (SEAL/MINDER)."""

    beams: int = 15
    body_ngram: int = 10
    spans_per_pair: int = 10
    query_bonus: float = 14.0
    rescore_depth: int = 1500


class MINDER(BaseRetriever):
    """MINDER: multiview identifiers (title, body n-grams, pseudo-queries), keys weighted as in
    SEAL, a sticker's score summed over the views.

    As in MINDER's code (``partial_titles`` off), title and pseudo-query keys are complete
    strings, decoded under a prefix trie; body keys are every n-gram the beam visits (all
    partial hypotheses), decoded under the n-gram index. Keys are rescored by teacher forcing;
    pseudo-query keys get ``min(log p + 14, -1)`` before weighting.
    """

    card = SystemCard(
        name="minder", label="MINDER", family="Generative",
        paper="Li et al., ACL 2023 (Multiview Identifiers Enhanced Generative Retrieval)",
        deviations=(BACKBONE_DEVIATION,
                    "a token suffix array (truncated at the body n-gram length) replaces the FM-index; "
                    "each view is decoded separately after its view token",
                    "every sticker a key occurs in is scored fully (capped at rescore_depth by the "
                    "plain key sum) instead of SEAL's two-stage rare/frequent n-gram split",
                    "body spans of a training pair prefer spans sharing a token with the query "
                    "(SEAL fuzzy-matches trigrams; sticker texts are short)"),
    )
    Config = MINDERConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        cfg = self.config
        queries, gen_notes = pseudo_queries(data, cfg, self.seed)
        parts = text_parts(data)
        texts = {s: {"title": p[0], "body": " ".join(p[1:]), "query": queries.get(s, [])} for s, p in parts.items()}
        corpus = [t for v in texts.values() for t in (v["title"], v["body"], *v["query"])]
        rng = np.random.default_rng(self.seed)

        views: dict[str, dict] = {}

        def examples(m: Seq2Seq) -> list[Example]:
            views.update({s: {"title": m.token_ids(v["title"]), "body": m.token_ids(v["body"]),
                              "query": [m.token_ids(q) for q in v["query"]]} for s, v in sorted(texts.items())})
            view = {name: m.token_id(t) for name, t in VIEW_TOKENS.items()}
            return minder_examples(data, m, views, view, cfg, rng)

        _, notes = _fit_backbone(cfg, [*corpus, *(q.text for q in data.queries)], list(VIEW_TOKENS.values()),
                                 artifacts, self.seed, "minder train", make_examples=examples)
        _write_json(artifacts / "views.json", views)
        _write_json(artifacts / "training.json", {**notes, "query_generator": gen_notes})

    def load(self, artifacts: Path) -> None:
        set_threads(self.config.threads or None)
        self.model = Seq2Seq.load(artifacts / "model")
        views = json.loads((artifacts / "views.json").read_text())
        self.ids = list(views)
        self.indexes = minder_indexes(views, self.model.eos, self.config)
        self.view_token = {name: self.model.token_id(t) for name, t in VIEW_TOKENS.items()}
        self._notes.update(json.loads((artifacts / "training.json").read_text()))

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        totals: list[dict[int, float]] = [{} for _ in queries]
        beams = self.config.beams
        for name in VIEWS:
            index = self.indexes[name]
            partial = name == "body"
            for start in range(0, len(queries), DECODE_BATCH):
                batch = queries[start: start + DECODE_BATCH]
                sequences, _, processor = self.model.generate(
                    [q.text for q in batch], index, prefix=(self.view_token[name],), num_beams=beams,
                    max_new_tokens=index.max_length + (0 if partial else 1),
                    max_source_length=self.config.max_source_length, record=partial)
                for i, q in enumerate(batch):
                    keys = _final_keys(sequences[i * beams: (i + 1) * beams], 2, self.model.eos, self.model.pad,
                                       complete=not partial)
                    if partial and i < len(processor.prefixes):
                        keys |= processor.prefixes[i]
                    for item, score in self._view_scores(q.text, name, sorted(keys)).items():
                        totals[start + i][item] = totals[start + i].get(item, 0.0) + score
        return [top_k(((self.ids[i], round(s, 5)) for i, s in t.items() if s > 0), k) for t in totals]

    def _view_scores(self, query: str, view: str, keys: list[tuple[int, ...]]) -> dict[int, float]:
        """SEAL scoring of one view: weight every key, then score the stickers it occurs in."""
        index = self.indexes[view]
        keys = [key for key in keys if index.count(key) > 0]
        maximal = [key for key in keys if not any(o != key and o[: len(key)] == key for o in keys)]
        logp: dict[tuple[int, ...], float] = {}
        for key, cum in zip(maximal, self.model.prefix_log_probs(query, maximal, (self.view_token[view],),
                                                                 self.config.max_source_length)):
            for n in range(1, len(key) + 1):
                logp[key[:n]] = float(cum[n - 1])
        matched: dict[int, list[tuple[tuple[int, ...], float]]] = {}
        for key in keys:
            score = min(logp[key] + self.config.query_bonus, -1.0) if view == "query" else logp[key]
            weight = key_weight(score, index.count(key), index.n_tokens)
            if weight > 0:
                for item in index.locate(key):
                    matched.setdefault(int(item), []).append((key, weight))
        if len(matched) > self.config.rescore_depth:
            plain = sorted(matched, key=lambda i: (-sum(w for _, w in matched[i]), i))
            matched = {i: matched[i] for i in plain[: self.config.rescore_depth]}
        return {item: document_score(found) for item, found in matched.items()}


class StringView:
    """A view whose keys are whole strings (MINDER's titles and pseudo-queries): a prefix trie,
    with the counts and owners SEAL's scoring needs.

    Args:
        sequences: token ids of each string (empty ones are skipped).
        owners: the sticker index each string belongs to.
        eos_token_id: the end-of-sequence token.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], owners: Sequence[int], eos_token_id: int):
        kept = [(list(seq), owner) for seq, owner in zip(sequences, owners) if len(seq) > 0]
        self.trie = PrefixTrie([seq for seq, _ in kept], eos_token_id)
        self.owners = np.array([owner for _, owner in kept], dtype=np.int64)
        self.eos_token_id = eos_token_id
        self.n_tokens = sum(len(seq) for seq, _ in kept)
        self.max_length = max((len(seq) for seq, _ in kept), default=1)

    def allowed_after(self, prefix: Sequence[int]):
        return self.trie.allowed_after(prefix)

    def count(self, key: Sequence[int]) -> int:
        """How many strings equal ``key``."""
        return len(self.trie.items(key))

    def locate(self, key: Sequence[int]) -> np.ndarray:
        """The sorted distinct owners of the strings equal to ``key``."""
        return np.unique(self.owners[self.trie.items(key)])


def minder_indexes(views: dict[str, dict], eos: int, config: MINDERConfig) -> dict:
    """The three views' indexes: whole titles and whole pseudo-queries (prefix tries), and every
    body n-gram up to ``body_ngram`` tokens (n-gram index)."""
    ids = list(views)
    title = StringView([views[s]["title"] for s in ids], list(range(len(ids))), eos)
    body = NgramIndex([views[s]["body"] for s in ids], list(range(len(ids))), eos, max_length=config.body_ngram)
    owners = [i for i, s in enumerate(ids) for _ in views[s]["query"]]
    query = StringView([q for s in ids for q in views[s]["query"]], owners, eos)
    return {"title": title, "body": body, "query": query}


def _final_keys(sequences, prompt_length: int, eos: int, pad: int, complete: bool) -> set[tuple[int, ...]]:
    """The identifiers of the final hypotheses (with ``complete``, only those that ended)."""
    keys = set()
    for seq in sequences.tolist():
        tokens = [t for t in seq[prompt_length:] if t != pad]
        ended = eos in tokens
        if ended:
            tokens = tokens[: tokens.index(eos)]
        if tokens and (ended or not complete):
            keys.add(tuple(tokens))
    return keys


def minder_examples(data: TrainingData, model: Seq2Seq, tok: dict[str, dict], view: dict[str, int],
                    config: MINDERConfig, rng: np.random.Generator) -> list[Example]:
    """SEAL's and MINDER's training pairs, targets prefixed with their view token.

    Supervised, per labelled (query, sticker): query -> title (x3), query -> up to
    ``spans_per_pair`` body spans, query -> pseudo-query (x5). Unsupervised, per sticker:
    span -> title, title -> span, span -> span.
    """
    decode = model.tokenizer.decode
    out: list[Example] = []
    for text, s in retrieval_pairs(data):
        t = tok[s]
        out += [(text, (view["title"], *t["title"]))] * 3
        for span in body_spans(t["body"], config.body_ngram, config.spans_per_pair, set(model.token_ids(text)), rng):
            out.append((text, (view["body"], *span)))
        for i in rng.permutation(len(t["query"]))[:5]:
            out.append((text, (view["query"], *t["query"][i])))
    for s, t in tok.items():
        spans = body_spans(t["body"], config.body_ngram, 2, set(), rng)
        if spans:
            out.append((decode(spans[0]), (view["title"], *t["title"])))
            out.append((decode(t["title"]), (view["body"], *spans[0])))
            out.append((decode(spans[0]), (view["body"], *spans[-1])))
    return [(src, tgt) for src, tgt in out if src.strip() and len(tgt) > 1]


def body_spans(body: Sequence[int], length: int, n: int, query_tokens: set[int],
               rng: np.random.Generator) -> list[list[int]]:
    """Up to ``n`` distinct body spans of ``length`` tokens (the whole body if shorter), those
    sharing a token with the query first, each group in random order."""
    size = min(length, len(body))
    if size == 0:
        return []
    starts = rng.permutation(len(body) - size + 1)
    spans = [list(body[i: i + size]) for i in starts]
    matching = [sp for sp in spans if query_tokens & set(sp)]
    return (matching + [sp for sp in spans if not query_tokens & set(sp)])[:n]
