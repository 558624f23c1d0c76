"""The original MAVEN code's logs -> the run-directory contract (docs: evaluation.md §2).

The original (AnujMahajanOxf/MAVEN, run by scripts/original/run_original.py) logs every statistic
as a list of (t_env, value) pairs: in its logger (dumped to `stats.json` by the harness) and in
sacred's `info.json` (`key` and `key_T` lists). Its test statistics map onto eval.csv as:

| original key | eval.csv column |
|---|---|
| test_return_mean / _std, test_ep_length_mean, test_battle_won_mean | return_mean / _std, ep_length_mean, win_rate |
| test_uni_return_mean, test_uni_battle_won_mean | return_mean_uniform_z, win_rate_uniform_z |
| max_noise_test_ret_u_0 / _1 | max_z_return_mean / max_z_return_mean_uniform_z |
| {z}_noise_test_ret_u_0 / _1 | z{z}_return_mean / z{z}_return_mean_uniform_z |
| max_noise_test_won, max_noise_test_uni_won, {z}_noise_test_won, {z}_noise_test_uni_won | max_z_win_rate, ... |

and, from the training statistics last logged at or before each test: episode, epsilon,
bandit_entropy (z_policy_entropy), loss (td_loss: the original logs L_TD + mi_loss * L_MI under
`loss`), grad_norm, discrim_loss (mi_loss). The original keeps only means, so metrics.json holds
each test's mean as a one-element list, not per-episode values (marked in config.yaml).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from maven.errors import UserError
from maven.rundir import EVAL_COLUMNS, LATENT_COLUMNS, RunDir

TEST_KEYS = {
    "return_mean": "test_return_mean", "return_std": "test_return_std", "win_rate": "test_battle_won_mean",
    "ep_length_mean": "test_ep_length_mean", "return_mean_uniform_z": "test_uni_return_mean",
    "win_rate_uniform_z": "test_uni_battle_won_mean", "max_z_return_mean": "max_noise_test_ret_u_0",
    "max_z_return_mean_uniform_z": "max_noise_test_ret_u_1", "max_z_win_rate": "max_noise_test_won",
    "max_z_win_rate_uniform_z": "max_noise_test_uni_won",
}
TRAIN_KEYS = {"episode": "episode", "epsilon": "epsilon", "z_policy_entropy": "bandit_entropy",
              "td_loss": "loss", "grad_norm": "grad_norm", "mi_loss": "discrim_loss"}
PER_Z_KEYS = [(re.compile(r"(\d+)_noise_test_ret_u_0"), "z{}_return_mean"),
              (re.compile(r"(\d+)_noise_test_ret_u_1"), "z{}_return_mean_uniform_z"),
              (re.compile(r"(\d+)_noise_test_won"), "z{}_win_rate"),
              (re.compile(r"(\d+)_noise_test_uni_won"), "z{}_win_rate_uniform_z")]


def read_stats(path: Path) -> dict[str, list[tuple[int, float]]]:
    """stats.json ({key: [[t, value], ...]}) or sacred's info.json ({key: [...], key_T: [...]}).
    sacred's info.json is written every few seconds and pickles tensors, so its tail and the
    original's grad_norm are missing from it; the harness's stats.json has the full history."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the original's log {path}: {error}") from None
    stats: dict[str, list[tuple[int, float]]] = {}
    for key, values in raw.items():
        if key.endswith("_T") or not isinstance(values, list):
            continue
        if values and isinstance(values[0], list):  # stats.json pairs
            pairs = list(values)
        elif f"{key}_T" in raw:
            pairs = list(zip(raw[f"{key}_T"], values))
        else:
            continue
        numbers = [(int(t), _number(v)) for t, v in pairs]
        if all(v is not None for _, v in numbers):  # else a pickled tensor (the original's grad_norm)
            stats[key] = numbers
    if "test_return_mean" not in stats:
        raise UserError(f"{path} has no test_return_mean: the original run logged no evaluation yet")
    return stats


def _number(value) -> float | None:
    """A number, or sacred's jsonpickle of a numpy scalar ({"py/object": "numpy.float64", "value": x});
    None for anything else (sacred pickles torch tensors as opaque bytes)."""
    if isinstance(value, dict) and str(value.get("py/object", "")).startswith("numpy."):
        value = value.get("value")
    return float(value) if isinstance(value, int | float) else None


def _last_at_or_before(series: list[tuple[int, float]], t: int) -> float | None:
    chosen = None
    for step, value in series:
        if step > t:
            break
        chosen = value
    return chosen


def eval_rows(stats: dict[str, list[tuple[int, float]]]) -> tuple[list[dict], list[str]]:
    """One row per test of the original (its test_return_mean entries) -> (rows, columns)."""
    per_z: dict[str, tuple[str, list[tuple[int, float]]]] = {}
    for key, series in stats.items():
        for pattern, column in PER_Z_KEYS:
            match = pattern.fullmatch(key)
            if match:
                per_z[column.format(match.group(1))] = series
    rows = []
    for t, _ in stats["test_return_mean"]:
        row: dict = {}
        for column, key in TEST_KEYS.items():
            values = dict(stats.get(key, []))
            row[column] = values.get(t)
        for column, series in per_z.items():
            row[column] = dict(series).get(t)
        for column, key in TRAIN_KEYS.items():
            row[column] = _last_at_or_before(stats.get(key, []), t)
        row["step"] = t
        row["episode"] = None if row["episode"] is None else int(row["episode"])
        rows.append(row)
    present = {c for row in rows for c, v in row.items() if v is not None}

    def z_order(name):
        return int(re.match(r"z(\d+)_", name).group(1))

    extra = ["epsilon", "td_loss", "grad_norm", "mi_loss", "z_policy_entropy"]
    max_z = [c for c in TEST_KEYS if c.startswith("max_z_") and c in present]
    zs = sorted((c for c in per_z if c in present), key=lambda c: (c.split("_", 1)[1], z_order(c)))
    columns = EVAL_COLUMNS + LATENT_COLUMNS + extra + max_z + zs
    return rows, columns


def convert(stats_path: Path, out: Path, env: str, map_name: str, algo: str, seed: int, record: dict) -> dict:
    """Write config.yaml, eval.csv, metrics.json and (last) summary.json of one original run.
    `record`: what the harness ran (commit, command, overrides, edits, versions)."""
    stats = read_stats(stats_path)
    rows, columns = eval_rows(stats)
    run_dir = RunDir(out)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    doc = {"config": {"env": env, "map": map_name, "algo": algo, "seed": seed, "runner": "original"},
           "original": record, "metrics_json": "test means only (the original keeps no per-episode values)"}
    run_dir.config.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_dir.write_eval(rows, columns)
    steps = [{"step_count": row["step"], "return": [row["return_mean"]],
              **({"return_uniform_z": [row["return_mean_uniform_z"]]} if row["return_mean_uniform_z"] is not None
                 else {})} for row in rows]
    run_dir.write_metrics(env, map_name, algo, seed, steps)
    key = "win_rate" if rows[-1]["win_rate"] is not None else "return_mean"
    best = max(rows, key=lambda r: r[key])

    def score(row):
        return {"return_mean": row["return_mean"], "win_rate": row["win_rate"], "step": row["step"],
                "return_mean_uniform_z": row["return_mean_uniform_z"]}

    summary = {"status": "finished", "env": env, "map": map_name, "algo": algo, "preset": "original",
               "seed": seed, "env_steps": rows[-1]["step"], "episodes": rows[-1]["episode"],
               "wall_time_s": record.get("wall_time_s"), "final": score(rows[-1]), "best": score(best),
               "runner": "original", "commit": record.get("commit")}
    if record.get("wall_time_s"):
        summary["env_steps_per_s"] = round(rows[-1]["step"] / record["wall_time_s"], 1)
    run_dir.write_summary(summary)
    return summary
