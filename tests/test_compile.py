"""The compiled learner (`compile: default`, maven/compiled.py) on the CPU: it follows the eager
learner to rounding, pads replay batches to the episode limit, and trains a population that
records the setting. Slow: compiling a learner takes 30-60 s on one core."""

import pytest
import torch
import yaml
from test_trainer import config as trainer_config

from maven import algos, envs
from maven.members import leaves
from maven.runner import ActionStreams, rollout
from maven.trainer import Trainer

pytestmark = pytest.mark.slow


def config(seed=0, **overrides):
    return trainer_config("qmix", t_max=1200, seed=seed, **overrides)


def test_the_compiled_learner_follows_the_eager_one_to_rounding():
    cfg, fast_cfg = config(), config(compile="default")
    env = envs.make(cfg, 1, "cpu", [0, 1])
    eager = algos.learner_class("qmix")(cfg, env.info, "cpu", [0, 1])
    compiled = algos.learner_class("qmix")(fast_cfg, env.info, "cpu", [0, 1])
    everyone, episodes = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.int64)
    batch, _ = rollout(env, eager, cfg, ActionStreams([0, 1], "cpu"), [1, 2], torch.ones(2), everyone)
    for _ in range(5):
        eager.update(batch, episodes, everyone)
        compiled.update(batch, episodes, everyone)
    difference = max(float((a - b).abs().max()) for a, b in zip(leaves(eager.params), leaves(compiled.params)))
    assert 0 < difference < 1e-5  # another summation order, the same updates


def test_a_compiled_population_trains_and_records_the_setting(tmp_path):
    summaries = Trainer([config(s, compile="default") for s in (0, 1)], [tmp_path / "a", tmp_path / "b"]).run()
    assert all(s["status"] == "finished" and s["updates"] > 0 for s in summaries)
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["config"]["compile"] == "default"


def test_a_compiled_update_keeps_members_independent():
    """Changing member 1's batch leaves member 0's compiled update bit-identical."""
    cfg = config(compile="default")
    env = envs.make(cfg, 1, "cpu", [0, 1])
    learner, twin = (algos.learner_class("qmix")(cfg, env.info, "cpu", [0, 1]) for _ in range(2))
    everyone, episodes = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.int64)
    batch, _ = rollout(env, learner, cfg, ActionStreams([0, 1], "cpu"), [1, 2], torch.ones(2), everyone)
    changed = batch.map(torch.clone)
    changed.reward[1] += 5.0
    learner.update(batch, episodes, everyone)
    twin.update(changed, episodes, everyone)
    for a, b in zip(leaves(learner.params), leaves(twin.params)):
        assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])


def test_the_compiled_z_policy_follows_the_eager_one_and_leaves_non_learners_alone():
    """ReinforceZ's Adam steps compiled in STEPS_PER_CALL chunks (12 steps: a full chunk and a
    partial one): within float32 rounding of eager, and a member that kept no episode unchanged."""
    from maven.config import TrainConfig
    from maven.zpolicy import ReinforceZ

    settings = {"noise_dim": 4, "bandit_buffer": 8, "bandit_iters": 12, "bandit_batch": 4, "lr": 0.01}
    eager = ReinforceZ(TrainConfig(**settings), 3, [0, 1, 2], "cpu")
    compiled = ReinforceZ(TrainConfig(**settings, compile="default"), 3, [0, 1, 2], "cpu")
    gen = torch.Generator().manual_seed(0)
    everyone = torch.ones(3, dtype=torch.bool)
    for _ in range(4):
        s0, returns = torch.rand(3, 2, 3, generator=gen), torch.randn(3, 2, generator=gen) * 5
        kept = torch.tensor([[True, True], [True, False], [False, False]])  # member 2 keeps nothing
        z = eager.sample(s0, uniform=False, members=everyone)
        stats, compiled_stats = (p.update(s0, z, returns, kept, everyone) for p in (eager, compiled))
    difference = float((eager.params - compiled.params).abs().max())
    assert 0 < difference < 1e-5  # fused kernels round differently (3.5e-6 here)
    assert torch.equal(compiled.params[2], ReinforceZ(TrainConfig(**settings), 3, [0, 1, 2], "cpu").params[2])
    assert torch.equal(compiled.optimiser_state["steps"], torch.tensor([48, 48, 0]))
    assert torch.isnan(compiled_stats["z_policy_entropy"][2]) and not torch.isnan(stats["z_policy_entropy"][:2]).any()
