"""What the trainer does about faults that are not the user's: numbers that stop being finite,
and a scheduler's request to stop (SIGTERM on preemption, SIGINT from a terminal).

Kept out of trainer.py so the loop reads as PyMARL's; the trainer asks two questions here once
per iteration: which members produced a non-finite statistic, and has a stop been requested.
"""

from __future__ import annotations

import signal
import sys
import threading

import numpy as np
import torch


def nonfinite_members(stats: dict[str, torch.Tensor], members: torch.Tensor) -> dict[int, tuple[str, float]]:
    """Members (of `members`, [S] bool) with a non-finite statistic ([S] each) -> the first such
    statistic's name and value. One host transfer."""
    if not stats:
        return {}
    names = list(stats)
    values = torch.stack([torch.as_tensor(stats[n]).detach().float().to(members.device) for n in names])  # [N, S]
    bad = (~torch.isfinite(values)) & members.unsqueeze(0)
    values, bad = values.cpu().numpy(), bad.cpu().numpy()
    found = {}
    for k in np.flatnonzero(bad.any(0)):
        first = int(np.flatnonzero(bad[:, k])[0])
        found[int(k)] = (names[first], float(values[first, k]))
    return found


class StopSignals:
    """From construction until restore(), SIGTERM and SIGINT only set `received`; the trainer
    checks it once per iteration, checkpoints and stops. Repeats are ignored: one signal often
    arrives twice (SLURM signals every process of a job step, a terminal's Ctrl-C the whole
    process group, and workflow/scripts/gpu_slot.py forwards what it gets), and stopping on the
    second would lose the checkpoint. SIGKILL still stops at once. Off the main thread (where
    Python cannot install handlers) it does nothing."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, _frame) -> None:
        if self.received is None:
            print(f"{signal.Signals(signum).name} received: finishing this iteration, then checkpointing",
                  file=sys.stderr, flush=True)
            self.received = signum

    def restore(self) -> None:
        """The handlers as they were before (idempotent). After a stop request they stay ignored
        instead: the process is on its way out, and a late repeat must not turn exit 128 + n
        into death by the signal (or a KeyboardInterrupt traceback)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if self.received is None else signal.SIG_IGN)
        self._previous = {}
