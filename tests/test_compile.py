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
