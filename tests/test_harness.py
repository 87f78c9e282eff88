"""The harness: isolation of the test side, failures, caching, resume and stable tables."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from benchmark import harness, tables
from benchmark.io import stable_hash
from benchmark.paths import cache_dir
from benchmark.records import Query, TrainingData, User
from conftest import ROOT, bench
from systems.base import BaseRetriever, SystemCard, shared_artifact
from systems.lexical import BM25
from systems.popularity import GPop, UPop


def _strings(obj, seen=None):
    """Every string reachable from ``obj`` (dataclasses, mappings, sequences)."""
    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _strings(getattr(obj, f.name), seen)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k, seen)
            yield from _strings(v, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _strings(v, seen)


class Spy(BaseRetriever):
    """Records what the harness hands it."""

    card = SystemCard(name="spy", label="Spy", family="Test", paper="-", deterministic=True)
    seen_fit: list = []
    seen_search: list = []

    def fit(self, data, artifacts):
        Spy.seen_fit.append(data)
        (artifacts / "model").write_text("ok")

    def load(self, artifacts):
        pass

    def search(self, queries, k):
        Spy.seen_search.extend(queries)
        return [[] for _ in queries]


def test_systems_see_only_the_training_side_and_bare_queries(tiny, tmp_path):
    Spy.seen_fit.clear()
    Spy.seen_search.clear()
    outcome = harness.run_system(Spy, Spy.Config(), 0, tiny, tmp_path, force=True, progress=False)
    assert outcome.status == "done"
    (data,) = Spy.seen_fit
    assert isinstance(data, TrainingData)
    reachable = set(_strings(data))
    test_qids = {q.qid for q in tiny.test_pairs}
    assert not test_qids & reachable
    truth = (tiny.path / "sim/queries.jsonl").read_text()
    assert '"targets"' in truth and not any('"targets"' in s or "user_group" in s for s in reachable)
    assert {q.qid for q in Spy.seen_search} == test_qids
    for q in Spy.seen_search:
        assert type(q) is Query and [f.name for f in dataclasses.fields(q)] == ["qid", "user", "text"]
        assert q.user is None or type(q.user) is User


def test_isolation_guard_refuses_leaked_test_qids(tiny):
    data = tiny.training_data()
    leaked = dataclasses.replace(data, qrels={**data.qrels, tiny.test_pairs[0].qid: {"s0001": 1}})
    with pytest.raises(RuntimeError, match="test qids reached"):
        harness.check_isolation(leaked, tiny)


class Boom(Spy):
    card = SystemCard(name="boom", label="Boom", family="Test", paper="-")

    def fit(self, data, artifacts):
        raise ValueError("exploded on purpose")


class Liar(Spy):
    card = SystemCard(name="liar", label="Liar", family="Test", paper="-")

    def search(self, queries, k):
        return [[("not-a-sticker", 1.0)] for _ in queries]


def test_a_failing_system_is_reported_and_the_others_still_make_tables(tiny, tmp_path):
    outcomes = harness.run_all([Boom, Liar, GPop], {}, tiny, 1, tmp_path, progress=False)
    assert [o.status for o in outcomes] == ["failed", "failed", "done"]
    assert "exploded on purpose" in outcomes[0].error and "unknown sticker id" in outcomes[1].error
    meta = json.loads((tmp_path / "runs/boom/seed-0.json").read_text())
    assert meta["status"] == "failed" and "Traceback" in meta["traceback"]
    tables.write_table1(tmp_path, tiny)
    table = (tmp_path / "table1.csv").read_text()
    assert "gpop" in table and "boom" not in table and "liar" not in table


class Counting(Spy):
    card = SystemCard(name="counting", label="Counting", family="Test", paper="-")
    fits = 0

    def fit(self, data, artifacts):
        Counting.fits += 1
        super().fit(data, artifacts)


def test_runs_resume_and_fitted_artifacts_are_cached(tiny, tmp_path):
    first = harness.run_system(Counting, Counting.Config(), 0, tiny, tmp_path, progress=False)
    again = harness.run_system(Counting, Counting.Config(), 0, tiny, tmp_path, progress=False)
    assert (first.status, again.status) == ("done", "cached")
    deeper = harness.run_system(Counting, Counting.Config(), 0, tiny, tmp_path, k=50, progress=False)
    assert deeper.status == "done" and Counting.fits == 1  # new run, same fitted artifacts
    other_seed = harness.run_system(Counting, Counting.Config(), 1, tiny, tmp_path, progress=False)
    assert other_seed.status == "done" and Counting.fits == 2
    forced = harness.run_system(Counting, Counting.Config(), 0, tiny, tmp_path, force=True, progress=False)
    assert forced.status == "done" and Counting.fits == 2


def test_a_fit_resumed_from_checkpoints_says_so(tiny, tmp_path):
    fresh = harness.artifact_folder(Spy, Spy.Config(), 3, tiny)
    resumed = harness.artifact_folder(Spy, Spy.Config(), 4, tiny)
    checkpoints = resumed.with_name(resumed.name + ".partial") / harness.CHECKPOINTS
    checkpoints.mkdir(parents=True)
    (checkpoints / "train.pt").write_text("state")
    for seed in (3, 4):
        harness.run_system(Spy, Spy.Config(), seed, tiny, tmp_path, progress=False)
    records = [json.loads((f / harness.FIT_RECORD).read_text()) for f in (fresh, resumed)]
    assert [r["resumed"] for r in records] == [False, True]  # Table 3 shows no fit time for the second


class Sharing(Spy):
    """Fits on a shared artifact, as PEARL and PEARL-IG share their model."""

    card = SystemCard(name="sharing", label="Sharing", family="Test", paper="-", deterministic=True)

    def fit(self, data, artifacts):
        shared_artifact("test-model", {"for": "test_harness"}, lambda f: (f / "model").write_text("shared"))
        (artifacts / "model").write_text("ok")


def test_a_fit_records_the_shared_artifacts_it_built_reused_or_resumed(tiny, tmp_path):
    interrupted = cache_dir() / "shared" / "test-model" / stable_hash({"for": "test_harness"}) / "checkpoints"
    interrupted.mkdir(parents=True)
    (interrupted / "train.pt").write_text("state")
    for seed in (0, 1):
        harness.run_system(Sharing, Sharing.Config(), seed, tiny, tmp_path, progress=False)
    first, second = (json.loads((harness.artifact_folder(Sharing, Sharing.Config(), seed, tiny)
                                 / harness.FIT_RECORD).read_text()) for seed in (0, 1))
    assert [(s["kind"], s["built"], s["resumed"]) for s in first["shared"]] == [("test-model", True, True)]
    assert first["resumed"]  # its wall time lacks the interrupted part of the shared build
    assert [(s["built"], s["resumed"]) for s in second["shared"]] == [(False, False)] and not second["resumed"]


def test_deterministic_systems_run_one_seed_others_all():
    assert harness.seeds_for(GPop, 3) == [0]
    assert harness.seeds_for(Counting, 3) == [0, 1, 2]


def test_run_file_is_trec_and_tables_are_byte_identical(tiny, tmp_path):
    harness.run_all([GPop, UPop, BM25], {}, tiny, 1, tmp_path, progress=False)
    first = {p.name: p.read_bytes() for p in tmp_path.glob("table1.*")}
    assert not first  # tables are written by write_table1, not by runs
    tables.write_table1(tmp_path, tiny)
    first = {p.name: p.read_bytes() for p in tmp_path.glob("table1.*")}
    assert set(first) == {"table1.csv", "table1.md", "table1.tex"}
    run = (tmp_path / "runs/bm25/seed-0.trec").read_text().splitlines()
    qid, q0, sid, rank, score, tag = run[0].split()
    assert (q0, rank, tag) == ("Q0", "1", "bm25") and sid.startswith("s")
    assert max(int(line.split()[3]) for line in run) <= 20
    harness.run_all([GPop, UPop, BM25], {}, tiny, 1, tmp_path, force=True, progress=False)
    tables.write_table1(tmp_path, tiny)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("table1.*")} == first
    tex = first["table1.tex"].decode()
    assert "\\toprule" in tex and "\\textbf{" in tex and "Popularity-based" in tex
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["dataset"]["fingerprint"] == tiny.fingerprint
    assert set(prov["runs"]) == {"gpop", "upop", "bm25"} and prov["runs"]["bm25"][0]["versions"]["pyserini"]


SLOW_PLUGIN = '''
import os, time
from systems.base import BaseRetriever, SystemCard, shared_artifact
from systems.popularity import GPop

class Slow(GPop):
    card = SystemCard(name="slow", label="Slow", family="Test", paper="-", deterministic=True)

    def fit(self, data, artifacts):
        (artifacts / "started").write_text("yes")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        super().fit(data, artifacts)
'''


def test_killed_run_resumes_without_redoing_finished_systems(tmp_path):
    (tmp_path / "slowplug.py").write_text(textwrap.dedent(SLOW_PLUGIN))
    home = tmp_path / "home"
    env = {**os.environ, "STICKERBENCH_HOME": str(home), "PYTHONPATH": f"{tmp_path}:{ROOT}",
           "SLOW_SECONDS": "120"}
    args = [sys.executable, "-m", "benchmark.cli", "run", "--systems", "gpop,slow,upop",
            "--plugin", "slowplug:Slow", "--profile", "tiny", "--no-profile"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    started = home / ".cache/artifacts/slow"
    while not list(started.glob("*/started")) and time.time() < deadline:
        time.sleep(0.5)
    assert list(started.glob("*/started")), "the slow system never started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    results = home / "results/wechat-sim-tiny"
    assert (results / "runs/gpop/seed-0.trec").exists() and not (results / "runs/slow").exists()
    done = bench("run", "--systems", "gpop,slow,upop", "--plugin", "slowplug:Slow", "--profile", "tiny",
                 "--no-profile", home=home, env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "SLOW_SECONDS": "0"})
    assert done.returncode == 0, done.stderr
    assert "cached gpop seed 0" in done.stderr
    assert "done   slow seed 0" in done.stderr and "done   upop seed 0" in done.stderr
    assert "| Slow |" in done.stdout


def test_an_interrupted_fit_keeps_only_its_checkpoints(tmp_path):
    partial = tmp_path / "key.partial"
    (partial / "checkpoints").mkdir(parents=True)
    (partial / "checkpoints" / "train.pt").write_text("state")
    (partial / "index").mkdir()
    (partial / "half-written.json").write_text("{")
    harness._clear_partial(partial)
    assert sorted(p.name for p in partial.iterdir()) == ["checkpoints"]
    assert (partial / "checkpoints" / "train.pt").read_text() == "state"
