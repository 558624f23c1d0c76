"""The episode batch: one schema for the runner, the replay buffer and the learners.

The shapes below are one member's; the runner and the replay buffer hold every member's
episodes with a leading member axis ([S, B, ...]), and the learners' losses see one member's.

T is the episode limit; position t holds what was seen before action t, and position T (the
extra one) holds the last observation, so the TD target at t reads position t + 1.
Padded positions (after an episode ended) hold zeros and no available action.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class EpisodeBatch:
    obs: torch.Tensor  # [B, T+1, N, O] float32
    state: torch.Tensor  # [B, T+1, S] float32
    avail_actions: torch.Tensor  # [B, T+1, N, A] bool
    actions: torch.Tensor  # [B, T, N] int64
    reward: torch.Tensor  # [B, T] float32
    terminated: torch.Tensor  # [B, T] bool: no bootstrap from t + 1
    filled: torch.Tensor  # [B, T] bool: step t is a real transition
    z: torch.Tensor  # [B] int64, MAVEN's latent (0 for the other algorithms)

    @property
    def n_episodes(self) -> int:
        return self.reward.shape[0]

    @property
    def lengths(self) -> torch.Tensor:
        return self.filled.sum(1)  # [B]

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        """The fields in order (EpisodeBatch(*batch.as_tuple()) rebuilds it; torch.func maps tuples)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def map(self, fn) -> EpisodeBatch:
        return EpisodeBatch(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def truncate(self, t: int) -> EpisodeBatch:
        """Keep the first t transitions (and t + 1 observation positions); works with or without
        a leading member axis."""
        time_dim = self.reward.dim() - 1
        steps = self.reward.shape[time_dim]

        def cut(x):
            if x.dim() <= time_dim:
                return x
            return x.narrow(time_dim, 0, t + 1 if x.shape[time_dim] == steps + 1 else t)

        return self.map(cut)

    def last_actions(self) -> torch.Tensor:
        """The previous action at every observation position: [B, T+1, N], -1 before the first."""
        none = torch.full_like(self.actions[:, :1], -1)
        return torch.cat([none, self.actions], dim=1)
