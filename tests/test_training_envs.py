"""The trainer on the other environments: fake SMAC with a crash mid-episode, and SMAX."""

import csv
import functools
import json

import pytest
from fake_smac import FakeSMACFactory

from maven.config import resolve
from maven.envs import smac
from maven.trainer import Trainer


def test_training_on_fake_smac_discards_and_counts_a_crashed_episode(tmp_path, monkeypatch):
    factory = FakeSMACFactory(crash_at_step=5, crash_mode="exit", crash_seeds=(1,),
                              crash_once_file=str(tmp_path / "crashed"))
    monkeypatch.setattr(smac, "make", functools.partial(smac.make, env_factory=factory))
    cfg = resolve({"env": "smac", "map": "3m", "algo": "qmix", "seed": 0, "t_max": 400},
                  {"batch_size_run": 2, "test_interval": 200, "test_nepisode": 2, "batch_size": 2})
    summary = Trainer(cfg, tmp_path / "run").run()
    assert summary["crashed_episodes"] == 1  # the worker died once, its episode was discarded
    with open(tmp_path / "run" / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["crashed_episodes"] == "1" and rows[-1]["win_rate"] != ""
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "sc2_build: unknown" in config  # the fake has no StarCraft II build to record
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "finished"


def test_training_on_smax_3m_runs_and_logs_win_rates(tmp_path):
    pytest.importorskip("jaxmarl")
    cfg = resolve({"env": "smax", "map": "3m", "algo": "vdn", "seed": 0, "t_max": 600},
                  {"test_interval": 300, "test_nepisode": 4, "batch_size_run": 4, "batch_size": 4})
    summary = Trainer(cfg, tmp_path / "run").run()
    assert summary["env_steps"] > 600 and 0.0 <= summary["final"]["win_rate"] <= 1.0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["smax"]["3m"]["vdn"]["seed_0"]["step_0"]["win_rate"]) == 4


def test_a_crashed_smac_episode_is_discarded_for_its_member_only(tmp_path, monkeypatch):
    # crash_seeds: the game launched with seed 1 crashes once (member 0's second worker: 0 + 1);
    # member 1 (seed 7: workers 7 and 8) never crashes
    factory = FakeSMACFactory(crash_at_step=5, crash_mode="exit", crash_seeds=(1,),
                              crash_once_file=str(tmp_path / "crashed"))
    monkeypatch.setattr(smac, "make", functools.partial(smac.make, env_factory=factory))
    cfgs = [resolve({"env": "smac", "map": "3m", "algo": "qmix", "seed": seed, "t_max": 400},
                    {"batch_size_run": 2, "test_interval": 200, "test_nepisode": 2, "batch_size": 2})
            for seed in (0, 7)]
    crashed, clean = Trainer(cfgs, [tmp_path / "a", tmp_path / "b"]).run()
    assert crashed["crashed_episodes"] == 1 and clean["crashed_episodes"] == 0
    assert crashed["status"] == clean["status"] == "finished"


@pytest.mark.parametrize("algo", ["maven", "qmix", "vdn", "qtran_base", "qtran_alt"])
def test_every_algorithm_trains_as_a_two_member_population_on_smax(tmp_path, algo):
    pytest.importorskip("jaxmarl")
    cfgs = [resolve({"env": "smax", "map": "3m", "algo": algo, "seed": seed, "t_max": 300},
                    {"test_interval": 300, "test_nepisode": 2, "batch_size_run": 2, "batch_size": 2})
            for seed in (0, 1)]
    summaries = Trainer(cfgs, [tmp_path / "s0", tmp_path / "s1"]).run()
    for summary in summaries:
        assert summary["updates"] > 0 and summary["env_steps"] > 300
