"""Every bad input gets a one-line error naming the value, exit code 2, before training starts."""

import subprocess
import sys

import pytest

from maven.cli import main

BASE = ["train", "--env", "matrix", "--map", "m10", "--algo", "qmix", "--seed", "0", "--t-max", "300"]


def run(args, tmp_path, capsys):
    code = main(args + ["--out", str(tmp_path / "run")] if args[0] == "train" and "--out" not in args else args)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("args, needle", [
    (["--env", "starcraft3"], "unknown environment 'starcraft3'"),
    (["--map", "m0"], "unknown matrix map 'm0'"),
    (["--map", "corridor"], "unknown matrix map 'corridor'"),
    (["--algo", "coma"], "unknown algorithm 'coma'; choose one of: maven, qmix"),
    (["--preset", "tuned"], "unknown preset 'tuned' for qmix; choose one of: matched, paper, pymarl"),
    (["--set", "learning_rate=0.1"], "unknown config key 'learning_rate'"),
    (["--set", "lr=fast"], "bad value 'fast' for lr: expected float"),
    (["--set", "batch_size=0"], "bad value 0 for batch_size: must be > 0"),
    (["--set", "gamma=1.5"], "bad value 1.5 for gamma: must be in [0, 1]"),
    (["--set", "lr=nan"], "must be a finite number"),
    (["--set", "z_policy=greedy"], "bad value 'greedy' for z_policy; choose one of: uniform, reinforce"),
    (["--set", "double_q=maybe"], "bad value 'maybe' for double_q: expected bool"),
    (["--seed", "-1"], "bad --seed -1"),
    (["--set", "z_policy=reinforce"], "z_policy='reinforce' needs an algorithm with a latent z"),
])
def test_bad_input_names_the_value(args, needle, tmp_path, capsys):
    base = list(BASE)
    for flag, value in zip(args[::2], args[1::2]):
        if flag in base:
            base[base.index(flag) + 1] = value
        else:
            base += [flag, value]
    code, err = run(base, tmp_path, capsys)
    assert code == 2
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # nothing started


def test_out_dir_holding_another_run_is_refused_and_kept(tmp_path, capsys):
    assert main(BASE + ["--out", str(tmp_path / "run")]) == 0
    before = (tmp_path / "run" / "summary.json").read_text()
    other = list(BASE)
    other[other.index("--seed") + 1] = "1"
    code = main(other + ["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "holds another run" in err and "seed=0" in err
    assert (tmp_path / "run" / "summary.json").read_text() == before


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert main(BASE + ["--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err and target.read_text() == "keep me"


def test_module_entry_point_exits_2_on_a_bad_algorithm(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "maven", "check", "--env", "matrix", "--map", "m10",
                           "--algo", "nope"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown algorithm 'nope'")


def test_list_shows_environments_algorithms_and_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("matrix", "smax", "smac", "maven", "qtran_alt", "pymarl"):
        assert word in out


def test_repeated_set_flags_all_apply(tmp_path):
    import yaml

    args = BASE + ["--set", "test_interval=200", "--set", "test_nepisode=4", "lr=0.001", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["config"]
    assert (config["test_interval"], config["test_nepisode"], config["lr"]) == (200, 4, 0.001)


@pytest.mark.parametrize("seeds, out, needle", [
    ("3-1", "r{seed}", "bad --seeds '3-1': the range 3-1 is empty"),
    ("a", "r{seed}", "bad --seeds 'a'"),
    ("0,2,0", "r{seed}", "seed 0 is listed twice"),
    ("0-1", "r", "needs {seed} for 2 seeds"),
    ("0-1", "r{seed}{run}", "the only placeholder allowed is {seed}"),
])
def test_bad_population_input_is_one_line_and_touches_nothing(seeds, out, needle, tmp_path, capsys):
    base = [a for a in BASE if a not in ("--seed", "0")]
    code = main(base + ["--seeds", seeds, "--out", str(tmp_path / out)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_population_writes_one_run_directory_per_seed_with_its_threads(tmp_path, capsys):
    import json
    import platform

    import torch

    base = [a for a in BASE if a not in ("--seed", "0")]
    assert main(base + ["--seeds", "2,5", "--threads", "1", "--out", str(tmp_path / "seed{seed}")]) == 0
    for seed in (2, 5):
        summary = json.loads((tmp_path / f"seed{seed}" / "summary.json").read_text())
        assert summary["seed"] == seed and summary["population"]["seeds"] == [2, 5]
        assert summary["population"]["threads"]["torch_threads"] == torch.get_num_threads() == 1
        flushing = "flush to zero" if platform.machine().lower() in ("x86_64", "amd64") else "unavailable"
        assert summary["population"]["threads"]["denormals"] == flushing


def test_a_run_applies_threads_and_an_explicit_environment_variable_wins(tmp_path):
    import json
    import os

    def run_with(env_extra, out):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "XLA_FLAGS")}
        proc = subprocess.run([sys.executable, "-m", "maven", *BASE, "--threads", "2", "--out",
                               str(tmp_path / out)], env={**env, **env_extra}, capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads((tmp_path / out / "summary.json").read_text())["population"]["threads"], proc.stderr

    cpus = len(os.sched_getaffinity(0))
    chosen, _ = run_with({}, "asked")
    assert chosen["torch_threads"] == min(2, cpus) and chosen["source"] == "--threads"
    chosen, err = run_with({"OMP_NUM_THREADS": "1"}, "env")
    assert chosen["torch_threads"] == 1 and chosen["source"] == "OMP_NUM_THREADS"
    assert "OMP_NUM_THREADS=1 in the environment wins" in err or cpus == 1
