"""The Snakemake workflow: job counts of dry runs, config errors, figures-only mode, real runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
from pipeline_helpers import ROOT, SNAKEMAKE, env, job_counts, snakemake

LOCAL = ["--profile", str(ROOT / "profiles/local")]


def test_default_grid_dry_run_job_counts(tmp_path):
    # a fresh working directory: the repository's own results/ holds finished runs
    result = snakemake(*LOCAL, "-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    # matrix m10: 5 algos x 5 seeds; smax 3m: 5 algos x 3 seeds
    assert job_counts(result.stdout) == {"train": 40, "aggregate": 1, "export": 1, "figures": 1,
                                         "milestones": 2, "tables": 1, "default": 1}


def test_paper_grid_on_slurm_dry_run_resources(tmp_path):
    result = snakemake("--profile", str(ROOT / "profiles/slurm"), "--configfile", str(ROOT / "config/paper.yaml"),
                       "-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["train"] == 4 * 5 * 10 and counts["figures"] == 1
    jobs = result.stdout.split("\nrule ")[1:]
    train = {re.search(r"wildcards: (.*)", job).group(1): job for job in jobs if job.startswith("train:")}
    corridor = train["env=smac, map=corridor, algo=maven, seed=3"]
    assert "gpu=1" in corridor and "runtime=10080" in corridor and "mem_mb=64000" in corridor
    assert "OMP_NUM_THREADS=4" in corridor and "slurm_partition=gpu" in corridor
    assert "mem_mb=32000" in train["env=smac, map=3m, algo=vdn, seed=0"]


def test_missing_runs_are_trained_even_when_figures_exist(tmp_path):
    # a partial results/ with figures made from it (the shipped state): the missing run must
    # still be scheduled, and the finished one must not
    grid = ["envs=[matrix]", "maps=[m3]", "seeds=[0,1]", "algos=[qmix]"]
    done = tmp_path / "results/runs/matrix/m3/qmix/seed0"
    done.mkdir(parents=True)
    (done / "summary.json").write_text('{"status": "finished"}')
    for name in ["summary/scores.csv", "summary/runs.csv", "summary/marl_eval.json", "figures/captions.md",
                 *[f"figures/matrix_{kind}.{ext}" for kind in ["curves", "aggregate", "profiles", "improvement",
                                                               "sample_efficiency"] for ext in ["png", "pdf"]],
                 *[f"tables/{table}.{ext}" for table in ["final_scores", "best_scores"] for ext in ["csv", "md", "tex"]],
                 "tables/milestones_matrix.md"]:
        path = tmp_path / "results" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("made after the finished run")
    result = snakemake(*LOCAL, "-n", "--config", *grid, workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout)["train"] == 1
    assert "seed=1" in result.stdout and "seed=0" not in result.stdout


def test_named_grid_writes_under_its_results_dir(tmp_path):
    result = snakemake(*LOCAL, "--configfile", str(ROOT / "config/smax_cpu.yaml"), "-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout)["train"] == 5 * 2 * 3
    assert "results/smax_cpu/runs/smax/2s3z/maven/seed2/summary.json" in result.stdout
    assert "results/smax_cpu/figures/smax_curves.png" in result.stdout
    assert "logs/smax_cpu/train/smax/3m/qmix/seed0.log" in result.stdout
    assert "intra_op_parallelism_threads=1" in result.stdout  # XLA keeps to the job's one thread
    assert "results/runs/" not in result.stdout  # nothing of the default grid's results


@pytest.mark.parametrize("override, named", [
    (["maps=[3m,nosuchmap]"], "nosuchmap"),
    (["algos=[qmix,qplex]"], "qplex"),
    (["seeds=[0,-1]"], "-1"),
    (["seeds=[0,0]"], "[0, 0]"),
    (["envs=[matrix]", "maps=[m3]", "t_max={m3: -5}"], "-5"),
])
def test_config_errors_name_the_value_before_any_job(override, named, tmp_path):
    result = snakemake("-n", "--config", *override, workdir=tmp_path)
    assert result.returncode != 0
    assert named in result.stderr + result.stdout
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_figures_profile_never_trains(tmp_path):
    run = tmp_path / "results/runs/matrix/m3/qmix/seed0"
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"status": "finished"}')
    overrides = ["figures_only=true", "envs=[matrix]", "maps=[m3]", "seeds=[0,1]", "algos=[qmix]"]
    result = snakemake("--profile", str(ROOT / "profiles/figures"), "-n", "--forceall", "--config", *overrides,
                       workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert "train" not in counts and counts["aggregate"] == 1 and counts["figures"] == 1


TINY = ["envs=[matrix]", "maps=[m2]", "seeds=[0]", "algos=[qmix,vdn]", "t_max={m2: 2000}",
        "train_set=[test_interval=500,test_nepisode=8,checkpoint_interval=500]", "bootstrap_reps=100",
        "grid_points=5", "milestones={matrix: {metric: return_mean, steps: [1000, 2000], target: 5}}"]


@pytest.mark.slow
def test_tiny_real_run_produces_scores_figures_tables(tmp_path):
    started = time.perf_counter()
    result = snakemake("--cores", "2", "--config", *TINY, workdir=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results"
    assert (results / "summary/scores.csv").read_text().startswith("env,map,algo,seed,step,metric,value")
    assert "finished" in (results / "summary/runs.csv").read_text()
    assert (results / "figures/matrix_curves.pdf").exists() and (results / "tables/final_scores.tex").exists()
    assert "| matrix | m2 | qmix |" in (results / "tables/milestones_matrix.md").read_text()
    report = snakemake("--config", *TINY, "--report", str(tmp_path / "report.html"), workdir=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    print(f"tiny pipeline run: {time.perf_counter() - started:.1f} s")


@pytest.mark.slow
def test_killed_run_resumes_and_finished_runs_are_not_rerun(tmp_path):
    config = [c if not c.startswith("t_max") else "t_max={m2: 20000}" for c in TINY]
    command = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--cores", "1",
               "--profile", str(ROOT / "profiles/local"), "--config", *config, "seeds=[0]", "algos=[vdn]"]
    job = subprocess.Popen(command, env=env(), start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    run = tmp_path / "results/runs/matrix/m2/vdn/seed0"
    deadline = time.time() + 300
    while time.time() < deadline and not any((run / "checkpoints").glob("*")):
        time.sleep(1)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert any((run / "checkpoints").glob("*")), "no checkpoint appeared before the kill"
    assert not (run / "summary.json").exists()
    evals_before = (run / "eval.csv").read_text().count("\n")
    # SIGKILL leaves Snakemake's lock behind, as after a crashed node: unlock, then rerun
    subprocess.run([*command, "--unlock"], env=env(), capture_output=True, timeout=300, check=True)
    rerun = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=900, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (run / "summary.json").exists()
    log = (tmp_path / "logs/train/matrix/m2/vdn/seed0.log").read_text().lower()
    assert "resum" in log  # the trainer says it resumed
    assert (run / "eval.csv").read_text().count("\n") >= evals_before
    again = subprocess.run([*command, "-n"], env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert "Nothing to be done" in again.stdout + again.stderr
