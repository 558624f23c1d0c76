"""Per-member random streams, drawn for all members of a population in one vectorised call.

Every random number a run uses (exploration, replay sampling, the latent z, the z-policy's
minibatches, the environments' seeds) comes from a stream that belongs to one member and one
purpose. A stream is SplitMix64 (Steele, Lea & Flood 2014): the i-th draw is mix(key + i·γ), so
member k's numbers depend only on its own seed and on how many it has drawn, never on the other
members or on how many there are. That is what makes member k of a population start exactly as
the single run with seed k, and what keeps members independent.

torch has no unsigned 64-bit arithmetic: int64 multiplication wraps modulo 2^64 (two's
complement), which is the same bit pattern, and logical right shifts are arithmetic shifts
masked to the low bits. `tests/test_streams.py` checks the outputs against a pure-Python
reference, so a platform where that does not hold fails loudly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _signed(x: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    return x - (1 << 64) if x >= 1 << 63 else x


def _shr(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's output function on int64 bit patterns."""
    x = (x ^ _shr(x, 30)) * _signed(_MIX1)
    x = (x ^ _shr(x, 27)) * _signed(_MIX2)
    return x ^ _shr(x, 31)


def stream_key(seed: int, purpose: str) -> int:
    """The starting state of (seed, purpose)'s stream, as a signed 64-bit integer."""
    digest = hashlib.blake2b(f"{seed}/{purpose}".encode(), digest_size=8).digest()
    return _signed(int.from_bytes(digest, "little"))


class Streams:
    """One stream per member for one purpose: draws are [S, n], member k's from its own stream.

    `members` (a [S] bool mask) limits a draw to some members: the others' streams do not move
    (their rows hold numbers that must not be used).
    """

    def __init__(self, seeds: Sequence[int], purpose: str, device: torch.device | str = "cpu"):
        self.purpose, self.device = purpose, torch.device(device)
        self.key = torch.tensor([stream_key(int(s), purpose) for s in seeds], dtype=torch.int64,
                                device=self.device)
        self.counter = torch.zeros(len(seeds), dtype=torch.int64, device=self.device)

    @property
    def n_members(self) -> int:
        return self.key.shape[0]

    def bits(self, n: int, members: torch.Tensor | None = None) -> torch.Tensor:
        """n raw 64-bit draws per member -> [S, n] int64 (any bit pattern)."""
        index = self.counter.unsqueeze(1) + 1 + torch.arange(n, device=self.device)  # [S, n]
        out = mix64(self.key.unsqueeze(1) + index * _signed(_GAMMA))
        step = n if members is None else members.to(torch.int64) * n
        self.counter += step
        return out

    def uniform(self, n: int, members: torch.Tensor | None = None, dtype=torch.float64) -> torch.Tensor:
        """n uniform draws in [0, 1) per member -> [S, n] (53 random bits each)."""
        return (_shr(self.bits(n, members), 11).to(torch.float64) * 2.0 ** -53).to(dtype)

    def integers(self, high: torch.Tensor | int, n: int, members: torch.Tensor | None = None) -> torch.Tensor:
        """n integers in [0, high) per member -> [S, n] int64; high is an int or [S] (>= 1)."""
        high = torch.as_tensor(high, device=self.device).reshape(-1, 1)
        u = self.uniform(n, members)
        return torch.minimum((u * high).to(torch.int64), high - 1)

    def sort_keys(self, n: int, members: torch.Tensor | None = None) -> torch.Tensor:
        """n non-negative 63-bit integers per member, for random orderings without ties in practice."""
        return _shr(self.bits(n, members), 1)

    # --- checkpointing, one member at a time -------------------------------------------------
    def member_state(self, k: int) -> dict:
        return {"purpose": self.purpose, "key": int(self.key[k]), "counter": int(self.counter[k])}

    def load_member_state(self, k: int, state: dict) -> None:
        if state["purpose"] != self.purpose or int(state["key"]) != int(self.key[k]):
            raise ValueError(f"checkpoint stream {state['purpose']!r} does not belong to this member's seed")
        self.counter[k] = int(state["counter"])
