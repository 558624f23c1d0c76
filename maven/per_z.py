"""Per-z test metrics as the original MAVEN code logs them (reference.md §1.7, quirk Q6).

For each test pass (z from the z-policy, then z uniform) the original logs, per value of z that
occurred, the mean return (`{z}_noise_test_ret_u_{0|1}`) and win rate (`{z}_noise_test_won`,
`{z}_noise_test_uni_won`), and their maximum over z (`max_noise_test_ret_u_{0|1}`,
`max_noise_test_won`, `max_noise_test_uni_won`; a z that never occurred is not logged).

Quirk Q6: the original keeps one per-z return list for training and test episodes and empties it
only when it logs: after each test pass, and on its train log (the first training episode that
ends `runner_log_interval` env steps or more after the previous train log). So the policy-z pass's
per-z returns also average the training episodes (with exploration) played since the later of
the previous evaluation and the last train log; the uniform pass follows the policy pass's log
and holds test episodes only. Win lists are kept apart for training and test and are clean.
`per_z_test_logs_include_train` True reproduces this; False uses the pass's test episodes only.

Every quantity is per member of a population; training episodes are recorded as numpy arrays.
"""

from __future__ import annotations

import numpy as np

FIRST_TRAIN_LOG = -100_000  # the original runner's initial `log_train_stats_t`


def per_z_columns(k: int, has_win: bool, uniform_pass: bool) -> list[str]:
    """The eval.csv columns of the per-z metrics: z<i>_<metric>[_uniform_z] and max_z_..."""
    metrics = ["return_mean"] + (["win_rate"] if has_win else [])
    suffixes = [""] + (["_uniform_z"] if uniform_pass else [])
    columns = [f"max_z_{m}{s}" for s in suffixes for m in metrics]
    columns += [f"z{z}_{m}{s}" for s in suffixes for m in metrics for z in range(k)]
    return columns


class PerZLog:
    """Each member's training (z, return) pairs that the original would mix into its next
    policy-z pass, and the per-z statistics of a test pass."""

    def __init__(self, n_members: int, k: int, include_train: bool, runner_log_interval: int):
        self.k, self.include_train, self.interval = k, include_train, runner_log_interval
        self.pending: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n_members)]
        self.last_train_log = np.full(n_members, FIRST_TRAIN_LOG, np.int64)

    def add_train(self, z: np.ndarray, returns: np.ndarray, kept: np.ndarray, members: np.ndarray,
                  t_env: np.ndarray) -> None:
        """A training rollout: z, returns, kept [S, B]; members [S] bool; t_env [S] after it.
        The original adds the episodes, then empties its list on a train log."""
        for k in np.flatnonzero(members):
            self.pending[k].append((z[k][kept[k]], returns[k][kept[k]]))
            if t_env[k] - self.last_train_log[k] >= self.interval:
                self.pending[k] = []
                self.last_train_log[k] = t_env[k]

    def clear(self, members: np.ndarray) -> None:
        """After an evaluation: the original empties its lists when it logs a test pass."""
        for k in np.flatnonzero(members):
            self.pending[k] = []

    def state(self, k: int) -> dict:
        return {"pending": [(z.tolist(), r.tolist()) for z, r in self.pending[k]],
                "last_train_log": int(self.last_train_log[k])}

    def load_state(self, k: int, state: dict | None) -> None:
        if state is None:  # a checkpoint from before per-z logs: start empty
            return
        self.pending[k] = [(np.asarray(z, np.int64), np.asarray(r, np.float64)) for z, r in state["pending"]]
        self.last_train_log[k] = state["last_train_log"]

    def pass_stats(self, k: int, z: np.ndarray, returns: np.ndarray, wins: np.ndarray | None,
                   policy_pass: bool) -> tuple[dict[str, float], dict[str, list[float]]]:
        """One member's test pass -> (eval.csv values without the pass suffix, per-z return lists).
        z, returns, wins: [n] of the pass's test episodes."""
        ret_z, ret = np.asarray(z), np.asarray(returns, np.float64)
        if policy_pass and self.include_train and self.pending[k]:
            ret_z = np.concatenate([*(pz for pz, _ in self.pending[k]), ret_z])
            ret = np.concatenate([*(pr for _, pr in self.pending[k]), ret])
        row: dict[str, float] = {}
        lists: dict[str, list[float]] = {}
        means = []
        for value in range(self.k):
            chosen = ret[ret_z == value]
            if len(chosen):
                means.append(float(chosen.mean()))
                row[f"z{value}_return_mean"] = means[-1]
                lists[f"z{value}_return"] = chosen.tolist()
        row["max_z_return_mean"] = max(means) if means else None
        if wins is not None:
            rates = [float(wins[z == value].mean()) for value in range(self.k) if (z == value).any()]
            for value in range(self.k):
                if (z == value).any():
                    row[f"z{value}_win_rate"] = float(wins[z == value].mean())
            row["max_z_win_rate"] = max([0.0, *rates])  # the original starts its maximum at 0
        return row, lists
