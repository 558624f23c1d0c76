"""Where the curves stand at given steps, and when the median first reaches a target."""

from __future__ import annotations

import numpy as np
import pandas as pd

from maven.analysis import stats

GROUP = ["env", "map", "algo"]


def milestones(scores: pd.DataFrame, metric: str, steps: list[int], target: float | None) -> pd.DataFrame:
    """Per (env, map, algo): median and IQR of `metric` at each step, n, and the first step the
    median across seeds reaches `target` (on the union of evaluation steps, up to the end of the
    shortest run; NaN if never)."""
    rows = []
    selected = scores[scores["metric"] == metric]
    for key, group in selected.groupby(GROUP):
        row = dict(zip(GROUP, key)) | {"n": group["seed"].nunique()}
        at_steps = stats.on_grid(group, np.asarray(steps, dtype=int))
        for step, values in at_steps.groupby("step")["value"]:
            values = values.dropna().to_numpy()
            quartiles = np.percentile(values, [25, 50, 75]) if len(values) else [np.nan] * 3
            row |= {f"median@{step}": quartiles[1], f"q25@{step}": quartiles[0], f"q75@{step}": quartiles[2],
                    f"n@{step}": len(values)}
        if target is not None:
            last = group.groupby("seed")["step"].max().min()
            union = np.unique(group.loc[group["step"] <= last, "step"].to_numpy())
            curve = stats.on_grid(group, union).groupby("step")["value"].median()
            reached = curve.index[curve.to_numpy() >= target]
            row["first_step_median_reaches_target"] = int(reached[0]) if len(reached) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, steps: list[int], target: float | None) -> str:
    def fmt(value):
        return "–" if pd.isna(value) else f"{value:.3g}"

    header = ["env", "map", "algo", "n"] + [f"{step:,} median [IQR]" for step in steps]
    if target is not None:
        header.append(f"first step median ≥ {target:g}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.to_dict("records"):
        cells = [row["env"], row["map"], row["algo"], str(row["n"])]
        for step in steps:
            cells.append(f"{fmt(row[f'median@{step}'])} [{fmt(row[f'q25@{step}'])}, {fmt(row[f'q75@{step}'])}]"
                         + ("" if row[f"n@{step}"] == row["n"] else f" (n={row[f'n@{step}']})"))
        if target is not None:
            first = row["first_step_median_reaches_target"]
            cells.append("never" if pd.isna(first) else f"{int(first):,}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
