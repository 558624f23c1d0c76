"""Score arrays in rliable's shapes and seeded interval estimates (computing, never drawing).

rliable ignores its `random_state`; numpy's global RNG is seeded right before every call so the
same scores always give the same intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats
from rliable import library as rly
from rliable import metrics

AGGREGATES = {
    "Median": metrics.aggregate_median,
    "IQM": metrics.aggregate_iqm,
    "Mean": metrics.aggregate_mean,
    "Optimality gap": metrics.aggregate_optimality_gap,
}


def final_scores(scores: pd.DataFrame, metric: str = "score") -> pd.DataFrame:
    """The last evaluation of each run: columns env, map, algo, seed, step, value."""
    rows = scores[scores["metric"] == metric].sort_values("step")
    return rows.groupby(["env", "map", "algo", "seed"], as_index=False).last()[
        ["env", "map", "algo", "seed", "step", "value"]
    ]


def best_scores(scores: pd.DataFrame, metric: str = "score") -> pd.DataFrame:
    rows = scores[scores["metric"] == metric]
    index = rows.groupby(["env", "map", "algo", "seed"])["value"].idxmax()
    return rows.loc[index, ["env", "map", "algo", "seed", "step", "value"]].reset_index(drop=True)


def score_matrices(per_run: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str], dict[str, list[str]]]:
    """algo -> [num_runs, num_tasks] over the tasks every algorithm has, seeds complete in all.

    Returns (matrices, tasks, dropped) where dropped names what was left out and why, for captions.
    """
    per_run = per_run.assign(task=per_run["env"] + "/" + per_run["map"])
    algos = sorted(per_run["algo"].unique())
    task_sets = [set(per_run.loc[per_run["algo"] == algo, "task"]) for algo in algos]
    tasks = sorted(set.intersection(*task_sets)) if task_sets else []
    dropped = {"tasks": sorted(set(per_run["task"]) - set(tasks)), "runs": []}
    matrices = {}
    for algo in algos:
        table = per_run[(per_run["algo"] == algo) & per_run["task"].isin(tasks)].pivot(
            index="seed", columns="task", values="value"
        ).reindex(columns=tasks)
        incomplete = table.index[table.isna().any(axis=1)]
        dropped["runs"] += [f"{algo} seed{seed}" for seed in incomplete]
        table = table.drop(index=incomplete)
        if len(table):
            matrices[algo] = table.to_numpy(dtype=float)
    return matrices, tasks, dropped


def _seeded(seed: int, call, *args, **kwargs):
    np.random.seed(seed)
    return call(*args, **kwargs)


def aggregate_intervals(matrices: dict[str, np.ndarray], reps: int, seed: int = 0):
    """(points, intervals): algo -> [4] and [2, 4] for Median, IQM, Mean, Optimality gap."""
    def all_four(x):
        return np.array([fn(x) for fn in AGGREGATES.values()])

    return _seeded(seed, rly.get_interval_estimates, matrices, all_four, reps=reps)


def iqm_intervals(matrices: dict[str, np.ndarray], reps: int, seed: int = 0):
    return _seeded(seed, rly.get_interval_estimates, matrices, lambda x: np.array([metrics.aggregate_iqm(x)]),
                   reps=reps)


def performance_profiles(matrices: dict[str, np.ndarray], taus: np.ndarray, reps: int, seed: int = 0):
    return _seeded(seed, rly.create_performance_profile, matrices, taus, reps=reps)


def improvement_pairs(matrices: dict[str, np.ndarray], focus: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {f"{focus},{algo}": (matrices[focus], matrices[algo]) for algo in sorted(matrices) if algo != focus}


def probability_of_improvement(matrices: dict[str, np.ndarray], focus: str, reps: int, seed: int = 0):
    pairs = improvement_pairs(matrices, focus)
    if not pairs:
        return {}, {}
    return _seeded(seed, rly.get_interval_estimates, pairs, metrics.probability_of_improvement, reps=reps)


def step_grid(scores: pd.DataFrame, n_points: int) -> np.ndarray:
    """Common steps from the latest first evaluation to the earliest last one (no extrapolation)."""
    spans = scores.groupby(["env", "map", "algo", "seed"])["step"].agg(["min", "max"])
    start, stop = spans["min"].max(), spans["max"].min()
    if stop < start:
        return np.array([stop])
    return np.unique(np.linspace(start, stop, n_points).round().astype(int))


def on_grid(scores: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """For each run and grid step, the last evaluation at or before it; NaN past a run's end.

    Evaluations happen a few steps after each multiple of test_interval (the episode in progress
    finishes first), so "at or before" allows a slack of 10% of the run's typical evaluation gap:
    otherwise a grid point at 105,000 would miss every evaluation made at 105,003.
    """
    out = []
    for keys, run in scores.sort_values("step").groupby(["env", "map", "algo", "seed"]):
        steps, values = run["step"].to_numpy(), run["value"].to_numpy()
        slack = 0.1 * float(np.median(np.diff(steps))) if len(steps) > 1 else 0.0
        index = np.searchsorted(steps, grid + slack, side="right") - 1
        valid = (index >= 0) & (grid <= steps[-1] + slack)
        sampled = np.where(valid, values[np.clip(index, 0, None)], np.nan)
        out.append(pd.DataFrame(dict(zip(["env", "map", "algo", "seed"], keys)) | {"step": grid, "value": sampled}))
    return pd.concat(out, ignore_index=True)


def curve_matrices(gridded: pd.DataFrame, tasks: list[str]) -> dict[str, np.ndarray]:
    """algo -> [num_runs, num_tasks, num_steps] over seeds complete at every task and step."""
    gridded = gridded.assign(task=gridded["env"] + "/" + gridded["map"])
    gridded = gridded[gridded["task"].isin(tasks)]
    out = {}
    for algo, rows in gridded.groupby("algo"):
        cube = rows.pivot_table(index="seed", columns=["task", "step"], values="value", dropna=False)
        steps = sorted(rows["step"].unique())
        cube = cube.reindex(columns=pd.MultiIndex.from_product([tasks, steps])).dropna()
        if len(cube):
            out[algo] = cube.to_numpy().reshape(len(cube), len(tasks), len(steps))
    return out


def curve_iqm(curves: dict[str, np.ndarray], reps: int, seed: int = 0):
    """IQM at each step with CIs: (points algo -> [S], intervals algo -> [2, S])."""
    def iqm_per_step(x):
        # rliable's aggregate_iqm (a 25% trimmed mean over all runs and tasks) at every step in
        # one call: the same numbers as one aggregate_iqm per step, ~50x faster at 50 steps
        return scipy.stats.trim_mean(x.reshape(-1, x.shape[-1]), proportiontocut=0.25, axis=0)

    return _seeded(seed, rly.get_interval_estimates, curves, iqm_per_step, reps=reps)
