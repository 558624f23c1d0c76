"""A stand-in for `smac.env.StarCraft2Env` with the same interface and simple, seeded dynamics.

Marine-only maps (3m, 8m, 5m_vs_6m) with SMAC's sizes: n_actions = 6 + n_enemies, obs and state
sizes from SMAC's formulas with PyMARL's flags (3m: 9 actions, obs 30, state 48, limit 60).
Dynamics: an ally attacking enemy k (action 6 + k) deals 4-8 damage; an enemy that was attacked
shoots back at one of its attackers for 5-10 damage; nothing else hurts. So a passive team
(stop / move only) always reaches the time limit, and random play ends in wins and losses.

Crashes are set up through `FakeSMACFactory` (the constructor keeps SMAC's signature):
"relaunch" returns `(0, True, {})` as SMAC does after relaunching a crashed game (Q15), "raise"
raises inside `step`, "exit" kills the worker process, "hang" never answers.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

MAPS = {"3m": (3, 3, 60), "8m": (8, 8, 120), "5m_vs_6m": (5, 6, 70)}  # allies, enemies, limit
MARINE_HEALTH = 45.0
SIGHT_RANGE = 9.0


class FakeStarCraft2Env:
    def __init__(self, map_name="8m", step_mul=8, move_amount=2, difficulty="7", game_version=None, seed=None,
                 continuing_episode=False, obs_all_health=True, obs_own_health=True, obs_last_action=False,
                 obs_pathing_grid=False, obs_terrain_height=False, obs_instead_of_state=False,
                 obs_timestep_number=False, state_last_action=True, state_timestep_number=False,
                 reward_sparse=False, reward_only_positive=True, reward_death_value=10, reward_win=200,
                 reward_defeat=0, reward_negative_scale=0.5, reward_scale=True, reward_scale_rate=20,
                 replay_dir="", replay_prefix="", window_size_x=1920, window_size_y=1200, heuristic_ai=False,
                 heuristic_rest=False, debug=False):
        if map_name not in MAPS:
            raise ValueError(f"fake SMAC has no map {map_name!r}")
        self.map_name = map_name
        self.n_agents, self.n_enemies, self.episode_limit = MAPS[map_name]
        self.n_actions = 6 + self.n_enemies
        self.move_amount = move_amount
        self.difficulty = difficulty
        self.game_version = game_version
        self.continuing_episode = continuing_episode
        self.reward_death_value = reward_death_value
        self.reward_win = reward_win
        self.reward_scale_rate = reward_scale_rate
        self._seed = seed
        self._rng = np.random.RandomState(seed)
        self.max_reward = self.n_enemies * reward_death_value + reward_win + self.n_enemies * MARINE_HEALTH
        self.battles_won = self.battles_game = self.timeouts = self.force_restarts = 0
        self._episode_count = 0
        # crash set-up (FakeSMACFactory); not SMAC constructor arguments
        self.crash_at_step: int | None = None
        self.crash_mode = "relaunch"
        self.crash_once_file: str | None = None
        self._launched = False
        self._terminated = True

    # --- episode -------------------------------------------------------------------------
    def reset(self):
        self._launched = True
        self._episode_steps = 0
        self._episode_count += 1
        self._terminated = False
        self.ally_health = np.full(self.n_agents, MARINE_HEALTH)
        self.enemy_health = np.full(self.n_enemies, MARINE_HEALTH)
        self.ally_pos = np.stack([np.full(self.n_agents, 8.0), 16.0 + np.arange(self.n_agents)], 1)
        self.ally_pos += self._rng.uniform(-1, 1, size=self.ally_pos.shape)
        self.enemy_pos = np.stack([np.full(self.n_enemies, 14.0), 16.0 + np.arange(self.n_enemies)], 1)
        self.ally_cooldown = np.zeros(self.n_agents)
        self.last_action = np.zeros((self.n_agents, self.n_actions), dtype=np.float32)
        return self.get_obs(), self.get_state()

    def _should_crash(self) -> bool:
        if self.crash_at_step is None or self._episode_steps + 1 != self.crash_at_step:
            return False
        if self.crash_once_file is not None:
            try:  # atomic across worker processes: only the first creator crashes
                os.close(os.open(self.crash_once_file, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return False
        return True

    def step(self, actions):
        if self._terminated:
            raise RuntimeError("step() on a finished episode (SC2 would misbehave): call reset()")
        actions = [int(a) for a in actions]
        if self._should_crash():
            if self.crash_mode == "raise":
                raise RuntimeError("fake StarCraft II crashed")
            if self.crash_mode == "exit":
                os._exit(3)
            if self.crash_mode == "hang":
                time.sleep(3600)
            self.force_restarts += 1  # SMAC: full_restart(), then (0, True, {})
            self._terminated = True
            return 0, True, {}
        for agent, action in enumerate(actions):
            avail = self.get_avail_agent_actions(agent)
            assert avail[action] == 1, f"Agent {agent} cannot perform action {action}"
        self._episode_steps += 1
        self.last_action[:] = 0
        self.last_action[np.arange(self.n_agents), actions] = 1
        enemy_before = self.enemy_health.copy()
        attackers: dict[int, list[int]] = {}
        for agent, action in enumerate(actions):
            if 2 <= action <= 5:
                delta = {2: (0, 1), 3: (0, -1), 4: (1, 0), 5: (-1, 0)}[action]
                self.ally_pos[agent] += np.array(delta) * self.move_amount * 0.25
            elif action >= 6:
                target = action - 6
                self.enemy_health[target] = max(0.0, self.enemy_health[target] - self._rng.uniform(4, 8))
                attackers.setdefault(target, []).append(agent)
                self.ally_cooldown[agent] = 1.0
            if action < 6:
                self.ally_cooldown[agent] = max(0.0, self.ally_cooldown[agent] - 0.5)
        for enemy, agents in sorted(attackers.items()):
            if enemy_before[enemy] > 0:  # it was alive when attacked: it shoots back
                victim = agents[self._rng.randint(len(agents))]
                self.ally_health[victim] = max(0.0, self.ally_health[victim] - self._rng.uniform(5, 10))
        killed = int(((enemy_before > 0) & (self.enemy_health <= 0)).sum())
        reward = float((enemy_before - self.enemy_health).sum()) + self.reward_death_value * killed

        info = {"battle_won": False}
        terminated = False
        allies_alive, enemies_alive = (self.ally_health > 0).sum(), (self.enemy_health > 0).sum()
        if allies_alive == 0 or enemies_alive == 0:
            terminated = True
            self.battles_game += 1
            if enemies_alive == 0 and allies_alive > 0:
                info["battle_won"] = True
                self.battles_won += 1
                reward += self.reward_win
        elif self._episode_steps >= self.episode_limit:
            terminated = True
            self.battles_game += 1
            self.timeouts += 1
            if self.continuing_episode:
                info["episode_limit"] = True
        info["dead_allies"] = int(self.n_agents - allies_alive)
        info["dead_enemies"] = int(self.n_enemies - enemies_alive)
        self._terminated = terminated
        return reward / (self.max_reward / self.reward_scale_rate), terminated, info

    # --- observations --------------------------------------------------------------------
    def get_obs(self):
        return [self.get_obs_agent(i) for i in range(self.n_agents)]

    def get_obs_agent(self, agent_id):
        obs = np.zeros(self.get_obs_size(), dtype=np.float32)
        if self.ally_health[agent_id] <= 0:
            return obs
        own = self.ally_pos[agent_id]
        obs[:4] = 1.0  # movement feasible in all four directions
        offset = 4
        for k in range(self.n_enemies):
            if self.enemy_health[k] > 0:
                rel = (self.enemy_pos[k] - own) / SIGHT_RANGE
                obs[offset:offset + 5] = [1.0, np.linalg.norm(rel), rel[0], rel[1],
                                          self.enemy_health[k] / MARINE_HEALTH]
            offset += 5
        for j in range(self.n_agents):
            if j == agent_id:
                continue
            if self.ally_health[j] > 0:
                rel = (self.ally_pos[j] - own) / SIGHT_RANGE
                obs[offset:offset + 5] = [1.0, np.linalg.norm(rel), rel[0], rel[1],
                                          self.ally_health[j] / MARINE_HEALTH]
            offset += 5
        obs[offset] = self.ally_health[agent_id] / MARINE_HEALTH
        return obs

    def get_obs_size(self):
        return 4 + 5 * self.n_enemies + 5 * (self.n_agents - 1) + 1

    def get_state(self):
        center = np.array([16.0, 16.0])
        allies = np.zeros((self.n_agents, 4), dtype=np.float32)
        for i in range(self.n_agents):
            if self.ally_health[i] > 0:
                rel = (self.ally_pos[i] - center) / 16.0
                allies[i] = [self.ally_health[i] / MARINE_HEALTH, self.ally_cooldown[i], rel[0], rel[1]]
        enemies = np.zeros((self.n_enemies, 3), dtype=np.float32)
        for k in range(self.n_enemies):
            if self.enemy_health[k] > 0:
                rel = (self.enemy_pos[k] - center) / 16.0
                enemies[k] = [self.enemy_health[k] / MARINE_HEALTH, rel[0], rel[1]]
        return np.concatenate([allies.ravel(), enemies.ravel(), self.last_action.ravel()]).astype(np.float32)

    def get_state_size(self):
        return 4 * self.n_agents + 3 * self.n_enemies + self.n_agents * self.n_actions

    def get_avail_actions(self):
        return [self.get_avail_agent_actions(i) for i in range(self.n_agents)]

    def get_avail_agent_actions(self, agent_id):
        if self.ally_health[agent_id] <= 0:
            return [1] + [0] * (self.n_actions - 1)  # dead: no-op only
        return [0, 1, 1, 1, 1, 1] + [int(h > 0) for h in self.enemy_health]

    def get_total_actions(self):
        return self.n_actions

    def get_env_info(self):
        return {
            "state_shape": self.get_state_size(), "obs_shape": self.get_obs_size(), "n_actions": self.n_actions,
            "n_agents": self.n_agents, "episode_limit": self.episode_limit,
            "agent_features": ["health", "energy/cooldown", "rel_x", "rel_y"],
            "enemy_features": ["health", "rel_x", "rel_y"],
        }

    def get_stats(self):
        return {
            "battles_won": self.battles_won, "battles_game": self.battles_game,
            "battles_draw": self.timeouts, "win_rate": self.battles_won / max(self.battles_game, 1),
            "timeouts": self.timeouts, "restarts": self.force_restarts,
        }

    def seed(self):
        return self._seed

    def save_replay(self):
        pass

    def render(self, mode="human"):
        return None

    def close(self):
        self._launched = False


@dataclass(frozen=True)
class FakeSMACFactory:
    """Picklable `env_factory` for `maven.envs.smac.make`; optionally crashes at one step.

    `crash_seeds`: only envs built with one of these seeds crash (None: all of them);
    `crash_once_file`: a path shared by all workers; only the first crash happens.
    """

    crash_at_step: int | None = None
    crash_mode: str = "relaunch"  # relaunch | raise | exit | hang
    crash_seeds: tuple[int, ...] | None = None
    crash_once_file: str | None = None

    def __call__(self, **kwargs) -> FakeStarCraft2Env:
        env = FakeStarCraft2Env(**kwargs)
        if self.crash_seeds is None or kwargs.get("seed") in self.crash_seeds:
            env.crash_at_step = self.crash_at_step
            env.crash_mode = self.crash_mode
            env.crash_once_file = self.crash_once_file
        return env
