"""The one vectorised environment interface every environment implements.

A population of S members (independent runs, see trainer.py) each owns B environments; an
implementation holds all S·B of them, member-major (member k's are rows k·B .. k·B + B − 1), and
steps them at once. Every value is a torch tensor on one device. There is no Python loop over
environments or members in an implementation's hot path. Member k's environments behave exactly
as those of a population of one made with member k's seed.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """What `reset` and `step` return for the S·B environments (B below).

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
    n_members: int  # S
    n_envs: int  # S·B, all members together
    device: torch.device

    def reset(self, seeds: Sequence[int | None] | None = None) -> EnvStep:
        """Start a new episode in all S·B environments.

        `seeds[k]` fully determines the randomness of member k's episodes that follow (start
        positions, enemy behaviour), so a run that draws one seed per reset from its own stream
        is exactly repeatable and resumable without saving any environment state. None (for a
        member or for all) continues the environments' own randomness.
        """

    def step(self, actions: torch.Tensor) -> EnvStep:
        """Advance all S·B environments by one step; actions [S·B, N] int64.

        An environment whose episode has ended since the last `reset` is not advanced: its
        actions are ignored and it reports reward 0 and not-terminated, not-truncated, not-won
        again (the runner masks it). The runner plays one episode per environment between two
        `reset` calls, as PyMARL's parallel runner does.
        """

    def close(self) -> None:
        """Release processes or devices."""

    def metadata(self) -> dict:
        """Facts recorded in config.yaml (e.g. package versions, StarCraft II build)."""


def seeds_per_member(seeds: Sequence[int | None] | None, n_members: int) -> list[int | None]:
    """`reset`'s seeds as one entry per member (None: continue that member's randomness)."""
    if seeds is None:
        return [None] * n_members
    if isinstance(seeds, int) or len(seeds) != n_members:
        raise ValueError(f"reset needs one seed (or None) per member: {n_members} expected, got {seeds!r}")
    return [None if s is None else int(s) for s in seeds]
