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


def test_peak_memory_sees_a_known_allocation_in_a_fresh_process():
    """In a process started from this (large) test process, the peak starts afresh and a
    200 MiB allocation shows up in it (``ru_maxrss`` would start at the parent's peak)."""
    import subprocess
    import sys

    from conftest import ROOT

    script = ("import numpy as np; from benchmark.profile import peak_rss_mb, rss_mb; before = peak_rss_mb(); "
              "block = np.ones(200 * 2**20 // 8); print(before, peak_rss_mb(), rss_mb())")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    before, peak, now = map(float, done.stdout.split())
    assert now >= before + 150 and peak >= now


def test_parameters_are_counted_once_wherever_the_system_holds_them(tmp_path):
    import torch

    from benchmark.profile import count_parameters, disk_bytes

    class Holder:
        def __init__(self):
            shared = torch.nn.Linear(10, 10)  # 110 parameters
            self.model = shared
            self.parts = {"again": shared, "other": [torch.nn.Linear(2, 3)]}  # 9 more

    assert count_parameters(Holder()) == 119
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"0" * 1000)
    (tmp_path / "y.bin").write_bytes(b"0" * 24)
    assert disk_bytes(tmp_path) == 1024


class Ballast:
    """A system whose ``load`` holds ``config`` MiB of touched memory (served by Table 3's process)."""

    def __init__(self, config: int, seed: int) -> None:
        self.mib = config

    def load(self, folder) -> None:
        import numpy as np

        self.block = np.ones(self.mib * 2**20 // 8)

    def search(self, queries, k):
        return [[] for _ in queries]


def test_each_system_is_served_in_a_fresh_process_of_its_own(tiny, tmp_path):
    """A system's memory shows up in its own peak and does not carry over to the next one."""
    from benchmark.profile import _serve, fresh_process

    def served(mib: int) -> dict:
        with fresh_process() as pool:
            return pool.submit(_serve, Ballast, mib, tiny.path, tmp_path, 1, 3, 4).result()

    heavy, light = served(300), served(0)
    assert heavy["peak_rss_mb"] - heavy["baseline_rss_mb"] >= 300
    assert light["peak_rss_mb"] - light["baseline_rss_mb"] < 50
    assert light["latency_ms"]["n"] == 3 and light["throughput_batch"] == 4


def _record(system: str, label: str, p50: float) -> dict:
    return {"system": system, "label": label, "family": "Generative", "fingerprint": "f", "parameters": 2_500_000,
            "disk_bytes": 3 * 2**20, "peak_rss_mb": 900.0, "baseline_rss_mb": 500.0, "threads": 2, "machine": {"cpus": 2}, "fit_s": 7.5,
            "load_s": 1.0, "latency_ms": {"p50_ms": p50, "p95_ms": 2 * p50, "n": 50}, "throughput_qps": 40.0,
            "throughput_batch": 32}


def test_table3_rows_and_the_papers_latency_ratios():
    from benchmark.tables import latency_ratios, table3_markdown

    records = [_record("dpr", "DPR", 10.0), _record("minder", "MINDER", 40.0), _record("pearl", "PEARL", 20.0)]
    ratios = {name: (round(ours, 3), round(paper, 3)) for name, ours, paper in latency_ratios(records)}
    assert ratios == {"PEARL/MINDER": (0.5, round(124 / 112, 3)), "DPR/PEARL": (0.5, round(179 / 124, 3))}
    text = table3_markdown(records, "Table 3")
    assert "| PEARL | 2.5 | 3.0 | 900 | 20.0 | 40.0 | 40.0 | 7.5 |" in text
    assert "PEARL/MINDER 0.50 [1.11]" in text and "2 thread(s)" in text
    assert "in a fresh spawned process (" in text  # records without ``preload`` predate the fork server
    forked = table3_markdown([{**r, "preload": ["torch"]} for r in records], "Table 3")
    assert "forked from a server" in forked and "spawned" not in forked
    assert "different commits" not in text
    later = table3_markdown([*records[:2], {**records[2], "commit": "feedbeef" * 5}], "Table 3")
    assert "DPR, MINDER at " in later and "PEARL at feedbee." in later
    shared = [{"kind": "pearl", "key": "k", "built": False, "resumed": False}]
    reused = table3_markdown([*records[:2], {**records[2], "fit_shared": shared}], "Table 3")
    assert "| 7.5† |" in reused and "| 7.5 |" in reused  # only PEARL took its shared model from the cache
    assert "| 7.5† |" not in table3_markdown([*records[:2], {**records[2], "fit_shared": []}], "Table 3")


def test_profile_systems_writes_table3_and_keeps_records_of_the_same_artifacts(tiny, tmp_path):
    import json

    from conftest import bench

    args = ("profile", "systems", "--profile", "tiny", "--systems", "gpop,bm25", "--queries", "5",
            "--threads", "1", "--results-dir", str(tmp_path))
    out = bench(*args)
    assert out.returncode == 0, out.stderr
    bm25 = json.loads((tmp_path / "profile" / "systems" / "bm25.json").read_text())
    assert bm25["threads"] == 1 and bm25["latency_ms"]["n"] == 5 and bm25["disk_bytes"] > 0
    assert bm25["peak_rss_mb"] > bm25["baseline_rss_mb"] > 0 and bm25["fit_s"] is not None
    assert bm25["fit_shared"] == []  # BM25 builds no shared artifact
    assert {p.name for p in tmp_path.iterdir()} >= {"table3.csv", "table3.md", "table3.tex"}
    assert "| BM25 |" in out.stdout
    again = bench(*args)
    assert again.returncode == 0 and again.stderr.count("kept") == 2


def test_bench_run_profiles_what_it_fitted_and_never_fits_only_to_profile(tmp_path):
    import shutil

    from conftest import bench

    first = bench("run", "--profile", "tiny", "--systems", "gpop", home=tmp_path / "a")
    assert first.returncode == 0, first.stderr
    assert "profiled gpop" in first.stderr and "| GPop |" in (tmp_path / "a/results/wechat-sim-tiny/table3.md").read_text()
    for part in ("datasets", "results"):  # a clone with the committed runs but no artifact cache
        shutil.copytree(tmp_path / "a" / part, tmp_path / "b" / part)
    shutil.rmtree(tmp_path / "b/results/wechat-sim-tiny/profile")
    again = bench("run", "--profile", "tiny", "--systems", "gpop", home=tmp_path / "b")
    assert again.returncode == 0, again.stderr
    assert "cached gpop" in again.stderr and "not fitted here" in again.stderr
    assert not (tmp_path / "b/.cache/artifacts").exists()
