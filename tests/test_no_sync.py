"""A rollout step must not make the host wait for a GPU (issue: no host-device synchronisation
per env step). Checked here on the CPU, without a GPU, by recording the operations a step runs
and flagging those that synchronise on CUDA: reading a value back (`.item()`, `bool(t)`),
data-dependent shapes (nonzero, boolean-mask indexing), and tensors made from host data (each a
host-to-device copy, e.g. `x[i] = 1.0`). tests/test_cuda.py counts the real synchronisations on
a GPU."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from maven import algos, envs
from maven.config import resolve
from maven.runner import ActionStreams, select_actions

ALWAYS_SYNC = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default",
               "aten.lift_fresh.default"}


class SyncingOps(TorchDispatchMode):
    """Records the operations that would wait for a GPU."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name in ALWAYS_SYNC:
            self.found.append(name)
        elif name.startswith(("aten.index.", "aten.index_put")):
            indices = args[1] if len(args) > 1 else []
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
                self.found.append(f"{name} with a boolean mask")
        return func(*args, **(kwargs or {}))


def test_the_detector_flags_what_waits_for_a_gpu():
    x = torch.zeros(4, 3)
    with SyncingOps() as ops:
        x[torch.arange(4), torch.tensor([0, 1, 2, 0])] = 1.0  # two tensors from host data
        bool(x.any())
        x[x > 0]
        x * 2 + torch.arange(3)
    assert ops.found == ["aten.lift_fresh.default"] * 2 + ["aten._local_scalar_dense.default",
                                                          "aten.index.Tensor with a boolean mask"]


@pytest.mark.parametrize("algo", list(algos.ALGOS))
def test_an_acting_step_and_a_matrix_game_step_run_nothing_that_waits_for_a_gpu(algo):
    cfg = resolve({"env": "matrix", "map": "m10", "algo": algo, "seed": 0}, {"batch_size_run": 4})
    env = envs.make(cfg, 4, "cpu", [0, 1])
    learner = algos.learner_class(algo)(cfg, env.info, "cpu", [0, 1])
    streams, everyone = ActionStreams([0, 1], "cpu"), torch.ones(2, dtype=torch.bool)
    first = env.reset([1, 2])
    S, B, N = 2, 4, env.info.n_agents
    obs, avail = first.obs.view(S, B, N, -1), first.avail_actions.view(S, B, N, -1)
    hidden = learner.init_hidden(S * B).view(S, B, N, -1)
    last_actions = torch.full((S, B, N), -1, dtype=torch.long)
    z = learner.sample_z(first.state.view(S, B, -1), False, everyone)
    epsilon = torch.full((S,), 0.3)
    with SyncingOps() as ops:
        for _ in range(3):
            q, hidden = learner.act_q(obs, last_actions, hidden, z)
            last_actions = select_actions(q, avail, epsilon, streams, everyone)
            out = env.step(last_actions.view(S * B, N))
            obs, avail = out.obs.view(S, B, N, -1), out.avail_actions.view(S, B, N, -1)
    assert ops.found == []
