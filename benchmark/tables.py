"""Table 1 from saved runs: evaluation, significance, and CSV / LaTeX / Markdown output.

``bench tables`` calls :func:`write_table1` on runs already on disk, so tables are rebuilt
without retraining. The output depends only on the run files and the qrels: the same runs give
byte-identical tables.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.dataset import Dataset
from benchmark.evaluate import CUTOFFS, KEY_METRIC, METRICS, holm, per_query_scores, permutation_test, t_test
from benchmark.harness import read_run
from benchmark.io import write_json, write_text
from systems.base import FAMILIES
from systems.registry import BUILTINS

ALPHA = 0.05
BUILTIN_ORDER = [cls.card.name for cls in BUILTINS]


@dataclass
class SystemScores:
    """A system's evaluated runs: per-query scores averaged over its seeds."""

    name: str
    label: str
    family: str
    baseline: bool
    seeds: list[int]
    per_query: pd.DataFrame  # qid x metric, mean over seeds
    metas: list[dict]  # the run metadata of each seed

    @property
    def means(self) -> pd.Series:
        return self.per_query.mean()


def collect(out_dir: Path, dataset: Dataset) -> list[SystemScores]:
    """Evaluate every successful run under ``out_dir/runs`` made on this exact dataset."""
    runs_dir = out_dir / "runs"
    found: list[SystemScores] = []
    for folder in sorted(p for p in runs_dir.glob("*") if p.is_dir()):
        metas = []
        for meta_path in sorted(folder.glob("seed-*.json")):
            meta = json.loads(meta_path.read_text())
            run_path = meta_path.with_suffix(".trec")
            if meta.get("status") != "ok" or not run_path.exists():
                continue
            if meta["dataset"]["fingerprint"] != dataset.fingerprint:
                print(f"warning: skipping {run_path}: made on another version of {dataset.name}",
                      file=sys.stderr)
                continue
            metas.append((meta, run_path))
        if not metas:
            continue
        scores = [per_query_scores(dataset.test_qrels, read_run(path)) for _, path in metas]
        card = metas[-1][0]["card"]
        found.append(SystemScores(
            name=card["name"], label=card["label"], family=card["family"], baseline=card["baseline"],
            seeds=sorted(m["seed"] for m, _ in metas),
            per_query=sum(scores[1:], scores[0]) / len(scores),
            metas=[m for m, _ in metas],
        ))
    return sorted(found, key=_row_order)


def _row_order(s: SystemScores) -> tuple:
    family = FAMILIES.index(s.family) if s.family in FAMILIES else len(FAMILIES)
    builtin = BUILTIN_ORDER.index(s.name) if s.name in BUILTIN_ORDER else len(BUILTIN_ORDER)
    return family, s.family, builtin, s.name


def significance(systems: list[SystemScores], seed: int = 0) -> pd.DataFrame:
    """Paired tests of every system against the best baseline (by MRR@10), Holm-corrected.

    Returns:
        One row per (system, metric) with the means, raw and Holm-adjusted p-values of the
        t-test and the permutation test, and ``significant``: better than the best baseline
        with both adjusted p-values <= 0.05.
    """
    baselines = [s for s in systems if s.baseline]
    if not baselines:
        return pd.DataFrame()
    best = max(baselines, key=lambda s: (s.means[KEY_METRIC], s.name))
    others = [s for s in systems if s is not best]
    rows = []
    for metric in METRICS:
        ref = best.per_query[metric].to_numpy()
        p_t = [t_test(s.per_query[metric].to_numpy(), ref) for s in others]
        p_perm = [permutation_test(s.per_query[metric].to_numpy(), ref, seed=seed) for s in others]
        for s, pt, pp, pt_h, pp_h in zip(others, p_t, p_perm, holm(p_t), holm(p_perm)):
            gain = s.means[metric] - best.means[metric]
            rows.append({
                "system": s.name, "metric": metric, "best_baseline": best.name,
                "mean": s.means[metric], "baseline_mean": best.means[metric], "delta": gain,
                "p_t": pt, "p_perm": pp, "p_t_holm": pt_h, "p_perm_holm": pp_h,
                "significant": bool(gain > 0 and pt_h <= ALPHA and pp_h <= ALPHA),
            })
    return pd.DataFrame(rows)


def _cells(systems: list[SystemScores], sig: pd.DataFrame, bold: str, star: str) -> list[list[str]]:
    """Formatted metric cells with the column best in bold and significant gains starred."""
    starred = set()
    if not sig.empty:
        starred = {(r.system, r.metric) for r in sig.itertuples() if r.significant}
    best = {m: max(round(s.means[m], 4) for s in systems) for m in METRICS}
    rows = []
    for s in systems:
        row = []
        for m in METRICS:
            value = round(s.means[m], 4)
            text = f"{value:.4f}"
            if value == best[m]:
                text = bold.format(text)
            if (s.name, m) in starred:
                text += star
            row.append(text)
        rows.append(row)
    return rows


def to_markdown(systems: list[SystemScores], sig: pd.DataFrame, caption: str) -> str:
    names = {"mrr": "MRR", "recall": "Recall"}
    header = ["Group", "Model"] + [f"{names[m.split('@')[0]]}@{m.split('@')[1]}" for m in METRICS]
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * len(METRICS)]
    previous = None
    for s, cells in zip(systems, _cells(systems, sig, "**{}**", "\\*")):
        group = s.family if s.family != previous else ""
        previous = s.family
        lines.append("| " + " | ".join([group, s.label, *cells]) + " |")
    return "\n".join(lines) + "\n\n" + _footnote(systems, sig) + "\n"


def to_latex(systems: list[SystemScores], sig: pd.DataFrame, caption: str) -> str:
    n = len(CUTOFFS)
    lines = [
        "% Requires \\usepackage{booktabs} and \\usepackage{multirow}.",
        "\\begin{table}[t]", "\\centering", "\\small",
        "\\begin{tabular}{ll" + "r" * len(METRICS) + "}", "\\toprule",
        f" & & \\multicolumn{{{n}}}{{c}}{{MRR}} & \\multicolumn{{{n}}}{{c}}{{Recall}} \\\\",
        f"\\cmidrule(lr){{3-{2 + n}}}\\cmidrule(lr){{{3 + n}-{2 + 2 * n}}}",
        " & Model & " + " & ".join(f"@{k}" for k in CUTOFFS * 2) + " \\\\",
    ]
    cells = _cells(systems, sig, "\\textbf{{{}}}", "$^*$")
    families = [s.family for s in systems]
    for i, (s, row) in enumerate(zip(systems, cells)):
        if i == 0 or families[i] != families[i - 1]:
            lines.append("\\midrule")
            size = families.count(s.family)
            group = f"\\multirow{{{size}}}{{*}}{{{_latex_escape(s.family)}}}"
        else:
            group = ""
        lines.append(f"{group} & {_latex_escape(s.label)} & " + " & ".join(row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}",
              f"\\caption{{{_latex_escape(caption)} {_latex_escape(_footnote(systems, sig))}}}",
              "\\label{tab:main}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"), ("*", "$^*$")):
        text = text.replace(a, b)
    return text


def _footnote(systems: list[SystemScores], sig: pd.DataFrame) -> str:
    seeds = sorted({len(s.seeds) for s in systems})
    seed_text = "/".join(map(str, seeds))
    if sig.empty:
        return f"Means over {seed_text} seed(s); no baseline to test against."
    best = sig["best_baseline"].iloc[0]
    label = next(s.label for s in systems if s.name == best)
    return (f"Means over {seed_text} seed(s). Bold: best in column. * marks a significant gain over "
            f"the best baseline ({label}, by MRR@10): paired t-test and permutation test, both "
            f"p <= {ALPHA} after Holm correction.")


def to_csv(systems: list[SystemScores], sig: pd.DataFrame) -> str:
    starred = {(r.system, r.metric) for r in sig.itertuples() if r.significant} if not sig.empty else set()
    rows = []
    for s in systems:
        row = {"group": s.family, "system": s.name, "model": s.label, "seeds": len(s.seeds)}
        row.update({m: f"{s.means[m]:.4f}" for m in METRICS})
        row.update({f"{m}_significant": (s.name, m) in starred for m in METRICS})
        rows.append(row)
    return pd.DataFrame(rows).to_csv(index=False, lineterminator="\n")


def write_table1(out_dir: Path, dataset: Dataset) -> list[Path]:
    """Evaluate saved runs and write Table 1 (csv, tex, md) plus the significance details.

    Returns:
        The files written (none when there is no successful run).
    """
    systems = collect(out_dir, dataset)
    if not systems:
        return []
    sig = significance(systems)
    caption = f"Table 1: retrieval performance on {dataset.name} ({len(dataset.test_pairs)} test user-query pairs)."
    files = {
        "table1.csv": to_csv(systems, sig),
        "table1.md": to_markdown(systems, sig, caption),
        "table1.tex": to_latex(systems, sig, caption),
        "significance.csv": sig.round(6).to_csv(index=False, lineterminator="\n") if not sig.empty else "",
    }
    for name, text in files.items():
        write_text(out_dir / name, text)
    write_json(out_dir / "provenance.json", provenance_record(systems, dataset))
    return [out_dir / name for name in files]


def provenance_record(systems: list[SystemScores], dataset: Dataset) -> dict:
    """Where the tables come from: the dataset card and every run's metadata."""
    keep = ("card", "config", "seed", "key", "versions", "commit", "machine", "fit_s", "fit_cached",
            "search_s", "ms_per_query", "notes", "wall_time_utc")
    return {
        "dataset": {k: dataset.card.get(k) for k in ("name", "version", "source", "licence", "generator",
                                                     "counts", "files")}
        | {"fingerprint": dataset.fingerprint},
        "runs": {s.name: [{k: m.get(k) for k in keep} for m in s.metas] for s in systems},
    }

