"""Episode replay buffer: a FIFO of whole episodes in compact dtypes, sampled without replacement."""

from __future__ import annotations

from dataclasses import fields

import torch

from maven.batch import EpisodeBatch

# what each field is stored as (actions fit in int16, masks in bool)
_STORAGE = {"actions": torch.int16}


class ReplayBuffer:
    def __init__(self, capacity: int, device: torch.device):
        self.capacity, self.device = capacity, torch.device(device)
        self.storage: dict[str, torch.Tensor] | None = None
        self.size, self.next = 0, 0

    def _allocate(self, batch: EpisodeBatch) -> None:
        self.storage = {}
        for f in fields(batch):
            x = getattr(batch, f.name)
            dtype = _STORAGE.get(f.name, x.dtype)
            self.storage[f.name] = torch.zeros((self.capacity, *x.shape[1:]), dtype=dtype, device=self.device)

    def insert(self, batch: EpisodeBatch) -> None:
        if batch.n_episodes == 0:
            return
        if self.storage is None:
            self._allocate(batch)
        slots = (torch.arange(batch.n_episodes) + self.next) % self.capacity
        slots = slots.to(self.device)
        for name, store in self.storage.items():
            store[slots] = getattr(batch, name).to(self.device, store.dtype)
        self.next = (self.next + batch.n_episodes) % self.capacity
        self.size = min(self.size + batch.n_episodes, self.capacity)

    def can_sample(self, n: int) -> bool:
        return self.size >= n

    def sample(self, n: int) -> EpisodeBatch:
        """n distinct episodes, cut to the longest among them."""
        idx = torch.randperm(self.size)[:n].to(self.device)
        parts = {name: store[idx] for name, store in self.storage.items()}
        parts["actions"] = parts["actions"].long()
        batch = EpisodeBatch(**parts)
        return batch.truncate(int(batch.lengths.max()))

    def state_dict(self) -> dict:
        kept = None if self.storage is None else {k: v[: self.size].cpu() for k, v in self.storage.items()}
        return {"storage": kept, "size": self.size, "next": self.next}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.next = state["size"], state["next"]
        if state["storage"] is None:
            self.storage = None
            return
        self.storage = {}
        for name, kept in state["storage"].items():
            store = torch.zeros((self.capacity, *kept.shape[1:]), dtype=kept.dtype, device=self.device)
            store[: kept.shape[0]] = kept.to(self.device)
            self.storage[name] = store
