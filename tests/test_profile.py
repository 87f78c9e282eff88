"""The speed benchmark measures what it claims to (no timing targets here)."""

from __future__ import annotations

import time

from benchmark.profile import latency_ms


def test_latency_sees_a_known_sleep():
    calls = []

    def sleepy(i):
        calls.append(i)
        time.sleep(0.02)

    stats = latency_ms(sleepy, n=5, warmup=2)
    assert len(calls) == 7 and stats["n"] == 5
    assert 19.0 <= stats["p50_ms"] <= stats["p95_ms"]
    assert latency_ms(lambda i: None, n=5)["p50_ms"] < stats["p50_ms"]


def test_decoding_clock_attributes_known_sleeps_to_forward_and_processor(monkeypatch):
    from benchmark.profile import _timed_decoding
    from systems.constrained import ConstrainedLogitsProcessor, PrefixTrie
    from systems.seq2seq import Seq2Seq, Seq2SeqConfig

    model = Seq2Seq.create(Seq2SeqConfig(d_model=32, layers=1, vocab_size=100), ["a b c", "d e f"], ["[X]"])
    trie = PrefixTrie([model.token_ids("a b"), model.token_ids("d")], model.eos)
    slow_allowed = ConstrainedLogitsProcessor.allowed_for
    processor_calls = []

    def allowed_for(self, prefix):
        processor_calls.append(1)
        time.sleep(0.002)
        return slow_allowed(self, prefix)

    monkeypatch.setattr(ConstrainedLogitsProcessor, "allowed_for", allowed_for)
    forward_calls = []

    def slow_forward(*_):
        forward_calls.append(1)
        time.sleep(0.01)

    with _timed_decoding(model) as clock:
        hook = model.model.register_forward_pre_hook(slow_forward)
        model.generate(["a b c"], trie, num_beams=2, max_new_tokens=3)
        hook.remove()
    assert forward_calls and processor_calls
    assert clock.forward >= 0.01 * len(forward_calls) and clock.forward_in_generate == clock.forward
    assert clock.processor >= 0.002 * len(processor_calls)
    assert clock.generate >= clock.forward + clock.processor
    assert "generate" not in vars(model)  # the patch is undone


def test_profile_generative_reports_both_batch_sizes(tiny, tmp_path):
    import json

    from conftest import bench

    out = bench("profile", "generative", "--profile", "tiny", "--systems", "dsi", "--set", "dsi.max_steps=2",
                "--set", "dsi.d_model=32", "--queries", "4", "--batch", "2", "--results-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "profile" / "generative.json").read_text())
    dsi = report["systems"]["dsi"]
    assert set(dsi) == {"parameters", "batch_1", "batch_2"}
    for split in (dsi["batch_1"], dsi["batch_2"]):
        assert split["ms_per_query"] > 0 and 0 < split["forward_share"] < 1
        assert 0 <= split["decode_processor_share"] <= split["decode_outside_forward_share"] < 1
    assert "p50_ms" in dsi["batch_1"] and "dsi" in out.stdout
