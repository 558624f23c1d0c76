"""maven.threads.configure: torch's and XLA's thread pools per process (issue 13).

Each case runs in a fresh `python -c` so that this process's own pools are untouched and the
environment (OMP_NUM_THREADS, XLA_FLAGS, SLURM_CPUS_PER_TASK) is exactly the one under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = """
import json, os, sys
exec(os.environ.pop("BEFORE_CONFIGURE", ""))
from maven import threads
from maven.errors import UserError
requested = json.loads(sys.argv[1])
try:
    chosen = threads.configure(requested)
except UserError as error:
    print("USERERROR", error)
    sys.exit(2)
import torch
print("RESULT", json.dumps({"chosen": chosen, "torch": torch.get_num_threads(),
                            "xla_flags": os.environ["XLA_FLAGS"]}))
"""
CLEAN = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS", "SLURM_CPUS_PER_TASK")


def configure(requested, **environ: str) -> tuple[dict | None, str]:
    """Run configure(requested) in a child; return its result (None on a UserError) and its output."""
    env = {key: value for key, value in os.environ.items() if key not in CLEAN}
    env.update(environ)
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(requested)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode == 2:
        return None, output
    assert proc.returncode == 0, output
    result = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(result[len("RESULT "):]), output


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def test_default_is_one_thread_for_torch_and_xla():
    result, _ = configure(None)
    assert result["torch"] == 1 and result["chosen"]["torch_threads"] == 1
    assert result["chosen"]["source"] == "default" and result["chosen"]["available_cpus"] == cpus()
    assert result["xla_flags"] == "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def test_requested_threads_are_used_when_the_cpus_exist():
    if cpus() < 2:
        pytest.skip("needs 2 CPUs")
    result, _ = configure(2)
    assert result["torch"] == 2 and result["chosen"]["source"] == "--threads"
    assert "intra_op_parallelism_threads=2" in result["xla_flags"]


def test_a_huge_request_is_capped_at_the_available_cpus_and_says_so():
    result, output = configure(10_000)
    assert result["torch"] == cpus() and result["chosen"]["xla_threads"] == cpus()
    assert f"capped at {cpus()}" in output


def test_omp_num_threads_in_the_environment_wins_for_torch_and_is_logged():
    result, output = configure(1, OMP_NUM_THREADS="2")
    assert result["torch"] == 2 and result["chosen"]["source"] == "OMP_NUM_THREADS"
    assert "OMP_NUM_THREADS=2 in the environment wins" in output
    assert "intra_op_parallelism_threads=1" in result["xla_flags"]  # XLA follows --threads
    same, output = configure(1, OMP_NUM_THREADS="1")  # as the pipeline sets it: agrees, nothing to say
    assert same["torch"] == 1 and same["chosen"]["source"] == "--threads" and "wins" not in output


def test_slurm_cpus_per_task_caps():
    result, output = configure(4, SLURM_CPUS_PER_TASK="1")
    assert result["torch"] == 1 and result["chosen"]["available_cpus"] == 1
    assert "SLURM_CPUS_PER_TASK" in output


def test_xla_flags_that_set_the_pool_are_left_alone():
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=3"
    result, output = configure(1, XLA_FLAGS=flags)
    assert result["xla_flags"] == flags and result["chosen"]["xla_threads"] == 3
    assert "left as is" in output
    other, _ = configure(1, XLA_FLAGS="--xla_cpu_enable_fast_math=false")
    assert other["xla_flags"] == ("--xla_cpu_enable_fast_math=false --xla_cpu_multi_thread_eigen=false"
                                  " intra_op_parallelism_threads=1")


def test_configuring_after_jax_was_imported_warns():
    pytest.importorskip("jax")
    _, output = configure(None, BEFORE_CONFIGURE="import jax")
    assert "jax was imported before" in output


@pytest.mark.parametrize("bad", [0, -3])
def test_fewer_than_one_thread_is_a_one_line_user_error(bad):
    result, output = configure(bad)
    assert result is None
    message = next(line for line in output.splitlines() if line.startswith("USERERROR"))
    assert f"--threads {bad}" in message and ">= 1" in message
