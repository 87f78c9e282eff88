"""Table 2 (PEARL's ablation study) and Table 1's exclusion of ablations, on hand-made runs."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from benchmark import harness, tables
from conftest import bench

ABLATION = "Ablation"
SYSTEMS = {  # name -> (label, family, rank of the first relevant sticker in every ranking)
    "pearl": ("PEARL", "Generative", 1),
    "pearl-ue": ("PEARL-UE", ABLATION, 2),
    "pearl-interest": ("PEARL-interest", ABLATION, 11),
    "pearl-ig": ("PEARL-IG", ABLATION, 1),
    "pearl-x": ("PEARL-X", ABLATION, 1),
}
SWAPPED = {0: False, 1: True}  # pearl's seeds: seed 1 predicts the two leading intents swapped
REPRESENTATION = {
    0: {"click": {"auc": 0.7, "accuracy": 0.6}, "intent": {"accuracy": 0.8}},
    1: {"click": {"auc": 0.8, "accuracy": 0.6}, "intent": {"accuracy": 0.8}},
}


def _ranking(dataset, qid: str, position: int) -> list[str]:
    """Twenty stickers: one relevant sticker at ``position`` (1-based), the others irrelevant."""
    relevant = dataset.test_qrels[qid]
    ranking = [s.id for s in dataset.stickers if s.id not in relevant][:19]
    ranking.insert(position - 1, min(relevant))
    return ranking


def _write_run(out, dataset, name: str, seed: int = 0, notes: dict | None = None) -> None:
    """A finished run of a fake system, as the harness would leave it."""
    label, family, position = SYSTEMS[name]
    queries = dataset.test_queries()
    rankings = [[(sid, 1.0 / rank) for rank, sid in enumerate(_ranking(dataset, q.qid, position), start=1)]
                for q in queries]
    run_path, meta_path = harness.run_paths(out, name, seed)
    harness.write_run(run_path, queries, rankings, tag=name)
    card = {"name": name, "label": label, "family": family, "baseline": False}
    meta = {"status": "ok", "dataset": {"fingerprint": dataset.fingerprint}, "card": card, "seed": seed,
            "notes": notes or {}}
    meta_path.write_text(json.dumps(meta))


def _pearl_notes(truth: dict[str, list[str]], seed: int) -> dict:
    def predicted(ranking: list[str]) -> list[str]:
        return [ranking[1], ranking[0], *ranking[2:]] if SWAPPED[seed] else list(ranking)

    return {"representation": {"learned": True, "held_out": REPRESENTATION[seed]}, "intents": {q: predicted(r) for q, r in truth.items()}}


@pytest.fixture(scope="module")
def results(tiny, tmp_path_factory):
    """Runs of PEARL (two seeds) and four variants, with Tables 1 and 2 written."""
    out = tmp_path_factory.mktemp("ablations")
    truth = tables.simulator_intents(tiny.path)
    for seed in SWAPPED:
        _write_run(out, tiny, "pearl", seed, _pearl_notes(truth, seed))
    _write_run(out, tiny, "pearl-ue", notes={"representation": None})
    _write_run(out, tiny, "pearl-interest", notes={"representation": {"learned": True, "held_out": {"interest_ip": {"auc": 0.9}}}})
    _write_run(out, tiny, "pearl-ig")
    _write_run(out, tiny, "pearl-x")
    tables.write_table1(out, tiny)
    tables.write_table2(out, tiny)
    return out


def _table2(results) -> pd.DataFrame:
    return pd.read_csv(results / "table2.csv", keep_default_na=False).set_index("system")


def test_table2_values_and_deltas_follow_the_rankings(results, tiny):
    recall = sum(1 / len(rel) for rel in tiny.test_qrels.values()) / len(tiny.test_qrels)  # one relevant found
    table = _table2(results)
    assert list(table.index) == ["pearl", "pearl-ue", "pearl-interest", "pearl-ig", "pearl-x"]
    assert table.loc["pearl", "seeds"] == 2 and table.loc["pearl-ue", "seeds"] == 1
    expected = {  # system -> mrr@10, recall@10, mrr@20, recall@20
        "pearl": (1.0, recall, 1.0, recall),
        "pearl-ue": (0.5, recall, 0.5, recall),
        "pearl-interest": (0.0, 0.0, 1 / 11, recall),
        "pearl-ig": (1.0, recall, 1.0, recall),
    }
    for name, values in expected.items():
        assert [float(table.loc[name, m]) for m in tables.TABLE2_METRICS] == pytest.approx(values, abs=5e-5)
    assert table.loc["pearl", "delta_mrr@10"] == "" and table.loc["pearl", "delta_recall@10"] == ""
    deltas = table.loc[["pearl-ue", "pearl-interest", "pearl-ig"], ["delta_mrr@10", "delta_recall@10"]]
    assert deltas.astype(float).values.ravel().tolist() == pytest.approx([-0.5, 0.0, -1.0, -round(recall, 4), 0.0, 0.0])
    assert table.loc["pearl-ig", "delta_mrr@10"] == "+0.0000"


def test_significant_differences_are_flagged_and_identical_runs_are_not(results):
    table = _table2(results)
    flags = {name: [m for m in tables.TABLE2_METRICS if table.loc[name, f"{m}_significant"]]
             for name in ("pearl-ue", "pearl-interest", "pearl-ig", "pearl-x")}
    assert flags == {"pearl-ue": ["mrr@10", "mrr@20"], "pearl-interest": ["mrr@10", "recall@10", "mrr@20"],
                     "pearl-ig": [], "pearl-x": []}
    sig = pd.read_csv(results / "table2_significance.csv")
    assert len(sig) == 4 * len(tables.TABLE2_METRICS) and set(sig["p_t_holm"] >= sig["p_t"]) == {True}
    md = (results / "table2.md").read_text()
    assert "| PEARL-UE | 0.5000† |" in md and "| PEARL-IG | 1.0000 |" in md
    assert "$^\\dagger$" in (results / "table2.tex").read_text()


def test_markdown_rows_keep_the_papers_order_and_groups(results, tiny):
    md = (results / "table2.md").read_text()
    table = md.split("\n\n")[1].splitlines()
    assert table[0] == "| Model | MRR@10 | Recall@10 | MRR@20 | Recall@20 | ΔMRR@10 | ΔRecall@10 |"
    assert [row.split(" | ")[0][2:] for row in table[2:]] == [
        "PEARL", "*w/o personalized user embedding*", "PEARL-UE", "PEARL-interest", "*w/o intent guidance*",
        "PEARL-IG", "*other variants*", "PEARL-X"]
    assert "intent-aware loss" not in md  # no PEARL-IAL run, no heading
    assert md.startswith(f"**Table 2: ablation study on {tiny.name} ({len(tiny.test_pairs)} test")
    assert "Means over 1/2 seed(s)" in md and "Holm correction over the 4 variant(s)" in md
    tex = (results / "table2.tex").read_text()
    assert "\\textit{w/o personalized user embedding}" in tex and "$\\Delta$MRR@10" in tex


def test_table1_leaves_ablations_to_table2_but_provenance_keeps_them(results):
    assert list(pd.read_csv(results / "table1.csv")["system"]) == ["pearl"]
    provenance = json.loads((results / "provenance.json").read_text())
    assert set(provenance["runs"]) == set(SYSTEMS) and len(provenance["runs"]["pearl"]) == 2


def test_tables_are_byte_identical_when_rebuilt(results, tiny):
    before = {p.name: p.read_bytes() for p in results.glob("table2*")}
    assert len(before) == 4
    tables.write_table2(results, tiny)
    assert {p.name: p.read_bytes() for p in results.glob("table2*")} == before


def test_no_pearl_run_means_no_table2(tiny, tmp_path):
    _write_run(tmp_path, tiny, "pearl-ue")
    assert tables.write_table2(tmp_path, tiny) == []
    assert tables.write_table1(tmp_path, tiny) == []
    assert not list(tmp_path.glob("table*"))


def test_representation_report_shows_each_systems_metrics(results):
    md = (results / "table2.md").read_text()
    assert "| Model | click accuracy | click auc | intent accuracy | interest_ip auc |" in md
    assert "| PEARL | 0.6000 | 0.7500 | 0.8000 | – |" in md
    assert "| PEARL-UE | – | – | – | – |" in md and "| PEARL-interest | – | – | – | 0.9000 |" in md


def test_intent_report_pools_seeds_against_the_simulator_truth(results, tiny):
    md = (results / "table2.md").read_text()
    n = 2 * len(tiny.test_pairs)
    assert f"| PEARL | {n} | 0.5000 | 0.9000 |" in md  # seed 1: one adjacent swap of 5, tau 0.8
    assert "| PEARL-UE | " not in md.split("**Intent detection**")[1]  # no predictions, no row


def test_real_data_has_no_simulator_truth(tiny, tmp_path):
    real = dataclasses.replace(tiny, path=tmp_path / "real")  # same data, no sim/ folder
    assert tables.simulator_intents(real.path) is None
    _write_run(tmp_path, tiny, "pearl", notes={"intents": {"test-00": ["ip"]}})
    tables.write_table2(tmp_path, real)
    md = (tmp_path / "table2.md").read_text()
    assert "No simulator truth for this dataset: skipped." in md
    assert "No representation-learning scores in the run notes." in md
    assert "No ablation runs to compare with PEARL." in md


def test_intent_agreement_on_hand_worked_rankings():
    truth = {
        "q1": ["ip", "entity", "style", "meaning", "ocr"],
        "q2": ["ip", "style", "entity", "meaning", "ocr"],
        "q3": ["ocr", "ip", "style", "entity", "meaning"],
        "q4": ["ip", "style", "entity", "meaning", "ocr"],
        "q9": ["ip", "style", "entity", "meaning", "ocr"],  # never predicted
    }
    predicted = {
        "q1": ["ip", "entity", "style", "meaning", "ocr"],  # top-1 hit, tau 1
        "q2": ["style", "ip"],  # miss; common ip, style reversed: tau -1
        "q3": ["ocr"],  # hit; one common property: no tau
        "q4": ["style", "meaning", "ip"],  # miss; ip/style, ip/meaning discordant, style/meaning not: -1/3
        "q8": ["ip"],  # no truth
    }
    result = tables.intent_agreement(predicted, truth)
    assert result["n"] == 4 and result["n_tau"] == 3
    assert result["top1_accuracy"] == pytest.approx(2 / 4)
    assert result["kendall_tau"] == pytest.approx((1 - 1 - 1 / 3) / 3)
    assert tables.intent_agreement({}, truth) == {"n": 0, "top1_accuracy": None, "kendall_tau": None, "n_tau": 0}


def test_bench_tables_prints_both_tables(results, tiny):
    done = bench("tables", "--profile", "tiny", "--results-dir", str(results))
    assert done.returncode == 0, done.stderr
    assert "**Table 1: retrieval performance" in done.stdout and "**Table 2: ablation study" in done.stdout


def test_rows_run_with_non_default_settings_are_marked(tiny, tmp_path):
    from benchmark.budgets import default_configs
    from systems.pearl import PEARLConfig

    defaults = default_configs(tiny)  # the tiny profile's defaults include its smoke budget
    assert defaults["pearl"]["max_steps"] != PEARLConfig().max_steps
    for name, lr in (("pearl", PEARLConfig().lr), ("pearl-ue", 0.123)):
        _write_run(tmp_path, tiny, name)
        meta_path = harness.run_paths(tmp_path, name, 0)[1]
        meta = json.loads(meta_path.read_text())
        meta["config"] = {**defaults[name], "lr": lr}
        meta_path.write_text(json.dumps(meta))
    md = {f.name: f.read_text() for f in tables.write_table2(tmp_path, tiny)}["table2.md"]
    assert "| PEARL-UE‡ |" in md and "| PEARL |" in md
    assert f"‡ run with settings other than the current defaults: PEARL-UE (lr 0.123 [now {PEARLConfig().lr}])." in md
    csv = {f.name: f.read_text() for f in tables.write_table2(tmp_path, tiny)}["table2.csv"]
    assert "lr=0.123" in csv
