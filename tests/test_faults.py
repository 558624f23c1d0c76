"""Fault injection: what a run does when its numbers, its disk, its scheduler or a second trainer
turn against it. Each test causes the fault for real (a divergent learning rate, a held lock, a
signal sent to a training process, a write refused by the OS, a SIGKILL in the middle of a
checkpoint write) and checks the exit code, the one-line message, what stayed on disk and that
the rerun ends where an undisturbed run ends. The figures-only pipeline is in test_pipeline.py
(test_figures_profile_never_trains_whatever_the_config), the SLURM requeue in test_slurm.py."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_trainer import Killed, config, flatten, read_eval

from maven import cli
from maven.analysis.aggregate import RunKey, read_run
from maven.errors import UserError
from maven.replay import ReplayBuffer
from maven.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, "-m", "maven", "train", "--env", "matrix", "--map", "m10", "--algo", "qmix"]


def run_cli(*args, **popen):
    return subprocess.run([*TRAIN, *args], capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, **popen)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def step_of(checkpoint: Path) -> int:
    return int(checkpoint.stem.split("_")[1])


def snapshot(directory: Path) -> dict:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(directory.rglob("*"))}


def same_final_networks(a: Path, b: Path) -> None:
    final_a = torch.load(a / "checkpoints" / "final.pt", weights_only=False)
    final_b = torch.load(b / "checkpoints" / "final.pt", weights_only=False)
    for group in ("params", "target_params"):
        for name, tensor in flatten(final_a[group]).items():
            assert torch.equal(tensor, flatten(final_b[group])[name]), (group, name)


# --- 1. divergence ----------------------------------------------------------------------------
def test_divergence_stops_with_exit_3_keeps_the_last_good_checkpoint_and_aggregates_as_diverged(tmp_path):
    runs = tmp_path / "runs"
    out = runs / "matrix/m10/qmix/seed1"
    args = ["--seed", "1", "--t-max", "5000", "--set", "lr=1e8", "checkpoint_interval=20", "test_nepisode=8",
            "--out", str(out)]
    result = run_cli(*args)
    assert result.returncode == 3, result.stderr
    [line] = error_lines(result.stderr)
    assert "diverged, seed 1 at step" in line and "td_loss is inf" in line, line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and "td_loss" in summary["reason"]
    step = summary["env_steps"]
    kept = sorted((out / "checkpoints").glob("step_*.pt"), key=step_of)
    assert kept and step_of(kept[-1]) < step  # nothing written after the bad update
    assert summary["last_checkpoint"] == kept[-1].name
    torch.load(kept[-1], weights_only=False)  # readable
    record = read_run(RunKey("matrix", "m10", "qmix", 1), runs)
    assert record.status == "diverged" and "td_loss" in record.reason
    before = snapshot(out)
    again = run_cli(*args)  # the rerun says so, exits 3 again and changes nothing
    assert again.returncode == 3 and "diverged earlier" in again.stderr
    assert snapshot(out) == before


def poison_member(monkeypatch, member: int, at_update: int):
    """NaN rewards in one member's sampled batch at one update: its loss and gradient go NaN."""
    original = ReplayBuffer.sample
    calls = {"n": 0}

    def sample(self, n, members):
        batch = original(self, n, members)
        calls["n"] += 1
        if calls["n"] == at_update:
            batch.reward[member] = float("nan")
        return batch

    monkeypatch.setattr(ReplayBuffer, "sample", sample)


def test_a_diverging_member_stops_alone_and_the_population_exits_3(tmp_path, monkeypatch, capsys):
    Trainer(config(t_max=300, seed=0), tmp_path / "solo0").run()
    poison_member(monkeypatch, member=1, at_update=5)
    code = cli.main(["train", "--env", "matrix", "--map", "m10", "--algo", "qmix", "--seeds", "0-1", "--t-max", "300",
                     "--set", "test_interval=500", "test_nepisode=16", "checkpoint_interval=1000",
                     "--out", str(tmp_path / "pop/seed{seed}")])
    assert code == 3
    [line] = error_lines(capsys.readouterr().err)
    assert "seed 1 at step" in line and "td_loss is nan" in line
    assert json.loads((tmp_path / "pop/seed1/summary.json").read_text())["status"] == "diverged"
    assert json.loads((tmp_path / "pop/seed0/summary.json").read_text())["status"] == "finished"
    keys = ("step", "episode", "return_mean", "ep_length_mean", "epsilon")  # losses: last bits may differ
    together, alone = read_eval(tmp_path / "pop/seed0"), read_eval(tmp_path / "solo0")
    assert [{k: r[k] for k in keys} for r in together] == [{k: r[k] for k in keys} for r in alone]


def test_skip_update_leaves_the_member_exactly_as_before_the_bad_update(tmp_path, monkeypatch):
    poison_member(monkeypatch, member=1, at_update=5)
    snapshots = []
    original_update = Trainer._train_iteration

    def watch(self, running):
        before = self.learner.member_state(1)
        diverged = original_update(self, running)
        if diverged:
            snapshots.append((before, self.learner.member_state(1), diverged))
        return diverged

    monkeypatch.setattr(Trainer, "_train_iteration", watch)
    cfgs = [config(t_max=600, seed=s, on_nonfinite="skip_update") for s in (0, 1)]
    summaries = Trainer(cfgs, [tmp_path / f"seed{s}" for s in (0, 1)]).run()
    assert [s["status"] for s in summaries] == ["finished", "finished"]
    assert summaries[1]["skipped_updates"] == 1 and summaries[0]["skipped_updates"] == 0
    [(before, after, diverged)] = snapshots
    assert diverged[1][0] == "td_loss" and diverged[1][2]  # skippable
    flat_before, flat_after = flatten(before), flatten(after)
    assert flat_before.keys() == flat_after.keys()
    for name, value in flat_before.items():  # parameters, targets, optimiser state, counters
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(flat_after[name])), name
    assert all(row["td_loss"] != "nan" for row in read_eval(tmp_path / "seed1"))  # a skipped update is not logged


# --- 2. one writer per run directory ------------------------------------------------------------
def test_a_locked_run_directory_is_refused_with_nothing_touched(tmp_path):
    Trainer(config(t_max=100, seed=0), tmp_path / "seed0").run()  # a finished member and a new one
    (tmp_path / "seed1").mkdir()
    holder = open(tmp_path / "seed1" / ".lock", "a")  # noqa: SIM115 - another trainer (flock: per open file)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match=f"--out {tmp_path / 'seed1'} is being written by another trainer"):
        Trainer([config(t_max=100, seed=s) for s in (0, 1)], [tmp_path / f"seed{s}" for s in (0, 1)]).run()
    assert snapshot(tmp_path) == before
    holder.close()  # the holder ends: the directory is free again
    Trainer(config(t_max=100, seed=1), tmp_path / "seed1").run()
    assert (tmp_path / "seed1" / "summary.json").exists()


# --- 3. SIGTERM / SIGINT --------------------------------------------------------------------------
def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def eval_rows(path: Path) -> int:
    return len((path / "eval.csv").read_text().splitlines()) - 1 if (path / "eval.csv").exists() else 0


@pytest.mark.slow
def test_sigterm_checkpoints_exits_143_and_the_rerun_resumes_exactly(tmp_path):
    """Also: a second trainer on the busy directory exits 2 with one line."""
    flags = ["--seed", "2", "--t-max", "1500", "--set", "test_interval=250", "test_nepisode=8",
             "checkpoint_interval=100000"]
    whole = run_cli(*flags, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "split"
    proc = subprocess.Popen([*TRAIN, *flags, "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while eval_rows(out) < 3:  # well into training, before the end
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    second = run_cli(*flags, "--out", str(out))
    assert second.returncode == 2
    expected = (f"error: --out {out} is being written by another trainer (it holds {out / '.lock'}); "
                "wait for it to end or choose another --out")
    assert error_lines(second.stderr) == [expected]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    [line] = error_lines(stderr)
    assert "stopped by SIGTERM after checkpointing (seed 2 at step" in line
    assert not (out / "summary.json").exists()
    [checkpoint] = list((out / "checkpoints").glob("step_*.pt"))  # the interval alone would give none
    rerun = run_cli(*flags, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming from {checkpoint.name}" in rerun.stdout
    assert read_eval(out) == read_eval(tmp_path / "whole")
    same_final_networks(out, tmp_path / "whole")


@pytest.mark.slow
def test_sigint_twice_still_checkpoints_and_exits_130(tmp_path):
    """Ctrl-C reaches every process of the group and gpu_slot.py forwards it: a repeat must not
    turn into a stop without a checkpoint."""
    out = tmp_path / "run"
    proc = subprocess.Popen([*TRAIN, "--seed", "0", "--t-max", "100000", "--set", "test_interval=250",
                             "test_nepisode=8", "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(out / "eval.csv", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "stopped by SIGINT after checkpointing" in stderr and "Traceback" not in stderr
    assert list((out / "checkpoints").glob("step_*.pt")) and not (out / "summary.json").exists()


# --- 4. checkpoints -------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_failed_checkpoint_write_keeps_the_older_ones_removes_the_partial_file_and_exits_4(
        tmp_path, monkeypatch, capsys):
    Trainer(config(t_max=1000, checkpoint_interval=400), tmp_path / "whole").run()
    original = torch.save
    calls = {"n": 0}

    def disk_full_on_second(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            f.write(b"\0" * 4096)  # part of it made it to disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_second)
    out = tmp_path / "split"
    code = cli.main(["train", "--env", "matrix", "--map", "m10", "--algo", "qmix", "--seed", "3", "--t-max", "1000",
                     "--set", "test_interval=500", "test_nepisode=16", "checkpoint_interval=400", "--out", str(out)])
    assert code == 4
    [line] = error_lines(capsys.readouterr().err)
    assert "No space left on device" in line and "previous checkpoints are kept" in line
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert len(files) == 1 and files[0].startswith("step_") and files[0].endswith(".pt")  # no .tmp
    torch.load(out / "checkpoints" / files[0], weights_only=False)
    assert not (out / "summary.json").exists()
    monkeypatch.setattr(torch, "save", original)
    Trainer(config(t_max=1000, checkpoint_interval=400), out).run()
    assert f"resuming from {files[0]}" in capsys.readouterr().out
    assert read_eval(out) == read_eval(tmp_path / "whole")


def test_a_checkpoint_directory_that_refuses_writes_stops_with_one_line_and_the_rerun_starts_over(tmp_path):
    """The OS refuses writes past 256 KiB (`ulimit -f`, SIGXFSZ ignored: writes fail with EFBIG,
    as on a full disk; a chmod would not stop root) and a checkpoint is bigger than that."""
    out = tmp_path / "run"
    flags = ["--seed", "0", "--t-max", "400", "--set", "test_interval=200", "test_nepisode=8",
             "checkpoint_interval=100", "--out", str(out)]
    limited = f"trap '' XFSZ; ulimit -f 256; exec {shlex.join([*TRAIN, *flags])}"
    result = subprocess.run(["bash", "-c", limited], capture_output=True, text=True, cwd=ROOT, timeout=600,
                            check=False)
    assert result.returncode == 4, result.stderr
    [line] = error_lines(result.stderr)
    # torch's zip writer turns the refused write (EFBIG) into a RuntimeError; still one line, exit 4
    assert "cannot write checkpoint" in line and "checkpoints are kept" in line
    assert list((out / "checkpoints").iterdir()) == []  # the partial file is gone
    assert (out / "eval.csv").exists() and not (out / "summary.json").exists()
    rerun = run_cli(*flags)
    assert rerun.returncode == 0, rerun.stderr
    assert "no readable checkpoint; starting over" in rerun.stdout


KILL_MID_WRITE = """
import os, signal, sys, torch
from maven import cli
original, calls = torch.save, {"n": 0}
def save(obj, f, *args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 2:
        f.write(b"half a checkpoint"); f.flush(); os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return original(obj, f, *args, **kwargs)
torch.save = save
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_checkpoint_write_resumes_from_the_previous_one(tmp_path):
    args = ["train", "--env", "matrix", "--map", "m10", "--algo", "qmix", "--seed", "3", "--t-max", "1000",
            "--set", "test_interval=500", "test_nepisode=16", "checkpoint_interval=400"]
    Trainer(config(t_max=1000, checkpoint_interval=400), tmp_path / "whole").run()
    out = tmp_path / "split"
    killed = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, *args, "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert len(names) == 2 and names[0].endswith(".pt") and names[1].endswith(".tmp"), names
    rerun = subprocess.run([sys.executable, "-m", "maven", *args, "--out", str(out)], cwd=ROOT, capture_output=True,
                           text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming from {names[0]}" in rerun.stdout
    assert not list((out / "checkpoints").glob("*.tmp"))
    assert read_eval(out) == read_eval(tmp_path / "whole")
    same_final_networks(out, tmp_path / "whole")


@pytest.mark.slow
def test_no_readable_checkpoint_starts_over_saying_so_and_ends_as_an_undisturbed_run(tmp_path, monkeypatch, capsys):
    Trainer(config(t_max=800, checkpoint_interval=400), tmp_path / "whole").run()
    original_save = Trainer.save_checkpoint

    def save_then_die(self, k):
        original_save(self, k)
        raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        Trainer(config(t_max=800, checkpoint_interval=400), tmp_path / "split").run()
    monkeypatch.setattr(Trainer, "save_checkpoint", original_save)
    [only] = list((tmp_path / "split" / "checkpoints").glob("step_*.pt"))
    only.write_bytes(only.read_bytes()[:100])
    capsys.readouterr()
    Trainer(config(t_max=800, checkpoint_interval=400), tmp_path / "split").run()
    out = capsys.readouterr()
    assert f"{only.name} cannot be read" in out.err and "no readable checkpoint; starting over" in out.out
    assert read_eval(tmp_path / "split") == read_eval(tmp_path / "whole")

