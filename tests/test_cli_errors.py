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
    (["--preset", "tuned"], "unknown preset 'tuned' for qmix; choose one of: paper, pymarl"),
    (["--set", "learning_rate=0.1"], "unknown config key 'learning_rate'"),
    (["--set", "lr=fast"], "bad value 'fast' for lr: expected float"),
    (["--set", "batch_size=0"], "bad value 0 for batch_size: must be > 0"),
    (["--set", "gamma=1.5"], "bad value 1.5 for gamma: must be in [0, 1]"),
    (["--set", "lr=nan"], "must be a finite number"),
    (["--set", "z_policy=greedy"], "bad value 'greedy' for z_policy; choose one of: uniform, reinforce"),
    (["--set", "double_q=maybe"], "bad value 'maybe' for double_q: expected bool"),
    (["--seed", "-1"], "bad --seed -1"),
    (["--set", "z_policy=reinforce"], "z_policy='reinforce' needs --algo maven"),
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
