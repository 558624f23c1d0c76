"""The shared value-decomposition learner: one loss over a batch of whole episodes, for every
member of a population at once (members.py).

Subclasses choose the agent network, the mixer and the mixer's state input, and may add loss
terms (MAVEN) or replace the loss (QTRAN). The TD loss itself is a pure function of tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from maven.batch import EpisodeBatch
from maven.compiled import compile_fn
from maven.envs.base import EnvInfo
from maven.members import (
    build_members,
    clip_grad_norm,
    load_member_slice,
    make_optimiser,
    masked_assign,
    member_slice,
    tree_map,
)
from maven.networks import RNNAgent, agent_input_dim, build_inputs, one_hot


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


class Nets:
    """One member's networks as callables over its own parameters (for a loss written for one
    member): nets.agent(...), nets.target_agent(...), nets.mixer(...), nets.target_mixer(...),
    and each extra module by its name (e.g. nets.discriminator(...))."""

    def __init__(self, modules: dict[str, nn.Module], params: dict, target_params: dict):
        self._modules, self._params, self._targets = modules, params, target_params

    def __getattr__(self, name: str):
        if name.startswith("target_"):
            base = name.removeprefix("target_")
            module, params = self._modules[base], self._targets[base]
        elif name in ("agent", "mixer"):
            module, params = self._modules[name], self._params[name]
        else:
            module = self._modules["extra"][name]
            prefix = f"{name}."
            params = {k.removeprefix(prefix): v for k, v in self._params["extra"].items() if k.startswith(prefix)}
        return lambda *args: functional_call(module, params, args)


class QLearner:
    """QMIX-style learner for a population of S members (seeds), the member a batch axis.

    A subclass chooses the agent network, the mixer and the mixer's state input, and may add
    loss terms (MAVEN) or replace the loss (QTRAN). `loss` is written for one member as a pure
    function of its networks and a batch; `update` runs it for every member with torch.func.
    """

    has_latent = False  # a per-episode latent z with its own policy (MAVEN)

    def __init__(self, cfg, info: EnvInfo, device: torch.device, seeds: Sequence[int]):
        self.cfg, self.info, self.device = cfg, info, torch.device(device)
        self.seeds = [int(s) for s in seeds]
        self.n_members = len(self.seeds)
        self.input_dim = agent_input_dim(info.obs_dim, info.n_actions, info.n_agents, cfg)
        self.modules, self.params = build_members(self._build_networks, self.seeds, self.device)
        self.target_params = {name: tree_map(torch.clone, self.params[name]) for name in ("agent", "mixer")}
        self.optimiser = make_optimiser(self.params, cfg)
        S = self.n_members
        self.last_target_update_episode = torch.zeros(S, dtype=torch.int64)
        self.updates = torch.zeros(S, dtype=torch.int64)
        self._grads = compile_fn(vmap(grad(self._member_loss, has_aux=True)), cfg.compile, self.device)
        self._act = compile_fn(vmap(self._member_act), cfg.compile, self.device)
        self._apply = compile_fn(self._clip_and_step, cfg.compile, self.device)

    def _build_networks(self) -> dict[str, nn.Module]:
        return {"agent": self.build_agent(), "mixer": self.build_mixer(),
                "extra": nn.ModuleDict(self.build_extra())}

    # --- parts a subclass chooses -----------------------------------------------------------
    def build_agent(self) -> nn.Module:
        return RNNAgent(self.input_dim, self.info.n_actions, self.cfg.rnn_hidden_dim)

    def build_mixer(self) -> nn.Module:
        raise NotImplementedError

    def build_extra(self) -> dict[str, nn.Module]:
        """Further modules trained with the agents (MAVEN's discriminator)."""
        return {}

    def z_onehot(self, z: torch.Tensor) -> torch.Tensor | None:
        """The agent head's latent input for z [B]; None for algorithms without z."""
        return None

    def mixer_state(self, batch: EpisodeBatch) -> torch.Tensor:
        return batch.state  # [B, T+1, S]

    # --- the latent (MAVEN overrides these) -----------------------------------------------
    def sample_z(self, s0: torch.Tensor, uniform: bool, members: torch.Tensor) -> torch.Tensor:
        """z [S, B] for episodes starting in s0 [S, B, state]; algorithms without a latent use 0."""
        return torch.zeros(s0.shape[:2], dtype=torch.long, device=self.device)

    def after_rollout(self, s0, z, returns, kept, members) -> dict:
        """Called after every batch of training episodes (MAVEN trains its z-policy here);
        all [S, B] (s0 [S, B, state]); returns stats {name: [S]}."""
        return {}

    # --- acting --------------------------------------------------------------------------------
    def init_hidden(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.info.n_agents, self.cfg.rnn_hidden_dim, device=self.device)

    def _member_act(self, agent_params, obs, last_actions, hidden, z):
        inputs = build_inputs(obs, last_actions, self.info.n_actions, self.cfg)  # [B, N, D]
        return functional_call(self.modules["agent"], agent_params, (inputs, hidden, self.z_onehot(z)),
                               {"one_step": True})

    @torch.no_grad()
    def act_q(self, obs, last_actions, hidden, z):
        """One step for every member's B envs: obs [S, B, N, O], last_actions [S, B, N],
        hidden [S, B, N, H], z [S, B] -> q [S, B, N, A], hidden [S, B, N, H]."""
        return self._act(self.params["agent"], obs, last_actions, hidden, z)

    # --- learning (one member) ------------------------------------------------------------------
    def unroll(self, agent, batch: EpisodeBatch):
        """Run an agent over whole episodes -> q [B, T+1, N, A], hidden [B, T+1, N, H]."""
        inputs = build_inputs(batch.obs, batch.last_actions(), self.info.n_actions, self.cfg)
        h0 = self.init_hidden(batch.n_episodes)
        return agent(inputs, h0, self.z_onehot(batch.z))

    def td_loss(self, nets: Nets, batch: EpisodeBatch, q: torch.Tensor, extra_target: torch.Tensor | None = None):
        """The double-Q TD loss through the mixer. q [B, T+1, N, A] from the live agent."""
        with torch.no_grad():
            target_q, _ = self.unroll(nets.target_agent, batch)  # [B, T+1, N, A]
        avail_next = batch.avail_actions[:, 1:]
        chosen_action_qvals = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)  # [B, T, N]
        if self.cfg.double_q:
            best_next = greedy_actions(q[:, 1:].detach(), avail_next)
        else:
            best_next = greedy_actions(target_q[:, 1:], avail_next)
        target_max_qvals = target_q[:, 1:].gather(-1, best_next.unsqueeze(-1)).squeeze(-1)  # [B, T, N]
        mix_state = self.mixer_state(batch)
        q_tot = nets.mixer(chosen_action_qvals, mix_state[:, :-1])  # [B, T]
        with torch.no_grad():
            target_q_tot = nets.target_mixer(target_max_qvals, mix_state[:, 1:])
        targets = td_targets(target_q_tot, batch.reward, batch.terminated, self.cfg.gamma)
        if extra_target is not None:
            targets = targets + extra_target
        mask = batch.filled.float()
        loss = masked_mse(q_tot, targets, mask)
        return loss, {"td_loss": loss.detach()}

    def loss(self, nets: Nets, batch: EpisodeBatch):
        """One member's loss on its batch -> (loss, {name: scalar})."""
        q, _ = self.unroll(nets.agent, batch)
        return self.td_loss(nets, batch, q)

    def _member_loss(self, params, target_params, fields):
        loss, stats = self.loss(Nets(self.modules, params, target_params), EpisodeBatch(*fields))
        return loss, stats

    def member_nets(self, k: int) -> Nets:
        """Member k's networks, outside vmap (for tests and diagnostics)."""
        return Nets(self.modules, tree_map(lambda x: x[k], self.params),
                    tree_map(lambda x: x[k], self.target_params))

    def member_loss(self, k: int, batch: EpisodeBatch):
        """Member k's loss on a batch of its own [B, ...] (for tests and diagnostics)."""
        return self.loss(self.member_nets(k), batch)

    # --- learning (the population) ----------------------------------------------------------------
    def update(self, batch: EpisodeBatch, episodes: torch.Tensor, active: torch.Tensor) -> dict[str, torch.Tensor]:
        """One gradient step for every member with active[k] on its own batch [S, B, ...];
        episodes [S] = each member's training episodes so far (target refresh every
        target_update_interval of them). Inactive members do not change at all.
        A member whose loss or gradient norm is not finite is not updated either (the trainer
        reads the returned stats and stops or skips it, cfg.on_nonfinite).
        Returns stats {name: [S]} (rows of inactive members are meaningless)."""
        grads, stats = self._grads(self.params, self.target_params, batch.as_tuple())
        stats["grad_norm"], active = self._apply(self.params, grads, stats, active.to(self.device))
        cpu_active = active.cpu()
        self.updates += cpu_active.long()
        episodes = torch.as_tensor(episodes, dtype=torch.int64)
        due = cpu_active & (episodes - self.last_target_update_episode >= self.cfg.target_update_interval)
        if bool(due.any()):
            for name in self.target_params:
                masked_assign(self.target_params[name], self.params[name], due.to(self.device))
            self.last_target_update_episode = torch.where(due, episodes, self.last_target_update_episode)
        return stats

    def _clip_and_step(self, params, grads, stats, active):
        """Clip each member's gradient, then one optimiser step (in place) for the active members
        whose statistics and gradient norm are finite -> (gradient norms [S], who stepped [S])."""
        grads, grad_norm = clip_grad_norm(grads, self.cfg.grad_norm_clip)
        finite = torch.stack([torch.isfinite(value) for value in (*stats.values(), grad_norm)]).all(0)
        active = active & finite
        self.optimiser.step(params, grads, active)
        return grad_norm, active

    # --- checkpointing, one member at a time -----------------------------------------------------
    def member_state(self, k: int) -> dict:
        return {"params": member_slice(self.params, k), "target_params": member_slice(self.target_params, k),
                "optimiser": self.optimiser.member_state(k),
                "last_target_update_episode": int(self.last_target_update_episode[k]),
                "updates": int(self.updates[k])}

    def load_member_state(self, k: int, state: dict) -> None:
        load_member_slice(self.params, k, state["params"])
        load_member_slice(self.target_params, k, state["target_params"])
        self.optimiser.load_member_state(k, state["optimiser"])
        self.last_target_update_episode[k] = state["last_target_update_episode"]
        self.updates[k] = state["updates"]


def one_hot_z(z: torch.Tensor, k: int) -> torch.Tensor:
    return one_hot(z, k)
