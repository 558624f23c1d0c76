"""Per-z test metrics as the original logs them (quirk Q6), and the paper's QMIX key: MAVEN with K = 1."""

import csv

import numpy as np
import pytest
import torch

from maven.config import resolve
from maven.per_z import PerZLog, per_z_columns
from maven.trainer import Trainer


def test_policy_pass_mixes_the_training_episodes_since_the_last_clear_as_coded():
    log = PerZLog(n_members=1, k=3, include_train=True, runner_log_interval=2000)
    on = np.array([True])
    # the first training rollout is a train log (the original starts its timer at -100000): emptied
    log.add_train(np.array([[0]]), np.array([[5.0]]), np.array([[True]]), on, np.array([10]))
    log.add_train(np.array([[1, 2]]), np.array([[0.0, 4.0]]), np.array([[True, False]]), on, np.array([20]))
    row, lists = log.pass_stats(0, np.array([1, 1, 0]), np.array([10.0, 10.0, 13.0]), None, policy_pass=True)
    assert lists["z1_return"] == [0.0, 10.0, 10.0]  # the kept training episode of z=1 comes first
    assert row["z1_return_mean"] == pytest.approx(20 / 3) and row["z0_return_mean"] == 13.0
    assert "z2_return_mean" not in row  # z=2's training episode was not kept; untested z's are not logged
    assert row["max_z_return_mean"] == 13.0
    uniform, _ = log.pass_stats(0, np.array([1]), np.array([10.0]), None, policy_pass=False)
    assert uniform == {"z1_return_mean": 10.0, "max_z_return_mean": 10.0}  # test episodes only
    log.clear(on)
    row, _ = log.pass_stats(0, np.array([1]), np.array([10.0]), None, policy_pass=True)
    assert row["z1_return_mean"] == 10.0


def test_a_train_log_empties_the_list_and_the_fixed_setting_never_mixes():
    log = PerZLog(n_members=2, k=2, include_train=True, runner_log_interval=2000)
    both = np.array([True, True])
    log.add_train(np.zeros((2, 1), int), np.ones((2, 1)), np.ones((2, 1), bool), both, np.array([5, 5]))
    log.add_train(np.zeros((2, 1), int), np.zeros((2, 1)), np.ones((2, 1), bool), both, np.array([1000, 2005]))
    # member 0: 995 steps since its train log at 5, kept; member 1: 2000 steps, a train log, emptied
    assert [len(p) for p in log.pending] == [1, 0]
    fixed = PerZLog(n_members=1, k=2, include_train=False, runner_log_interval=2000)
    fixed.add_train(np.zeros((1, 1), int), np.zeros((1, 1)), np.ones((1, 1), bool), np.array([True]), np.array([50]))
    fixed.add_train(np.zeros((1, 1), int), np.zeros((1, 1)), np.ones((1, 1), bool), np.array([True]), np.array([60]))
    row, _ = fixed.pass_stats(0, np.array([0]), np.array([13.0]), None, policy_pass=True)
    assert row["z0_return_mean"] == 13.0


def test_per_z_win_rates_come_from_test_episodes_and_their_maximum_starts_at_zero():
    log = PerZLog(n_members=1, k=4, include_train=True, runner_log_interval=2000)
    row, _ = log.pass_stats(0, np.array([0, 0, 3]), np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0]), True)
    assert row["z0_win_rate"] == 0.5 and row["z3_win_rate"] == 0.0 and row["max_z_win_rate"] == 0.5
    assert per_z_columns(2, has_win=False, uniform_pass=True) == [
        "max_z_return_mean", "max_z_return_mean_uniform_z", "z0_return_mean", "z1_return_mean",
        "z0_return_mean_uniform_z", "z1_return_mean_uniform_z"]


def _read(path):
    with open(path / "eval.csv") as f:
        return list(csv.DictReader(f))


def test_trainer_logs_per_z_columns_and_the_flag_changes_only_them(tmp_path):
    def run(flag, out):
        cfg = resolve({"env": "matrix", "map": "m10", "algo": "maven", "preset": "paper", "seed": 1, "t_max": 1100},
                      {"test_nepisode": 8, "bandit_iters": 2, "noise_dim": 4,
                       "per_z_test_logs_include_train": flag})
        Trainer(cfg, tmp_path / out).run()
        return _read(tmp_path / out)

    coded, fixed = run(True, "coded"), run(False, "fixed")
    assert [r["return_mean"] for r in coded] == [r["return_mean"] for r in fixed]
    assert [r["return_mean_uniform_z"] for r in coded] == [r["return_mean_uniform_z"] for r in fixed]
    # the uniform pass never mixes in training episodes
    assert [r["max_z_return_mean_uniform_z"] for r in coded] == [r["max_z_return_mean_uniform_z"] for r in fixed]
    for row in fixed:  # without training episodes, the headline is the z-frequency-weighted mean of per-z means
        per_z = [float(row[f"z{z}_return_mean"]) for z in range(4) if row[f"z{z}_return_mean"]]
        assert float(row["max_z_return_mean"]) == max(per_z) >= float(row["return_mean"]) - 1e-9
    # the evaluation at ~1000 steps follows ~100 training episodes since the first train log: mixed in
    per_z = [f"z{z}_return_mean" for z in range(4)]
    assert [coded[1][c] for c in per_z] != [fixed[1][c] for c in per_z]


def test_qmix_k1_is_maven_with_one_z_no_z_learning_and_a_zero_mi_term(tmp_path):
    cfg = resolve({"env": "matrix", "map": "m10", "algo": "maven", "preset": "qmix_k1", "seed": 2, "t_max": 600},
                  {"test_nepisode": 8, "test_interval": 200})
    assert (cfg.noise_dim, cfg.z_policy, cfg.epsilon_anneal_time, cfg.test_uniform_z) == (1, "uniform", 50000, False)
    trainer = Trainer(cfg, tmp_path / "k1")
    summary = trainer.run()
    rows = _read(tmp_path / "k1")
    learned = [r for r in rows if r["mi_loss"]]
    assert learned and all(float(r["mi_loss"]) == 0.0 for r in learned)  # log softmax of one logit is 0
    assert all(r["z0_return_mean"] and "z1_return_mean" not in r for r in rows)  # z is always 0
    assert "return_mean_uniform_z" in rows[0] and rows[0]["return_mean_uniform_z"] == ""  # no uniform pass
    assert summary["status"] == "finished"
    z = trainer.learner.sample_z(torch.zeros(1, 64, 15), False, torch.tensor([True]))
    assert int(z.max()) == 0 and int(z.min()) == 0
