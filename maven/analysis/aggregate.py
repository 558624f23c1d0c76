"""Run directories -> the tidy `scores.csv` and the one-row-per-expected-run `runs.csv`.

A run is finished exactly when a readable `summary.json` with status "finished" exists; one whose
summary.json says "diverged" (the trainer stopped it on a non-finite loss or gradient) is
`diverged`. Any unreadable file makes the run `failed` with a reason naming the file; nothing
raises.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from maven.errors import UserError

SCORE_COLUMNS = ["env", "map", "algo", "seed", "step", "metric", "value"]
RUN_COLUMNS = ["env", "map", "algo", "seed", "status", "reason", "path", "env_steps", "wall_time_s", "preset"]
# eval.csv columns that are not metrics; per-z columns (z<i>_...) stay in eval.csv only (K of
# them per pass), their maximum over z (max_z_...) is aggregated.
NOT_METRICS = {"step", "episode", "wall_time_s"}
PER_Z = re.compile(r"z\d+_.*")


@dataclass(frozen=True, order=True)
class RunKey:
    env: str
    map: str
    algo: str
    seed: int

    def path(self, runs_dir: Path) -> Path:
        return Path(runs_dir) / self.env / self.map / self.algo / f"seed{self.seed}"


@dataclass
class RunRecord:
    key: RunKey
    status: str  # finished | diverged | running | failed | missing
    reason: str
    evals: pd.DataFrame | None = None
    summary: dict | None = None


def optimum(env: str, map_name: str) -> float:
    """The score that normalises to 1: the matrix game's best return, 1 for win rates."""
    if env == "matrix":
        from maven.envs import matrix_optimal_return

        try:
            return matrix_optimal_return(map_name)
        except UserError as err:
            raise ValueError(str(err)) from None
    return 1.0


def headline(env: str) -> str:
    """The eval.csv column each environment is judged by."""
    return "return_mean" if env == "matrix" else "win_rate"


def discover_runs(runs_dir: Path) -> list[RunKey]:
    """Every <env>/<map>/<algo>/seed<k> directory under runs_dir."""
    keys = []
    for seed_dir in Path(runs_dir).glob("*/*/*/seed*"):
        match = re.fullmatch(r"seed(\d+)", seed_dir.name)
        if seed_dir.is_dir() and match:
            algo_dir = seed_dir.parent
            keys.append(RunKey(algo_dir.parent.parent.name, algo_dir.parent.name, algo_dir.name,
                               int(match.group(1))))
    return sorted(keys)


def _read_evals(path: Path) -> pd.DataFrame:
    evals = pd.read_csv(path)
    missing = {"step", "return_mean"} - set(evals.columns)
    if missing:
        raise ValueError(f"missing columns {sorted(missing)}")
    if not pd.api.types.is_numeric_dtype(evals["step"]) or evals["step"].isna().any():
        raise ValueError("non-numeric step column")
    return evals


def read_run(key: RunKey, runs_dir: Path) -> RunRecord:
    """Classify one expected run and load its evaluations when it finished."""
    run_dir = key.path(runs_dir)
    summary_path, eval_path = run_dir / "summary.json", run_dir / "eval.csv"
    if not run_dir.is_dir():
        return RunRecord(key, "missing", f"no run directory {run_dir}")
    if not summary_path.exists():
        return RunRecord(key, "running", f"no summary.json yet in {run_dir} (running or killed)")
    try:
        summary = json.loads(summary_path.read_text())
        if not isinstance(summary, dict):
            raise TypeError("not a JSON object")
    except (TypeError, ValueError, OSError) as error:
        return RunRecord(key, "failed", f"corrupt {summary_path}: {error}")
    if summary.get("status") == "diverged":
        return RunRecord(key, "diverged", f"{summary_path}: {summary.get('reason', 'non-finite values')}")
    if summary.get("status") != "finished":
        return RunRecord(key, "failed", f"{summary_path} has status {summary.get('status')!r}")
    if not eval_path.exists():
        return RunRecord(key, "failed", f"missing {eval_path}")
    try:
        evals = _read_evals(eval_path)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        return RunRecord(key, "failed", f"corrupt {eval_path}: {error}")
    if evals.empty:
        return RunRecord(key, "failed", f"{eval_path} has no evaluations")
    column = headline(key.env)
    if column not in evals:
        return RunRecord(key, "failed", f"{eval_path} has no {column} column")
    if evals[column].isna().any() or evals["return_mean"].isna().any():
        return RunRecord(key, "failed", f"NaN scores in {eval_path} (diverged?)")
    return RunRecord(key, "finished", "", evals, summary)


def metric_columns(evals: pd.DataFrame) -> list[str]:
    """Every logged metric of eval.csv: numeric, not bookkeeping, not per-z, not all empty."""
    return [name for name in evals.columns
            if name not in NOT_METRICS and not PER_Z.fullmatch(name) and evals[name].notna().any()
            and pd.api.types.is_numeric_dtype(evals[name])]


def tidy_scores(key: RunKey, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluation and logged metric, plus the normalised headline `score` and, where
    logged, `score_uniform_z`, `score_max_z` and `score_max_z_uniform_z`."""
    norm = optimum(key.env, key.map)
    columns = {name: evals[name] for name in metric_columns(evals)}
    base = headline(key.env)
    columns["score"] = evals[base] / norm
    for logged, score in ((f"{base}_uniform_z", "score_uniform_z"), (f"max_z_{base}", "score_max_z"),
                          (f"max_z_{base}_uniform_z", "score_max_z_uniform_z")):
        if logged in columns:
            columns[score] = evals[logged] / norm
    frames = [
        pd.DataFrame({"step": evals["step"].astype(int), "metric": name, "value": values.astype(float)})
        for name, values in columns.items()
    ]
    long = pd.concat(frames, ignore_index=True)
    long = long[long["value"].notna()]  # e.g. the loss before the first update, a z the pass never drew
    for field, value in reversed(list(zip(["env", "map", "algo", "seed"], [key.env, key.map, key.algo, key.seed]))):
        long.insert(0, field, value)
    return long[SCORE_COLUMNS]


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def aggregate(runs_dir: Path, expected: list[RunKey] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, runs) for the expected grid; unexpected run directories are ignored."""
    keys = sorted(set(expected)) if expected is not None else discover_runs(runs_dir)
    score_frames, rows = [], []
    for key in keys:
        record = read_run(key, runs_dir)
        summary = record.summary or {}
        rows.append({**vars(key), "status": record.status, "reason": record.reason,
                     "path": str(key.path(runs_dir)), "env_steps": _finite(summary.get("env_steps")),
                     "wall_time_s": _finite(summary.get("wall_time_s")), "preset": summary.get("preset")})
        if record.status == "finished":
            score_frames.append(tidy_scores(key, record.evals))
    scores = pd.concat(score_frames, ignore_index=True) if score_frames else pd.DataFrame(columns=SCORE_COLUMNS)
    return scores, pd.DataFrame(rows, columns=RUN_COLUMNS)


def describe_presets(runs: pd.DataFrame) -> str:
    """The protocol a figure or table shows, from its finished runs' presets: "preset matched",
    or "presets maven paper, qmix pymarl" when they differ (runs.csv files written before the
    preset column existed: "preset not recorded")."""
    finished = runs[runs["status"] == "finished"] if "status" in runs else runs
    if "preset" not in finished or finished["preset"].isna().all():
        return "preset not recorded"
    by_algo = finished.dropna(subset=["preset"]).groupby("algo")["preset"].unique()
    presets = {p for values in by_algo for p in values}
    if len(presets) == 1:
        return f"preset {presets.pop()}"
    return "presets " + ", ".join(f"{algo} {'/'.join(sorted(values))}" for algo, values in by_algo.items())


def read_scores(path: Path) -> pd.DataFrame:
    """Load scores.csv with stable dtypes (seed and step as int)."""
    scores = pd.read_csv(path, dtype={"env": str, "map": str, "algo": str, "metric": str})
    return scores.astype({"seed": int, "step": int, "value": float})


def write_aggregate(scores: pd.DataFrame, runs: pd.DataFrame, scores_path: Path, runs_path: Path) -> None:
    for path in (scores_path, runs_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(scores_path, index=False)
    runs.to_csv(runs_path, index=False)
