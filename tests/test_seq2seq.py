"""The shared seq2seq backbone: building, training (loss, resume), teacher forcing, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from systems.constrained import PrefixTrie, decoded_items
from systems.seq2seq import Seq2Seq, Seq2SeqConfig, _wordpiece, train_steps, warmup_steps

CORPUS = ["good afternoon all of you", "kermit the frog", "tiny duck", "will you marry me", "roro panda",
          "get rich", "fortune comes", "huh confused", "pikachu cat", "feeling down sis"]
CONFIG = Seq2SeqConfig(d_model=64, layers=1, vocab_size=200, batch_size=4, lr=3e-3, warmup=2, epochs=100,
                       max_steps=150, checkpoint_every=50, threads=1)


def _examples(model: Seq2Seq) -> list:
    docid = [model.token_id(f"[D{i}]") for i in range(len(CORPUS))]
    return [(text, (docid[i],)) for i, text in enumerate(CORPUS)]


def _model() -> Seq2Seq:
    return Seq2Seq.create(CONFIG, CORPUS, [f"[D{i}]" for i in range(len(CORPUS))], seed=0)


def test_budget_is_epochs_capped_by_max_steps():
    assert train_steps(Seq2SeqConfig(batch_size=10, epochs=2.0, max_steps=1000), 55) == 11
    assert train_steps(Seq2SeqConfig(batch_size=10, epochs=2.0, max_steps=5), 55) == 5


def test_warmup_is_at_most_a_tenth_of_the_run():
    assert warmup_steps(Seq2SeqConfig(warmup=200), 2400) == 200
    assert warmup_steps(Seq2SeqConfig(warmup=200), 800) == 80
    assert warmup_steps(Seq2SeqConfig(warmup=200), 5) == 0


def test_identifier_tokens_are_single_vocabulary_entries():
    model = _model()
    ids = [model.token_id(f"[D{i}]") for i in range(3)]
    assert len(set(ids)) == 3 and all(i >= 0 for i in ids)
    assert model.token_ids("[D1]") == [ids[1]]
    assert model.model.get_input_embeddings().num_embeddings == len(model.tokenizer)


def test_training_lowers_the_loss_and_memorizes(tmp_path):
    model = _model()
    notes = model.train(_examples(model), CONFIG, tmp_path, seed=0, progress=False)
    assert notes["steps"] == 150 and notes["capped_by_max_steps"]
    assert notes["loss_last_20"] < 0.7 * notes["loss_first_20"]
    trie = PrefixTrie([t for _, t in _examples(model)], model.eos)
    seqs, scores, _ = model.generate(CORPUS[:3], trie, num_beams=3, max_new_tokens=2)
    tops = [decoded_items(trie, seqs[i * 3:(i + 1) * 3], scores[i * 3:(i + 1) * 3], 1, model.pad)[0][0]
            for i in range(3)]
    assert tops == [[0], [1], [2]]


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    reference = _model()
    reference.train(_examples(reference), CONFIG, tmp_path / "a", seed=0, progress=False)

    step, calls = Seq2Seq._train_step, {"n": 0, "limit": 80}

    def counted(self, *args):
        calls["n"] += 1
        if calls["n"] > calls["limit"]:
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(Seq2Seq, "_train_step", counted)
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.train(_examples(model), CONFIG, tmp_path / "b", seed=0, progress=False)
    calls.update(n=0, limit=10**6)
    resumed = _model()  # a new process starts from fresh weights: the checkpoint restores them
    resumed.train(_examples(resumed), CONFIG, tmp_path / "b", seed=0, progress=False)
    assert calls["n"] == 150 - 50  # resumed from the checkpoint of step 50
    calls.update(n=0)
    finished = _model()
    finished.train(_examples(finished), CONFIG, tmp_path / "b", seed=0, progress=False)
    assert calls["n"] == 0  # a finished stage is restored, not retrained
    resumed = finished
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_prefix_log_probs_match_a_plain_forward_pass():
    model = _model()
    target = [model.token_id("[D3]"), model.token_id("[D1]")]
    prefix = [model.token_id("[D9]")]
    cum = model.prefix_log_probs("tiny duck", [target, target[:1]], prefix)
    inputs = model.tokenizer(["tiny duck"], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        decoder = torch.tensor([[model.start, *prefix, *target]])
        logp = model.model(**inputs, decoder_input_ids=decoder).logits.log_softmax(-1)[0]
    expected = np.cumsum([float(logp[1, target[0]]), float(logp[2, target[1]])])
    assert cum[0] == pytest.approx(expected, abs=1e-5)
    assert cum[1] == pytest.approx(expected[:1], abs=1e-5)


def test_save_and_load_give_the_same_scores(tmp_path):
    model = _model()
    model.save(tmp_path)
    again = Seq2Seq.load(tmp_path)
    target = [[model.token_id("[D2]")]]
    assert model.prefix_log_probs("huh", target)[0] == pytest.approx(again.prefix_log_probs("huh", target)[0])
    assert (again.eos, again.pad, again.start) == (model.eos, model.pad, model.start)


def test_sampling_is_seeded():
    model = _model()
    first = model.sample(["kermit the frog", "get rich"], n=3, max_new_tokens=5, seed=7)
    assert len(first) == 2 and all(len(q) == 3 for q in first)
    assert first == model.sample(["kermit the frog", "get rich"], n=3, max_new_tokens=5, seed=7)


def test_vocabulary_is_deterministic_and_falls_back_to_characters():
    corpus = CORPUS * 3 + ["confused confusing conf", "早上好 你好"]
    first, second = (_wordpiece(corpus, 60) for _ in range(2))
    assert first.get_vocab() == second.get_vocab()
    tokens = first.convert_ids_to_tokens(first("frogs 你")["input_ids"])
    assert "[UNK]" not in tokens and tokens[-1] == "你"
    assert "".join(t.removeprefix("##") for t in tokens[:-1]) == "frogs"


def test_any_local_checkpoint_path_works_as_the_backbone(tmp_path):
    source = _model()  # stands in for a downloaded checkpoint such as facebook/bart-large
    source.model.save_pretrained(tmp_path / "ckpt")
    source.tokenizer.save_pretrained(tmp_path / "ckpt")
    config = Seq2SeqConfig(backbone=str(tmp_path / "ckpt"), batch_size=4, epochs=10, max_steps=3, threads=1)
    model = Seq2Seq.create(config, [], ["[NEW]"])
    assert model.kind == "auto" and model.token_ids("[NEW]") == [model.token_id("[NEW]")]
    assert model.model.get_input_embeddings().num_embeddings == len(model.tokenizer)
    notes = model.train([("tiny duck", (model.token_id("[NEW]"),))], config, tmp_path / "ck", progress=False)
    assert notes["steps"] == 3
    trie = PrefixTrie([[model.token_id("[NEW]")]], model.eos)
    sequences, _, _ = model.generate(["tiny duck"], trie, num_beams=2, max_new_tokens=2)
    assert sequences[0, 1].item() == model.token_id("[NEW]")
    with pytest.raises(ValueError, match="beam"):
        model.generate(["tiny duck"], trie, num_beams=1)
