"""QMIX's monotonic mixer with one- or two-layer hypernetworks on the state."""

import torch
import torch.nn.functional as F
from torch import nn

from maven.learner import QLearner


def _hypernet(in_dim: int, out_dim: int, layers: int, embed: int) -> nn.Module:
    if layers == 1:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, embed), nn.ReLU(), nn.Linear(embed, out_dim))


class QMixer(nn.Module):
    """Q_tot = ELU(q · |W1(s)| + b1(s)) · |W2(s)| + V(s); monotonic in every q_i."""

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int, hypernet_layers: int = 1,
                 hypernet_embed: int = 64):
        super().__init__()
        self.n_agents, self.embed_dim = n_agents, embed_dim
        self.hyper_w1 = _hypernet(state_dim, embed_dim * n_agents, hypernet_layers, hypernet_embed)
        self.hyper_w2 = _hypernet(state_dim, embed_dim, hypernet_layers, hypernet_embed)
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.value = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """agent_qs [B, T, N], state [B, T, S] -> q_tot [B, T]."""
        B, T, N = agent_qs.shape
        s = state.reshape(B * T, -1)
        q = agent_qs.reshape(B * T, 1, N)
        w1 = self.hyper_w1(s).abs().view(B * T, N, self.embed_dim)
        b1 = self.hyper_b1(s).view(B * T, 1, self.embed_dim)
        hidden = F.elu(q @ w1 + b1)  # [B*T, 1, E]
        w2 = self.hyper_w2(s).abs().view(B * T, self.embed_dim, 1)
        q_tot = hidden @ w2 + self.value(s).view(B * T, 1, 1)
        return q_tot.view(B, T)


class QMIXLearner(QLearner):
    def build_mixer(self) -> nn.Module:
        cfg, info = self.cfg, self.info
        return QMixer(info.n_agents, info.state_dim, cfg.mixing_embed_dim, cfg.hypernet_layers,
                      cfg.hypernet_embed)
