"""Agent networks, shared across agents: input = obs ⊕ last action ⊕ agent id.

Acting runs one step at a time; learning runs `nn.GRU` over whole sequences (cuDNN on a GPU),
with no Python loop over time. Both paths use the same GRU weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def agent_input_dim(obs_dim: int, n_actions: int, n_agents: int, cfg) -> int:
    return obs_dim + (n_actions if cfg.obs_last_action else 0) + (n_agents if cfg.obs_agent_id else 0)


def build_inputs(obs: torch.Tensor, last_actions: torch.Tensor, n_actions: int, cfg) -> torch.Tensor:
    """obs [..., N, O], last_actions [..., N] int (-1 = none yet) -> inputs [..., N, D]."""
    parts = [obs]
    if cfg.obs_last_action:
        parts.append(F.one_hot(last_actions.clamp(min=0), n_actions).to(obs.dtype) *
                     (last_actions >= 0).unsqueeze(-1).to(obs.dtype))
    if cfg.obs_agent_id:
        n_agents = obs.shape[-2]
        eye = torch.eye(n_agents, device=obs.device, dtype=obs.dtype)
        parts.append(eye.expand(*obs.shape[:-1], n_agents))
    return torch.cat(parts, dim=-1)


class RNNAgent(nn.Module):
    """PyMARL's RNN agent: Linear -> ReLU -> GRU -> Linear(|U|) with bias."""

    def __init__(self, input_dim: int, n_actions: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.rnn = nn.GRU(hidden_dim, hidden_dim, batch_first=True)
        self.fc2 = nn.Linear(hidden_dim, n_actions)

    def trunk(self, inputs: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """inputs [M, T, D], h0 [M, H] -> hidden states after each step [M, T, H]."""
        x = F.relu(self.fc1(inputs))
        hidden, _ = self.rnn(x, h0.unsqueeze(0).contiguous())
        return hidden

    def head(self, hidden: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        return self.fc2(hidden)

    def forward(self, inputs: torch.Tensor, h0: torch.Tensor, z: torch.Tensor | None = None):
        """inputs [B, T, N, D], h0 [B, N, H], z one-hot [B, K] or None
        -> q [B, T, N, A], hidden [B, T, N, H]."""
        B, T, N, D = inputs.shape
        flat = inputs.permute(0, 2, 1, 3).reshape(B * N, T, D)  # [B*N, T, D]
        hidden = self.trunk(flat, h0.reshape(B * N, -1))
        hidden = hidden.reshape(B, N, T, -1).permute(0, 2, 1, 3)  # [B, T, N, H]
        return self.head(hidden, z), hidden


class HyperHeadAgent(RNNAgent):
    """MAVEN's agent: the output layer is a hypernetwork on [e_z ⊕ onehot(agent)].

    W_i = reshape(Linear([e_z, e_i]) -> H*|U|) and Q_i = W_i h_i, with no additive output bias.
    """

    def __init__(self, input_dim: int, n_actions: int, hidden_dim: int, noise_dim: int, n_agents: int):
        super().__init__(input_dim, n_actions, hidden_dim)
        del self.fc2
        self.n_actions, self.n_agents = n_actions, n_agents
        self.hyper_w = nn.Linear(noise_dim + n_agents, hidden_dim * n_actions)

    def head(self, hidden: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        B, _, N, H = hidden.shape
        ids = torch.eye(N, device=hidden.device).expand(B, N, N)  # [B, N, N]
        z_per_agent = z.unsqueeze(1).expand(B, N, z.shape[-1])  # [B, N, K]
        weights = self.hyper_w(torch.cat([z_per_agent, ids], -1)).view(B, N, self.n_actions, H)
        return torch.einsum("bnah,btnh->btna", weights, hidden)  # [B, T, N, A], no [B,T,N,A,H] copy
