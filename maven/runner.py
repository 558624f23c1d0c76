"""Rollouts: play one episode in each of B environments with epsilon-greedy agents."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from maven.batch import EpisodeBatch
from maven.learner import greedy_actions


def epsilon_at(t_env: int, cfg) -> float:
    """Linear decay from epsilon_start to epsilon_finish over epsilon_anneal_time env steps."""
    if cfg.epsilon_anneal_time == 0:
        return cfg.epsilon_finish
    frac = min(1.0, t_env / cfg.epsilon_anneal_time)
    return cfg.epsilon_start + frac * (cfg.epsilon_finish - cfg.epsilon_start)


def select_actions(q: torch.Tensor, avail: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Epsilon-greedy over available actions, independently per agent: q, avail [B, N, A] -> [B, N]."""
    greedy = greedy_actions(q, avail)
    if epsilon <= 0:
        return greedy
    B, N, A = q.shape
    random_actions = torch.multinomial(avail.reshape(B * N, A).float(), 1).view(B, N)
    explore = torch.rand(B, N, device=q.device) < epsilon
    return torch.where(explore, random_actions, greedy)


@dataclass
class RolloutStats:
    returns: torch.Tensor  # [B] undiscounted env return
    lengths: torch.Tensor  # [B]
    won: torch.Tensor  # [B] bool
    crashed: torch.Tensor  # [B] bool: discarded episodes
    s0: torch.Tensor  # [B, S]
    z: torch.Tensor  # [B]

    @property
    def kept(self) -> torch.Tensor:
        return ~self.crashed


def rollout(env, learner, cfg, seed: int, epsilon: float, uniform_z: bool = False):
    """One episode per env -> (EpisodeBatch of the kept episodes, RolloutStats of all)."""
    info, B, dev = env.info, env.n_envs, env.device
    T, N, A = info.episode_limit, info.n_agents, info.n_actions
    first = env.reset(seed)
    obs = torch.zeros(B, T + 1, N, info.obs_dim, device=dev)
    state = torch.zeros(B, T + 1, info.state_dim, device=dev)
    avail = torch.zeros(B, T + 1, N, A, dtype=torch.bool, device=dev)
    actions = torch.zeros(B, T, N, dtype=torch.long, device=dev)
    reward = torch.zeros(B, T, device=dev)
    terminated = torch.zeros(B, T, dtype=torch.bool, device=dev)
    filled = torch.zeros(B, T, dtype=torch.bool, device=dev)
    obs[:, 0], state[:, 0], avail[:, 0] = first.obs, first.state, first.avail_actions
    returns = torch.zeros(B, device=dev)
    won = torch.zeros(B, dtype=torch.bool, device=dev)
    crashed = torch.zeros(B, dtype=torch.bool, device=dev)
    z = learner.sample_z(first.state, uniform_z)
    hidden = learner.init_hidden(B)
    last_actions = torch.full((B, N), -1, dtype=torch.long, device=dev)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    for t in range(T):
        q, hidden = learner.act_q(obs[:, t], last_actions, hidden, z)
        choosable = avail[:, t] | ~active.view(B, 1, 1)  # ended envs: any action, ignored
        chosen = select_actions(q, choosable, epsilon)
        out = env.step(chosen)
        live = active.unsqueeze(-1)
        actions[:, t] = chosen * live
        reward[:, t] = out.reward * active
        ended = (out.terminated | out.truncated | out.crashed) & active
        no_bootstrap = out.terminated | (out.truncated & (not cfg.bootstrap_on_timeout))
        terminated[:, t] = no_bootstrap & active
        filled[:, t] = active
        obs[:, t + 1] = out.obs * live.unsqueeze(-1)
        state[:, t + 1] = out.state * live
        avail[:, t + 1] = out.avail_actions & live.unsqueeze(-1)
        returns += out.reward * active
        won |= out.won & active
        crashed |= out.crashed & active
        last_actions = chosen
        active = active & ~ended
        if not bool(active.any()):
            break
    batch = EpisodeBatch(obs, state, avail, actions, reward * cfg.reward_scale, terminated, filled, z)
    kept = ~crashed
    if not bool(kept.all()):
        batch = batch.map(lambda x: x[kept])
    stats = RolloutStats(returns, filled.sum(1), won, crashed, first.state, z)
    return batch, stats
