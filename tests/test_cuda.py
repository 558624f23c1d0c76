"""The same code on a CUDA GPU: every algorithm trains as a population there, a member starts as
its CPU run does and stays close to it, a rollout waits for the GPU only every few steps, and
the compiled learner (maven/compiled.py) trains there in both of its modes.

Skipped where torch sees no GPU (the development machines and CI have none); run on a GPU
machine with `python -m pytest -q tests/test_cuda.py -s` (the -s shows the measured closeness).
"""

import warnings

import pytest
import torch

from maven import algos, envs
from maven.config import resolve
from maven.members import leaves
from maven.runner import ActionStreams, rollout
from maven.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def config(algo="qmix", env="matrix", map_name="m10", seed=0, t_max=1500, **overrides):
    values = {"test_interval": 500, "test_nepisode": 16, "checkpoint_interval": 1000, **overrides}
    if algo == "maven":
        values.setdefault("bandit_iters", 10)
    return resolve({"env": env, "map": map_name, "algo": algo, "seed": seed, "t_max": t_max, "device": "cuda"},
                   values)


def learner_pair(algo, seeds, **overrides):
    """The same population on the CPU and on the GPU."""
    out = []
    for device in ("cpu", "cuda"):
        cfg = config(algo, **overrides)
        env = envs.make(cfg, cfg.batch_size_run, device, seeds)
        out.append((cfg, env, algos.learner_class(algo)(cfg, env.info, device, seeds)))
    return out


def max_difference(a, b) -> float:
    return max(float((x.cpu() - y.cpu()).abs().max()) for x, y in zip(leaves(a), leaves(b)))


@pytest.mark.parametrize("algo", list(algos.ALGOS))
def test_every_algorithm_trains_a_two_member_population_on_cuda(tmp_path, algo):
    summaries = Trainer([config(algo, seed=s) for s in (0, 1)], [tmp_path / f"seed{s}" for s in (0, 1)]).run()
    for summary in summaries:
        assert summary["status"] == "finished" and summary["env_steps"] >= 1500 and summary["updates"] > 0
        assert torch.isfinite(torch.tensor(summary["final"]["return_mean"]))


@pytest.mark.parametrize("algo", ["qmix", "maven"])
def test_a_cuda_member_starts_as_its_cpu_run_and_stays_close(algo):
    (cfg, env_cpu, cpu), (_, env_gpu, gpu) = learner_pair(algo, [3, 7])
    assert max_difference(cpu.params, gpu.params) == 0  # built on the CPU from the seed, then moved
    everyone = torch.ones(2, dtype=torch.bool)
    explore_all = torch.ones(2)  # ε = 1: every action is a draw from the member's own stream
    batch_cpu, _ = rollout(env_cpu, cpu, cfg, ActionStreams([3, 7], "cpu"), [11, 12], explore_all, everyone)
    batch_gpu, _ = rollout(env_gpu, gpu, cfg, ActionStreams([3, 7], "cuda"), [11, 12], explore_all, everyone)
    for name, x in vars(batch_cpu).items():
        assert torch.equal(x, getattr(batch_gpu, name).cpu()), name
    episodes = torch.zeros(2, dtype=torch.int64)
    differences = []
    for _ in range(100):
        cpu.update(batch_cpu, episodes, everyone)
        gpu.update(batch_gpu, episodes, everyone)
        differences.append(max_difference(cpu.params, gpu.params))
    print(f"\n{algo}: largest parameter difference CPU vs CUDA after 1 / 10 / 100 updates on one batch: "
          f"{differences[0]:.2e} / {differences[9]:.2e} / {differences[99]:.2e}")
    assert differences[0] < 1e-5 and differences[99] < 1e-2


def count_syncs(fn):
    """fn() -> (its result, the number of host-device synchronisations torch reported)."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return result, sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("env_name,map_name", [("matrix", "m10"), ("smax", "3m")])
def test_a_cuda_rollout_waits_for_the_gpu_only_every_eighth_step(env_name, map_name):
    if env_name == "smax":
        pytest.importorskip("jaxmarl")
    cfg = config("qmix", env_name, map_name, batch_size_run=8)
    env = envs.make(cfg, 8, "cuda", [0, 1])
    learner = algos.learner_class("qmix")(cfg, env.info, "cuda", [0, 1])
    everyone = torch.ones(2, dtype=torch.bool)
    streams = ActionStreams([0, 1], "cuda")
    rollout(env, learner, cfg, streams, [5, 6], torch.full((2,), 0.5), everyone)  # warm-up (jit, allocator)
    (_, stats), syncs = count_syncs(
        lambda: rollout(env, learner, cfg, streams, [7, 8], torch.full((2,), 0.5), everyone))
    steps = int(stats.lengths.max())
    print(f"\n{env_name} {map_name}: {syncs} synchronisations in a rollout of {steps} steps")
    assert syncs <= steps // 8 + 4  # the every-8th-step end check, plus a few per rollout


def test_a_smax_population_trains_on_cuda(tmp_path):
    pytest.importorskip("jaxmarl")
    cfgs = [config("qmix", "smax", "3m", seed=s, t_max=300, batch_size_run=4, test_nepisode=4, test_interval=250)
            for s in (0, 1)]
    summaries = Trainer(cfgs, [tmp_path / f"seed{s}" for s in (0, 1)]).run()
    for summary in summaries:
        assert summary["status"] == "finished" and summary["env_steps"] >= 300


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_a_compiled_population_trains_on_cuda_close_to_eager(tmp_path, mode):
    (cfg, _, _), (_, env, eager) = learner_pair("qmix", [0, 1])
    compiled = algos.learner_class("qmix")(config("qmix", compile=mode), env.info, "cuda", [0, 1])
    everyone = torch.ones(2, dtype=torch.bool)
    batch, _ = rollout(env, eager, cfg, ActionStreams([0, 1], "cuda"), [1, 2], torch.ones(2), everyone)
    episodes = torch.zeros(2, dtype=torch.int64)
    for _ in range(3):
        eager.update(batch, episodes, everyone)
        compiled.update(batch, episodes, everyone)
    difference = max_difference(eager.params, compiled.params)
    print(f"\ncompile={mode}: largest parameter difference to eager after 3 updates: {difference:.2e}")
    assert difference < 1e-4
    summaries = Trainer([config("qmix", seed=s, compile=mode) for s in (0, 1)],
                        [tmp_path / f"seed{s}" for s in (0, 1)]).run()
    assert all(s["status"] == "finished" and s["updates"] > 0 for s in summaries)
