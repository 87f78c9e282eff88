"""Run by ``tests/test_distributed.py`` under ``torchrun``: train the shared seq2seq backbone
and write this rank's final weights and what its training steps saw to ``<out>/rank<r>.*``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from systems import distributed
from systems.seq2seq import Seq2Seq, Seq2SeqConfig

CORPUS = ["good afternoon all of you", "kermit the frog", "tiny duck", "will you marry me", "roro panda",
          "get rich", "fortune comes", "huh confused"]
CONFIG = Seq2SeqConfig(d_model=32, layers=1, vocab_size=200, batch_size=4, lr=3e-3, warmup=2, epochs=100,
                       max_steps=30, checkpoint_every=10, threads=1)


def main(out: Path) -> None:
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
    rank = distributed.rank()
    torch.save(torch.cat([p.detach().flatten() for p in model.model.parameters()]), out / f"rank{rank}.pt")
    (out / f"rank{rank}.json").write_text(json.dumps({"world": distributed.world_size(), "steps": seen,
                                                      "notes": notes}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
