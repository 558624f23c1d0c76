"""The SLURM profile for real: a one-node cluster (scripts/slurm_cluster.sh) runs a tiny grid.

Skips when the cluster cannot be started (not root, no slurm binaries), unless
MAVEN_REQUIRE_SLURM=1, then it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest
from pipeline_helpers import ROOT, SNAKEMAKE, env, snakemake

pytestmark = pytest.mark.slurm
SCRIPT = ROOT / "scripts/slurm_cluster.sh"


def _unavailable(reason: str):
    if os.environ.get("MAVEN_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM required but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        _unavailable("needs root to start slurmctld/slurmd")
    if not (shutil.which("slurmctld") or os.path.exists("/usr/sbin/slurmctld")):
        _unavailable("slurm-wlm is not installed")
    started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=180, check=False)
    if started.returncode != 0:
        _unavailable(f"cluster did not start: {started.stderr.strip()}")
    yield
    subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, timeout=60, check=False)


def test_tiny_grid_through_slurm(cluster, tmp_path):
    config = ["envs=[matrix]", "maps=[m2]", "seeds=[0]", "algos=[qmix,vdn]", "t_max={m2: 1000}",
              "train_set=[test_interval=500,test_nepisode=4]", "bootstrap_reps=50", "grid_points=3",
              "train_resources={matrix: {threads: 1, mem_mb: 1000, runtime: 10, gpu: 0}}", "milestones={}"]
    result = snakemake(
        "--profile", str(ROOT / "profiles/slurm"), "--config", *config,
        # this node has no GPU and partition `debug`: override the site settings of the profile
        "--default-resources", "slurm_partition=debug", "slurm_account=none", "runtime=10", "mem_mb=1000",
        "--set-resources", "train:gpu=0", "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs", "--latency-wait", "5",
        workdir=tmp_path, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    job_ids = set(re.findall(r"SLURM (?:jobid|job id)\s*(\d+)", output, re.IGNORECASE))
    assert len(job_ids) >= 2, output[-3000:]  # both population jobs (seed 0 each) went through sbatch
    for algo in ("qmix", "vdn"):
        assert (tmp_path / f"results/runs/matrix/m2/{algo}/seed0/summary.json").exists()
        assert (tmp_path / f"logs/train/matrix/m2/{algo}/seeds0.log").exists()
    assert (tmp_path / "results/figures/matrix_curves.png").exists()
    assert "finished" in (tmp_path / "results/summary/runs.csv").read_text()


def test_a_job_stopped_with_sigterm_is_resubmitted_and_resumes(cluster, tmp_path):
    """`scancel --signal=TERM` (what preemption sends): the trainer checkpoints and exits 143,
    Snakemake resubmits the job (the profile's retries), and the new job resumes from that
    checkpoint to the end."""
    config = ["envs=[matrix]", "maps=[m2]", "seeds=[0]", "algos=[qmix]", "t_max={m2: 1200}",
              "train_set=[test_interval=200,test_nepisode=4,checkpoint_interval=100000]", "bootstrap_reps=50",
              "grid_points=3", "train_resources={matrix: {threads: 1, mem_mb: 1000, runtime: 10, gpu: 0}}",
              "milestones={}"]
    command = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--profile", str(ROOT / "profiles/slurm"), "--config", *config,
               "--default-resources", "slurm_partition=debug", "slurm_account=none", "runtime=10", "mem_mb=1000",
               "--set-resources", "train:gpu=0", "--slurm-init-seconds-before-status-checks", "2",
               "--latency-wait", "5"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
    run = tmp_path / "results/runs/matrix/m2/qmix/seed0"
    deadline = time.monotonic() + 600
    while not ((run / "eval.csv").exists() and len((run / "eval.csv").read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.5)
    jobs = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout.split()
    assert len(jobs) == 1, jobs
    subprocess.run(["scancel", "--signal=TERM", jobs[0]], check=True)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-4000:]
    # Snakemake clears a failed job's log before the retry, so the first job is seen through
    # Snakemake and the checkpoint: with checkpoint_interval=100000 only SIGTERM writes one
    assert "Error in rule train" in output and len(re.findall(r"submitted with SLURM jobid", output)) == 2, output[-4000:]
    log = (tmp_path / "logs/train/matrix/m2/qmix/seeds0.log").read_text()
    resumed = re.search(r"resuming from step_(\d+)_it\d+\.pt", log)
    assert resumed and 0 < int(resumed.group(1)) < 1200, log[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["env_steps"] > 1200
