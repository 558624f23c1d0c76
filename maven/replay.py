"""Episode replay: one FIFO of whole episodes per member, stored stacked [S, capacity, ...] in
compact dtypes and sampled without replacement from each member's own stream."""

from __future__ import annotations

from dataclasses import fields

import torch

from maven.batch import EpisodeBatch
from maven.envs.base import EnvInfo
from maven.errors import UserError
from maven.streams import Streams

# what each field is stored as (actions fit in int16, masks in bool)
_STORAGE = {"actions": torch.int16}


def episode_shapes(info: EnvInfo) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Each EpisodeBatch field's per-episode shape and stored dtype."""
    T, N, A = info.episode_limit, info.n_agents, info.n_actions
    shapes = {
        "obs": ((T + 1, N, info.obs_dim), torch.float32), "state": ((T + 1, info.state_dim), torch.float32),
        "avail_actions": ((T + 1, N, A), torch.bool), "actions": ((T, N), torch.int64),
        "reward": ((T,), torch.float32), "terminated": ((T,), torch.bool), "filled": ((T,), torch.bool),
        "z": ((), torch.int64),
    }
    return {name: (shape, _STORAGE.get(name, dtype)) for name, (shape, dtype) in shapes.items()}


def bytes_per_episode(info: EnvInfo) -> int:
    total = 0
    for shape, dtype in episode_shapes(info).values():
        n = 1
        for d in shape:
            n *= d
        total += n * torch.tensor([], dtype=dtype).element_size()
    return total


def available_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class ReplayBuffer:
    def __init__(self, capacity: int, info: EnvInfo, n_members: int, device: torch.device, seeds,
                 lengths: tuple[int, ...] | None = None):
        self.capacity, self.n_members, self.device = capacity, n_members, torch.device(device)
        # None: batches are cut to the longest episode sampled; else to the shortest of these lengths
        # that holds it (compiled learners: one compilation per length; the last is the episode limit)
        self.lengths = lengths
        need = bytes_per_episode(info) * capacity * n_members
        have = available_memory(self.device)
        if need > 0.8 * have:
            raise UserError(
                f"{n_members} members x buffer_size {capacity} episodes need {need / 2**30:.1f} GiB of replay "
                f"on {self.device}, more than the {have / 2**30:.1f} GiB free; train fewer seeds per process "
                "(--seeds) or lower buffer_size")
        self.storage = {name: torch.zeros((n_members, capacity, *shape), dtype=dtype, device=self.device)
                        for name, (shape, dtype) in episode_shapes(info).items()}
        self.size = torch.zeros(n_members, dtype=torch.int64, device=self.device)
        self.next = torch.zeros(n_members, dtype=torch.int64, device=self.device)
        self.streams = Streams(seeds, "replay", self.device)
        # [S, 1]: where each member's episodes start with the members' buffers laid end to end
        self._offsets = torch.arange(n_members, device=self.device).unsqueeze(1) * capacity

    def insert(self, batch: EpisodeBatch, kept: torch.Tensor) -> None:
        """Store each member's kept episodes: batch [S, B, ...], kept [S, B] bool."""
        kept = kept.to(self.device)
        rank = kept.long().cumsum(1) - 1  # position among the member's kept episodes, [S, B]
        slots = (self.next.unsqueeze(1) + rank) % self.capacity  # [S, B]
        member, episode = kept.nonzero(as_tuple=True)
        slot = slots[member, episode]
        for f in fields(batch):
            store = self.storage[f.name]
            store[member, slot] = getattr(batch, f.name)[member, episode].to(self.device, store.dtype)
        counts = kept.long().sum(1)
        self.next = (self.next + counts) % self.capacity
        self.size = torch.clamp(self.size + counts, max=self.capacity)

    def can_sample(self, n: int) -> torch.Tensor:
        """[S] bool: the members holding at least n episodes."""
        return self.size >= n

    def sample(self, n: int, members: torch.Tensor) -> EpisodeBatch:
        """n distinct episodes of each member in `members` ([S] bool; the others' rows are
        meaningless) -> [S, n, ...], cut to the longest episode sampled by any member (or to the
        shortest of `lengths` that holds it)."""
        members = members.to(self.device)
        keys = self.streams.sort_keys(self.capacity, members)  # [S, capacity], a random order
        keys = keys.masked_fill(torch.arange(self.capacity, device=self.device) >= self.size.unsqueeze(1),
                                torch.iinfo(torch.int64).max)
        idx = keys.topk(n, dim=1, largest=False, sorted=True).indices  # [S, n]
        flat = (idx + self._offsets).flatten()  # one flat index: index_select is faster than store[rows, idx]
        parts = {name: store.flatten(0, 1).index_select(0, flat).view(*idx.shape, *store.shape[2:])
                 for name, store in self.storage.items()}
        parts["actions"] = parts["actions"].long()
        batch = EpisodeBatch(**parts)
        longest = max(int((batch.filled.sum(2) * members.unsqueeze(1)).max()), 1)
        if self.lengths is not None:
            longest = min(length for length in self.lengths if length >= longest)
        return batch.truncate(longest)

    # --- checkpointing, one member at a time -------------------------------------------------
    def member_state(self, k: int) -> dict:
        size = int(self.size[k])
        return {"storage": {name: store[k, :size].cpu().clone() for name, store in self.storage.items()},
                "size": size, "next": int(self.next[k]), "stream": self.streams.member_state(k)}

    def load_member_state(self, k: int, state: dict) -> None:
        size = state["size"]
        for name, kept in state["storage"].items():
            self.storage[name][k].zero_()
            self.storage[name][k, :size] = kept.to(self.device)
        self.size[k], self.next[k] = size, state["next"]
        self.streams.load_member_state(k, state["stream"])
