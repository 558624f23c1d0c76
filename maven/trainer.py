"""The training loop: rollout -> replay -> update -> target sync -> greedy evaluation -> log ->
checkpoint, in PyMARL's order, with everything needed to resume exactly in the checkpoint."""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from maven import algos, envs
from maven.config import TrainConfig
from maven.errors import UserError
from maven.replay import ReplayBuffer
from maven.rundir import EVAL_COLUMNS, MAVEN_COLUMNS, RunDir
from maven.runner import epsilon_at, rollout

LOSS_COLUMNS = ["epsilon", "td_loss", "grad_norm", "mi_loss", "z_policy_entropy", "crashed_episodes"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, cfg: TrainConfig, out: str | Path, progress: bool | None = None):
        self.cfg = cfg
        self.run_dir = RunDir(out)
        self.device = resolve_device(cfg.device)
        self.progress = sys.stderr.isatty() if progress is None else progress

    # --- set-up --------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        seed_everything(cfg.seed)
        self.env = envs.make(cfg, cfg.batch_size_run, self.device)
        self.info = self.env.info
        self.external = envs.ENVS[cfg.env].external  # SMAC: tests reuse the workers, no reseeding
        self.batched_tests = not self.external
        self.test_env = envs.make(cfg, cfg.test_nepisode, self.device) if self.batched_tests else self.env
        self.learner = algos.learner_class(cfg.algo)(cfg, self.info, self.device, seed=cfg.seed)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.device)
        self.rng = np.random.default_rng(cfg.seed)  # draws the env seed of every rollout
        self.t_env = self.episode = 0
        self.last_test_t = -cfg.test_interval - 1
        self.last_checkpoint_t = 0
        self.rows: list[dict] = []
        self.metric_steps: list[dict] = []
        self.crashed_episodes = 0
        self.wall_before = 0.0
        self.last_stats: dict = {}

    def _checkpoints(self) -> list[Path]:
        """The resumable checkpoints, oldest first."""
        return sorted(self.run_dir.checkpoints.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))

    def _checkpoint_path(self) -> Path | None:
        found = self._checkpoints()
        return found[-1] if found else None

    def save_checkpoint(self) -> None:
        state = {
            "learner": self.learner.state_dict(), "buffer": self.buffer.state_dict(),
            "t_env": self.t_env, "episode": self.episode, "last_test_t": self.last_test_t,
            "rows": self.rows, "metric_steps": self.metric_steps, "crashed_episodes": self.crashed_episodes,
            "last_stats": {k: float(v) for k, v in self.last_stats.items()}, "wall_time_s": self.wall_time(), "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
        }
        self.run_dir.checkpoints.mkdir(exist_ok=True)
        path = self.run_dir.checkpoints / f"step_{self.t_env}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        self.last_checkpoint_t = self.t_env
        for old in self._checkpoints()[: -self.cfg.checkpoints_kept]:
            old.unlink()

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.learner.load_state_dict(state["learner"])
        self.buffer.load_state_dict(state["buffer"])
        for key in ("t_env", "episode", "last_test_t", "rows", "metric_steps", "crashed_episodes", "last_stats"):
            setattr(self, key, state[key])
        self.wall_before = state["wall_time_s"]
        self.last_checkpoint_t = self.t_env
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def wall_time(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def _next_seed(self) -> int | None:
        """The seed of the next rollout's reset, drawn from the run's own generator."""
        seed = int(self.rng.integers(2 ** 31 - 1))
        return None if self.external else seed

    # --- evaluation -----------------------------------------------------------------------------
    def _test_pass(self, uniform_z: bool):
        """Greedy episodes: z from the z-policy (headline) or uniform (MAVEN's second pass)."""
        returns, wins, lengths = [], [], []
        n_rollouts = 1 if self.batched_tests else max(1, math.ceil(self.cfg.test_nepisode / self.cfg.batch_size_run))
        for _ in range(n_rollouts):
            _, stats = rollout(self.test_env, self.learner, self.cfg, self._next_seed(), 0.0, uniform_z)
            kept = stats.kept
            returns.append(stats.returns[kept])
            wins.append(stats.won[kept])
            lengths.append(stats.lengths[kept])
            self.crashed_episodes += int(stats.crashed.sum())
        return torch.cat(returns).cpu(), torch.cat(wins).cpu(), torch.cat(lengths).cpu()

    def evaluate(self) -> dict:
        has_win = self.info.has_win
        returns, wins, lengths = self._test_pass(uniform_z=False)
        row = {"step": self.t_env, "episode": self.episode,
               "return_mean": float(returns.mean()), "return_std": float(returns.std(unbiased=False)),
               "win_rate": float(wins.float().mean()) if has_win else None,
               "ep_length_mean": float(lengths.float().mean()), "wall_time_s": round(self.wall_time(), 2),
               "epsilon": epsilon_at(self.t_env, self.cfg), "crashed_episodes": self.crashed_episodes}
        for key in ("td_loss", "grad_norm", "mi_loss", "z_policy_entropy"):
            if key in self.last_stats:
                row[key] = float(self.last_stats[key])
        entry = {"step_count": self.t_env, "return": returns.tolist()}
        if has_win:
            entry["win_rate"] = wins.float().tolist()
        if self.cfg.algo == "maven" and self.cfg.test_uniform_z:
            u_returns, u_wins, _ = self._test_pass(uniform_z=True)
            row["return_mean_uniform_z"] = float(u_returns.mean())
            row["win_rate_uniform_z"] = float(u_wins.float().mean()) if has_win else None
            entry["return_uniform_z"] = u_returns.tolist()
            if has_win:
                entry["win_rate_uniform_z"] = u_wins.float().tolist()
        self.rows.append(row)
        self.metric_steps.append(entry)
        self.last_test_t = self.t_env
        self._write_logs()
        return row

    def _columns(self) -> list[str]:
        base = EVAL_COLUMNS + (MAVEN_COLUMNS if self.cfg.algo == "maven" else [])
        return base + LOSS_COLUMNS

    def _write_logs(self) -> None:
        cfg = self.cfg
        self.run_dir.write_eval(self.rows, self._columns())
        self.run_dir.write_metrics(cfg.env, cfg.map, cfg.algo, cfg.seed, self.metric_steps)

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> dict | None:
        """Train to t_max (resuming when a checkpoint exists); returns the summary, or None if the
        run had already finished (nothing is re-run or overwritten)."""
        cfg = self.cfg
        resolved = cfg.to_dict()
        status = self.run_dir.claim(resolved)
        if status == "finished":
            print(f"{self.run_dir.path}: finished already (summary.json exists); nothing to do")
            return None
        self._build()
        self.started = time.perf_counter()
        checkpoint = self._checkpoint_path() if status == "resume" else None
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
            self._write_logs()  # drop rows logged after the checkpoint
            print(f"{self.run_dir.path}: resuming from {checkpoint.name} (t_env={self.t_env})", flush=True)
        else:
            self.run_dir.write_config(resolved, str(self.device), self.env.metadata())
        bar = self._progress_bar()
        try:
            while self.t_env <= cfg.t_max:
                self._train_iteration()
                if (self.t_env - self.last_test_t) / cfg.test_interval >= 1.0:
                    row = self.evaluate()
                    self._report(bar, row)
                self.episode += cfg.batch_size_run
                if self.t_env - self.last_checkpoint_t >= cfg.checkpoint_interval:
                    self.save_checkpoint()
                if bar is not None:
                    bar.n = min(self.t_env, cfg.t_max)
                    bar.refresh()
            if self.last_test_t != self.t_env:
                self._report(bar, self.evaluate())
            summary = self._summary()
        finally:
            if bar is not None:
                bar.close()
            self.env.close()
            if self.test_env is not self.env:
                self.test_env.close()
        self.run_dir.write_summary(summary)
        self._prune_checkpoints()
        return summary

    def _train_iteration(self) -> None:
        cfg = self.cfg
        epsilon = epsilon_at(self.t_env, cfg)
        batch, stats = rollout(self.env, self.learner, cfg, self._next_seed(), epsilon)
        self.t_env += int(stats.lengths.sum())
        self.crashed_episodes += int(stats.crashed.sum())
        kept = stats.kept
        if bool(kept.any()):
            self.last_stats.update(self.learner.after_rollout(stats.s0[kept], stats.z[kept], stats.returns[kept]))
        self.buffer.insert(batch)
        if self.buffer.can_sample(cfg.batch_size):
            sample = self.buffer.sample(cfg.batch_size)
            self.last_stats.update(self.learner.update(sample, self.episode))

    def _summary(self) -> dict:
        def score(row):
            return {"return_mean": row["return_mean"], "win_rate": row["win_rate"], "step": row["step"]}

        key = "win_rate" if self.info.has_win else "return_mean"
        best = max(self.rows, key=lambda r: r[key])
        wall = self.wall_time()
        summary = {
            "status": "finished", "env": self.cfg.env, "map": self.cfg.map, "algo": self.cfg.algo,
            "preset": self.cfg.preset, "seed": self.cfg.seed, "env_steps": self.t_env,
            "episodes": self.episode, "wall_time_s": round(wall, 2),
            "env_steps_per_s": round(self.t_env / max(wall, 1e-9), 1),
            "final": score(self.rows[-1]), "best": score(best), "crashed_episodes": self.crashed_episodes,
            "device": str(self.device),
        }
        if self.cfg.algo == "maven":
            summary["final"]["return_mean_uniform_z"] = self.rows[-1].get("return_mean_uniform_z")
            summary["final"]["win_rate_uniform_z"] = self.rows[-1].get("win_rate_uniform_z")
        return summary

    def _prune_checkpoints(self) -> None:
        """A finished run keeps only its final networks (no replay): small, and enough to re-evaluate."""
        if self.run_dir.checkpoints.exists():
            for old in self._checkpoints():
                old.unlink()
        self.run_dir.checkpoints.mkdir(exist_ok=True)
        torch.save(self.learner.state_dict(), self.run_dir.checkpoints / "final.pt")

    # --- progress -------------------------------------------------------------------------------
    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.cfg.t_max, initial=min(self.t_env, self.cfg.t_max), unit="step",
                    unit_scale=True, dynamic_ncols=True, desc=f"{self.cfg.algo} {self.cfg.map} s{self.cfg.seed}")

    def _report(self, bar, row: dict) -> None:
        score = (f"win {100 * row['win_rate']:.1f}%" if row["win_rate"] is not None
                 else f"return {row['return_mean']:.2f}")
        speed = row["step"] / max(row["wall_time_s"], 1e-9)
        if bar is not None:
            bar.set_postfix_str(f"{score} {speed:.0f} steps/s")
            return
        extra = f" z-entropy {row['z_policy_entropy']:.3f}" if "z_policy_entropy" in row else ""
        print(f"[{self.cfg.algo} {self.cfg.env}/{self.cfg.map} seed {self.cfg.seed}] step {row['step']} "
              f"{score} ({speed:.0f} env steps/s, {row['wall_time_s']:.0f} s){extra}", flush=True)
