"""The seq2seq backbone shared by every generative system (DSI, DSI-QG, GENRE, MINDER, PEARL).

One class, :class:`Seq2Seq`, wraps a Hugging Face encoder-decoder and its tokenizer, so that
Table 1 compares identifiers and training objectives, not models. The backbone is a config
value (``backbone``):

* ``bart-small`` (the offline default): a BART (d_model 256, 3+3 layers) trained from scratch,
  with a word-level WordPiece vocabulary (character fallback) counted on the training side of
  the dataset (sticker texts and training queries only). Chosen by measurement against ``minilm-bert2bert``, see
  ``docs/generative.md``.
* ``minilm-bert2bert``: an encoder-decoder warm-started from the offline all-MiniLM-L6-v2
  (both halves; the decoder's cross-attention starts random), with MiniLM's tokenizer.
* anything else: a hub id or local path loaded with ``AutoModelForSeq2SeqLM`` and
  ``AutoTokenizer`` (``facebook/bart-large`` gives the paper's setup).

Identifier tokens (docids, view or property prefixes) are added to the vocabulary. Training
(:meth:`Seq2Seq.train`) checkpoints to disk and resumes bit for bit after an interruption.
Decoding is Hugging Face ``generate`` with the shared :class:`ConstrainedLogitsProcessor`.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from benchmark.io import atomic_open
from systems import distributed
from systems.constrained import ConstrainedLogitsProcessor, Constraint
from systems.encoders import resolve_model, set_threads
from systems.optim import adamw_schedule

BUILTIN_BACKBONES = ("bart-small", "minilm-bert2bert")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

Example = tuple[str, tuple[int, ...]]
"""A training pair: the source text and the target token ids (without end-of-sequence)."""


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Backbone, training budget and decoding settings shared by the generative systems.

    The training budget is ``epochs`` passes over the system's examples, capped at
    ``max_steps`` optimizer steps (the CPU budget; the run metadata says which bound hit).
    The recipe (AdamW at ``lr`` 3e-4, 200 warm-up steps, 2400 steps) is the one under which a
    backbone trained from scratch learns to read the query for code identifiers (DSI, PEARL):
    at lr 1e-3 and 600 steps their decoders predicted the same codes for every query
    (``docs/pearl.md``). Decoding follows the PEARL paper's setup: beam 10, 15 new tokens
    (systems raise the beam to ``k`` to return ``k`` stickers, and the step limit to their
    longest identifier).
    """

    backbone: str = "bart-small"
    d_model: int = 256
    layers: int = 3
    vocab_size: int = 8000
    max_source_length: int = 40
    batch_size: int = 64
    lr: float = 3e-4
    warmup: int = 200
    epochs: float = 3.0
    max_steps: int = 2400
    beams: int = 10
    max_new_tokens: int = 15
    threads: int = 0
    checkpoint_every: int = 100


def train_steps(config: Seq2SeqConfig, n_examples: int) -> int:
    """Optimizer steps for ``n_examples``: ``epochs`` passes, capped at ``max_steps``."""
    wanted = math.ceil(config.epochs * n_examples / config.batch_size)
    return max(1, min(config.max_steps, wanted))


def warmup_steps(config: Seq2SeqConfig, steps: int) -> int:
    """Linear warm-up length: ``warmup`` steps, at most a tenth of a run of ``steps``."""
    return min(config.warmup, steps // 10)


def _wordpiece(texts: Sequence[str], vocab_size: int):
    """A lower-cased WordPiece tokenizer over ``texts``: the most frequent words (ties by word)
    plus every character seen, as a word start and as a ``##`` continuation, so that unseen
    words fall back to pieces. Built by counting, not by the ``tokenizers`` trainer, whose
    merges are not deterministic from run to run. CJK characters are words of their own.
    """
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    normalizer, splitter = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = Counter(w for text in texts for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in counts for c in w})
    alphabet = [*chars, *(f"##{c}" for c in chars)]
    room = max(0, vocab_size - len(SPECIAL_TOKENS) - len(alphabet))
    words = [w for w, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if len(w) > 1][:room]
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *alphabet, *words])}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer, tokenizer.decoder = normalizer, splitter, decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _bart_small(tokenizer, config: Seq2SeqConfig):
    from transformers import BartConfig, BartForConditionalGeneration

    d = config.d_model
    return BartForConditionalGeneration(BartConfig(
        vocab_size=len(tokenizer), d_model=d, encoder_layers=config.layers, decoder_layers=config.layers,
        encoder_attention_heads=max(1, d // 64), decoder_attention_heads=max(1, d // 64),
        encoder_ffn_dim=4 * d, decoder_ffn_dim=4 * d, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.cls_token_id,
        forced_bos_token_id=None, forced_eos_token_id=None))


def _bert2bert(path: str, tokenizer):
    from transformers import EncoderDecoderModel

    model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)
    model.encoder.resize_token_embeddings(len(tokenizer))
    model.decoder.resize_token_embeddings(len(tokenizer))
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    return model


def _quiet() -> None:
    """Silence transformers' per-file progress bars (save/load of a small model)."""
    from transformers.utils import logging

    logging.disable_progress_bar()


class Seq2Seq:
    """A seq2seq model, its tokenizer, and the special token ids the systems need.

    Build one with :meth:`create` (new) or :meth:`load` (saved by :meth:`save`).
    """

    def __init__(self, model, tokenizer, kind: str):
        self.model, self.tokenizer, self.kind = model.eval(), tokenizer, kind
        self.pad = int(tokenizer.pad_token_id)
        self.eos = int(model.config.eos_token_id if model.config.eos_token_id is not None else tokenizer.sep_token_id)
        self.start = int(model.config.decoder_start_token_id)

    # ------------------------------------------------------------------ building and saving

    @classmethod
    def create(cls, config: Seq2SeqConfig, corpus: Sequence[str], new_tokens: Sequence[str] = (),
               seed: int = 0) -> "Seq2Seq":
        """A fresh backbone whose vocabulary also holds ``new_tokens`` (identifier tokens).

        Args:
            corpus: texts the WordPiece vocabulary of ``bart-small`` is trained on (ignored by
                pretrained backbones, which keep their tokenizer).
        """
        _quiet()
        torch.manual_seed(seed)
        if config.backbone == "bart-small":
            tokenizer = _wordpiece(corpus, config.vocab_size)
            tokenizer.add_tokens(list(new_tokens), special_tokens=True)
            return cls(_bart_small(tokenizer, config), tokenizer, "bart-small")
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        path = resolve_model("all-MiniLM-L6-v2" if config.backbone == "minilm-bert2bert" else config.backbone)
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.add_tokens(list(new_tokens), special_tokens=True)
        if config.backbone == "minilm-bert2bert":
            return cls(_bert2bert(path, tokenizer), tokenizer, "encoder-decoder")
        model = AutoModelForSeq2SeqLM.from_pretrained(path)
        model.resize_token_embeddings(len(tokenizer))
        return cls(model, tokenizer, "auto")

    def save(self, folder: Path) -> None:
        """Write the model and tokenizer to ``folder``."""
        _quiet()
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        (folder / "backbone.json").write_text(json.dumps({"kind": self.kind}))

    @classmethod
    def load(cls, folder: Path) -> "Seq2Seq":
        """Restore a backbone written by :meth:`save`."""
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, EncoderDecoderModel

        _quiet()
        kind = json.loads((folder / "backbone.json").read_text())["kind"]
        loader = EncoderDecoderModel if kind == "encoder-decoder" else AutoModelForSeq2SeqLM
        return cls(loader.from_pretrained(folder), AutoTokenizer.from_pretrained(folder), kind)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ------------------------------------------------------------------ tokens

    def token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def token_id(self, token: str) -> int:
        """The id of one vocabulary token (e.g. an identifier token)."""
        return int(self.tokenizer.convert_tokens_to_ids(token))

    def _sources(self, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                             return_tensors="pt", return_token_type_ids=False)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def _targets(self, targets: Sequence[Sequence[int]]) -> torch.Tensor:
        width = max(len(t) for t in targets) + 1
        labels = torch.full((len(targets), width), -100, dtype=torch.long)
        for i, t in enumerate(targets):
            labels[i, : len(t) + 1] = torch.tensor([*t, self.eos])
        return labels

    # ------------------------------------------------------------------ training

    def train(self, examples: Sequence[Example], config: Seq2SeqConfig, checkpoints: Path, seed: int = 0,
              desc: str = "train", progress: bool = True, weights: Sequence[float] | None = None,
              given: int = 0, frozen: Sequence[int] = ()) -> dict:
        """Minimize the target NLL of ``examples`` for :func:`train_steps` steps.

        The loss of a batch is the token NLL averaged over its target tokens; with ``weights``,
        each example's token NLLs are multiplied by its weight first (PEARL's Eq. 14).

        AdamW with linear warm-up (:func:`warmup_steps`) and decay, gradient clipping at 1.0. Every
        ``checkpoint_every`` steps, and at the end, the model, optimizer, schedule and random
        states are saved (atomically) to ``checkpoints/<desc>.pt``; a later call with the same
        arguments resumes from there (or, if training had finished, just restores the weights)
        and ends with the same weights as an uninterrupted run. Under ``torchrun`` each rank
        trains on its slice of every batch through ``DistributedDataParallel``
        (:mod:`systems.distributed`) and rank 0 alone writes checkpoints.

        Args:
            weights: one loss weight per example (default 1).
            given: the first ``given`` target tokens of every example are decoder inputs that
                are not predicted (PEARL's property prefix ``w_p``).
            frozen: token ids whose embedding rows stay as they are (PEARL's user-group
                embeddings): restored after every optimizer step, so weight decay cannot move
                them either.

        Returns:
            Training notes: steps, examples, epochs covered, first/last losses, seconds.
        """
        set_threads(config.threads or None)
        steps = train_steps(config, len(examples))
        batches = _batch_order(len(examples), steps, config.batch_size, seed)
        optimizer, schedule = adamw_schedule(self.model.parameters(), config.lr, steps, warmup_steps(config, steps))
        path = checkpoints / f"{desc.replace(' ', '-')}.pt"
        step, losses = 0, []
        torch.manual_seed(seed)
        if path.exists():
            state = torch.load(path, weights_only=False)
            self.model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            torch.set_rng_state(state["rng"])
            step, losses = state["step"], state["losses"]
        table = self.model.get_input_embeddings().weight
        rows = torch.tensor(sorted(set(frozen)), dtype=torch.long)
        kept = table.detach()[rows].clone()
        net = distributed.wrap(self.model)
        start = time.perf_counter()
        self.model.train()
        bar = tqdm(total=steps, initial=step, desc=desc, unit="step", disable=not progress, leave=False)
        while step < steps:
            batch = distributed.shard(batches[step])
            chunk = [examples[i] for i in batch]
            chunk_weights = None if weights is None else torch.tensor([weights[i] for i in batch])
            losses.append(self._train_step(net, chunk, chunk_weights, given, config, optimizer, schedule))
            if len(rows):
                with torch.no_grad():
                    table[rows] = kept
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if (step % config.checkpoint_every == 0 or step == steps) and distributed.is_main():
                with atomic_open(path, "wb") as f:
                    torch.save({"model": self.model.state_dict(), "optimizer": optimizer.state_dict(),
                                "schedule": schedule.state_dict(), "rng": torch.get_rng_state(),
                                "step": step, "losses": losses}, f)
        bar.close()
        self.model.eval()
        return {"steps": steps, "examples": len(examples),
                "epochs": round(steps * config.batch_size / max(1, len(examples)), 3),
                "capped_by_max_steps": steps == config.max_steps,
                "loss_first_20": round(float(np.mean(losses[:20])), 4),
                "loss_last_20": round(float(np.mean(losses[-20:])), 4),
                "train_s": round(time.perf_counter() - start, 2)}

    def _train_step(self, net: torch.nn.Module, chunk: Sequence[Example], weights: torch.Tensor | None,
                    given: int, config: Seq2SeqConfig, optimizer, schedule) -> float:
        """One optimizer step on ``chunk`` through ``net`` (the model, or its DDP wrapper)."""
        inputs = self._sources([s for s, _ in chunk], config.max_source_length)
        labels = self._targets([t for _, t in chunk])
        if weights is None and not given:
            loss = net(**inputs, labels=labels).loss
        else:
            loss = self._weighted_loss(net, inputs, labels, weights, given)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        return float(loss.item())

    def _weighted_loss(self, net: torch.nn.Module, inputs: dict, labels: torch.Tensor,
                       weights: torch.Tensor | None, given: int) -> torch.Tensor:
        """Token NLL of ``labels`` (minus the first ``given`` tokens), each example's tokens
        multiplied by its weight, averaged over the scored tokens."""
        decoder = torch.cat([torch.full((len(labels), 1), self.start), labels[:, :-1]], dim=1)
        decoder = decoder.masked_fill(decoder == -100, self.pad)
        labels = labels.clone()
        labels[:, :given] = -100
        logits = net(**inputs, decoder_input_ids=decoder).logits
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
        if weights is not None:
            nll = nll * weights[:, None]
        return nll.sum() / (labels != -100).sum().clamp(min=1)

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def generate(self, sources: Sequence[str], constraint: Constraint, prefix: Sequence[int] = (),
                 num_beams: int = 10, max_new_tokens: int = 15, max_source_length: int = 40,
                 record: bool = False, forced: Sequence[Sequence[int]] | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor, ConstrainedLogitsProcessor]:
        """Constrained beam search: ``num_beams`` hypotheses per source, scored by their summed
        token log-probabilities (length penalty 0).

        Args:
            prefix: decoder tokens forced after the start token for every source (a view
                token); the constraint's identifiers start after them.
            record: keep every partial hypothesis in the processor (MINDER's keys).
            forced: per source, decoder tokens forced after ``prefix`` that begin that source's
                identifiers in the constraint (all of one length). PEARL forces each row's
                property token ``w_p`` into one trie of ``w_p`` + code identifiers, so that one
                call decodes every property of a query.

        Returns:
            (sequences, scores, processor): ``num_beams`` rows per source, best first.

        Raises:
            ValueError: ``num_beams`` below 2 (Hugging Face then decodes greedily, without
                sequence scores), or ``forced`` not one row per source.
        """
        if num_beams < 2:
            raise ValueError(f"constrained decoding needs a beam of at least 2 (got {num_beams})")
        if forced is not None and len(forced) != len(sources):
            raise ValueError(f"forced has {len(forced)} rows for {len(sources)} sources")
        processor = ConstrainedLogitsProcessor(constraint, 1 + len(prefix), self.pad, num_beams, record)
        decoder = torch.tensor([[self.start, *prefix, *row] for row in (forced or [()] * len(sources))])
        out = self.model.generate(
            **self._sources(sources, max_source_length), decoder_input_ids=decoder,
            num_beams=num_beams, num_return_sequences=num_beams, max_new_tokens=max_new_tokens,
            do_sample=False, logits_processor=[processor], no_repeat_ngram_size=0, length_penalty=0.0,
            early_stopping=True, return_dict_in_generate=True, output_scores=True,
            pad_token_id=self.pad, eos_token_id=self.eos, decoder_start_token_id=self.start)
        return out.sequences, out.sequences_scores, processor

    @torch.no_grad()
    def sample(self, sources: Sequence[str], n: int, top_k: int = 10, max_new_tokens: int = 16,
               max_source_length: int = 40, seed: int = 0) -> list[list[str]]:
        """``n`` texts per source by top-k sampling (DSI-QG's pseudo-queries), seeded."""
        torch.manual_seed(seed)
        out = self.model.generate(
            **self._sources(sources, max_source_length), do_sample=True, top_k=top_k, top_p=1.0,
            temperature=1.0, num_beams=1, num_return_sequences=n, max_new_tokens=max_new_tokens,
            pad_token_id=self.pad, eos_token_id=self.eos, decoder_start_token_id=self.start)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [texts[i * n: (i + 1) * n] for i in range(len(sources))]

    @torch.no_grad()
    def prefix_log_probs(self, source: str, targets: Sequence[Sequence[int]], prefix: Sequence[int] = (),
                         max_source_length: int = 40) -> list[np.ndarray]:
        """Teacher forcing: for each target, log P(target[:i+1] | source) for every i.

        The encoder runs once; all targets are scored in one decoder pass.
        """
        if not targets:
            return []
        inputs = self._sources([source], max_source_length)
        encoded = self.model.get_encoder()(**inputs)
        width = 1 + len(prefix) + max(len(t) for t in targets)
        decoder = torch.full((len(targets), width), self.pad, dtype=torch.long)
        for i, t in enumerate(targets):
            decoder[i, : 1 + len(prefix) + len(t)] = torch.tensor([self.start, *prefix, *t])
        hidden = encoded.last_hidden_state.expand(len(targets), -1, -1)
        mask = inputs["attention_mask"].expand(len(targets), -1)
        logits = self.model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=decoder).logits
        logp = logits.log_softmax(-1)
        out = []
        for i, t in enumerate(targets):
            positions = torch.arange(len(prefix), len(prefix) + len(t))
            token_logp = logp[i, positions, torch.tensor(t)].numpy()
            out.append(np.cumsum(token_logp))
        return out


def _batch_order(n: int, steps: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """Example indices of every step: epochs of seeded permutations, cut into batches
    (a short final batch of an epoch is merged into the next one's start)."""
    rng = np.random.default_rng(seed)
    size = min(batch_size, n)
    order = np.concatenate([rng.permutation(n) for _ in range(math.ceil(steps * size / n) + 1)])
    return [order[i * size: (i + 1) * size] for i in range(steps)]


__all__ = ["BUILTIN_BACKBONES", "Example", "Seq2SeqConfig", "Seq2Seq", "train_steps"]
