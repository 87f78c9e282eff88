"""The reproducibility matrix: expected Table 1-4 numbers kept as data, checked cell by cell.

In the spirit of pyserini's two-click reproductions, ``benchmark/expected/<dataset>.json``
holds the reference figures of a dataset (the committed results of the default profile) and
the tolerance of every kind of cell. ``bench verify`` evaluates the saved runs and records (or,
with ``--run``, makes the missing ones first) and prints OK or FAIL per cell. ``bench verify
--record`` writes the file from the current results: a maintainer's step after a deliberate
change, reviewed like code.

Tolerances (absolute unless said otherwise):

* Tables 1 and 2: 0.001 for deterministic systems (GPop, UPop, BM25: rounding only) and 0.03
  for trained ones, whose weights depend on the CPU's floating-point order.
* Table 3: parameters exact; disk within 10%; p50 latency within a factor of 3 (hardware),
  anything under 1 ms counting as 1 ms.
* Table 4: ΔCTR 1 point, ΔACP 0.5 ranks, ΔGSB 5 points (the simulated clicks are seeded, but
  the rankings come from trained systems).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from benchmark.dataset import Dataset
from benchmark.io import read_json, write_json

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"
TOLERANCES = {
    "deterministic": {"abs": 0.001}, "trained": {"abs": 0.03},
    "parameters": {"abs": 0}, "disk_mb": {"rel": 0.10}, "p50_ms": {"factor": 3.0, "floor": 1.0},
    "delta_ctr": {"abs": 1.0}, "delta_acp": {"abs": 0.5}, "delta_gsb": {"abs": 5.0},
}
TABLE_METRICS = ("mrr@10", "recall@10", "mrr@20", "recall@20")


@dataclass(frozen=True)
class Cell:
    """One checked number: where it is, what was expected, what was found, and the verdict."""

    table: str
    system: str
    field: str
    expected: float
    found: float | None
    tolerance: dict

    @property
    def ok(self) -> bool:
        if self.found is None:
            return False
        t = self.tolerance
        if "factor" in t:  # values under the floor count as the floor (sub-millisecond noise)
            low, high = sorted((max(self.expected, t["floor"]), max(self.found, t["floor"])))
            return high / low <= t["factor"]
        if "rel" in t:
            return abs(self.found - self.expected) <= t["rel"] * abs(self.expected)
        return abs(self.found - self.expected) <= t["abs"] + 1e-12

    def line(self) -> str:
        found = "missing" if self.found is None else f"{self.found:.4f}"
        bound = ", ".join(f"{k} {v}" for k, v in self.tolerance.items())
        return (f"{'OK  ' if self.ok else 'FAIL'} {self.table:7s} {self.system:15s} {self.field:10s} "
                f"{found:>10s} (expected {self.expected:.4f}, {bound})")


def expected_path(dataset: Dataset) -> Path:
    return EXPECTED_DIR / f"{dataset.name}.json"


def observed(out_dir: Path, dataset: Dataset) -> dict:
    """The current figures of every table, in the expected file's layout."""
    from benchmark import online, tables

    collected = tables.collect(out_dir, dataset)
    out: dict = {"dataset": dataset.name, "fingerprint": dataset.fingerprint, "table1": {}, "table2": {},
                 "deterministic": sorted(s.name for s in collected if s.metas and s.metas[-1]["card"].get("deterministic"))}
    for s in collected:
        if s.not_applicable:
            continue
        table = "table2" if s.family == tables.ABLATION else "table1"
        out[table][s.name] = {m: round(float(s.means[m]), 4) for m in TABLE_METRICS}
    out["table3"] = {r["system"]: {"parameters": r["parameters"], "disk_mb": round(r["disk_bytes"] / 2**20, 2),
                                   "p50_ms": r["latency_ms"]["p50_ms"]} for r in tables.efficiency_records(out_dir, dataset)}
    saved = out_dir / "online" / "table4.json"
    result = online.online_test(dataset, out_dir, online.OnlineConfig(**read_json(saved)["config"])) \
        if saved.exists() else None
    out["table4"] = {f"{result['config']['system']} vs {result['config']['online_system']}":
                     {m: round(v["mean"], 4) for m, v in result["summary"].items()}} if result else {}
    return out


def record(out_dir: Path, dataset: Dataset) -> Path:
    """Write the expected file of ``dataset`` from the current results."""
    path = expected_path(dataset)
    write_json(path, {**observed(out_dir, dataset), "tolerances": TOLERANCES})
    return path


def check(out_dir: Path, dataset: Dataset) -> list[Cell]:
    """Every expected cell against the current results (a missing result is a failing cell)."""
    path = expected_path(dataset)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no expected figures for {dataset.name}")
    expected = read_json(path)
    if expected["fingerprint"] != dataset.fingerprint:
        raise ValueError(f"{path}: expected figures are for {dataset.name} {expected['fingerprint']}, "
                         f"the dataset here is {dataset.fingerprint}")
    found = observed(out_dir, dataset)
    tol = expected["tolerances"]
    cells = []
    for table in ("table1", "table2"):
        for system, metrics in expected[table].items():
            kind = "deterministic" if system in expected["deterministic"] else "trained"
            for metric, value in metrics.items():
                cells.append(Cell(table, system, metric, value, found[table].get(system, {}).get(metric), tol[kind]))
    for table in ("table3", "table4"):
        for system, fields in expected[table].items():
            for field, value in fields.items():
                got = found[table].get(system, {}).get(field)
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                cells.append(Cell(table, system, field, value, got, tol[field]))
    return cells
