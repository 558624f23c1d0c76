"""Rollouts: every member plays one episode in each of its B environments with epsilon-greedy
agents, all members stepped together (one batched env, one vmapped agent call per step)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from maven.batch import EpisodeBatch
from maven.learner import greedy_actions
from maven.streams import Streams


def epsilon_at(t_env, cfg):
    """Linear decay from epsilon_start to epsilon_finish over epsilon_anneal_time env steps
    (t_env an int or an array of members' counters)."""
    if cfg.epsilon_anneal_time == 0:
        return np.full(np.shape(t_env), cfg.epsilon_finish) if np.ndim(t_env) else cfg.epsilon_finish
    frac = np.minimum(1.0, np.asarray(t_env) / cfg.epsilon_anneal_time)
    eps = cfg.epsilon_start + frac * (cfg.epsilon_finish - cfg.epsilon_start)
    return eps if np.ndim(t_env) else float(eps)


class ActionStreams:
    """The two per-member streams epsilon-greedy draws from: whether to explore, and which
    available action to take when it does."""

    def __init__(self, seeds, device):
        self.explore = Streams(seeds, "explore", device)
        self.action = Streams(seeds, "random_action", device)

    def member_state(self, k: int) -> dict:
        return {"explore": self.explore.member_state(k), "action": self.action.member_state(k)}

    def load_member_state(self, k: int, state: dict) -> None:
        self.explore.load_member_state(k, state["explore"])
        self.action.load_member_state(k, state["action"])


def select_actions(q: torch.Tensor, avail: torch.Tensor, epsilon: torch.Tensor | None,
                   streams: ActionStreams, members: torch.Tensor) -> torch.Tensor:
    """Epsilon-greedy over available actions, independently per agent: q, avail [S, B, N, A],
    epsilon [S] (None: greedy, no draws) -> [S, B, N]. Draws only for `members` ([S] bool)."""
    greedy = greedy_actions(q, avail)
    if epsilon is None:
        return greedy
    S, B, N, _ = q.shape
    explore = streams.explore.uniform(B * N, members, q.dtype).view(S, B, N) < epsilon.view(S, 1, 1)
    u = streams.action.uniform(B * N, members).view(S, B, N)
    n_avail = avail.sum(-1)  # [S, B, N]
    pick = torch.minimum((u * n_avail).long(), n_avail - 1)  # the pick-th available action
    random_actions = (avail.long().cumsum(-1) <= pick.unsqueeze(-1)).sum(-1)
    return torch.where(explore, random_actions, greedy)


@dataclass
class RolloutStats:
    returns: torch.Tensor  # [S, B] undiscounted env return
    lengths: torch.Tensor  # [S, B]
    won: torch.Tensor  # [S, B] bool
    crashed: torch.Tensor  # [S, B] bool: discarded episodes
    s0: torch.Tensor  # [S, B, state]
    z: torch.Tensor  # [S, B]

    @property
    def kept(self) -> torch.Tensor:
        return ~self.crashed


def rollout(env, learner, cfg, streams: ActionStreams, reset_seeds, epsilon: torch.Tensor | None,
            members: torch.Tensor, uniform_z: bool = False):
    """One episode per env -> (EpisodeBatch [S, B, ...], RolloutStats [S, B]).

    epsilon [S] (None: greedy test episodes); members [S] bool: whose random streams this
    rollout may draw from (the others' rows are played but must not be used)."""
    info, dev = env.info, env.device
    S = env.n_members
    B = env.n_envs // S
    T, N, A = info.episode_limit, info.n_agents, info.n_actions
    first = env.reset(reset_seeds)
    obs = torch.zeros(S, B, T + 1, N, info.obs_dim, device=dev)
    state = torch.zeros(S, B, T + 1, info.state_dim, device=dev)
    avail = torch.zeros(S, B, T + 1, N, A, dtype=torch.bool, device=dev)
    actions = torch.zeros(S, B, T, N, dtype=torch.long, device=dev)
    reward = torch.zeros(S, B, T, device=dev)
    terminated = torch.zeros(S, B, T, dtype=torch.bool, device=dev)
    filled = torch.zeros(S, B, T, dtype=torch.bool, device=dev)
    obs[:, :, 0] = first.obs.view(S, B, N, -1)
    state[:, :, 0] = first.state.view(S, B, -1)
    avail[:, :, 0] = first.avail_actions.view(S, B, N, A)
    returns = torch.zeros(S, B, device=dev)
    won = torch.zeros(S, B, dtype=torch.bool, device=dev)
    crashed = torch.zeros(S, B, dtype=torch.bool, device=dev)
    members = members.to(dev)
    epsilon = None if epsilon is None else epsilon.to(dev)
    z = learner.sample_z(state[:, :, 0], uniform_z, members)  # [S, B]
    hidden = learner.init_hidden(S * B).view(S, B, N, -1)
    last_actions = torch.full((S, B, N), -1, dtype=torch.long, device=dev)
    active = torch.ones(S, B, dtype=torch.bool, device=dev)
    for t in range(T):
        q, hidden = learner.act_q(obs[:, :, t], last_actions, hidden, z)
        choosable = avail[:, :, t] | ~active.view(S, B, 1, 1)  # ended envs: any action, ignored
        # a member whose episodes all ended draws no more, as it would alone
        chosen = select_actions(q, choosable, epsilon, streams, members & active.any(1))
        out = env.step(chosen.view(S * B, N))
        live = active.unsqueeze(-1)
        step_reward = out.reward.view(S, B)
        actions[:, :, t] = chosen * live
        reward[:, :, t] = step_reward * active
        ended = (out.terminated | out.truncated | out.crashed).view(S, B) & active
        no_bootstrap = out.terminated | (out.truncated & (not cfg.bootstrap_on_timeout))
        terminated[:, :, t] = no_bootstrap.view(S, B) & active
        filled[:, :, t] = active
        obs[:, :, t + 1] = out.obs.view(S, B, N, -1) * live.unsqueeze(-1)
        state[:, :, t + 1] = out.state.view(S, B, -1) * live
        avail[:, :, t + 1] = out.avail_actions.view(S, B, N, A) & live.unsqueeze(-1)
        returns += step_reward * active
        won |= out.won.view(S, B) & active
        crashed |= out.crashed.view(S, B) & active
        last_actions = chosen
        active = active & ~ended
        # stop once every episode ended; on a GPU only every few steps (each check waits for
        # the device), since extra steps of ended episodes change nothing
        if (dev.type == "cpu" or t % 8 == 7) and not bool(active.any()):
            break
    batch = EpisodeBatch(obs, state, avail, actions, reward * cfg.reward_scale, terminated, filled, z)
    stats = RolloutStats(returns, filled.sum(2), won, crashed, state[:, :, 0], z)
    return batch, stats
