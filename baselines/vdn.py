"""VDN: Q_tot is the sum of the agents' chosen utilities (no parameters)."""

import torch
from torch import nn

from maven.learner import QLearner


class VDNMixer(nn.Module):
    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """agent_qs [B, T, N], state [B, T, S] (unused) -> q_tot [B, T]."""
        return agent_qs.sum(-1)


class VDNLearner(QLearner):
    def build_mixer(self) -> nn.Module:
        return VDNMixer()
