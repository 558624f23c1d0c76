"""SMAX (JaxMARL 0.2.0, `HeuristicEnemySMAX`) as a batched `VecEnv` for a population.

Each of the S members owns B environments and one PRNG key. One member's reset and step are
written for B environments (vmapped over them) and are then vmapped once more over the members,
so member k's environments get the same keys, and compute the same values, as those of a
population of one made with member k's seed, whatever the other members do. One `step` is one jitted XLA call
that also applies the done mask, assembles obs/state/avail and computes the flags, plus a handful
of zero-copy DLPack hand-overs to torch. JAX runs on the same device as torch.

Decisions (see docs/environments.md):
- `env.step_env` is used (no auto-reset), so the terminal obs/state are returned.
- won = all enemies dead and at least one ally alive, read from the post-step state.
- reward: SMAC's dense reward (smac_rules.py) computed in the same XLA call from the enemies'
  health and alive flags before and after the step (`reward="smac"`, the default), or
  jaxmarl's own team reward (`reward="jaxmarl"`).
- terminated = a team was eliminated; truncated = `max_steps` steps reached with both teams
  alive. The adapter applies the limit itself: jaxmarl's own check ends the episode one step
  late (after max_steps + 1 steps).
- An env whose episode ended since `reset` is frozen (its state is kept with `jnp.where`): it
  repeats its last obs/state/avail, reward 0 and all flags False.
- Keys: member k starts from PRNGKey(member_seeds[k]); `reset(seeds)` replaces it by
  PRNGKey(seeds[k]) where seeds[k] is not None. Every reset and step splits the member's key
  once and hands one key to each of its B environments.
- Returned tensors share memory with JAX buffers: treat them as read-only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from functools import lru_cache

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np
import torch

from maven.envs import smac_rules
from maven.envs.base import EnvInfo, EnvStep, seeds_per_member
from maven.errors import UserError, choose

INSTALL_HINT = "SMAX needs jaxmarl: pip install -e '.[smax]'"


def _import_jaxmarl():
    """Import jax and jaxmarl or raise a UserError.

    jaxmarl prints two lines on import, and its mabrax module resets sys.stdout/sys.stderr to the
    process's original streams (which breaks any redirection, pytest's capture included): send
    the prints to stderr and put the caller's streams back.
    """
    saved = sys.stdout, sys.stderr
    try:
        with contextlib.redirect_stdout(sys.stderr):
            import jax
            import jaxmarl
            from jaxmarl.environments.smax import smax_env
    except ImportError as err:
        raise UserError(f"{INSTALL_HINT} ({err})") from None
    finally:
        sys.stdout, sys.stderr = saved
    return jax, jaxmarl, smax_env


def maps() -> list[str]:
    """Every scenario jaxmarl ships (empty when jaxmarl is not installed)."""
    try:
        _, _, smax_env = _import_jaxmarl()
    except UserError:
        return []
    return list(smax_env.MAP_NAME_TO_SCENARIO)


def check_map(name: str) -> None:
    _, _, smax_env = _import_jaxmarl()
    choose("smax map", name, smax_env.MAP_NAME_TO_SCENARIO)


def normalise_world_state(world_state, unit_types, unit_cooldowns, map_size: float = 32.0):
    """Rescale SMAX's world state to about [0, 1] (works on one env or a batch).

    Layout of jaxmarl 0.2.0's world state for U units (allies then enemies): U blocks of 10
    features (health fraction, absolute x, absolute y, raw weapon cooldown in seconds, one-hot
    type of 6), then U team ids (0/1), then U raw type ids (0..5). Rescaled: x and y divided by
    the map size (32), the cooldown clipped at 0 and divided by that unit type's full cooldown
    (jitter can push it slightly above 1), the raw type ids divided by 5. Health, one-hot types
    and team ids are already in [0, 1]. Dead units stay all-zero.
    """
    import jax.numpy as jnp

    n_units = unit_types.shape[-1]
    per_unit = world_state[..., : 10 * n_units].reshape(*world_state.shape[:-1], n_units, 10)
    full_cooldown = unit_cooldowns[unit_types.astype(jnp.int32)]  # [..., U]
    per_unit = per_unit.at[..., 1:3].divide(map_size)
    per_unit = per_unit.at[..., 3].set(jnp.maximum(per_unit[..., 3], 0.0) / full_cooldown)
    teams = world_state[..., 10 * n_units : 11 * n_units]
    types = world_state[..., 11 * n_units :] / 5.0
    flat = per_unit.reshape(*world_state.shape[:-1], 10 * n_units)
    return jnp.concatenate([flat, teams, types], axis=-1)


@lru_cache(maxsize=16)
def _compiled(map_name: str, max_steps: int, normalise_state: bool, reward_kind: str = "smac"):
    """The env and its jitted population reset/step for one configuration.

    Cached so that several VecEnvs of one configuration (train and test runners, tests) share
    compilations; the functions are pure, so nothing here holds run state. They compile once
    per (S, B).
    """
    jax, jaxmarl, smax_env = _import_jaxmarl()
    jnp = jax.numpy
    env = jaxmarl.make(
        "HeuristicEnemySMAX", scenario=smax_env.map_name_to_scenario(map_name), max_steps=max_steps
    )
    agents = list(env.agents)  # index order; jit returns dict keys string-sorted
    n_allies = env.num_allies
    unit_cooldowns = jnp.asarray(env.unit_type_weapon_cooldowns, dtype=jnp.float32)
    unit_health = jnp.asarray(env.unit_type_health, dtype=jnp.float32)

    def strong(tree):
        # reset's enemy policy state holds a weakly typed int32; step's is strong: cast, or the
        # step function would compile twice.
        return jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype) if hasattr(x, "dtype")
                            else x, tree)

    def assemble(obs_dict, env_state):
        obs = jnp.stack([obs_dict[a] for a in agents], axis=1)  # [B, N, O]
        world_state = obs_dict["world_state"]  # [B, S]
        if normalise_state:
            inner = env_state.state
            world_state = normalise_world_state(world_state, inner.unit_types, unit_cooldowns)
        avail_dict = jax.vmap(env.get_avail_actions)(env_state)
        avail = jnp.stack([avail_dict[a] for a in agents], axis=1).astype(jnp.bool_)  # [B, N, A]
        return obs.astype(jnp.float32), world_state.astype(jnp.float32), avail

    def reset_member(key, n_envs):  # one member: key [2] -> B envs
        key, reset_key = jax.random.split(key)
        obs_dict, env_state = jax.vmap(env.reset)(jax.random.split(reset_key, n_envs))
        env_state = strong(env_state)
        obs, world_state, avail = assemble(obs_dict, env_state)
        done = jnp.zeros((n_envs,), dtype=jnp.bool_)
        return key, (env_state, done, obs, world_state, avail)

    def step_member(key, carry, actions):  # one member: actions [B, N]
        env_state, done, prev_obs, prev_world_state, prev_avail = carry
        n_envs = done.shape[0]
        key, step_key = jax.random.split(key)
        before = env_state.state
        action_dict = {a: actions[:, i] for i, a in enumerate(agents)}
        obs_dict, next_state, rewards, dones, _ = jax.vmap(env.step_env)(
            jax.random.split(step_key, n_envs), env_state, action_dict
        )
        next_state = strong(next_state)
        active = ~done  # [B]

        def keep_ended(new, old):
            return jnp.where(active.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

        env_state = jax.tree.map(keep_ended, next_state, env_state)
        obs, world_state, avail = assemble(obs_dict, env_state)
        obs = keep_ended(obs, prev_obs)
        world_state = keep_ended(world_state, prev_world_state)
        avail = keep_ended(avail, prev_avail)

        alive = env_state.state.unit_alive  # [B, U]
        allies_alive = alive[:, :n_allies].any(axis=1)
        enemies_alive = alive[:, n_allies:].any(axis=1)
        # jaxmarl's is_terminal reads the step counter before incrementing it, so its own time
        # limit fires one step late (101 steps for max_steps=100): end at max_steps here.
        time_up = env_state.state.step >= max_steps
        ended = active & (dones["__all__"] | time_up)
        eliminated = ~allies_alive | ~enemies_alive
        terminated = ended & eliminated
        truncated = ended & ~eliminated
        won = terminated & allies_alive & ~enemies_alive
        if reward_kind == "smac":
            after, enemies = env_state.state, slice(n_allies, None)
            enemy_max_health = unit_health[before.unit_types[:, enemies].astype(jnp.int32)]  # [B, E]
            team_reward = smac_rules.smac_reward(
                before.unit_health[:, enemies], before.unit_alive[:, enemies], after.unit_health[:, enemies],
                after.unit_alive[:, enemies], won, enemy_max_health,
            )
        else:
            team_reward = rewards[agents[0]]
        reward = jnp.where(active, team_reward, 0.0).astype(jnp.float32)
        carry = (env_state, done | ended, obs, world_state, avail)
        return key, carry, (reward, terminated, truncated, won)

    def reset(keys, fresh_keys, reseed, n_envs):
        """keys, fresh_keys [S, 2]; member k restarts from fresh_keys[k] where reseed[k]."""
        keys = jnp.where(reseed[:, None], fresh_keys, keys)
        return jax.vmap(lambda key: reset_member(key, n_envs))(keys)  # carry leaves [S, B, ...]

    def step(keys, carry, actions):
        n_members, n_envs = carry[1].shape  # done [S, B]
        actions = actions.reshape(n_members, n_envs, -1)  # [S·B, N] -> [S, B, N]
        return jax.vmap(step_member)(keys, carry, actions)  # outputs [S, B, ...]

    info = EnvInfo(
        n_agents=n_allies,
        n_actions=int(env.action_space(agents[0]).n),
        obs_dim=int(env.observation_space(agents[0]).shape[0]),
        state_dim=int(env.state_size),
        episode_limit=max_steps,
        has_win=True,
    )
    return env, info, jax.jit(reset, static_argnums=3), jax.jit(step)


def _jax_device(device: torch.device):
    import jax

    if device.type == "cpu":
        return jax.devices("cpu")[0]
    if device.type == "cuda":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            raise UserError(
                f"device {device} asked for SMAX but jax has no GPU backend: pip install 'jax[cuda12]'"
            ) from None
        index = device.index if device.index is not None else torch.cuda.current_device()
        return gpus[index]
    raise UserError(f"unsupported device {device} for SMAX; choose one of: cpu, cuda")


class SMAXVecEnv:
    """S members × B HeuristicEnemySMAX environments on one device (see the module docstring)."""

    def __init__(self, map_name: str, envs_per_member: int, device, member_seeds: Sequence[int] = (0,),
                 max_steps: int = 100, normalise_state: bool = True, reward: str = "smac"):
        check_map(map_name)
        choose("smax reward", reward, ("smac", "jaxmarl"))
        import jax

        self._jax = jax
        self.map_name = map_name
        self.reward = reward
        self.n_members = len(member_seeds)
        self.envs_per_member = envs_per_member
        self.n_envs = self.n_members * envs_per_member
        self.device = torch.device(device)
        self._jax_device = _jax_device(self.device)
        self._env, self.info, self._reset_fn, self._step_fn = _compiled(
            map_name, max_steps, normalise_state, reward
        )
        self._keys = self._put(self._keys_of(list(member_seeds)))  # [S, 2]
        self._carry = None

    def _keys_of(self, seeds: list[int | None]):
        """PRNGKey(seed) per member ([S, 2], zeros where the seed is None), made on the host."""
        jax = self._jax
        with jax.default_device(jax.devices("cpu")[0]):
            zeros = np.zeros(2, dtype=np.uint32)
            return np.stack([zeros if s is None else np.asarray(jax.random.PRNGKey(s)) for s in seeds])

    def _put(self, x):
        return self._jax.device_put(x, self._jax_device)

    def _to_torch(self, x) -> torch.Tensor:
        return torch.from_dlpack(x).flatten(0, 1)  # [S, B, ...] -> [S·B, ...], a view

    def _false(self) -> torch.Tensor:
        return torch.zeros(self.n_envs, dtype=torch.bool, device=self.device)

    def reset(self, seeds: Sequence[int | None] | None = None) -> EnvStep:
        seeds = seeds_per_member(seeds, self.n_members)
        reseed = self._put(np.array([s is not None for s in seeds]))  # [S]
        self._keys, self._carry = self._reset_fn(self._keys, self._put(self._keys_of(seeds)), reseed,
                                                 self.envs_per_member)
        _, _, obs, world_state, avail = self._carry
        t = self._to_torch
        return EnvStep(
            obs=t(obs), state=t(world_state), avail_actions=t(avail),
            reward=torch.zeros(self.n_envs, dtype=torch.float32, device=self.device),
            terminated=self._false(), truncated=self._false(), won=self._false(), crashed=self._false(),
        )

    def step(self, actions: torch.Tensor) -> EnvStep:
        if self._carry is None:
            raise RuntimeError("step() called before reset()")
        actions = actions.to(device=self.device, dtype=torch.int32).contiguous()  # [S·B, N]; x64 is off in jax
        if self.device.type == "cpu":
            jax_actions = actions.numpy()  # zero-copy; jit's own transfer is cheaper than from_dlpack
        else:
            jax_actions = self._jax.numpy.from_dlpack(actions)  # stays on the GPU
        self._keys, self._carry, (reward, terminated, truncated, won) = self._step_fn(
            self._keys, self._carry, jax_actions
        )
        _, _, obs, world_state, avail = self._carry
        t = self._to_torch
        return EnvStep(
            obs=t(obs), state=t(world_state), avail_actions=t(avail), reward=t(reward),
            terminated=t(terminated), truncated=t(truncated), won=t(won), crashed=self._false(),
        )

    def close(self) -> None:
        self._carry = None

    def metadata(self) -> dict:
        from importlib.metadata import version

        return {"jaxmarl": version("jaxmarl"), "jax": self._jax.__version__, "smax_scenario": self.map_name,
                "smax_reward": self.reward, "smax_max_steps": self.info.episode_limit}


def make(cfg, n_envs: int, device, member_seeds: Sequence[int]) -> SMAXVecEnv:
    """n_envs environments for each member (seeds `member_seeds`)."""
    return SMAXVecEnv(
        cfg.map, n_envs, device, member_seeds, max_steps=cfg.smax_max_steps,
        normalise_state=cfg.smax_normalise_state, reward=cfg.smax_reward,
    )
