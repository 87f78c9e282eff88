"""Table 1 broken down by user group (4 age bands x 2 genders), with significance and a heatmap.

A test pair belongs to the group its user discloses (``User.group``); pairs whose user lacks
an age or a gender, or has no user at all, form the group ``unknown``. Within each group, every
system is tested against the best baseline of Table 1 (by MRR@10 over all pairs) with the same
paired tests as Table 1, Holm-corrected over the systems; ``*`` marks a gain significant under
both tests.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmark.dataset import Dataset
from benchmark.evaluate import KEY_METRIC, METRICS
from benchmark.io import write_text
from benchmark.records import AGE_GROUPS, GENDERS
from benchmark.report import pyplot, save_png
from benchmark.tables import (
    ABLATION, SystemScores, _both_tests_pass, _caption, md_row, metric_label, collect, paired_tests,
)

UNKNOWN = "unknown"
GROUP_ORDER = [f"{a}/{g}" for a in AGE_GROUPS for g in GENDERS] + [UNKNOWN]


def pair_groups(dataset: Dataset) -> dict[str, str]:
    """qid -> the user group of each test pair (``unknown`` when not disclosed)."""
    return {q.qid: (q.user.group if q.user is not None else None) or UNKNOWN for q in dataset.test_queries()}


def group_results(systems: Sequence[SystemScores], groups: dict[str, str]) -> pd.DataFrame:
    """Every system's mean of every metric within every group, with the paired tests against
    the best baseline (Table 1's) on that group's pairs.

    Returns:
        One row per (system, group, metric): ``pairs``, ``mean``, ``baseline_mean``, ``delta``,
        the Holm-adjusted p-values and ``significant``.
    """
    scored = [s for s in systems if not s.not_applicable]
    baselines = [s for s in scored if s.baseline]
    if not baselines:
        return pd.DataFrame()
    best = max(baselines, key=lambda s: (s.means[KEY_METRIC], s.name))
    rows = []
    for group in [g for g in GROUP_ORDER if g in set(groups.values())]:
        qids = sorted(q for q, g in groups.items() if g == group)
        within = [replace(s, per_query=s.per_query.loc[qids]) for s in scored]
        reference = next(s for s in within if s.name == best.name)
        others = [s for s in within if s is not reference]
        tests = paired_tests(others, reference, METRICS) if others else pd.DataFrame()
        if not tests.empty:
            tests["significant"] = (tests["delta"] > 0) & _both_tests_pass(tests)
        for metric in METRICS:
            rows.append({"system": reference.name, "group": group, "metric": metric, "pairs": len(qids),
                         "mean": reference.means[metric], "baseline": best.name,
                         "baseline_mean": reference.means[metric], "delta": 0.0, "p_t_holm": 1.0,
                         "p_perm_holm": 1.0, "significant": False})
        for r in tests.itertuples():
            rows.append({"system": r.system, "group": group, "metric": r.metric, "pairs": len(qids),
                         "mean": r.mean, "baseline": best.name, "baseline_mean": r.reference_mean,
                         "delta": r.delta, "p_t_holm": r.p_t_holm, "p_perm_holm": r.p_perm_holm,
                         "significant": bool(r.significant)})
    order = {s.name: i for i, s in enumerate(scored)}
    frame = pd.DataFrame(rows)
    frame["_order"] = frame["system"].map(order)
    frame["_group"] = frame["group"].map(GROUP_ORDER.index)
    return frame.sort_values(["_order", "_group", "metric"]).drop(columns=["_order", "_group"]).reset_index(drop=True)


def groups_markdown(results: pd.DataFrame, labels: dict[str, str], caption: str, metric: str = KEY_METRIC) -> str:
    """The ``metric`` of each system (rows) in each group (columns), the best of a column in
    bold, ``*`` for a significant gain over the best baseline within the group."""
    table = results[results["metric"] == metric]
    groups = list(dict.fromkeys(table["group"]))
    pairs = table.drop_duplicates("group").set_index("group")["pairs"]
    best = table.groupby("group")["mean"].max().round(4)
    lines = [f"**{caption}**", "", md_row(["Model", *(f"{g} (n={pairs[g]})" for g in groups)]),
             "|---|" + "---:|" * len(groups)]
    for system, rows in table.groupby("system", sort=False):
        cells = []
        for r in rows.set_index("group").loc[groups].itertuples():
            text = f"{r.mean:.4f}"
            if round(r.mean, 4) == best[r.Index]:
                text = f"**{text}**"
            cells.append(text + ("\\*" if r.significant else ""))
        lines.append(md_row([labels[system], *cells]))
    baseline = labels[table["baseline"].iloc[0]]
    return "\n".join(lines) + (f"\n\n{metric_label(metric)} per user group. "
                               f"\\* significant gain over {baseline} (the best baseline of Table 1) on the "
                               "group's pairs: paired t-test and permutation test, Holm-corrected over the "
                               "systems, both p <= 0.05. Groups are those users disclose.\n")


def groups_heatmap(results: pd.DataFrame, labels: dict[str, str], path: Path, metric: str = KEY_METRIC) -> None:
    """A systems x groups heatmap of ``metric``, each cell annotated (``*`` as in the table)."""
    plt = pyplot()
    table = results[results["metric"] == metric]
    grid = table.pivot(index="system", columns="group", values="mean")
    marks = table.pivot(index="system", columns="group", values="significant")
    systems = list(dict.fromkeys(table["system"]))
    groups = list(dict.fromkeys(table["group"]))
    grid, marks = grid.loc[systems, groups], marks.loc[systems, groups]
    fig, ax = plt.subplots(figsize=(1.1 * len(groups) + 2.5, 0.45 * len(systems) + 1.5))
    image = ax.imshow(grid.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(groups)), groups, rotation=40, ha="right")
    ax.set_yticks(range(len(systems)), [labels[s] for s in systems])
    for i, system in enumerate(systems):
        for j, group in enumerate(groups):
            value = grid.loc[system, group]
            ax.text(j, i, f"{value:.3f}" + ("*" if marks.loc[system, group] else ""), ha="center",
                    va="center", fontsize=7, color="white" if value < grid.to_numpy().max() / 2 else "black")
    fig.colorbar(image, ax=ax, label=metric_label(metric))
    ax.set_title(f"{metric_label(metric)} by user group")
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def write_group_table(out_dir: Path, dataset: Dataset, collected: list[SystemScores] | None = None) -> list[Path]:
    """Write ``groups.csv`` (every metric), ``groups.md`` and ``groups.png`` (MRR@10) for the
    Table 1 systems (from ``collected``, else evaluated here); none when the dataset has no
    user groups or no baseline ran."""
    groups = pair_groups(dataset)
    if set(groups.values()) == {UNKNOWN}:
        return []
    collected = collect(out_dir, dataset) if collected is None else collected
    systems = [s for s in collected if s.family != ABLATION]
    results = group_results(systems, groups)
    if results.empty:
        return []
    labels = {s.name: s.row_label for s in systems}
    caption = _caption("Table 1 by user group", dataset)
    write_text(out_dir / "groups.csv", results.round(6).to_csv(index=False, lineterminator="\n"))
    write_text(out_dir / "groups.md", groups_markdown(results, labels, caption))
    groups_heatmap(results, labels, out_dir / "groups.png")
    return [out_dir / name for name in ("groups.csv", "groups.md", "groups.png")]
