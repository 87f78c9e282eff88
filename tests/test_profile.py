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
