"""The trainer end to end on the matrix game: learning, run-directory files, kill-and-resume."""

import csv
import json

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


@pytest.mark.parametrize("algo", ["maven", "qmix"])
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, algo, monkeypatch):
    whole = Trainer(config(algo, t_max=2200), tmp_path / "whole")
    whole.run()

    original_save = Trainer.save_checkpoint
    calls = {"n": 0}

    def save_then_die(self):
        original_save(self)
        calls["n"] += 1
        if calls["n"] == 2:  # after the second checkpoint, train a little more, then die
            self._train_iteration()
            self.evaluate()
            raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        Trainer(config(algo, t_max=2200), tmp_path / "split").run()
    assert not (tmp_path / "split" / "summary.json").exists()
    monkeypatch.setattr(Trainer, "save_checkpoint", original_save)
    resumed = Trainer(config(algo, t_max=2200), tmp_path / "split")
    resumed.run()
    assert read_eval(tmp_path / "split") == read_eval(tmp_path / "whole")
    final_a = torch.load(tmp_path / "whole" / "checkpoints" / "final.pt", weights_only=False)
    final_b = torch.load(tmp_path / "split" / "checkpoints" / "final.pt", weights_only=False)
    for name in ("agent", "mixer", "target_agent"):
        for key, value in final_a[name].items():
            assert torch.equal(value, final_b[name][key]), (name, key)


def test_a_finished_run_is_never_rerun_or_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    Trainer(config(t_max=600), out).run()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert Trainer(config(t_max=600), out).run() is None
    assert "finished already" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
