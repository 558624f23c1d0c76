"""MAVEN's variational posterior q(z | sigma(tau)) and the MI loss (reference.md §1.5–1.6).

Per-step input p_t = softmax over actions of the live agents' Q-values (unavailable actions set
to a large negative number, so padded steps give a uniform softmax), flattened over agents,
concatenated with the state s_t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maven.networks import gru_unroll, one_hot

UNAVAILABLE_Q = -9999999.0  # the original's mask value: finite, so an all-masked row is uniform


def mlp(in_dim: int, width: int, layers: int, out_dim: int) -> nn.Sequential:
    blocks: list[nn.Module] = [nn.Linear(in_dim, width), nn.ReLU()]
    for _ in range(layers - 1):
        blocks += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(width, out_dim))


class MLPDiscriminator(nn.Module):
    """Classifies z from p_t at every step."""

    def __init__(self, in_dim: int, cfg):
        super().__init__()
        self.net = mlp(in_dim, cfg.discrim_size, cfg.discrim_layers, cfg.noise_dim)

    def forward(self, p: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """p [B, T, D] -> logits [B, T, K]."""
        return self.net(p)


class GRUDiscriminator(nn.Module):
    """A GRU (initial hidden state all ones, as coded) reads the episode; an MLP classifies one
    hidden state per episode. As coded (Q1) that is the state after the batch's last step, which
    has read padding for every episode shorter than the longest."""

    def __init__(self, in_dim: int, cfg):
        super().__init__()
        self.uses_padded_final_state = cfg.discrim_gru_uses_padded_final_state
        self.rnn = nn.GRU(in_dim, cfg.rnn_agg_size, batch_first=True)
        self.net = mlp(cfg.rnn_agg_size, cfg.discrim_size, cfg.discrim_layers, cfg.noise_dim)

    def forward(self, p: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """p [B, T, D], lengths [B] -> logits [B, K].

        The batch may carry more padding than the original's (a population pads every member's
        batch to the longest episode of any member); as coded, the state read is the one after
        this batch's own longest episode, which is what the original's truncated batch ends on.
        """
        B = p.shape[0]
        h0 = torch.ones(B, self.rnn.hidden_size, device=p.device)
        hidden = gru_unroll(self.rnn, p, h0)  # [B, T, R]
        if self.uses_padded_final_state:
            last = (lengths.max() - 1).clamp(min=0).expand(B)
        else:
            last = (lengths - 1).clamp(min=0)
        index = last.view(B, 1, 1).expand(B, 1, hidden.shape[-1])
        return self.net(hidden.gather(1, index).squeeze(1))  # [B, K]


def discriminator_inputs(q: torch.Tensor, avail: torch.Tensor, state: torch.Tensor, hard: bool) -> torch.Tensor:
    """q [B, T, N, A], avail [B, T, N, A], state [B, T, S] -> p [B, T, N*A + S]."""
    masked = q.masked_fill(~avail, UNAVAILABLE_Q)
    if hard:
        probs = one_hot(masked.argmax(-1), q.shape[-1], q.dtype)
    else:
        probs = torch.softmax(masked, -1)
    return torch.cat([probs.flatten(2), state], -1)


def mi_loss(logits: torch.Tensor, z: torch.Tensor, mask: torch.Tensor):
    """Cross-entropy of the true z under q(z | .).

    Per-step logits [B, T, K]: returns (masked mean CE, CE per step [B, T]).
    Per-episode logits [B, K]: returns (mean CE over episodes, None).
    """
    if logits.dim() == 2:
        return F.cross_entropy(logits, z), None
    B, T, K = logits.shape
    ce = F.cross_entropy(logits.reshape(B * T, K), z.unsqueeze(1).expand(B, T).reshape(B * T), reduction="none").view(B, T)
    return (ce * mask).sum() / mask.sum().clamp(min=1), ce
