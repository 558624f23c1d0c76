"""The trainer end to end on the matrix game: learning, run-directory files, kill-and-resume."""

import csv
import itertools
import json

import numpy as np
import pytest
import torch
import yaml

from maven.config import resolve
from maven.trainer import Trainer


def config(algo="qmix", t_max=3000, seed=3, **overrides):
    values = {"test_interval": 500, "test_nepisode": 16, "checkpoint_interval": 1000, **overrides}
    if algo == "maven":
        values.setdefault("bandit_iters", 10)  # the paper's 100 z-policy steps per episode are slow
    return resolve({"env": "matrix", "map": "m10", "algo": algo, "seed": seed, "t_max": t_max}, values)


def read_eval(path):
    with open(path / "eval.csv") as f:
        return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in csv.DictReader(f)]


def test_qmix_learns_the_trap_return_of_ten_on_m10(tmp_path):
    summary = Trainer(config(t_max=4000, seed=5, epsilon_anneal_time=2000), tmp_path / "run").run()
    rows = read_eval(tmp_path / "run")
    assert float(rows[0]["return_mean"]) == 6  # untrained (greedy, this seed)
    assert summary["final"]["return_mean"] >= 10  # QMIX finds at least the trap (10)
    assert summary["status"] == "finished" and summary["env_steps"] > 4000


def test_run_directory_files_follow_the_contract(tmp_path):
    out = tmp_path / "run"
    Trainer(config("maven", t_max=1200), out).run()
    header = (out / "eval.csv").read_text().splitlines()[0].split(",")
    assert header[:9] == ["step", "episode", "return_mean", "return_std", "win_rate", "ep_length_mean",
                          "wall_time_s", "return_mean_uniform_z", "win_rate_uniform_z"]
    rows = read_eval(out)
    assert rows[0]["win_rate"] == "" and rows[-1]["return_mean_uniform_z"] != ""
    doc = yaml.safe_load((out / "config.yaml").read_text())
    assert doc["config"]["algo"] == "maven" and doc["config"]["noise_dim"] == 16
    assert "torch" in doc["versions"] and "commit" in doc["git"] and doc["device"] == "cpu"
    metrics = json.loads((out / "metrics.json").read_text())
    run = metrics["matrix"]["m10"]["maven"]["seed_3"]
    assert len(run["step_0"]["return"]) == 16 and run[f"step_{len(rows) - 1}"]["step_count"] == int(rows[-1]["step"])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("env_steps", "episodes", "wall_time_s", "env_steps_per_s", "final", "best"):
        assert key in summary
    assert not list((out / "checkpoints").glob("step_*.pt"))  # pruned; final.pt kept
    assert (out / "checkpoints" / "final.pt").exists()


class Killed(Exception):
    pass


@pytest.mark.parametrize("algo,compile_mode", [("maven", "eager"), ("qmix", "eager"),
                                               pytest.param("qmix", "default", marks=pytest.mark.slow)])
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, algo, compile_mode, monkeypatch):
    """A two-member population killed after a checkpoint resumes each member exactly (also
    with a compiled learner)."""
    def members(name):
        cfgs = [config(algo, t_max=2200, seed=s, compile=compile_mode) for s in (3, 4)]
        return cfgs, [tmp_path / name / f"s{s}" for s in (3, 4)]

    Trainer(*members("whole")).run()
    original_save = Trainer.save_checkpoint
    calls = {"n": 0}

    def save_then_die(self, k):
        original_save(self, k)
        calls["n"] += 1
        if calls["n"] == 3:  # after the third checkpoint (of either member), train a little more, then die
            running = np.ones(self.n_members, bool)
            self._train_iteration(running)
            self.evaluate(running)
            raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        Trainer(*members("split")).run()
    assert not (tmp_path / "split" / "s3" / "summary.json").exists()
    monkeypatch.setattr(Trainer, "save_checkpoint", original_save)
    Trainer(*members("split")).run()
    for s in (3, 4):
        whole, split = tmp_path / "whole" / f"s{s}", tmp_path / "split" / f"s{s}"
        assert read_eval(split) == read_eval(whole)
        final_a = torch.load(whole / "checkpoints" / "final.pt", weights_only=False)
        final_b = torch.load(split / "checkpoints" / "final.pt", weights_only=False)
        for group in ("params", "target_params"):
            for name, tensor in flatten(final_a[group]).items():
                assert torch.equal(tensor, flatten(final_b[group])[name]), (group, name)


def flatten(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_a_finished_run_is_never_rerun_or_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    Trainer(config(t_max=600), out).run()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert Trainer(config(t_max=600), out).run() is None
    assert "finished already" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def population(algo="qmix", seeds=(3, 4), t_max=1500, **overrides):
    return [config(algo, t_max=t_max, seed=s, **overrides) for s in seeds]


def test_a_population_member_follows_its_single_run(tmp_path):
    """Member k of a population logs what the single run with seed k logs (the discrete test
    returns; losses may differ in the last bits from the learner's batched reduction order)."""
    Trainer(population(seeds=(4, 3, 8)), [tmp_path / f"p{s}" for s in (4, 3, 8)]).run()
    Trainer(config(t_max=1500, seed=3), tmp_path / "alone").run()
    together, alone = read_eval(tmp_path / "p3"), read_eval(tmp_path / "alone")
    keys = ("step", "episode", "return_mean", "ep_length_mean", "epsilon")
    assert [{k: r[k] for k in keys} for r in together] == [{k: r[k] for k in keys} for r in alone]
    doc = yaml.safe_load((tmp_path / "p3" / "config.yaml").read_text())
    assert doc["config"]["seed"] == 3 and doc["population"]["seeds"] == [4, 3, 8]
    assert json.loads((tmp_path / "p3" / "summary.json").read_text())["population"]["size"] == 3


def test_members_keep_their_own_counters_tests_and_ends(tmp_path):
    summaries = Trainer(population("vdn", seeds=(0, 1)), [tmp_path / "a", tmp_path / "b"]).run()
    a, b = read_eval(tmp_path / "a"), read_eval(tmp_path / "b")
    assert [r["step"] for r in a] != [r["step"] for r in b]  # episode lengths differ
    for rows, summary in ((a, summaries[0]), (b, summaries[1])):
        steps = [int(r["step"]) for r in rows]
        assert all(later - earlier >= 500 for earlier, later in itertools.pairwise(steps[:-1]))
        assert 1500 < summary["env_steps"] == steps[-1] and summary["updates"] > 0


def test_a_population_skips_finished_members_and_resumes_the_rest(tmp_path, capsys):
    Trainer(config(t_max=600, seed=0), tmp_path / "seed0").run()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "seed0").iterdir()}
    summaries = Trainer([config(t_max=600, seed=s) for s in (0, 1)], [tmp_path / "seed0", tmp_path / "seed1"]).run()
    assert summaries[0] is None and summaries[1]["seed"] == 1
    assert "finished already" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "seed0").iterdir()} == before


def test_an_unreadable_newest_checkpoint_is_set_aside_and_the_run_resumes_from_an_older_one(
        tmp_path, monkeypatch, capsys):
    whole = tmp_path / "whole"
    Trainer(config(t_max=2200), whole).run()
    original_save = Trainer.save_checkpoint
    calls = {"n": 0}

    def save_then_die(self, k):
        original_save(self, k)
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        Trainer(config(t_max=2200), tmp_path / "split").run()
    monkeypatch.setattr(Trainer, "save_checkpoint", original_save)
    checkpoints = sorted((tmp_path / "split" / "checkpoints").glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    assert len(checkpoints) == 2
    newest = checkpoints[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # a write cut short by a crash
    Trainer(config(t_max=2200), tmp_path / "split").run()
    err = capsys.readouterr()
    assert f"{newest.name} cannot be read" in err.err and f"resuming from {checkpoints[0].name}" in err.out
    assert (newest.parent / f"{newest.name}.unreadable").exists()
    assert read_eval(tmp_path / "split") == read_eval(whole)  # resumed exactly from the older one
