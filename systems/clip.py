"""CLIP, shared by the cross-modal systems (CN-CLIP, StickerCLIP, PerSRV).

One wrapper, :class:`CLIP`, holds an open_clip model, its tokenizer and its image transform.
The model is a config value (:attr:`CLIPConfig.model`):

* ``sticker-clip-small`` (the offline default): a small open_clip CLIP (a ViT image tower on
  64x64 pictures, a text transformer over CLIP's own BPE vocabulary, both ``layers`` deep and
  ``width`` wide) **pre-trained here**, once per dataset and seed, on every sticker's picture
  paired with a generic caption of what it shows (:func:`caption`). It stands in for a
  general-domain CLIP, which cannot be downloaded on this machine. The captions never contain
  a search query or the sticker's meaning, so the model learns what pictures show, not how
  users ask for them.
* any other value: an open_clip architecture name loaded with ``pretrained`` (a tag or a
  checkpoint path, e.g. a CN-CLIP checkpoint converted to open_clip), or ``hf-hub:<id>``. It
  is used as it is, without the pre-training above.

Training (:func:`contrastive_train`) is CLIP's symmetric InfoNCE (open_clip's ``ClipLoss``)
over batches in which no text and no sticker appears twice, so that no positive is counted as
a negative.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from benchmark.io import atomic_open
from benchmark.records import Sticker, TrainingData
from systems import distributed
from systems.base import NotApplicable, shared_artifact
from systems.encoders import set_threads
from systems.optim import adamw_schedule

DEFAULT_CLIP = "sticker-clip-small"
ENCODE_BATCH = 256


@dataclass(frozen=True)
class CLIPConfig:
    """The CLIP model and, for ``sticker-clip-small``, its architecture and pre-training.

    The pre-training budget is ``pretrain_epochs`` passes over the stickers' pictures.
    """

    model: str = DEFAULT_CLIP
    pretrained: str = ""
    image_size: int = 64
    patch_size: int = 16
    width: int = 128
    layers: int = 3
    embed_dim: int = 128
    context_length: int = 24
    pretrain_epochs: float = 5.0
    batch_size: int = 128
    lr: float = 5e-4
    warmup: int = 100
    threads: int = 0


def caption(sticker: Sticker) -> str:
    """A generic caption of what a sticker's picture shows: its style, its character, the
    object it holds and the text printed on it (``a pastel pixel art sticker of doraemon with
    a cup saying "good morning"``). Never the meaning, which a picture does not show."""
    text = f"a {sticker.style or 'plain'} sticker"
    if sticker.ip:
        text += f" of {sticker.ip}"
    if sticker.entity:
        text += f" with a {sticker.entity}"
    if sticker.ocr:
        text += f' saying "{sticker.ocr}"'
    return text


def require_images(data: TrainingData):
    """The dataset's sticker images, or :class:`NotApplicable` if it has none."""
    if data.images is None:
        raise NotApplicable(f"{data.name} has no sticker images")
    return data.images


class CLIP:
    """An open_clip model on the CPU with its tokenizer and image transform."""

    def __init__(self, model, tokenizer, transform):
        self.model, self.tokenizer, self.transform = model.eval(), tokenizer, transform

    @classmethod
    def create(cls, config: CLIPConfig, seed: int = 0) -> "CLIP":
        """A fresh ``sticker-clip-small`` initialised from ``seed``, or the configured open_clip
        model with its weights."""
        import open_clip
        import torch

        torch.manual_seed(seed)
        if config.model != DEFAULT_CLIP:
            model, _, transform = open_clip.create_model_and_transforms(config.model, pretrained=config.pretrained or None)
            return cls(model, open_clip.get_tokenizer(config.model), transform)
        from open_clip.model import CLIPTextCfg, CLIPVisionCfg

        heads = max(1, config.width // 64)
        model = open_clip.CLIP(
            embed_dim=config.embed_dim,
            vision_cfg=CLIPVisionCfg(layers=config.layers, width=config.width, head_width=64,
                                     patch_size=config.patch_size, image_size=config.image_size),
            text_cfg=CLIPTextCfg(context_length=config.context_length, width=config.width, heads=heads,
                                 layers=config.layers))
        tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=config.context_length)
        return cls(model, tokenizer, open_clip.transform.image_transform(config.image_size, is_train=False))

    def save(self, folder: Path) -> None:
        """Write the weights to ``folder/clip.pt`` (the architecture comes from the config)."""
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(folder / "clip.pt", "wb") as f:
            torch.save(self.model.state_dict(), f)

    @classmethod
    def load(cls, config: CLIPConfig, folder: Path) -> "CLIP":
        """The model of ``config`` with the weights saved in ``folder``."""
        import torch

        clip = cls.create(config)
        clip.model.load_state_dict(torch.load(folder / "clip.pt", weights_only=True))
        return clip

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ------------------------------------------------------------------ encoding

    def pixels(self, images: Sequence):
        """A batch of PIL images as the model's input tensor."""
        import torch

        return torch.stack([self.transform(im) for im in images])

    def encode_texts(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """L2-normalized text embeddings, float32."""
        import torch

        out = []
        with torch.no_grad():
            for start in tqdm(range(0, len(texts), ENCODE_BATCH), desc="encode texts", disable=not progress, leave=False):
                tokens = self.tokenizer(list(texts[start: start + ENCODE_BATCH]))
                out.append(self.model.encode_text(tokens, normalize=True).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    def encode_images(self, ids: Sequence[str], images, progress: bool = False) -> np.ndarray:
        """L2-normalized image embeddings of stickers ``ids`` (``images``: a StickerImages)."""
        import torch

        out = []
        with torch.no_grad():
            for start in tqdm(range(0, len(ids), ENCODE_BATCH), desc="encode images", disable=not progress, leave=False):
                batch = images.load_many(ids[start: start + ENCODE_BATCH])
                out.append(self.model.encode_image(self.pixels(batch), normalize=True).numpy())
        return np.concatenate(out).astype(np.float32)


# --------------------------------------------------------------------------- training


def distinct_batches(pairs: Sequence[tuple[str, str]], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch of batches of pair indices in which no text and no sticker appears twice: a
    pair that would repeat one waits for a later batch. Every pair is in exactly one batch."""
    batches, pending = [], [int(i) for i in rng.permutation(len(pairs))]
    while pending:
        batch, texts, stickers, rest = [], set(), set(), []
        for i in pending:
            text, sticker = pairs[i]
            if len(batch) < batch_size and text not in texts and sticker not in stickers:
                batch.append(i)
                texts.add(text)
                stickers.add(sticker)
            else:
                rest.append(i)
        batches.append(batch)
        pending = rest
    return batches


def _endless(pairs: Sequence[tuple[str, str]], batch_size: int, seed: int) -> Iterator[list[int]]:
    """:func:`distinct_batches` epoch after epoch, without single-pair batches (nothing to contrast)."""
    rng = np.random.default_rng(seed)
    while True:
        yield from (b for b in distinct_batches(pairs, batch_size, rng) if len(b) > 1)


def contrastive_train(clip: CLIP, pairs: Sequence[tuple[str, str]], images, steps: int, lr: float, warmup: int,
                      batch_size: int, seed: int, desc: str = "train", progress: bool = True) -> dict:
    """Train ``clip`` on (text, sticker id) pairs with CLIP's symmetric InfoNCE.

    Under ``torchrun`` each rank encodes its slice of every batch through
    ``DistributedDataParallel`` and the loss gathers the features of all ranks, so the
    negatives are the whole batch, as in one process (:mod:`systems.distributed`).

    Returns:
        Training notes: steps, pairs, first/last losses (the loss of a batch depends on its
        size, so compare them at the same ``batch_size``), seconds.
    """
    import open_clip
    import torch

    torch.manual_seed(seed)
    net = distributed.wrap(clip.model)
    loss_fn = open_clip.loss.ClipLoss(gather_with_grad=True, rank=distributed.rank(),
                                      world_size=distributed.world_size())
    optimizer, schedule = adamw_schedule(clip.model.parameters(), lr, steps, warmup, weight_decay=0.1)
    batches = _endless(pairs, batch_size, seed)
    losses, start = [], time.perf_counter()
    clip.model.train()
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress, leave=False)
    for _, batch in zip(range(steps), batches):
        batch = distributed.shard(batch)
        texts = clip.tokenizer([pairs[i][0] for i in batch])
        pixels = clip.pixels(images.load_many([pairs[i][1] for i in batch]))
        image_features, text_features, scale = net(pixels, texts)  # normalized features, exp(logit scale)
        loss = loss_fn(image_features, text_features, scale)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clip.model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():  # CLIP's clamp of the temperature (at most 100)
            clip.model.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss.item()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    clip.model.eval()
    return {"steps": steps, "pairs": len(pairs), "batch_size": batch_size,
            "loss_first_20": round(float(np.mean(losses[:20])), 4),
            "loss_last_20": round(float(np.mean(losses[-20:])), 4),
            "train_s": round(time.perf_counter() - start, 2)}


def pretrained_clip(data: TrainingData, config: CLIPConfig, seed: int, progress: bool = True) -> tuple[CLIP, dict]:
    """The general-domain CLIP of ``config``: the configured weights as they are, or, for
    ``sticker-clip-small``, the model pre-trained on (picture, :func:`caption`) pairs of every
    sticker, cached under ``.cache/shared/clip/`` and shared by the cross-modal systems."""
    set_threads(config.threads or None)
    if config.model != DEFAULT_CLIP:
        return CLIP.create(config), {"pretraining": f"none: {config.model} {config.pretrained}".strip()}
    images = require_images(data)
    own = {f.name for f in fields(CLIPConfig)} - {"threads"}  # not a subclass's fine-tuning fields
    key = {**{k: v for k, v in asdict(config).items() if k in own}, "dataset": data.fingerprint, "seed": seed}

    def build(folder: Path) -> None:
        clip = CLIP.create(config, seed)
        pairs = [(caption(s), s.id) for s in sorted(data.stickers, key=lambda s: s.id)]
        steps = max(1, math.ceil(config.pretrain_epochs * len(pairs) / config.batch_size))
        notes = contrastive_train(clip, pairs, images, steps, config.lr, config.warmup, config.batch_size, seed,
                                  "pre-train CLIP", progress)
        clip.save(folder)
        (folder / "pretraining.json").write_text(json.dumps(notes, sort_keys=True))

    folder = shared_artifact("clip", key, build)
    return CLIP.load(config, folder), {"pretraining": json.loads((folder / "pretraining.json").read_text())}


__all__ = ["CLIPConfig", "CLIP", "caption", "require_images", "distinct_batches", "contrastive_train",
           "pretrained_clip", "DEFAULT_CLIP"]
