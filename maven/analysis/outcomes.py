"""Per-seed outcomes of a grid: how many seeds reach the optimum, and where the metrics stand.

Fig. 3 of the MAVEN paper is a median over 20 seeds whose runs end either at the optimum (13 on
m10) or in the trap (10), so the honest comparison is a count: the share of seeds whose final
value reaches the target, with an exact binomial (Clopper–Pearson) 95% CI, and Fisher's exact
test of each entry's 2x2 table (reached / not) against each reference entry. Beside it: median
[IQR] of any logged metric at given steps, and P(improvement) (rliable, stratified bootstrap) of
each entry over each reference on the final value of the first success metric; and the same
share over training (`success_curves`, drawn by figures.plot_success), since a median curve of
runs that end at either 10 or 13 sits at one of the two and hides the split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

from maven.analysis import stats

CELL = ["env", "map", "algo"]
REACH_TOLERANCE = 1e-6  # a mean of 64 returns of exactly 13 is 13 up to float rounding


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial CI for successes / n (NaN for n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    interval = scipy.stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="exact")
    return float(interval.low), float(interval.high)


def fisher_p(reached_a: int, n_a: int, reached_b: int, n_b: int) -> float:
    """Two-sided Fisher's exact test of [[reached, not] per entry]."""
    if n_a == 0 or n_b == 0:
        return float("nan")
    return float(scipy.stats.fisher_exact([[reached_a, n_a - reached_a], [reached_b, n_b - reached_b]]).pvalue)


def success_table(scores: pd.DataFrame, metrics: list[str], target: float, references: list[str]) -> pd.DataFrame:
    """One row per (env, map, algo, metric): n, seeds whose final value reaches target, share with
    its CI, and Fisher p against each reference entry of the same map."""
    rows = []
    for metric in metrics:
        final = stats.final_scores(scores, metric)
        final["reached"] = final["value"] >= target - REACH_TOLERANCE
        # cell -> (the seeds that reach target, n)
        cells = {key: (sorted(group.loc[group["reached"], "seed"]), len(group)) for key, group in final.groupby(CELL)}
        for (env, map_name, algo), (reached_seeds, n) in sorted(cells.items()):
            reached = len(reached_seeds)
            low, high = clopper_pearson(reached, n)
            row = {"env": env, "map": map_name, "algo": algo, "metric": metric, "n": n, "reached": reached,
                   "share": reached / n, "ci_low": low, "ci_high": high,
                   "seeds_reached": " ".join(map(str, reached_seeds))}
            for ref in references:
                ref_seeds, ref_n = cells.get((env, map_name, ref), ([], 0))
                row[f"fisher_p_vs_{ref}"] = np.nan if ref == algo else fisher_p(reached, n, len(ref_seeds), ref_n)
            rows.append(row)
    return pd.DataFrame(rows)


def success_curves(scores: pd.DataFrame, metrics: list[str], target: float, grid_points: int) -> pd.DataFrame:
    """Per (env, map, algo, metric) and common step: how many seeds' last evaluation at or before
    the step reaches target -> columns env, map, algo, metric, step, reached, n, share, ci_low,
    ci_high (Clopper–Pearson 95%)."""
    rows = []
    for metric in metrics:
        for (env, map_name), cell in scores[scores["metric"] == metric].groupby(["env", "map"]):
            gridded = stats.on_grid(cell, stats.step_grid(cell, grid_points)).dropna(subset=["value"])
            gridded["reached"] = gridded["value"] >= target - REACH_TOLERANCE
            for (algo, step), group in gridded.groupby(["algo", "step"]):
                reached, n = int(group["reached"].sum()), len(group)
                low, high = clopper_pearson(reached, n)
                rows.append({"env": env, "map": map_name, "algo": algo, "metric": metric, "step": int(step),
                             "reached": reached, "n": n, "share": reached / n, "ci_low": low, "ci_high": high})
    columns = ["env", "map", "algo", "metric", "step", "reached", "n", "share", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


def improvement_table(scores: pd.DataFrame, metric: str, references: list[str], reps: int,
                      seed: int = 0) -> pd.DataFrame:
    """P(entry > reference) on the final value of `metric`, with 95% bootstrap CIs, per map."""
    rows = []
    final = stats.final_scores(scores, metric)
    for (env, map_name), group in final.groupby(["env", "map"]):
        matrices = {algo: rows_["value"].to_numpy()[:, None] for algo, rows_ in group.groupby("algo")}
        for ref in references:
            if ref not in matrices:
                continue
            for algo in sorted(matrices):
                if algo == ref:
                    continue
                points, intervals = stats.probability_of_improvement({algo: matrices[algo], ref: matrices[ref]},
                                                                     algo, reps, seed)
                pair = f"{algo},{ref}"
                rows.append({"env": env, "map": map_name, "algo": algo, "reference": ref, "metric": metric,
                             "p_improvement": float(np.ravel(points[pair])[0]), "ci_low": float(np.ravel(intervals[pair])[0]),
                             "ci_high": float(np.ravel(intervals[pair])[1])})
    return pd.DataFrame(rows)


def _fmt(value, digits=2) -> str:
    if pd.isna(value):
        return "–"
    return f"{0.0 if round(value, digits) == 0 else value:.{digits}f}"  # no "-0.000"


def _p(value) -> str:
    return "–" if pd.isna(value) else (f"{value:.2g}" if value >= 1e-4 else "<1e-4")


def to_markdown(success: pd.DataFrame, at_steps: dict[str, pd.DataFrame], improvement: pd.DataFrame,
                target: float, steps: list[int], references: list[str], labels: dict[str, str]) -> str:
    def name(algo):
        return labels.get(algo, algo)

    lines = [f"## Seeds whose final value reaches {target:g}", "",
             ("Share with its exact binomial (Clopper–Pearson) 95% CI; Fisher's exact test (two-sided) "
              "of the reached/not counts against each reference."
              + (" `score` metrics are normalised: 1 is the map's optimum (the matrix game) or a 100% win rate."
                 if success["metric"].str.startswith("score").any() else "")), ""]
    header = (["map", "entry", "metric", "reached / n", "share [95% CI]"] + [f"p vs {name(r)}" for r in references]
              + ["seeds reaching it"])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in success.to_dict("records"):
        cells = [row["map"], name(row["algo"]), row["metric"], f"{row['reached']} / {row['n']}",
                 f"{_fmt(row['share'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"]
        cells += [_p(row.get(f"fisher_p_vs_{r}")) for r in references]
        cells.append(row["seeds_reached"] or "–")
        lines.append("| " + " | ".join(cells) + " |")
    for metric, table in at_steps.items():
        lines += ["", f"## {metric}: median [IQR] across seeds", ""]
        header = ["map", "entry", "n"] + [f"{step:,}" for step in steps]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in table.to_dict("records"):
            cells = [row["map"], name(row["algo"]), str(row["n"])]
            for step in steps:
                cell = f"{_fmt(row[f'median@{step}'], 3)} [{_fmt(row[f'q25@{step}'], 3)}, {_fmt(row[f'q75@{step}'], 3)}]"
                cells.append(cell + ("" if row[f"n@{step}"] == row["n"] else f" (n={row[f'n@{step}']})"))
            lines.append("| " + " | ".join(cells) + " |")
    if len(improvement):
        metric = improvement["metric"].iloc[0]
        lines += ["", f"## P(entry > reference) on the final {metric}", "",
                  "Probability of improvement (rliable) with its 95% stratified-bootstrap CI.", "",
                  "| map | entry | reference | P(improvement) [95% CI] |", "|---|---|---|---|"]
        for row in improvement.to_dict("records"):
            lines.append(f"| {row['map']} | {name(row['algo'])} | {name(row['reference'])} | "
                         f"{_fmt(row['p_improvement'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}] |")
    return "\n".join(lines) + "\n"
