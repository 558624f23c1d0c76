"""The training loop for a population: S independent runs of one configuration (one per seed)
trained in lockstep in one process, the member a batch axis of every tensor. A single run is a
population of one; there is no other trainer.

Each iteration, in PyMARL's order: rollout -> z-policy -> replay -> update -> target sync ->
greedy evaluation -> log -> checkpoint. Members step their episodes together, but each keeps its
own counters (env steps, episodes, last test), so its epsilon, tests and end follow its own
counter exactly as its single run would, and each member writes its own run directory
(rundir.py) and its own checkpoints.

Checkpoints are the one thing members do together: when any member is due one (by its own
counter), every running member writes one. Members' batches share one padded length (replay.py),
so a member's arithmetic can depend in its last bits on where the others are; resuming all of
them from the same iteration makes a killed population resume exactly.

Faults (faults.py, exit codes in errors.py): each run directory is locked before anything is
written; a member whose loss or gradient norm stops being finite stops alone (summary status
"diverged", no checkpoint after the bad update) or skips that update (on_nonfinite); SIGTERM and
SIGINT end the current iteration, checkpoint every running member and stop.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from maven import algos, envs
from maven.compiled import padded_lengths
from maven.config import TrainConfig
from maven.errors import CheckpointWriteError, Interrupted, UserError
from maven.faults import StopSignals, nonfinite_members
from maven.per_z import PerZLog, per_z_columns
from maven.replay import ReplayBuffer
from maven.rundir import EVAL_COLUMNS, LATENT_COLUMNS, RunDir
from maven.runner import ActionStreams, epsilon_at, rollout
from maven.streams import Streams

LOSS_COLUMNS = ["epsilon", "td_loss", "grad_norm", "mi_loss", "z_policy_entropy", "crashed_episodes"]
LOGGED_STATS = ("td_loss", "grad_norm", "mi_loss", "z_policy_entropy")


def _iteration_of(checkpoint: Path) -> int | None:
    """The population round a checkpoint belongs to (step_<t_env>_it<round>.pt)."""
    parts = checkpoint.stem.split("_it")
    return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
    return torch.device(name)


@dataclass
class Member:
    """What one member keeps outside tensors: its directory and its logs."""

    seed: int
    run_dir: RunDir
    rows: list[dict] = field(default_factory=list)
    metric_steps: list[dict] = field(default_factory=list)


class Trainer:
    def __init__(self, cfgs: TrainConfig | list[TrainConfig], outs: str | Path | list, progress: bool | None = None,
                 threads: dict | None = None):
        """cfgs and outs: one per member (a single config and path train one run). The configs
        must differ only in their seed."""
        cfgs = cfgs if isinstance(cfgs, list) else [cfgs]
        outs = outs if isinstance(outs, list) else [outs]
        if len(cfgs) != len(outs):
            raise ValueError("one output directory per member")
        seeds = [c.seed for c in cfgs]
        if len(set(seeds)) != len(seeds):
            raise UserError(f"duplicate seeds in one population: {seeds}")
        if len({str(Path(o).resolve()) for o in outs}) != len(outs):
            raise UserError("two members of one population write to the same --out directory")
        base = {k: v for k, v in cfgs[0].to_dict().items() if k != "seed"}
        for c in cfgs[1:]:
            if {k: v for k, v in c.to_dict().items() if k != "seed"} != base:
                raise ValueError("the members of a population differ only in their seed")
        self.cfgs, self.cfg = cfgs, cfgs[0]
        self.outs = [Path(o) for o in outs]
        self.device = resolve_device(self.cfg.device)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.threads = threads or {"torch_threads": torch.get_num_threads()}

    # --- set-up --------------------------------------------------------------------------------
    def _claim(self) -> list[tuple[TrainConfig, RunDir, str]]:
        """Every member's directory checked, then locked (all those with work left, before any
        file is written; a finished one is not touched), then checked again under the lock:
        (cfg, run dir, 'new'|'resume') for the members still to train. Diverged members are
        recorded in self.diverged_before."""
        defaults = TrainConfig().to_dict()
        run_dirs = [RunDir(out) for out in self.outs]
        # read-only: refuse before creating anything
        settled = [run_dir.claim(cfg.to_dict(), defaults) in ("finished", "diverged")
                   for cfg, run_dir in zip(self.cfgs, run_dirs)]
        self.run_dirs = run_dirs  # unlocked when run() ends (the OS does it if the process dies)
        for run_dir, done in zip(run_dirs, settled):
            if not done:
                run_dir.lock()
        pending, self.diverged_before = [], {}
        for cfg, run_dir in zip(self.cfgs, run_dirs):
            status = run_dir.claim(cfg.to_dict(), defaults)
            if status == "finished":
                print(f"{run_dir.path}: finished already (summary.json exists); nothing to do", flush=True)
            elif status == "diverged":
                summary = run_dir.read_summary()
                self.diverged_before[cfg.seed] = summary
                print(f"error: {run_dir.path} diverged earlier ({summary.get('reason', 'see summary.json')}); "
                      "remove the directory to train it again", file=sys.stderr, flush=True)
            else:
                pending.append((cfg, run_dir, status))
        return pending

    def _build(self, pending) -> None:
        cfg = self.cfg
        self.members = [Member(c.seed, run_dir) for c, run_dir, _ in pending]
        seeds = [m.seed for m in self.members]
        S = self.n_members = len(seeds)
        self.env = envs.make(cfg, cfg.batch_size_run, self.device, seeds)
        self.info = self.env.info
        self.external = envs.ENVS[cfg.env].external  # SMAC: tests reuse the workers, no reseeding
        self.batched_tests = not self.external
        self.test_env = envs.make(cfg, cfg.test_nepisode, self.device, seeds) if self.batched_tests else self.env
        self.learner = algos.learner_class(cfg.algo)(cfg, self.info, self.device, seeds)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.info, S, self.device, seeds,
                                   None if cfg.compile == "eager" else padded_lengths(self.info.episode_limit))
        self.action_streams = ActionStreams(seeds, self.device)
        self.env_seeds = Streams(seeds, "env_seed", self.device)  # the seed of every rollout's reset
        self.iteration = 0  # the population's training iterations (names checkpoint rounds)
        self.t_env = np.zeros(S, np.int64)
        self.episode = np.zeros(S, np.int64)
        self.last_test_t = np.full(S, -cfg.test_interval - 1, np.int64)
        self.last_checkpoint_t = np.zeros(S, np.int64)
        self.crashed_episodes = np.zeros(S, np.int64)
        self.wall_before = np.zeros(S)
        self.skipped_updates = np.zeros(S, np.int64)  # non-finite updates skipped (on_nonfinite)
        self.last_stats: dict[str, torch.Tensor] = {}
        self.per_z = (PerZLog(S, cfg.noise_dim, cfg.per_z_test_logs_include_train, cfg.runner_log_interval)
                      if self.learner.has_latent else None)

    def wall_time(self, k: int) -> float:
        return float(self.wall_before[k] + time.perf_counter() - self.started)

    def _reset_seeds(self, members: np.ndarray) -> list[int | None] | None:
        """Each drawing member's next env seed from its own stream (None for the others)."""
        if self.external:
            return None
        drawn = self.env_seeds.integers(2 ** 31 - 1, 1, self._mask(members))[:, 0].tolist()
        return [int(s) if on else None for s, on in zip(drawn, members)]

    def _mask(self, members: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(members, device=self.device)

    # --- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, k: int) -> None:
        member = self.members[k]
        state = {
            "seed": member.seed, "learner": self.learner.member_state(k), "buffer": self.buffer.member_state(k),
            "streams": {"actions": self.action_streams.member_state(k), "env_seed": self.env_seeds.member_state(k)},
            "t_env": int(self.t_env[k]), "episode": int(self.episode[k]), "last_test_t": int(self.last_test_t[k]),
            "crashed_episodes": int(self.crashed_episodes[k]), "rows": member.rows,
            "metric_steps": member.metric_steps, "wall_time_s": self.wall_time(k),
            "last_stats": {name: float(v[k]) for name, v in self.last_stats.items()},
            "iteration": self.iteration, "skipped_updates": int(self.skipped_updates[k]),
            "per_z": self.per_z.state(k) if self.per_z else None,
        }
        run_dir = member.run_dir
        path = run_dir.checkpoints / f"step_{self.t_env[k]}_it{self.iteration}.pt"
        tmp = path.with_suffix(".tmp")
        try:  # written whole or not at all: a crash or a full disk leaves the older ones as they were
            run_dir.checkpoints.mkdir(exist_ok=True)
            with open(tmp, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except (OSError, RuntimeError) as err:  # torch's zip writer reports a short write as RuntimeError
            tmp.unlink(missing_ok=True)
            why = (err.strerror if isinstance(err, OSError) and err.strerror
                   else f"the write was cut short, disk full or a file size limit? torch: {str(err).splitlines()[0]}")
            raise CheckpointWriteError(
                f"cannot write checkpoint {path} ({why}); the partial file was removed and the previous "
                "checkpoints are kept: free space or fix permissions, then rerun to resume") from None
        self.last_checkpoint_t[k] = self.t_env[k]
        for old in run_dir.list_checkpoints()[: -self.cfg.checkpoints_kept]:
            old.unlink()

    def _resume(self, resuming: list[int]) -> set[int]:
        """Load the resuming members' checkpoints, from the newest round they all have when there
        is one (so the population resumes exactly, see the module docstring), else each from its
        newest readable one. Returns the members that found one."""
        for k in resuming:  # a write cut short by a kill (nobody else writes here: we hold the lock)
            for partial in self.members[k].run_dir.checkpoints.glob("*.tmp"):
                partial.unlink()
        rounds = [{_iteration_of(p) for p in self.members[k].run_dir.list_checkpoints()} for k in resuming]
        common = set.intersection(*rounds) - {None} if rounds else set()
        prefer = max(common) if common else None
        loaded = {k for k in resuming if self._load_checkpoint_of(k, prefer)}
        if loaded:
            self.iteration = max(self.iteration_of_member[k] for k in loaded)
        return loaded

    def _load_checkpoint_of(self, k: int, prefer: int | None) -> bool:
        """Resume member k from its checkpoint of round `prefer`, else its newest readable one;
        one that cannot be read is renamed aside with a warning. False when there is none."""
        run_dir = self.members[k].run_dir
        newest_first = list(reversed(run_dir.list_checkpoints()))
        for path in sorted(newest_first, key=lambda p: _iteration_of(p) != prefer):  # stable: preferred first
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
                self._load_checkpoint(k, state)
            except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is set aside
                aside = path.with_name(path.name + ".unreadable")
                path.replace(aside)
                print(f"warning: {path} cannot be read ({type(err).__name__}); renamed to {aside.name}",
                      file=sys.stderr, flush=True)
                continue
            self.iteration_of_member[k] = state.get("iteration", 0)
            print(f"{run_dir.path}: resuming from {path.name} (t_env={self.t_env[k]})", flush=True)
            return True
        return False

    def _load_checkpoint(self, k: int, state: dict) -> None:
        member = self.members[k]
        if state["seed"] != member.seed:
            raise ValueError(f"checkpoint of seed {state['seed']}")
        self.learner.load_member_state(k, state["learner"])
        self.buffer.load_member_state(k, state["buffer"])
        self.action_streams.load_member_state(k, state["streams"]["actions"])
        self.env_seeds.load_member_state(k, state["streams"]["env_seed"])
        for name in ("t_env", "episode", "last_test_t", "crashed_episodes"):
            getattr(self, name)[k] = state[name]
        self.last_checkpoint_t[k] = state["t_env"]
        self.wall_before[k] = state["wall_time_s"]
        self.skipped_updates[k] = state.get("skipped_updates", 0)
        member.rows, member.metric_steps = state["rows"], state["metric_steps"]
        if self.per_z:
            self.per_z.load_state(k, state.get("per_z"))
        for name, value in state["last_stats"].items():
            self.last_stats.setdefault(name, torch.full((self.n_members,), float("nan"), device=self.device))
            self.last_stats[name][k] = value

    # --- evaluation -----------------------------------------------------------------------------
    def _test_pass(self, members: np.ndarray, uniform_z: bool):
        """Greedy episodes for the testing members: z from the z-policy (headline) or uniform
        (MAVEN's second pass) -> returns, wins, lengths, z: per member [n] (only members' valid)."""
        cfg = self.cfg
        env = self.test_env
        n_rollouts = 1 if self.batched_tests else max(1, math.ceil(cfg.test_nepisode / cfg.batch_size_run))
        parts: list[list[np.ndarray]] = [[], [], [], [], []]  # returns, wins, lengths, z, kept: [S, n] each
        mask = self._mask(members)
        for _ in range(n_rollouts):
            _, stats = rollout(env, self.learner, cfg, self.action_streams, self._reset_seeds(members), None,
                               mask, uniform_z)
            for part, x in zip(parts, (stats.returns, stats.won, stats.lengths, stats.z, stats.kept)):
                part.append(x.cpu().numpy())
        returns, wins, lengths, z, kept = (np.concatenate(part, 1) for part in parts)
        self.crashed_episodes += np.where(members, (~kept).sum(1), 0)
        return [[x[k][kept[k]] for k in range(self.n_members)] for x in (returns, wins, lengths, z)]

    def evaluate(self, members: np.ndarray) -> None:
        """Test every member in `members` ([S] bool) and log a row for each: the headline pass
        (z from the z-policy), MAVEN's uniform-z pass, and their per-z metrics (per_z.py)."""
        has_win = self.info.has_win
        returns, wins, lengths, zs = self._test_pass(members, uniform_z=False)
        latent = self.learner.has_latent and self.cfg.test_uniform_z
        if latent:
            u_returns, u_wins, _, u_zs = self._test_pass(members, uniform_z=True)
        epsilon = epsilon_at(self.t_env, self.cfg)
        stats = {name: value.cpu().numpy() for name, value in self.last_stats.items()}
        for k in np.flatnonzero(members):
            member = self.members[k]
            r = returns[k]
            row = {"step": int(self.t_env[k]), "episode": int(self.episode[k]),
                   "return_mean": float(r.mean()), "return_std": float(r.std()),
                   "win_rate": float(wins[k].mean()) if has_win else None,
                   "ep_length_mean": float(lengths[k].mean()), "wall_time_s": round(self.wall_time(k), 2),
                   "epsilon": float(epsilon[k]), "crashed_episodes": int(self.crashed_episodes[k])}
            for name in LOGGED_STATS:
                if name in stats:
                    row[name] = float(stats[name][k])
            entry = {"step_count": int(self.t_env[k]), "return": r.tolist()}
            if has_win:
                entry["win_rate"] = wins[k].astype(float).tolist()
            if latent:
                row["return_mean_uniform_z"] = float(u_returns[k].mean())
                row["win_rate_uniform_z"] = float(u_wins[k].mean()) if has_win else None
                entry["return_uniform_z"] = u_returns[k].tolist()
                if has_win:
                    entry["win_rate_uniform_z"] = u_wins[k].astype(float).tolist()
            if self.per_z:
                passes = [("", zs[k], r, wins[k], True)]
                if latent:
                    passes.append(("_uniform_z", u_zs[k], u_returns[k], u_wins[k], False))
                for suffix, z, ret, won, policy in passes:
                    values, lists = self.per_z.pass_stats(k, z, ret, won.astype(float) if has_win else None, policy)
                    row.update({f"{name}{suffix}": value for name, value in values.items()})
                    entry.update({f"{name}{suffix}": value for name, value in lists.items()})
            member.rows.append(row)
            member.metric_steps.append(entry)
            self._write_logs(k)
        if self.per_z:
            self.per_z.clear(members)
        self.last_test_t = np.where(members, self.t_env, self.last_test_t)
        self._report(members)

    def _columns(self) -> list[str]:
        if not self.learner.has_latent:
            return EVAL_COLUMNS + LOSS_COLUMNS
        per_z = per_z_columns(self.cfg.noise_dim, self.info.has_win, self.cfg.test_uniform_z)
        return EVAL_COLUMNS + LATENT_COLUMNS + LOSS_COLUMNS + per_z

    def _write_logs(self, k: int) -> None:
        cfg, member = self.cfg, self.members[k]
        member.run_dir.write_eval(member.rows, self._columns())
        member.run_dir.write_metrics(cfg.env, cfg.map, cfg.algo, member.seed, member.metric_steps)

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> list[dict | None] | dict | None:
        """Train every member to t_max (each resuming from its own checkpoint when it has one).
        Returns the summaries in member order (None for a member that had already finished: it
        is not re-run or touched; a diverged member's has status "diverged"); a single run
        returns its summary alone. Raises Interrupted after checkpointing on SIGTERM/SIGINT."""
        try:
            pending = self._claim()
            results: dict[int, dict] = dict(self.diverged_before)
            if pending:
                results.update(self._train(pending))
        finally:
            for run_dir in getattr(self, "run_dirs", []):
                run_dir.unlock()
        by_seed = [results.get(c.seed) for c in self.cfgs]
        return by_seed[0] if len(self.cfgs) == 1 else by_seed

    def _train(self, pending) -> dict[int, dict]:
        cfg = self.cfg
        self._build(pending)
        self.started = time.perf_counter()
        self.iteration_of_member: dict[int, int] = {}
        resumed = self._resume([k for k, (_, _, status) in enumerate(pending) if status == "resume"])
        for k, (member_cfg, run_dir, status) in enumerate(pending):
            if k in resumed:
                self._write_logs(k)  # drop rows logged after the checkpoint
            else:
                if status == "resume":
                    print(f"{run_dir.path}: no readable checkpoint; starting over", flush=True)
                run_dir.write_config(member_cfg.to_dict(), str(self.device), self.env.metadata(),
                                     self._population_record())
        summaries: dict[int, dict] = {}
        running = self.t_env <= cfg.t_max
        self._finish(~running, summaries)
        bar = self._progress_bar()
        stop = StopSignals()  # SIGTERM/SIGINT: end this iteration, checkpoint, raise Interrupted
        try:
            while running.any():
                diverged = self._train_iteration(running)
                if diverged:
                    running = self._diverge(diverged, running, summaries)
                self.iteration += 1
                due = running & (self.t_env - self.last_test_t >= cfg.test_interval)
                if due.any():
                    self.evaluate(due)
                self.episode += np.where(running, cfg.batch_size_run, 0)
                if (running & (self.t_env - self.last_checkpoint_t >= cfg.checkpoint_interval)).any():
                    for k in np.flatnonzero(running):  # all together: see the module docstring
                        self.save_checkpoint(k)
                ending = running & (self.t_env > cfg.t_max)
                if ending.any():
                    self._finish(ending, summaries)
                    running = running & ~ending
                if bar is not None:
                    bar.n = int(np.minimum(self.t_env, cfg.t_max).min())
                    bar.refresh()
                if stop.received is not None and running.any():
                    self._interrupt(running, stop.received)
        finally:
            stop.restore()
            if bar is not None:
                bar.close()
            self.env.close()
            if self.test_env is not self.env:
                self.test_env.close()
        return summaries

    def _interrupt(self, running: np.ndarray, signum: int) -> None:
        """A stop was requested: checkpoint every running member (unless this iteration just
        did) and raise Interrupted; the rerun resumes from here exactly."""
        if (running & (self.last_checkpoint_t != self.t_env)).any():
            for k in np.flatnonzero(running):
                self.save_checkpoint(k)
        name = signal.Signals(signum).name
        steps = ", ".join(f"seed {self.members[k].seed} at step {self.t_env[k]}" for k in np.flatnonzero(running))
        raise Interrupted(f"stopped by {name} after checkpointing ({steps}); rerun the same command to resume",
                          signum)

    def _diverge(self, diverged: dict, running: np.ndarray, summaries: dict) -> np.ndarray:
        """Members with a non-finite loss or gradient norm: skip that update (on_nonfinite:
        skip_update; the learner did not apply it) or stop the member for good, keeping its
        checkpoints as they were before the bad update. The other members go on."""
        for k, (name, value, skippable) in diverged.items():
            member = self.members[k]
            where = f"seed {member.seed} at step {self.t_env[k]}: {name} is {value}"
            if self.cfg.on_nonfinite == "skip_update" and skippable:
                if self.skipped_updates[k] == 0:
                    print(f"warning: {member.run_dir.path}: skipped a non-finite update ({where}); "
                          "further skips are counted in summary.json", file=sys.stderr, flush=True)
                self.skipped_updates[k] += 1
                continue
            kept = [p.name for p in member.run_dir.list_checkpoints()]
            summary = {**self._summary(k, status="diverged"), "reason": f"{name} is {value} at step {self.t_env[k]}",
                       "last_checkpoint": kept[-1] if kept else None}
            member.run_dir.write_summary(summary)
            summaries[member.seed] = summary
            running = running.copy()
            running[k] = False
            print(f"error: diverged, {where}; stopped this member (last good checkpoint: "
                  f"{kept[-1] if kept else 'none'}); see on_nonfinite in docs/architecture.md", file=sys.stderr,
                  flush=True)
        return running

    def _finish(self, ending: np.ndarray, summaries: dict) -> None:
        """Members past t_max: a last evaluation if the newest one is older, then the summary."""
        if not ending.any():
            return
        stale = ending & (self.last_test_t != self.t_env)
        if stale.any():
            self.evaluate(stale)
        for k in np.flatnonzero(ending):
            summary = self._summary(k)
            self.members[k].run_dir.write_summary(summary)
            self._prune_checkpoints(k)
            summaries[self.members[k].seed] = summary

    def _train_iteration(self, running: np.ndarray) -> dict[int, tuple[str, float, bool]]:
        """Rollout, z-policy, replay, update -> the members whose update was not finite."""
        cfg = self.cfg
        mask = self._mask(running)
        epsilon = torch.as_tensor(epsilon_at(self.t_env, cfg), dtype=torch.float32, device=self.device)
        batch, stats = rollout(self.env, self.learner, cfg, self.action_streams, self._reset_seeds(running),
                               epsilon, mask)
        # one host transfer per iteration: [5, S, B] episode lengths, crashes, z, returns, kept
        lengths, crashed, z, returns, kept_np = torch.stack(
            [stats.lengths.float(), stats.crashed.float(), stats.z.float(), stats.returns, stats.kept.float()]).cpu().numpy()
        self.t_env += np.where(running, lengths.sum(1).astype(np.int64), 0)
        self.crashed_episodes += np.where(running, crashed.sum(1).astype(np.int64), 0)
        if self.per_z and self.per_z.include_train:  # training episodes the original mixes into per-z logs (Q6)
            self.per_z.add_train(z.astype(np.int64), returns, kept_np > 0, running, self.t_env)
        kept = stats.kept & mask.unsqueeze(1)  # [S, B]
        has_kept = kept.any(1)
        latent_stats = self.learner.after_rollout(stats.s0, stats.z, stats.returns, kept, has_kept)
        self._merge_stats(latent_stats, has_kept)
        self.buffer.insert(batch, kept)
        learning = self.buffer.can_sample(cfg.batch_size) & mask
        diverged = {}  # member -> (statistic, value, whether the update could be skipped)
        if bool(learning.any()):
            sample = self.buffer.sample(cfg.batch_size, learning)
            episodes = torch.as_tensor(self.episode)
            update_stats = self.learner.update(sample, episodes, learning)
            diverged = {k: (*bad, True) for k, bad in nonfinite_members(update_stats, learning).items()}
            finite = torch.as_tensor([k not in diverged for k in range(self.n_members)], device=self.device)
            self._merge_stats(update_stats, learning & finite)  # a skipped update's stats are not logged
        # the z-policy's own update is applied already: it cannot be skipped, only stopped
        diverged.update({k: (*bad, False) for k, bad in nonfinite_members(latent_stats, has_kept).items()})
        return diverged

    def _merge_stats(self, stats: dict, members: torch.Tensor) -> None:
        for name, value in stats.items():
            value = torch.as_tensor(value, device=self.device).detach().float()
            old = self.last_stats.get(name, torch.full_like(value, float("nan")))
            self.last_stats[name] = torch.where(members.to(self.device), value, old)

    def _population_record(self) -> dict:
        return {"seeds": [m.seed for m in self.members], "size": self.n_members, "threads": self.threads}

    def _summary(self, k: int, status: str = "finished") -> dict:
        member, cfg = self.members[k], self.cfg

        def score(row):
            if row is None:  # a member that diverged before its first evaluation
                return None
            return {"return_mean": row["return_mean"], "win_rate": row["win_rate"], "step": row["step"]}

        key = "win_rate" if self.info.has_win else "return_mean"
        best = max(member.rows, key=lambda r: r[key], default=None)
        wall = self.wall_time(k)
        summary = {
            "status": status, "env": cfg.env, "map": cfg.map, "algo": cfg.algo,
            "preset": cfg.preset, "seed": member.seed, "env_steps": int(self.t_env[k]),
            "episodes": int(self.episode[k]), "updates": int(self.learner.updates[k]),
            "wall_time_s": round(wall, 2), "env_steps_per_s": round(self.t_env[k] / max(wall, 1e-9), 1),
            "final": score(member.rows[-1] if member.rows else None), "best": score(best), "crashed_episodes": int(self.crashed_episodes[k]),
            "skipped_updates": int(self.skipped_updates[k]),
            "device": str(self.device), "population": self._population_record(),
        }
        if self.learner.has_latent and member.rows:
            summary["final"]["return_mean_uniform_z"] = member.rows[-1].get("return_mean_uniform_z")
            summary["final"]["win_rate_uniform_z"] = member.rows[-1].get("win_rate_uniform_z")
        return summary

    def _prune_checkpoints(self, k: int) -> None:
        """A finished run keeps only its final networks (no replay): small, and enough to re-evaluate."""
        run_dir = self.members[k].run_dir
        for old in run_dir.list_checkpoints():
            old.unlink()
        run_dir.checkpoints.mkdir(exist_ok=True)
        torch.save(self.learner.member_state(k), run_dir.checkpoints / "final.pt")

    # --- progress -------------------------------------------------------------------------------
    def _label(self) -> str:
        seeds = [m.seed for m in self.members]
        who = f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds {seeds[0]}..{seeds[-1]}"
        return f"{self.cfg.algo} {self.cfg.env}/{self.cfg.map} {who}"

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.cfg.t_max, initial=int(min(self.t_env.min(), self.cfg.t_max)), unit="step",
                    unit_scale=True, dynamic_ncols=True, desc=self._label())

    def _report(self, members: np.ndarray) -> None:
        """One line per evaluation event: the tested members' scores (median over them)."""
        if self.progress:
            return
        rows = [self.members[k].rows[-1] for k in np.flatnonzero(members)]
        if self.info.has_win:
            scores = [100 * r["win_rate"] for r in rows]
            score = f"win {np.median(scores):.1f}%"
        else:
            score = f"return {np.median([r['return_mean'] for r in rows]):.2f}"
        steps = int(np.median([r["step"] for r in rows]))
        wall = max(rows[0]["wall_time_s"], 1e-9)
        speed = float(self.t_env.sum()) / max(time.perf_counter() - self.started, 1e-9)
        who = f" ({len(rows)} of {self.n_members} members, median)" if self.n_members > 1 else ""
        extra = ""
        if "z_policy_entropy" in rows[0]:
            extra = f" z-entropy {np.median([r['z_policy_entropy'] for r in rows]):.3f}"
        print(f"[{self._label()}] step {steps} {score}{who} ({speed:.0f} env steps/s in all, {wall:.0f} s){extra}",
              flush=True)
