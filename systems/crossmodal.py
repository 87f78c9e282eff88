"""Cross-modal retrievers of the PEARL paper's Table 1: CN-CLIP and StickerCLIP.

Both rank stickers by the cosine similarity of the query's text embedding and the sticker
picture's image embedding (faiss, exact inner product over normalized vectors), with the CLIP
of :mod:`systems.clip`:

* **CN-CLIP** uses a general-domain CLIP zero-shot. The paper's is Chinese CLIP (Yang et al.,
  2022); offline, the default is ``sticker-clip-small`` pre-trained here on generic captions.
* **StickerCLIP** (Zhao et al., 2023) adapts the same CLIP to the sticker domain by contrastive
  fine-tuning on the training (query, relevant sticker picture) pairs.

A dataset without sticker images (StickerQueries) makes both report "not applicable".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from benchmark.records import Query, TrainingData
from systems.base import BaseRetriever, Ranking, SystemCard
from systems.clip import CLIP, CLIPConfig, contrastive_train, pretrained_clip, require_images
from systems.dense import DenseIndex, training_triples
from systems.encoders import set_threads

CLIP_DEVIATION = ("CLIP: sticker-clip-small (a ViT-CLIP with about 8M parameters) pre-trained here on the "
                  "stickers' rendered pictures with generic captions (style, character, object, printed text), "
                  "instead of a CLIP pre-trained on web image-text pairs (none reachable offline; set "
                  "model=<open_clip name> pretrained=<tag or checkpoint> for the paper's setup)")


class CNCLIP(BaseRetriever):
    """Zero-shot CLIP retrieval: the query's text embedding against every sticker picture."""

    card = SystemCard(
        name="cn-clip", label="CN-CLIP", family="Cross-modal",
        paper="Yang et al., 2022 (Chinese CLIP: Contrastive Vision-Language Pretraining in Chinese)",
        deviations=(CLIP_DEVIATION,),
    )
    Config = CLIPConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        require_images(data)
        clip, notes = pretrained_clip(data, self.config, self.seed)
        self._index(data, clip, notes, artifacts)

    def _index(self, data: TrainingData, clip: CLIP, notes: dict, artifacts: Path) -> None:
        """Save ``clip``, embed every sticker picture with it and index the vectors."""
        ids = sorted(s.id for s in data.stickers)
        vectors = clip.encode_images(ids, data.images, progress=True)
        clip.save(artifacts)
        DenseIndex.build(vectors, ids).save(artifacts)
        notes = {**notes, "clip": self.config.model, "clip_parameters": clip.n_parameters()}
        (artifacts / "notes.json").write_text(json.dumps(notes, sort_keys=True))

    def load(self, artifacts: Path) -> None:
        set_threads(self.config.threads or None)
        self.clip = CLIP.load(self.config, artifacts)
        self.index = DenseIndex.load(artifacts)
        self._notes.update(json.loads((artifacts / "notes.json").read_text()))

    def search(self, queries: Sequence[Query], k: int) -> list[Ranking]:
        return self.index.search(self.clip.encode_texts([q.text for q in queries]), k)


@dataclass(frozen=True)
class StickerCLIPConfig(CLIPConfig):
    """CN-CLIP's model plus the fine-tuning budget: ``finetune_epochs`` passes over the
    training (query, relevant sticker) pairs at ``finetune_lr``."""

    finetune_epochs: float = 5.0
    finetune_lr: float = 1e-4
    finetune_warmup: int = 50


class StickerCLIP(CNCLIP):
    """CLIP fine-tuned on training (query, relevant sticker picture) pairs, then as CN-CLIP."""

    card = SystemCard(
        name="stickerclip", label="StickerCLIP", family="Cross-modal",
        paper="Zhao et al., 2023 (Sticker820K: Empowering Interactive Retrieval with Stickers; StickerCLIP)",
        deviations=(CLIP_DEVIATION,
                    "fine-tuned on the dataset's training query-sticker pairs (the paper: Sticker820K captions)"),
    )
    Config = StickerCLIPConfig

    def fit(self, data: TrainingData, artifacts: Path) -> None:
        images = require_images(data)
        clip, notes = pretrained_clip(data, self.config, self.seed)
        pairs = [(t.query, t.positive) for t in training_triples(data)]
        cfg = self.config
        steps = max(1, math.ceil(cfg.finetune_epochs * len(pairs) / cfg.batch_size))
        notes["finetuning"] = contrastive_train(clip, pairs, images, steps, cfg.finetune_lr, cfg.finetune_warmup,
                                                cfg.batch_size, self.seed, "fine-tune StickerCLIP")
        self._index(data, clip, notes, artifacts)


__all__ = ["CNCLIP", "StickerCLIP", "StickerCLIPConfig"]
