"""Third-party systems: an installed entry point and an ad hoc --plugin run into the tables."""

from __future__ import annotations

import textwrap

from conftest import ROOT, bench, bench_here

PLUGIN = '''
"""A throwaway third-party retriever: the training qrels' most labelled stickers."""
from collections import Counter
from systems.base import BaseRetriever, SystemCard, top_k

class MostLabelled(BaseRetriever):
    card = SystemCard(name="most-labelled", label="MostLabelled", family="Plugins",
                      paper="a test plugin", deterministic=True)

    def fit(self, data, artifacts):
        counts = Counter(s for d in data.qrels.values() for s, r in d.items() if r > 0)
        (artifacts / "top.txt").write_text("\\n".join(f"{s} {n}" for s, n in counts.items()))

    def load(self, artifacts):
        rows = [line.split() for line in (artifacts / "top.txt").read_text().splitlines()]
        self.ranking = top_k((s, float(n)) for s, n in rows)

    def search(self, queries, k):
        return [self.ranking[:k] for _ in queries]
'''


def _package(tmp_path, with_entry_point: bool):
    site = tmp_path / "site"
    (site / "labelplug").mkdir(parents=True)
    (site / "labelplug/__init__.py").write_text(textwrap.dedent(PLUGIN))
    if with_entry_point:
        info = site / "labelplug-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labelplug\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(
            "[stickerbench.systems]\nmost-labelled = labelplug:MostLabelled\n")
    return {"PYTHONPATH": f"{site}:{ROOT}"}


def test_entry_point_plugin_runs_into_the_tables(tmp_path):
    env = _package(tmp_path, with_entry_point=True)
    listed = bench("list", env=env)
    assert listed.returncode == 0 and "most-labelled" in listed.stdout
    out = tmp_path / "results"
    done = bench("run", "--systems", "most-labelled,gpop", "--profile", "tiny", "--no-profile",
                 "--results-dir", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "| Plugins | MostLabelled |" in (out / "table1.md").read_text()
    assert "most-labelled" in (out / "table1.csv").read_text()
    assert "MostLabelled" in (out / "table1.tex").read_text()


def test_ad_hoc_plugin_and_bad_specs(tmp_path, monkeypatch):
    env = _package(tmp_path, with_entry_point=False)
    assert "most-labelled" not in bench("list", env=env).stdout
    out = tmp_path / "results"
    done = bench("run", "--systems", "most-labelled", "--plugin", "labelplug:MostLabelled",
                 "--profile", "tiny", "--no-profile", "--results-dir", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "MostLabelled" in (out / "table1.md").read_text()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for spec in ("labelplug", "labelplug:Nope", "no_such_module:X", "systems.base:SystemCard"):
        bad = bench_here("run", "--systems", "gpop", "--plugin", spec, "--profile", "tiny")
        assert bad.returncode == 2 and bad.stderr.startswith("error: --plugin"), (spec, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1
