"""SMAC (StarCraft II through the oxwhirl `smac` package) as a batched `VecEnv` for a population.

One worker process per environment owns one `smac.env.StarCraft2Env`, as PyMARL's parallel
runner does; the parent sends commands over pipes to all active workers, then collects the
replies, so the S·B games (B per member, member-major) advance concurrently. A game depends only
on its own seed and actions, so member k's games are those of a population of one with seed k.
Actions pass through unchanged (SMAC's own indices: 0 no-op, 1 stop, 2-5 move, 6+k attack
enemy k).

Decisions (see docs/environments.md):
- A time-out (episode_limit steps, no win, neither team wiped out) is reported as truncated, not
  terminated, although SMAC itself says terminated (quirk Q14; `cfg.bootstrap_on_timeout` in
  the trainer decides what that means for the targets).
- A StarCraft II crash is reported as `crashed` (all other flags False) and the episode ends:
  either SMAC relaunched the game itself and returned `(0, True, {})` (quirk Q15), or the
  worker raised, died or hung, in which case the worker is restarted. The runner discards the
  episode.
- SMAC seeds a game only at launch: member k's game i is launched with seed_k + i (as PyMARL
  numbers them), and `reset(seeds)` relaunches member k's workers with seeds[k] + i, except on
  its first reset when they already have those seeds; a None seed (for a member or for all)
  continues each of its games' own random stream.
- A crash concerns one game: only that env is flagged, so only its member discards an episode.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from maven.envs.base import EnvInfo, EnvStep, seeds_per_member
from maven.errors import UserError, choose

# oxwhirl/smac: smac/env/starcraft2/maps/smac_maps.py (reference.md §5.3).
SMAC_MAPS = (
    "3m", "8m", "25m", "2s3z", "3s5z", "1c3s5z", "5m_vs_6m", "8m_vs_9m", "10m_vs_11m", "27m_vs_30m",
    "MMM", "MMM2", "3s5z_vs_3s6z", "3s_vs_3z", "3s_vs_4z", "3s_vs_5z", "6h_vs_8z", "corridor",
    "2c_vs_64zg", "so_many_baneling", "bane_vs_bane", "2m_vs_1z", "2s_vs_1sc",
)
# The MAVEN code's names for SMAC maps (reference.md §5.4).
MAVEN_MAP_NAMES = {
    "micro_corridor": "corridor", "micro_focus": "6h_vs_8z", "micro_colossus": "2c_vs_64zg",
    "micro_baneling": "so_many_baneling", "micro_bane": "bane_vs_bane", "micro_retarget": "2s_vs_1sc",
    "micro_2M_Z": "2m_vs_1z", "3s5z_3s6z": "3s5z_vs_3s6z",
}
DIFFICULTIES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "A")
N_NON_ATTACK_ACTIONS = 6  # no-op, stop, 4 moves


def maps() -> list[str]:
    return list(SMAC_MAPS)


def check_map(name: str) -> None:
    if name in MAVEN_MAP_NAMES:
        raise UserError(f"unknown smac map {name!r}: that is the MAVEN code's name; use {MAVEN_MAP_NAMES[name]!r}")
    choose("smac map", name, SMAC_MAPS)


def sc2_path() -> Path:
    return Path(os.environ.get("SC2PATH", "~/StarCraftII")).expanduser()


def installed_sc2_build(path: Path | None = None) -> str | None:
    """The newest `Versions/Base<build>` directory name (what SMAC launches by default)."""
    versions = (path or sc2_path()) / "Versions"
    builds = [d.name for d in versions.glob("Base*") if d.is_dir() and re.fullmatch(r"Base\d+", d.name)]
    return max(builds, key=lambda b: int(b[4:])) if builds else None


def check_installed() -> None:
    """Raise a one-line UserError unless oxwhirl's smac and a StarCraft II binary are present."""
    try:
        module = importlib.import_module("smac.env")
        module.StarCraft2Env  # noqa: B018 (PyPI's 'smac' is SMAC3 and has no such class)
    except (ImportError, AttributeError):
        raise UserError(
            "SMAC needs the oxwhirl smac package: pip install -e '.[smac]' "
            "(PyPI's 'smac' is SMAC3, a different project)"
        ) from None
    path = sc2_path()
    if not path.is_dir():
        raise UserError(f"StarCraft II not found at {path}: install it and set SC2PATH")


def smac_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smac")
    except PackageNotFoundError:
        return "not installed"


class StarCraft2EnvFactory:
    """Builds the real environment inside a worker (picklable, imports smac there)."""

    def __call__(self, **kwargs):
        from smac.env import StarCraft2Env

        return StarCraft2Env(**kwargs)


def _observe(env):
    obs = np.asarray(env.get_obs(), dtype=np.float32)  # [N, O]
    state = np.asarray(env.get_state(), dtype=np.float32)  # [S]
    avail = np.asarray(env.get_avail_actions()).astype(bool)  # [N, A]
    return obs, state, avail


def _worker(conn, env_factory, env_kwargs: dict) -> None:
    """Serve one environment: ("reset"|"step"|"env_info"|"stats"|"close", data) -> ("ok"|"error", ...)."""
    env = None
    try:
        env = env_factory(**env_kwargs)
        while True:
            command, data = conn.recv()
            if command == "reset":
                env.reset()
                conn.send(("ok", _observe(env)))
            elif command == "step":
                reward, terminated, info = env.step(data)
                # After a crash SMAC has relaunched the game: nothing to observe (Q15).
                observed = _observe(env) if info else None
                conn.send(("ok", (float(reward), bool(terminated), dict(info), observed)))
            elif command == "env_info":
                conn.send(("ok", env.get_env_info()))
            elif command == "stats":
                conn.send(("ok", env.get_stats()))
            elif command == "close":
                break
            else:
                raise ValueError(f"unknown worker command {command!r}")
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as err:  # noqa: BLE001 (any failure is reported; the parent restarts this worker)
        try:
            conn.send(("error", (type(err).__name__, str(err))))
        except (OSError, ValueError):
            pass
    finally:
        if env is not None:
            with contextlib.suppress(Exception):  # a broken game must not block the shutdown
                env.close()
        conn.close()


class WorkerFailed(Exception):
    """A worker raised, exited, or did not answer in time."""

    def __init__(self, message: str, invalid_action: bool = False):
        super().__init__(message)
        self.invalid_action = invalid_action  # SMAC's assert on an unavailable action: a caller bug


def _context():
    # forkserver: workers fork from a clean server process (no torch/CUDA/JAX threads to inherit)
    # that has already imported this module, so a restart costs milliseconds, not an import.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


class SMACVecEnv:
    """S members × B StarCraft II games, one worker process each (see the module docstring).

    Worker j = k·B + i is member k's game i.
    """

    def __init__(self, map_name: str, envs_per_member: int, device, member_seeds: Sequence[int] = (0,),
                 difficulty: str = "7", game_version: str = "", env_factory=None,
                 reset_timeout_s: float = 900.0, step_timeout_s: float = 300.0, reset_retries: int = 3):
        self.map_name = map_name
        self.n_members = len(member_seeds)
        self.envs_per_member = envs_per_member
        n_envs = self.n_members * envs_per_member
        self.n_envs = n_envs  # S·B
        self.device = torch.device(device)
        self.difficulty = difficulty
        self.game_version = game_version
        self._factory = env_factory if env_factory is not None else StarCraft2EnvFactory()
        self._reset_timeout_s = reset_timeout_s
        self._step_timeout_s = step_timeout_s
        self._reset_retries = reset_retries
        self._ctx = _context()
        self._seeds = [int(s) for s in member_seeds]  # [S]: member k's games have seeds seed_k + i
        self._restarts = [0] * n_envs
        self.worker_restarts = 0  # workers restarted after a failure (not counting reseeds)
        self._workers: list = [None] * n_envs
        for i in range(n_envs):
            self._start(i)
        try:
            env_info = self._request(0, "env_info", None, self._reset_timeout_s)
        except WorkerFailed as err:
            self.close()
            raise RuntimeError(f"the SMAC environment for {map_name!r} failed to start: {err}") from None
        self.info = EnvInfo(
            n_agents=int(env_info["n_agents"]),
            n_actions=int(env_info["n_actions"]),
            obs_dim=int(env_info["obs_shape"]),
            state_dim=int(env_info["state_shape"]),
            episode_limit=int(env_info["episode_limit"]),
            has_win=True,
        )
        self._n_enemies = self.info.n_actions - N_NON_ATTACK_ACTIONS
        b, n = n_envs, self.info.n_agents
        self._obs = np.zeros((b, n, self.info.obs_dim), dtype=np.float32)
        self._state = np.zeros((b, self.info.state_dim), dtype=np.float32)
        self._avail = np.zeros((b, n, self.info.n_actions), dtype=bool)
        self._episode_steps = np.zeros(b, dtype=np.int64)
        self._ended = np.ones(b, dtype=bool)  # no episode running until reset
        self._fresh = [True] * self.n_members  # member k's games not reset since launched with its seed

    # --- workers -------------------------------------------------------------------------
    def _member_workers(self, k: int) -> range:
        return range(k * self.envs_per_member, (k + 1) * self.envs_per_member)

    def _env_kwargs(self, j: int) -> dict:
        # A restarted worker gets a fresh seed, so it does not replay its first episodes.
        k, i = divmod(j, self.envs_per_member)
        seed = self._seeds[k] + i + self.envs_per_member * self._restarts[j]
        return {"map_name": self.map_name, "difficulty": self.difficulty,
                "game_version": self.game_version or None, "seed": seed}

    def _start(self, i: int) -> None:
        parent_conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker, args=(child_conn, self._factory, self._env_kwargs(i)),
                                    daemon=True)
        process.start()
        child_conn.close()
        self._workers[i] = (process, parent_conn)

    def _stop(self, i: int, graceful: bool, asked: bool = False) -> None:
        process, conn = self._workers[i]
        if graceful and not asked:
            self._ask_to_close(i)
        process.join(timeout=10 if graceful else 2)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        conn.close()
        self._workers[i] = None

    def _ask_to_close(self, i: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._workers[i][1].send(("close", None))

    def _stop_all(self, workers=None) -> None:
        workers = range(self.n_envs) if workers is None else workers
        running = [i for i in workers if self._workers[i] is not None]
        for i in running:  # all games shut down at once, then each is joined
            self._ask_to_close(i)
        for i in running:
            self._stop(i, graceful=True, asked=True)

    def _restart(self, i: int) -> None:
        self._stop(i, graceful=False)
        self._restarts[i] += 1
        self.worker_restarts += 1
        self._start(i)

    def _send(self, i: int, command: str, data) -> None:
        try:
            self._workers[i][1].send((command, data))
        except (OSError, ValueError) as err:
            raise WorkerFailed(f"env {i}: cannot send {command!r}: {err}") from None

    def _recv(self, i: int, timeout_s: float):
        process, conn = self._workers[i]
        try:
            if not conn.poll(timeout_s):
                raise WorkerFailed(f"env {i}: no answer in {timeout_s:.0f} s")
            status, payload = conn.recv()
        except (EOFError, OSError) as err:
            raise WorkerFailed(f"env {i}: worker exited ({type(err).__name__}, code {process.exitcode})") from None
        if status != "ok":
            name, message = payload
            raise WorkerFailed(f"env {i}: {name}: {message}", invalid_action=name == "AssertionError")
        return payload

    def _request(self, i: int, command: str, data, timeout_s: float):
        self._send(i, command, data)
        return self._recv(i, timeout_s)

    # --- VecEnv --------------------------------------------------------------------------
    def _reset_one(self, i: int) -> None:
        for _ in range(self._reset_retries):
            try:
                self._obs[i], self._state[i], self._avail[i] = self._recv(i, self._reset_timeout_s)
                return
            except WorkerFailed:
                self._restart(i)
                try:
                    self._send(i, "reset", None)
                except WorkerFailed:
                    continue
        raise RuntimeError(f"SMAC env {i} ({self.map_name}) failed to reset {self._reset_retries} times")

    def reset(self, seeds: Sequence[int | None] | None = None) -> EnvStep:
        seeds = seeds_per_member(seeds, self.n_members)
        relaunch = [k for k, seed in enumerate(seeds)
                    if seed is not None and not (seed == self._seeds[k] and self._fresh[k])]
        workers = [j for k in relaunch for j in self._member_workers(k)]
        self._stop_all(workers)
        for k in relaunch:
            self._seeds[k] = seeds[k]
        for j in workers:
            self._restarts[j] = 0
            self._start(j)
        self._fresh = [False] * self.n_members
        for i in range(self.n_envs):
            try:
                self._send(i, "reset", None)
            except WorkerFailed:
                pass  # _reset_one sees the broken pipe and restarts the worker
        for i in range(self.n_envs):
            self._reset_one(i)
        self._episode_steps[:] = 0
        self._ended[:] = False
        false = np.zeros(self.n_envs, dtype=bool)
        return self._pack(np.zeros(self.n_envs, dtype=np.float32), false, false, false, false)

    def step(self, actions: torch.Tensor) -> EnvStep:
        actions_np = actions.detach().to("cpu", torch.int64).numpy()  # [S·B, N]
        b = self.n_envs
        reward = np.zeros(b, dtype=np.float32)
        terminated = np.zeros(b, dtype=bool)
        truncated = np.zeros(b, dtype=bool)
        won = np.zeros(b, dtype=bool)
        crashed = np.zeros(b, dtype=bool)
        broken = []  # workers that raised, exited or hung: restarted below
        rejected = []  # unavailable actions: a bug in the caller, raised once all replies are in
        sent = []
        for i in np.flatnonzero(~self._ended):
            try:
                self._send(i, "step", actions_np[i].tolist())
                sent.append(i)
            except WorkerFailed:
                broken.append(i)
        for i in sent:
            try:
                r, done, info, observed = self._recv(i, self._step_timeout_s)
            except WorkerFailed as err:
                if err.invalid_action:
                    rejected.append(f"{actions_np[i].tolist()} ({err})")
                broken.append(i)
                continue
            self._episode_steps[i] += 1
            if observed is not None:
                self._obs[i], self._state[i], self._avail[i] = observed
            if done and not info:  # SMAC relaunched a crashed game (Q15)
                crashed[i] = True
                continue
            reward[i] = r
            if done:
                won[i] = bool(info.get("battle_won", False))
                wiped_out = (info.get("dead_allies", 0) >= self.info.n_agents
                             or info.get("dead_enemies", 0) >= self._n_enemies)
                timed_out = bool(info.get("episode_limit", False)) or (
                    self._episode_steps[i] >= self.info.episode_limit and not won[i] and not wiped_out
                )
                truncated[i] = timed_out
                terminated[i] = not timed_out
        for i in broken:
            crashed[i] = True
            self._restart(i)
        self._ended |= terminated | truncated | crashed
        if rejected:
            raise RuntimeError(f"SMAC rejected unavailable actions: {'; '.join(rejected)}")
        return self._pack(reward, terminated, truncated, won, crashed)

    def _pack(self, reward, terminated, truncated, won, crashed) -> EnvStep:
        def t(x):
            return torch.from_numpy(np.array(x, copy=True)).to(self.device)

        return EnvStep(obs=t(self._obs), state=t(self._state), avail_actions=t(self._avail), reward=t(reward),
                       terminated=t(terminated), truncated=t(truncated), won=t(won), crashed=t(crashed))

    def stats(self) -> list[dict]:
        """Each game's `get_stats()` (battles, timeouts, SMAC's own restarts)."""
        return [self._request(i, "stats", None, self._step_timeout_s) for i in range(self.n_envs)]

    def close(self) -> None:
        self._stop_all()

    def metadata(self) -> dict:
        build = self.game_version or installed_sc2_build() or "unknown"
        return {"smac": smac_version(), "sc2_build": build, "smac_map": self.map_name,
                "smac_difficulty": self.difficulty}


def make(cfg, n_envs: int, device, member_seeds: Sequence[int], env_factory=None) -> SMACVecEnv:
    """n_envs games for each member (seeds `member_seeds`); `env_factory(**kwargs)` replaces
    `smac.env.StarCraft2Env` (tests inject a fake)."""
    check_map(cfg.map)
    choose("smac difficulty", str(cfg.smac_difficulty), DIFFICULTIES)
    if env_factory is None:
        check_installed()
    return SMACVecEnv(cfg.map, n_envs, device, member_seeds, difficulty=str(cfg.smac_difficulty),
                      game_version=cfg.smac_game_version, env_factory=env_factory)
