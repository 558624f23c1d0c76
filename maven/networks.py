"""Agent networks, shared across agents: input = obs ⊕ last action ⊕ agent id.

The GRU's weights live in an `nn.GRU` (so checkpoints and initialisation are PyTorch's), but its
equations are written out, one step for acting and unrolled over an episode for learning:
torch.func.vmap batches those over the members of a population, which it cannot do for nn.GRU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def one_hot(index: torch.Tensor, n: int, dtype=torch.float32) -> torch.Tensor:
    """index [...] int -> [..., n]; unlike F.one_hot it checks nothing data-dependent, so it runs
    under torch.func.vmap. An index outside [0, n) gives a row of zeros."""
    return (index.unsqueeze(-1) == torch.arange(n, device=index.device)).to(dtype)


def gru_gates(gru: nn.GRU, input_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """nn.GRU's update from precomputed input gates [M, 3H] and h [M, H] -> h' [M, H]."""
    hidden_gates = F.linear(h, gru.weight_hh_l0, gru.bias_hh_l0)
    i_r, i_z, i_n = input_gates.chunk(3, -1)
    h_r, h_z, h_n = hidden_gates.chunk(3, -1)
    reset = torch.sigmoid(i_r + h_r)
    update = torch.sigmoid(i_z + h_z)
    candidate = torch.tanh(i_n + reset * h_n)
    return candidate + update * (h - candidate)


def gru_unroll(gru: nn.GRU, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """A one-layer batch-first nn.GRU over x [M, T, D] from h0 [M, H] -> every step's state [M, T, H].

    Unrolled step by step rather than called: under torch.func.vmap (one set of weights per
    member) nn.GRU has no batching rule, and its fallback is several times slower than these
    few batched matrix products per step."""
    input_gates = F.linear(x, gru.weight_ih_l0, gru.bias_ih_l0)  # all steps at once, [M, T, 3H]
    h, hidden = h0, []
    for gates_t in input_gates.unbind(1):  # unbind: one backward for all steps, not one per step
        h = gru_gates(gru, gates_t, h)
        hidden.append(h)
    return torch.stack(hidden, 1)


def agent_input_dim(obs_dim: int, n_actions: int, n_agents: int, cfg) -> int:
    return obs_dim + (n_actions if cfg.obs_last_action else 0) + (n_agents if cfg.obs_agent_id else 0)


def build_inputs(obs: torch.Tensor, last_actions: torch.Tensor, n_actions: int, cfg) -> torch.Tensor:
    """obs [..., N, O], last_actions [..., N] int (-1 = none yet) -> inputs [..., N, D]."""
    parts = [obs]
    if cfg.obs_last_action:
        parts.append(one_hot(last_actions, n_actions, obs.dtype))  # -1 (no action yet): zeros
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
        return gru_unroll(self.rnn, F.relu(self.fc1(inputs)), h0)

    def cell(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One GRU step: x [M, H], h [M, H] -> h' [M, H]."""
        return gru_gates(self.rnn, F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0), h)

    def head(self, hidden: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        return self.fc2(hidden)

    def forward(self, inputs: torch.Tensor, h0: torch.Tensor, z: torch.Tensor | None = None, one_step: bool = False):
        """inputs [B, T, N, D], h0 [B, N, H], z one-hot [B, K] or None
        -> q [B, T, N, A], hidden [B, T, N, H]. one_step: inputs [B, N, D] -> q [B, N, A], hidden [B, N, H]."""
        if one_step:
            hidden = self.cell(F.relu(self.fc1(inputs)), h0).unsqueeze(1)  # [B, 1, N, H]
            return self.head(hidden, z)[:, 0], hidden[:, 0]
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
