"""The one vectorised environment interface every environment implements.

B environments are stepped at once; every value is a torch tensor on one device.
There is no Python loop over environments in an implementation's hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch


@dataclass(frozen=True)
class EnvInfo:
    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    episode_limit: int  # the longest an episode can run, in env steps
    has_win: bool  # False for the matrix game (win_rate is left empty)


class EnvStep(NamedTuple):
    """What `reset` and `step` return for B environments.

    After `step`, obs/state/avail_actions describe the state *after* the transition (the last
    observation of an episode that just ended, never an auto-reset one).
    """

    obs: torch.Tensor  # [B, N, O] float32
    state: torch.Tensor  # [B, S] float32
    avail_actions: torch.Tensor  # [B, N, A] bool
    reward: torch.Tensor  # [B] float32 (zeros after reset)
    terminated: torch.Tensor  # [B] bool: a true end, no bootstrap
    truncated: torch.Tensor  # [B] bool: the time limit was reached (bootstrap from obs)
    won: torch.Tensor  # [B] bool (always False where the env has no win)
    crashed: torch.Tensor  # [B] bool: the simulator crashed mid-episode; discard the episode


class VecEnv(Protocol):
    info: EnvInfo
    n_envs: int
    device: torch.device

    def reset(self, seed: int | None = None) -> EnvStep:
        """Start a new episode in all B environments.

        `seed` fully determines the randomness of the episodes that follow (start positions,
        enemy behaviour), so a run that draws one seed per reset from its own RNG is exactly
        repeatable and resumable without saving any environment state.
        """

    def step(self, actions: torch.Tensor) -> EnvStep:
        """Advance all B environments by one step; actions [B, N] int64.

        An environment whose episode has ended since the last `reset` is not advanced: its
        actions are ignored and it reports reward 0 and not-terminated, not-truncated, not-won
        again (the runner masks it). The runner plays one episode per environment between two
        `reset` calls, as PyMARL's parallel runner does.
        """

    def close(self) -> None:
        """Release processes or devices."""

    def metadata(self) -> dict:
        """Facts recorded in config.yaml (e.g. package versions, StarCraft II build)."""
