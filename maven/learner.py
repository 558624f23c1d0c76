"""The shared value-decomposition learner: one loss over a batch of whole episodes.

Subclasses choose the agent network, the mixer and the mixer's state input, and may add loss
terms (MAVEN) or replace the loss (QTRAN). The TD loss itself is a pure function of tensors.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from maven.batch import EpisodeBatch
from maven.envs.base import EnvInfo
from maven.networks import RNNAgent, agent_input_dim, build_inputs


def greedy_actions(q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Arg-max over available actions: q [..., A], avail [..., A] bool -> [...] int64."""
    return q.masked_fill(~avail, float("-inf")).argmax(-1)


def td_targets(target_q_tot: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor,
               gamma: float) -> torch.Tensor:
    """y_t = r_t + γ (1 − d_t) Q⁻_tot(t + 1); all [B, T]."""
    return reward + gamma * (~terminated).float() * target_q_tot


def masked_mse(values: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ m (v − stopgrad(y))² / Σ m over real steps."""
    err = (values - targets.detach()) * mask
    return (err ** 2).sum() / mask.sum().clamp(min=1)


def make_optimiser(params, cfg) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.optim_alpha, eps=cfg.optim_eps)


class QLearner:
    """QMIX-style learner; `mixer` of None means independent utilities (not used here)."""

    def __init__(self, cfg, info: EnvInfo, device: torch.device, seed: int = 0):
        self.cfg, self.info, self.device = cfg, info, torch.device(device)
        self.input_dim = agent_input_dim(info.obs_dim, info.n_actions, info.n_agents, cfg)
        self.agent = self.build_agent().to(self.device)
        self.mixer = self.build_mixer().to(self.device)
        self.extra = nn.ModuleDict(self.build_extra()).to(self.device)  # trained with the agents
        self.target_agent = copy.deepcopy(self.agent)
        self.target_mixer = copy.deepcopy(self.mixer)
        self.params = [*self.agent.parameters(), *self.mixer.parameters(), *self.extra.parameters()]
        self.optimiser = make_optimiser(self.params, cfg)
        self.last_target_update_episode = 0
        self.updates = 0

    # --- parts a subclass chooses -----------------------------------------------------------
    def build_agent(self) -> nn.Module:
        return RNNAgent(self.input_dim, self.info.n_actions, self.cfg.rnn_hidden_dim)

    def build_mixer(self) -> nn.Module:
        raise NotImplementedError

    def build_extra(self) -> dict[str, nn.Module]:
        return {}

    def z_onehot(self, z: torch.Tensor) -> torch.Tensor | None:
        """The agent head's latent input for z [B]; None for algorithms without z."""
        return None

    def mixer_state(self, batch: EpisodeBatch) -> torch.Tensor:
        return batch.state  # [B, T+1, S]

    # --- the latent (MAVEN overrides these) -----------------------------------------------
    def sample_z(self, s0: torch.Tensor, uniform: bool) -> torch.Tensor:
        """z [B] for episodes starting in s0 [B, S]; algorithms without a latent use 0."""
        return torch.zeros(s0.shape[0], dtype=torch.long, device=self.device)

    def after_rollout(self, s0: torch.Tensor, z: torch.Tensor, returns: torch.Tensor) -> dict:
        """Called after every batch of training episodes (MAVEN trains its z-policy here)."""
        return {}

    # --- acting --------------------------------------------------------------------------------
    def init_hidden(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.info.n_agents, self.cfg.rnn_hidden_dim, device=self.device)

    @torch.no_grad()
    def act_q(self, obs, last_actions, hidden, z):
        """One step for B envs: obs [B, N, O], last_actions [B, N] -> q [B, N, A], hidden [B, N, H]."""
        inputs = build_inputs(obs, last_actions, self.info.n_actions, self.cfg).unsqueeze(1)
        q, new_hidden = self.agent(inputs, hidden, self.z_onehot(z))
        return q[:, 0], new_hidden[:, 0]

    # --- learning ------------------------------------------------------------------------------
    def unroll(self, agent: nn.Module, batch: EpisodeBatch):
        """Run the agent over whole episodes -> q [B, T+1, N, A], hidden [B, T+1, N, H]."""
        inputs = build_inputs(batch.obs, batch.last_actions(), self.info.n_actions, self.cfg)
        h0 = self.init_hidden(batch.n_episodes)
        return agent(inputs, h0, self.z_onehot(batch.z))

    def td_loss(self, batch: EpisodeBatch, q: torch.Tensor, extra_target: torch.Tensor | None = None):
        """The double-Q TD loss through the mixer. q [B, T+1, N, A] from the live agent."""
        with torch.no_grad():
            target_q, _ = self.unroll(self.target_agent, batch)  # [B, T+1, N, A]
        avail_next = batch.avail_actions[:, 1:]
        chosen_action_qvals = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)  # [B, T, N]
        if self.cfg.double_q:
            best_next = greedy_actions(q[:, 1:].detach(), avail_next)
        else:
            best_next = greedy_actions(target_q[:, 1:], avail_next)
        target_max_qvals = target_q[:, 1:].gather(-1, best_next.unsqueeze(-1)).squeeze(-1)  # [B, T, N]
        mix_state = self.mixer_state(batch)
        q_tot = self.mixer(chosen_action_qvals, mix_state[:, :-1])  # [B, T]
        with torch.no_grad():
            target_q_tot = self.target_mixer(target_max_qvals, mix_state[:, 1:])
        targets = td_targets(target_q_tot, batch.reward, batch.terminated, self.cfg.gamma)
        if extra_target is not None:
            targets = targets + extra_target
        mask = batch.filled.float()
        loss = masked_mse(q_tot, targets, mask)
        return loss, {"td_loss": loss.detach()}

    def loss(self, batch: EpisodeBatch):
        q, _ = self.unroll(self.agent, batch)
        return self.td_loss(batch, q)

    def update(self, batch: EpisodeBatch, episode: int) -> dict[str, float]:
        """One gradient step on a batch; refresh the targets every target_update_interval episodes."""
        loss, stats = self.loss(batch)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        stats["grad_norm"] = nn.utils.clip_grad_norm_(self.params, self.cfg.grad_norm_clip)
        self.optimiser.step()
        self.updates += 1
        if episode - self.last_target_update_episode >= self.cfg.target_update_interval:
            self.sync_targets()
            self.last_target_update_episode = episode
        return stats

    def sync_targets(self) -> None:
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    # --- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "agent": self.agent.state_dict(), "mixer": self.mixer.state_dict(),
            "extra": self.extra.state_dict(), "target_agent": self.target_agent.state_dict(),
            "target_mixer": self.target_mixer.state_dict(), "optimiser": self.optimiser.state_dict(),
            "last_target_update_episode": self.last_target_update_episode, "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.mixer.load_state_dict(state["mixer"])
        self.extra.load_state_dict(state["extra"])
        self.target_agent.load_state_dict(state["target_agent"])
        self.target_mixer.load_state_dict(state["target_mixer"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.last_target_update_episode = state["last_target_update_episode"]
        self.updates = state["updates"]


def one_hot_z(z: torch.Tensor, k: int) -> torch.Tensor:
    return F.one_hot(z, k).float()
