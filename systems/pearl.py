"""PEARL (the PEARL paper, Section 3) and its six ablations (Table 2).

PEARL is a generative retriever on the shared backbone (:mod:`systems.seq2seq`) that
personalizes by user group and decodes by query intent:

1. **User-group tokens** ``w_{a,g}``: one per group (4 age bands x 2 genders) plus one for an
   unknown group, prepended to the query (Eq. 1).
2. **Personalized representation learning** (Sec. 3.3, :func:`learn_user_embeddings`): the
   group embeddings ``UE`` are trained jointly on click prediction (Eq. 5-7), intent
   prediction (Eq. 8-9) and interest prediction for the character IP and the entity
   (Eq. 10-12), with the attention of Eq. 4 over a frozen text encoder's token embeddings. They
   are learned at the backbone's embedding width (so no projection is needed), scaled once to
   the mean norm of the backbone's token embeddings, copied into its embedding table and kept
   frozen while the seq2seq model trains.
3. **Property identifiers** (Eq. 3, :func:`property_identifiers`): ``id_p = PQ(encoder(p))``
   per property with faiss (m=8 sub-spaces, k=256 codes), decoded after a prefix token ``w_p``
   under one prefix trie of all properties' ``w_p`` + code identifiers.
4. **Intent detection** (:mod:`systems.intents`): a ranking of the five properties per query,
   from an OpenAI-compatible LLM with Appendix B's prompt, or offline by default.
5. **Training** (Eq. 13-16): the indexing loss (property text -> ``w_p``, ``id_p``) plus the
   intent-aware retrieval loss (``w_{a,g}`` + query -> ``w_p``, ``id_p`` of each relevant
   sticker, weighted by ``d_p = 1/log2(rank(p)+1)``), summed in one shuffled stream.
6. **Funnel inference** (:func:`funnel_rank`): walk the query's intent ranking; at each intent,
   constrained beam search (beam 10) after that property's token retrieves the stickers
   carrying the decoded identifiers; keep only those also kept at the previous step. An
   intent's beam search does not depend on the earlier ones, so all of a query's intents are
   decoded in one batched call and the funnel walks their results.

The ablations are registered systems with one switch changed: PEARL-UE (no user token),
PEARL-click / -intent / -interest (user embedding trained by one task), PEARL-IAL (no intent
weights in the loss), PEARL-IG (no funnel: every property decoded, intents weighted equally).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from benchmark.io import stable_hash
from benchmark.paths import CHECKPOINTS, cache_dir
from benchmark.records import AGE_GROUPS, GENDERS, PROPERTIES, Query, TrainingData, User
from systems import distributed
from systems.base import BaseRetriever, Ranking, SystemCard, shared_artifact, top_k
from systems.constrained import PrefixTrie, decoded_items
from systems.encoders import DEFAULT_ENCODER, cached_encode, encode, load_encoder, set_threads
from systems.generative import BACKBONE_DEVIATION, DECODE_BATCH, _write_json, pq_docids
from systems.intents import (
    IntentTable, LLMIntentDetector, LLMSettings, OfflineIntentDetector, example_queries, intent_weights,
)
from systems.seq2seq import Example, Seq2Seq, Seq2SeqConfig

GROUPS: tuple[tuple[str, str], ...] = tuple((a, g) for a in AGE_GROUPS for g in GENDERS)
GROUP_TOKENS: tuple[str, ...] = (*(f"[G:{a}/{g}]" for a, g in GROUPS), "[G:unknown]")
"""``w_{a,g}`` for the 8 groups, then the unknown group's token."""
PROPERTY_TOKENS: dict[str, str] = {p: f"[P:{p}]" for p in PROPERTIES}
"""``w_p``: the prefix token of each property's identifier."""
TASKS: tuple[str, ...] = ("click", "intent", "interest")
PAIR_TASKS: dict[str, tuple[tuple[str, str], ...]] = {
    "click": (("click", "meaning"),), "interest": (("interest_ip", "ip"), ("interest_entity", "entity"))}
"""The click-log tasks: (head name, the sticker property the user attends over)."""
KEY_TOKENS = 16
"""Token embeddings kept per text for the attention of Eq. 4."""
INFERENCE_ONLY = ("beams", "max_new_tokens", "threads", "checkpoint_every", "intent_guided")


def group_index(user: User | None) -> int:
    """The row of ``w_{a,g}`` for a user (the last row, the unknown group, when either part is
    unknown or there is no user)."""
    if user is None or user.age_group is None or user.gender is None:
        return len(GROUPS)
    return GROUPS.index((user.age_group, user.gender))


@dataclass(frozen=True)
class PEARLConfig(Seq2SeqConfig):
    """PEARL's settings: the paper's PQ (m=8, k=256), beam 10 and 15 steps; the switches the
    ablations turn off; the representation learning budget; the intent detector.

    ``intent_detector`` is ``offline`` (no network) or ``llm`` (an OpenAI-compatible endpoint,
    ``llm_model`` at ``llm_base_url``; the key comes from the environment only, see
    :class:`systems.intents.LLMSettings`).
    """

    encoder: str = DEFAULT_ENCODER
    pq_m: int = 8
    pq_bits: int = 8
    user_embedding: bool = True
    tasks: tuple[str, ...] = TASKS
    repr_steps: int = 1000
    repr_dim: int = 64
    repr_batch: int = 256
    repr_lr: float = 1e-3
    intent_labels: int = 2
    intent_aware_loss: bool = True
    intent_guided: bool = True
    intent_detector: str = "offline"
    llm_model: str = "deepseek-chat"
    llm_base_url: str = ""
    llm_timeout: float = 20.0


# --------------------------------------------------------------------------- representation learning


class Attention(torch.nn.Module):
    """Eq. 4: ``softmax(W^q h^q . W^k h^k / sqrt(d)) W^v h^v`` of one query vector over a
    sequence of key/value vectors (padding masked)."""

    def __init__(self, d_query: int, d_key: int, d: int):
        super().__init__()
        self.q = torch.nn.Linear(d_query, d, bias=False)
        self.k = torch.nn.Linear(d_key, d, bias=False)
        self.v = torch.nn.Linear(d_key, d, bias=False)
        self.scale = d ** -0.5

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("bd,bld->bl", self.q(query), self.k(keys)) * self.scale
        alpha = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        return torch.einsum("bl,bld->bd", alpha, self.v(keys))


def _mlp(d_in: int, d: int, d_out: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(d_in, d), torch.nn.ReLU(), torch.nn.Linear(d, d_out))


class PairTask(torch.nn.Module):
    """Click (Eq. 5-7) and interest (Eq. 10-12) prediction: the query and the user embedding
    each attend over the sticker's meaning / IP / entity tokens; an MLP on both predicts a
    click."""

    def __init__(self, d_user: int, d_text: int, d: int):
        super().__init__()
        self.text, self.user, self.mlp = Attention(d_text, d_text, d), Attention(d_user, d_text, d), _mlp(2 * d, d, 1)

    def forward(self, ue: torch.Tensor, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        mask = keys.abs().sum(-1) > 0
        return self.mlp(torch.cat([self.text(query, keys, mask), self.user(ue, keys, mask)], -1)).squeeze(-1)


class IntentTask(torch.nn.Module):
    """Intent prediction (Eq. 8-9): the user embedding attends over the query's tokens; an MLP
    predicts the intended properties (multi-label)."""

    def __init__(self, d_user: int, d_text: int, d: int):
        super().__init__()
        self.user, self.mlp = Attention(d_user, d_text, d), _mlp(d, d, len(PROPERTIES))

    def forward(self, ue: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.user(ue, keys, keys.abs().sum(-1) > 0))


@dataclass
class TaskRows:
    """One task's examples: group row, query text (click/interest), key text, label(s)."""

    groups: np.ndarray
    queries: list[str]
    keys: list[str]
    labels: np.ndarray


def representation_rows(data: TrainingData, tasks: Sequence[str], intent_labels: int) -> dict[str, TaskRows]:
    """The examples of each task from the click log (click, interest in IP and entity: one row
    per impression whose sticker has that property) and the annotated training queries
    (intent: the top ``intent_labels`` intents are the positive labels)."""
    stickers = {s.id: s for s in data.stickers}
    out: dict[str, TaskRows] = {}
    wanted = [(name, prop) for task in tasks for name, prop in PAIR_TASKS.get(task, ())]
    for name, prop in wanted:
        rows = [(group_index(data.users.get(c.user_id)), c.query, getattr(stickers[c.sticker_id], prop), c.clicked)
                for c in data.clicks if getattr(stickers[c.sticker_id], prop)]
        if rows:
            g, q, k, y = zip(*rows)
            out[name] = TaskRows(np.array(g), list(q), list(k), np.array(y, dtype=np.float32))
    if "intent" in tasks:
        annotated = [q for q in data.queries if q.intents]
        if annotated:
            labels = np.array([[p in q.intents[:intent_labels] for p in PROPERTIES] for q in annotated], dtype=np.float32)
            out["intent"] = TaskRows(np.array([group_index(data.users.get(q.user_id or "")) for q in annotated]),
                                     [q.text for q in annotated], [q.text for q in annotated], labels)
    return out


class UserTasks(torch.nn.Module):
    """The user embedding layer ``UE`` shared by the task heads (Fig. 2)."""

    def __init__(self, names: Sequence[str], d_user: int, d_text: int, d: int):
        super().__init__()
        self.ue = torch.nn.Embedding(len(GROUP_TOKENS), d_user)
        self.heads = torch.nn.ModuleDict({n: IntentTask(d_user, d_text, d) if n == "intent"
                                          else PairTask(d_user, d_text, d) for n in names})

    def forward(self, name: str, groups: torch.Tensor, query: torch.Tensor | None, keys: torch.Tensor) -> torch.Tensor:
        ue = self.ue(groups)
        return self.heads[name](ue, keys) if name == "intent" else self.heads[name](ue, query, keys)


def learn_user_embeddings(data: TrainingData, config: PEARLConfig, d_user: int, seed: int, encoder,
                          progress: bool = True) -> tuple[np.ndarray | None, dict]:
    """Sec. 3.3: train ``UE`` (one row per :data:`GROUP_TOKENS`) jointly on ``config.tasks`` by
    maximum likelihood (binary cross-entropy), ``repr_steps`` steps of one batch per task; the
    attention of Eq. 4 projects to ``repr_dim`` dimensions. Under ``torchrun`` each rank takes
    its slice of every batch through ``DistributedDataParallel`` (:mod:`systems.distributed`).

    10% of each task's rows (seeded) are held out and scored: AUC and accuracy for click and
    interest, top-1 accuracy (the best-scored property is a positive label) and micro-F1 for
    intent.

    Args:
        encoder: the frozen text encoder (a sentence-transformers model named ``config.encoder``).

    Returns:
        (the embedding rows, notes), or (None, notes) when no task has data (no click log and
        no intent annotations).
    """
    rows = representation_rows(data, config.tasks, config.intent_labels)
    if not rows:
        return None, {"learned": False, "reason": "no click log and no intent annotations"}
    key_texts = sorted({t for r in rows.values() for t in r.keys})
    query_texts = sorted({t for n, r in rows.items() if n != "intent" for t in r.queries})
    keys = torch.from_numpy(cached_encode(encoder, config.encoder, key_texts, progress=progress, max_tokens=KEY_TOKENS))
    pooled = torch.from_numpy(cached_encode(encoder, config.encoder, query_texts, progress=progress))
    key_row, query_row = {t: i for i, t in enumerate(key_texts)}, {t: i for i, t in enumerate(query_texts)}
    key_index = {n: np.array([key_row[t] for t in r.keys]) for n, r in rows.items()}
    query_index = {n: np.array([query_row[t] for t in r.queries]) for n, r in rows.items() if n != "intent"}
    rng = np.random.default_rng(seed)
    split = {n: rng.permutation(len(r.labels)) for n, r in rows.items()}
    held = {n: order[: max(1, len(order) // 10)] for n, order in split.items()}
    train = {n: order[len(held[n]):] if len(order) > 1 else order for n, order in split.items()}

    def batch(name: str, idx: np.ndarray):
        r = rows[name]
        q = None if name == "intent" else pooled[query_index[name][idx]]
        return torch.from_numpy(r.groups[idx]), q, keys[key_index[name][idx]], torch.from_numpy(r.labels[idx])

    torch.manual_seed(seed)
    model = UserTasks(sorted(rows), d_user, keys.shape[-1], config.repr_dim)
    net = distributed.wrap(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.repr_lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses = []
    for _ in tqdm(range(config.repr_steps), desc="pearl user embeddings", unit="step", disable=not progress, leave=False):
        total = torch.zeros(())
        for n in sorted(rows):
            chosen = rng.choice(train[n], min(config.repr_batch, len(train[n])), replace=False)
            own = np.asarray(distributed.shard(chosen))  # under torchrun: this rank's rows, weighted so that
            share = len(own) / len(chosen) * distributed.world_size()  # DDP's average is the whole batch's mean
            g, q, k, y = batch(n, own)
            total = total + loss_fn(net(n, g, q, k), y) * share
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
    model.eval()
    scores = {}
    with torch.no_grad():
        for n in sorted(rows):
            g, q, k, y = batch(n, held[n])
            scores[n] = held_out_scores(n, model(n, g, q, k).numpy(), y.numpy())
    notes = {"learned": True, "tasks": list(config.tasks), "rows": {n: len(r.labels) for n, r in rows.items()},
             "held_out": scores, "steps": config.repr_steps,
             "loss_first_20": round(float(np.mean(losses[:20])), 4), "loss_last_20": round(float(np.mean(losses[-20:])), 4)}
    return model.ue.weight.detach().numpy().copy(), notes


def held_out_scores(task: str, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Click/interest: ROC AUC and accuracy at probability 0.5; intent: top-1 accuracy (the
    best-scored property is a positive label) and micro-F1 at 0.5."""
    from sklearn.metrics import f1_score, roc_auc_score

    if task == "intent":
        top1 = labels[np.arange(len(labels)), logits.argmax(1)].mean()
        return {"top1_accuracy": round(float(top1), 4),
                "micro_f1": round(float(f1_score(labels, logits > 0, average="micro", zero_division=0)), 4)}
    auc = roc_auc_score(labels, logits) if 0 < labels.sum() < len(labels) else float("nan")
    return {"auc": round(float(auc), 4), "accuracy": round(float(((logits > 0) == labels).mean()), 4)}


# --------------------------------------------------------------------------- property identifiers


def property_texts(data: TrainingData) -> tuple[dict[str, dict[str, str]], bool]:
    """Each sticker's non-empty property texts; a sticker with none (StickerQueries) gets its
    document (its labelled training queries) as its meaning.

    Returns:
        (sticker id -> property -> text, whether any document stood in for a meaning).
    """
    documents = None
    out: dict[str, dict[str, str]] = {}
    for s in data.stickers:
        props = s.properties()
        if not props:
            documents = documents or data.sticker_documents()
            props = {"meaning": documents[s.id]} if documents[s.id] else {}
        out[s.id] = props
    stand_in = documents is not None
    return out, stand_in


def property_identifiers(texts: Mapping[str, Mapping[str, str]], vectors_of: Callable[[str, list[str]], np.ndarray],
                         m: int, bits: int) -> tuple[dict[str, dict[str, tuple[int, ...]]], dict]:
    """Eq. 3: ``id_p = PQ(encoder(p))``, one product quantizer per property over its distinct
    values (``m`` codes of up to ``bits`` bits; fewer bits when a property has too few values).

    Args:
        vectors_of: ``(property, its sorted distinct values) -> the encoder's vectors`` of them.

    Returns:
        (property -> value -> codes, notes: values, bits and values sharing an identifier).
    """
    out: dict[str, dict[str, tuple[int, ...]]] = {}
    notes: dict[str, dict] = {}
    for p in PROPERTIES:
        values = sorted({t[p] for t in texts.values() if p in t})
        if not values:
            continue
        codes, used = pq_docids(vectors_of(p, values), m, bits)
        out[p] = {v: tuple(int(c) for c in row) for v, row in zip(values, codes)}
        notes[p] = {"values": len(values), "bits": used,
                    "values_sharing_an_identifier": len(values) - len(set(out[p].values()))}
    return out, notes


def code_tokens(m: int, bits: int) -> list[str]:
    """Identifier tokens: one per (position, code), shared by the properties (``w_p`` tells
    them apart)."""
    return [f"[Q{j}_{c}]" for j in range(m) for c in range(2 ** bits)]


# --------------------------------------------------------------------------- training data


def pearl_examples(data: TrainingData, texts: Mapping[str, Mapping[str, str]],
                   identifiers: Mapping[str, Mapping[str, tuple[int, ...]]], rankings: Mapping[str, Sequence[str]],
                   model: Seq2Seq, user_embedding: bool, intent_aware: bool) -> tuple[list[Example], list[float]]:
    """The examples of Eq. 13-16 with their loss weights; every target starts with ``w_p``.

    * Indexing (Eq. 13): each distinct property value -> ``w_p, id_p``, weight 1 (stickers
      sharing a value share its identifier, so one example per value).
    * Retrieval (Eq. 14): for each labelled (user, query, sticker) and each property ``p`` of
      the query's intent ranking that the sticker has: ``w_{a,g} query -> w_p, id_p``, weight
      ``d_p = 1/log2(rank(p)+1)`` (1 without ``intent_aware``; no ``w_{a,g}`` without
      ``user_embedding``).

    Args:
        rankings: qid -> intent ranking of every training query.
    """
    prefix = {p: model.token_id(t) for p, t in PROPERTY_TOKENS.items()}
    token = {p: {v: tuple(model.token_id(f"[Q{j}_{c}]") for j, c in enumerate(codes)) for v, codes in ids.items()}
             for p, ids in identifiers.items()}
    examples: list[Example] = []
    weights: list[float] = []
    for p in sorted(token):
        for value, ids in token[p].items():
            examples.append((value, (prefix[p], *ids)))
            weights.append(1.0)
    for q in sorted(data.queries, key=lambda q: q.qid):
        source = f"{GROUP_TOKENS[group_index(data.users.get(q.user_id or ''))]} {q.text}" if user_embedding else q.text
        decay = intent_weights(rankings[q.qid])
        for sid, rel in sorted(data.qrels.get(q.qid, {}).items()):
            if rel <= 0:
                continue
            for p in rankings[q.qid]:
                if p in texts[sid] and p in token:
                    examples.append((source, (prefix[p], *token[p][texts[sid][p]])))
                    weights.append(decay[p] if intent_aware else 1.0)
    return examples, weights


# --------------------------------------------------------------------------- inference


def funnel_rank(retrieved: Sequence[Mapping[str, float]], weights: Sequence[float], k: int,
                guided: bool = True) -> Ranking:
    """PEARL's funnel (Sec. 3.4, "Model inference") over the stickers each intent retrieved.

    Args:
        retrieved: for the i-th intent of the ranking, sticker -> log-probability of the
            decoded identifier that retrieved it.
        weights: the intents' weights ``d_p`` (Eq. 15), in the same order.
        guided: False for PEARL-IG: no funnel, every retrieved sticker on an equal footing.

    The funnel keeps ``S_i = S_{i-1} & retrieved[i]``; when that intersection is empty the
    intent is skipped (``S_i = S_{i-1}``), starting from all stickers. A sticker's depth is the
    last step it survived. The ranking puts deeper stickers first, so the final funnel set
    comes first, then the stickers dropped at the last step, and so on (this fills the list up
    to ``k``); within a depth, stickers are ranked by ``sum_i weights[i] * P_i(sticker)`` over
    the intents that retrieved them, ties by sticker id. The returned score is ``depth +
    that sum / (1 + sum(weights))``, so it orders the list exactly.
    """
    survivors: set[str] | None = None
    depth: dict[str, int] = {}
    for found in retrieved if guided else ():
        narrowed = set(found) if survivors is None else survivors & set(found)
        if narrowed:
            survivors = narrowed
        for sid in survivors or ():
            depth[sid] = depth.get(sid, 0) + 1
    total = 1.0 + sum(weights)
    score: dict[str, float] = {}
    for found, w in zip(retrieved, weights):
        for sid, logp in found.items():
            score[sid] = score.get(sid, 0.0) + w * float(np.exp(logp))
    return top_k(((sid, round(depth.get(sid, 0) + s / total, 6)) for sid, s in score.items()), k)


# --------------------------------------------------------------------------- the systems

PEARL_DEVIATIONS = (
    BACKBONE_DEVIATION,
    "text encoder for representation learning and property identifiers: the offline all-MiniLM-L6-v2 "
    "(the paper: bert-base-chinese; set encoder=<hub id or path>)",
    "intent detection: an offline detector trained on the training queries' intent annotations "
    "(set intent_detector=llm for the paper's deepseek-chat CoT prompt); its rankings are used for "
    "test queries, the annotations for training queries",
    "indexing loss over distinct property values (stickers sharing a value share its identifier)",
    "identifier code tokens are shared by the properties (the prefix token w_p tells them apart)",
    "intent prediction labels: the top intent_labels (2) intents of the annotated ranking",
    "user embeddings learned at the backbone's width and scaled once to its mean token-embedding norm",
)


class PEARL(BaseRetriever):
    """PEARL: personalized generative retrieval with user-group tokens, property identifiers,
    an intent-aware loss and funnel decoding (see the module docstring).

    Deviations from the paper (:data:`PEARL_DEVIATIONS`, also in the card and every run's
    metadata): the shared backbone is trained from scratch at a CPU budget; the frozen encoder is
    the offline MiniLM, not bert-base-chinese; intents come from an offline detector unless
    ``intent_detector=llm``; indexing is over distinct property values; code tokens are shared
    by the properties; intent labels are the top two intents; the user embeddings are learned at
    the backbone's width and rescaled once.
    """

    card = SystemCard(
        name="pearl", label="PEARL", family="Generative", baseline=False,
        paper="A Generative Framework for Personalized Sticker Retrieval (the PEARL paper, anonymous ACL submission)",
        deviations=PEARL_DEVIATIONS,
    )
    Config = PEARLConfig

    # ------------------------------------------------------------------ fit

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        fit_config = {k: v for k, v in asdict(self.config).items() if k not in INFERENCE_ONLY}
        key = {"pearl": fit_config, "dataset": data.fingerprint, "seed": self.seed}
        folder = shared_artifact("pearl", key, lambda f: self._build(data, f))
        shutil.copytree(folder, artifacts, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))

    def _build(self, data: TrainingData, folder: Path) -> None:
        cfg = self.config
        texts, stand_in = property_texts(data)
        properties = [p for p in PROPERTIES if any(p in t for t in texts.values())]
        identifiers, id_notes = property_identifiers(
            texts, lambda p, values: cached_encode(self.encoder, cfg.encoder, values, progress=True),
            cfg.pq_m, cfg.pq_bits)
        # the training queries' encodings are cached: the six ablations detect intents on the same texts
        detector = OfflineIntentDetector(lambda batch: cached_encode(self.encoder, cfg.encoder, batch))
        detector_notes = detector.fit(data, properties)
        predicted = dict(zip([q.qid for q in data.queries], detector.rank([q.text for q in data.queries])))
        rankings = {q.qid: tuple(p for p in q.intents if p in properties) or predicted[q.qid] for q in data.queries}
        corpus = [*(t for v in texts.values() for t in v.values()), *(q.text for q in data.queries)]
        new_tokens = [*GROUP_TOKENS, *PROPERTY_TOKENS.values(), *code_tokens(cfg.pq_m, cfg.pq_bits)]
        model = Seq2Seq.create(cfg, corpus, new_tokens, self.seed)
        frozen, repr_notes = self._user_embeddings(data, model)
        examples, weights = pearl_examples(data, texts, identifiers, rankings, model, cfg.user_embedding,
                                           cfg.intent_aware_loss)
        notes = model.train(examples, cfg, folder / CHECKPOINTS, self.seed, desc="pearl train",
                            weights=weights, given=1, frozen=frozen)
        model.save(folder / "model")
        _write_json(folder / "identifiers.json", {"texts": texts, "identifiers": identifiers})
        _write_json(folder / "detector.json", {"state": detector.state(), "examples": example_queries(data),
                                               "properties": properties})
        _write_json(folder / "training.json", {
            **notes, "parameters": model.n_parameters(), "properties": properties,
            "meaning_stands_in_for_missing_properties": stand_in, "identifiers": id_notes,
            "intent_detector": detector_notes,
            "training_rankings": {"annotated": sum(bool(q.intents) for q in data.queries),
                                  "predicted": sum(not q.intents for q in data.queries)},
            "representation": repr_notes})

    def _user_embeddings(self, data: TrainingData, model: Seq2Seq) -> tuple[list[int], dict | None]:
        """Learn ``UE`` (shared cache per tasks and settings), write it into the backbone's
        embedding table, and return the token ids to keep frozen with the notes."""
        cfg = self.config
        if not cfg.user_embedding:
            return [], None
        table = model.model.get_input_embeddings().weight
        fields = ("encoder", "tasks", "repr_steps", "repr_dim", "repr_batch", "repr_lr", "intent_labels")
        key = {"config": {f: getattr(cfg, f) for f in fields}, "width": table.shape[1],
               "dataset": data.fingerprint, "seed": self.seed}

        def build(folder: Path) -> None:
            rows, notes = learn_user_embeddings(data, cfg, table.shape[1], self.seed, self.encoder)
            if rows is not None:
                np.save(folder / "ue.npy", rows)
            _write_json(folder / "notes.json", notes)

        folder = shared_artifact("user-embeddings", key, build)
        notes = json.loads((folder / "notes.json").read_text())
        if not (folder / "ue.npy").exists():
            return [], notes
        rows = torch.from_numpy(np.load(folder / "ue.npy"))
        ids = [model.token_id(t) for t in GROUP_TOKENS]
        others = torch.ones(len(table), dtype=torch.bool)
        others[ids] = False
        scale = table.detach()[others].norm(dim=1).mean() / rows.norm(dim=1).mean()
        with torch.no_grad():
            table[ids] = rows * scale
        return ids, {**notes, "scale": round(float(scale), 6)}

    @cached_property
    def encoder(self):
        """The frozen text encoder, loaded once, on first use (identifiers, user embeddings and
        the intent detector share it)."""
        return load_encoder(self.config.encoder)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return encode(self.encoder, texts)

    # ------------------------------------------------------------------ load and search

    def load(self, artifacts: Path) -> None:
        cfg = self.config
        set_threads(cfg.threads or None)
        self.model = Seq2Seq.load(artifacts / "model")
        saved = json.loads((artifacts / "identifiers.json").read_text())
        detector = json.loads((artifacts / "detector.json").read_text())
        self.properties = detector["properties"]
        self.prefix = {p: self.model.token_id(PROPERTY_TOKENS[p]) for p in self.properties}
        identifiers, self.owners = [], []
        for p in self.properties:
            values = sorted(saved["identifiers"][p])
            identifiers += [[self.prefix[p], *(self.model.token_id(f"[Q{j}_{c}]")
                                               for j, c in enumerate(saved["identifiers"][p][v]))] for v in values]
            by_value: dict[str, list[str]] = {}
            for sid, t in sorted(saved["texts"].items()):
                if p in t:
                    by_value.setdefault(t[p], []).append(sid)
            self.owners += [by_value[v] for v in values]
        self.trie = PrefixTrie(identifiers, self.model.eos)
        offline = OfflineIntentDetector.from_state(detector["state"], self._encode)
        self.detector = offline
        if cfg.intent_detector == "llm":
            settings = LLMSettings(model=cfg.llm_model, base_url=cfg.llm_base_url, timeout=cfg.llm_timeout)
            table = IntentTable(cache_dir() / "shared" / "intent-table" / f"{stable_hash(asdict(settings))}.json")
            self.detector = LLMIntentDetector(settings, detector["examples"], table, offline, self.properties)
        elif cfg.intent_detector != "offline":
            raise ValueError(f"unknown intent_detector {cfg.intent_detector!r} (offline, llm)")
        training = json.loads((artifacts / "training.json").read_text())
        self._notes.update({**training, "intents": {}})

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        cfg = self.config
        rankings = self.detector.rank([q.text for q in queries])
        self._notes["intents"].update({q.qid: list(r) for q, r in zip(queries, rankings)})
        if isinstance(self.detector, LLMIntentDetector):
            self._notes["llm_intent_stats"] = dict(self.detector.stats)
        order = [tuple(r) if cfg.intent_guided else tuple(self.properties) for r in rankings]
        sources = [f"{GROUP_TOKENS[group_index(q.user)]} {q.text}" if cfg.user_embedding else q.text for q in queries]
        pairs = [(i, p) for i, o in enumerate(order) for p in o]  # every intent of every query, decoded at once
        found: dict[tuple[int, str], dict[str, float]] = {}
        for start in range(0, len(pairs), DECODE_BATCH):
            batch = pairs[start: start + DECODE_BATCH]
            found.update(zip(batch, self._decode([sources[i] for i, _ in batch], [p for _, p in batch])))
        retrieved = [[found[i, p] for p in o] for i, o in enumerate(order)]
        weights = [list(intent_weights(o).values()) if cfg.intent_guided else [1.0] * len(o) for o in order]
        return [funnel_rank(r, w, k, cfg.intent_guided) for r, w in zip(retrieved, weights)]

    def _decode(self, sources: Sequence[str], properties: Sequence[str]) -> list[dict[str, float]]:
        """Constrained beam search after each source's property token ``w_p``, in the trie of
        all properties' identifiers (so one call decodes several properties): per source,
        sticker -> log-probability of the best identifier that retrieved it."""
        beams = self.config.beams
        sequences, scores, _ = self.model.generate(sources, self.trie, forced=[(self.prefix[p],) for p in properties],
                                                   num_beams=beams, max_new_tokens=self.config.max_new_tokens,
                                                   max_source_length=self.config.max_source_length)
        out = []
        for i in range(len(sources)):
            rows = slice(i * beams, (i + 1) * beams)
            found: dict[str, float] = {}
            for items, score in decoded_items(self.trie, sequences[rows], scores[rows], 1, self.model.pad):
                for item in items:
                    for sid in self.owners[item]:
                        found.setdefault(sid, score)
            out.append(found)
        return out


# --------------------------------------------------------------------------- ablations (Table 2)


def _ablation(attribute: str, name: str, label: str, what: str, **changes) -> type:
    """A registered PEARL variant, bound to this module as ``attribute``: its own card (family
    "Ablation", shown in Table 2) and a config (``<attribute>Config``, bound too) whose defaults
    differ from PEARL's by ``changes``. Both are module attributes so that they pickle (Table 3
    serves each system in a fresh process)."""
    config = dataclass(frozen=True)(type(f"{attribute}Config", (PEARLConfig,),
                                         {"__annotations__": {k: type(v) for k, v in changes.items()}, **changes,
                                          "__doc__": f"{label}: {what}."}))
    card = replace(PEARL.card, name=name, label=label, family="Ablation",
                   deviations=(f"ablation: {what}", *PEARL.card.deviations))
    system = type(attribute, (PEARL,), {"card": card, "Config": config,
                                        "__doc__": f"{label} (Table 2): PEARL with {what}."})
    globals().update({attribute: system, config.__name__: config})
    return system


PEARLUE = _ablation("PEARLUE", "pearl-ue", "PEARL-UE", "no user embedding (no user-group token)", user_embedding=False)
PEARLClick = _ablation("PEARLClick", "pearl-click", "PEARL-click", "the user embedding trained by click prediction only",
                       tasks=("click",))
PEARLIntent = _ablation("PEARLIntent", "pearl-intent", "PEARL-intent",
                        "the user embedding trained by intent prediction only", tasks=("intent",))
PEARLInterest = _ablation("PEARLInterest", "pearl-interest", "PEARL-interest",
                          "the user embedding trained by interest prediction (IP and entity) only", tasks=("interest",))
PEARLIAL = _ablation("PEARLIAL", "pearl-ial", "PEARL-IAL", "no intent-aware weights in the retrieval loss (d_p = 1)",
                     intent_aware_loss=False)
PEARLIG = _ablation("PEARLIG", "pearl-ig", "PEARL-IG", "no intent-guided funnel: every property decoded, intents equal",
                    intent_guided=False)
ABLATIONS: tuple[type, ...] = (PEARLUE, PEARLClick, PEARLIntent, PEARLInterest, PEARLIAL, PEARLIG)
