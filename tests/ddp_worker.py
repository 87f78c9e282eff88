"""Run by ``tests/test_distributed.py`` under ``torchrun``: train a model and write this rank's
final weights and what its training steps saw to ``<out>/rank<r>.*``.

``seq2seq``: the shared seq2seq backbone. ``dense``: the dual-encoder trainer of DPR (two
encoders) and then of ANCE (one shared encoder), without dropout so that the test can compare
the gradients, losses and weights with one process's. ``pearl``: PEARL's user-embedding
learning on the tiny profile. ``rows``: ``distributed.map_rows``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from systems import distributed
from systems.seq2seq import Seq2Seq, Seq2SeqConfig

CORPUS = ["good afternoon all of you", "kermit the frog", "tiny duck", "will you marry me", "roro panda",
          "get rich", "fortune comes", "huh confused"]
CONFIG = Seq2SeqConfig(d_model=32, layers=1, vocab_size=200, batch_size=4, lr=3e-3, warmup=2, epochs=100,
                       max_steps=30, checkpoint_every=10, threads=1)
QUERIES = ["hello everyone", "frog", "duck", "marry", "panda", "money", "luck", "what"]


def seq2seq(out: Path) -> dict:
    tokens = [f"[D{i}]" for i in range(len(CORPUS))]
    model = Seq2Seq.create(CONFIG, CORPUS, tokens, seed=0)
    examples = [(text, (model.token_id(tokens[i]),)) for i, text in enumerate(CORPUS)]
    seen = []
    step = Seq2Seq._train_step

    def recorded(self, net, chunk, *args):
        seen.append({"wrapper": type(net).__name__, "sources": [s for s, _ in chunk]})
        return step(self, net, chunk, *args)

    Seq2Seq._train_step = recorded
    notes = model.train(examples, CONFIG, out / "checkpoints", seed=0, progress=False)
    torch.save(torch.cat([p.detach().flatten() for p in model.model.parameters()]), out / f"rank{distributed.rank()}.pt")
    return {"steps": seen, "notes": notes}


def dense_training(shared: bool, steps: int = 3) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Train the dual encoder ``steps`` steps on the toy corpus (batch 4, one BM25-style negative
    per query). Returns its first step's gradient, its final weights and its losses, and, per
    forward pass, the wrapper and which items of the batch it encoded."""
    from systems import dense
    from systems.encoders import DEFAULT_ENCODER, load_encoder

    torch.manual_seed(0)

    def encoder():
        model = load_encoder(DEFAULT_ENCODER, 16, normalize=False)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        return model

    query_model = encoder()
    doc_model = query_model if shared else encoder()
    docs = {f"s{i}": text for i, text in enumerate(CORPUS)}
    triples = [dense.Triple(f"q{i}", q, f"s{i}", frozenset({f"s{i}"})) for i, q in enumerate(QUERIES)]
    negatives = {f"q{i}": [f"s{(i + 1) % len(CORPUS)}"] for i in range(len(QUERIES))}
    seen = []
    embed = dense._embed

    def recorded(net, model, texts):
        seen.append({"wrapper": type(net).__name__, "items": distributed.shard(range(len(texts)))})
        return embed(net, model, texts)

    dense._embed = recorded
    trainer = dense.DualEncoderTrainer(query_model, doc_model, steps, 1e-4, 1, 2.0)
    grads = []
    clip = torch.nn.utils.clip_grad_norm_

    def recorded_clip(params, *args, **kwargs):  # the gradient as backward left it
        grads.append(torch.cat([p.grad.flatten() for p in params]))
        return clip(params, *args, **kwargs)

    torch.nn.utils.clip_grad_norm_ = recorded_clip
    batches = dense.in_batch_batches(triples, negatives, docs, 4, np.random.default_rng(0))
    losses = trainer.train(batches, steps, progress=False)
    dense._embed, torch.nn.utils.clip_grad_norm_ = embed, clip
    weights = torch.cat([p.detach().flatten() for p in trainer.params])
    return {"gradient": grads[0], "weights": weights, "losses": torch.tensor(losses)}, seen


def dense_both(out: Path) -> dict:
    record = {}
    for kind, shared in (("dpr", False), ("ance", True)):
        result, seen = dense_training(shared)
        torch.save(result, out / f"rank{distributed.rank()}-{kind}.pt")
        record[kind] = seen
    return record


def pearl_training(steps: int = 3) -> dict[str, torch.Tensor]:
    """PEARL's user-embedding learning on the tiny profile for ``steps`` steps: its first step's
    gradient and the learned embedding rows."""
    from benchmark import catalog
    from systems.encoders import load_encoder
    from systems.pearl import PEARLConfig, learn_user_embeddings

    config = PEARLConfig(repr_steps=steps, repr_batch=63)  # odd: the ranks get 32 and 31 rows
    grads = []
    step = torch.optim.Adam.step

    def recorded_step(self, *args, **kwargs):
        grads.append(torch.cat([p.grad.flatten() for group in self.param_groups for p in group["params"]]))
        return step(self, *args, **kwargs)

    torch.optim.Adam.step = recorded_step
    rows, _ = learn_user_embeddings(catalog.resolve("wechat-sim", "tiny").training_data(), config, 16, 0,
                                    load_encoder(config.encoder), progress=False)
    torch.optim.Adam.step = step
    return {"gradient": grads[0], "rows": torch.from_numpy(rows)}


def pearl(out: Path) -> dict:
    torch.save(pearl_training(), out / f"rank{distributed.rank()}-pearl.pt")
    return {}


def rows(out: Path) -> dict:
    """``distributed.map_rows`` over the 8 corpus texts plus one (an odd count)."""
    computed = []

    def lengths(texts: list[str]) -> np.ndarray:
        computed.extend(texts)
        return np.array([[len(t), sum(map(ord, t))] for t in texts], dtype=np.int64)

    return {"rows": distributed.map_rows(lengths, [*CORPUS, "one more"]).tolist(), "computed": computed}


def main(out: Path, what: str) -> None:
    record = {"seq2seq": seq2seq, "dense": dense_both, "pearl": pearl, "rows": rows}[what](out)
    (out / f"rank{distributed.rank()}.json").write_text(json.dumps({"world": distributed.world_size(), **record}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
