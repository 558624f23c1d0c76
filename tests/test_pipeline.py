"""The Snakemake workflow: population jobs in dry runs, finished runs never touched, config errors,
figures-only mode, real runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
from pipeline_helpers import ROOT, SNAKEMAKE, env, job_counts, snakemake

LOCAL = ["--profile", str(ROOT / "profiles/local")]


def train_jobs(output: str) -> dict[str, str]:
    """The train jobs of a dry run, by their wildcards line (env=…, map=…, algo=…, seeds=…)."""
    jobs = output.split("\nrule ")[1:]
    return {re.search(r"wildcards: (.*)", job).group(1): job for job in jobs if job.startswith("train:")}


def finish(workdir, env, map_name, algo, seeds) -> dict:
    """Fake finished runs (summary.json and a checkpoint); return each file's bytes and mtime."""
    files = {}
    for seed in seeds:
        run = workdir / f"results/runs/{env}/{map_name}/{algo}/seed{seed}"
        (run / "checkpoints").mkdir(parents=True)
        (run / "summary.json").write_text(f'{{"status": "finished", "seed": {seed}}}')
        (run / "checkpoints/final.pt").write_bytes(b"weights")
        for path in [run / "summary.json", run / "checkpoints/final.pt"]:
            os.utime(path, (1_600_000_000, 1_600_000_000))
            files[path] = (path.read_bytes(), path.stat().st_mtime_ns)
    return files


def untouched(files: dict) -> bool:
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files} == files


def test_default_grid_dry_run_job_counts(tmp_path):
    # a fresh working directory: the repository's own results/ holds finished runs
    result = snakemake(*LOCAL, "-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    # one population job per cell (seeds_per_job 5): matrix m10 5 seeds x 5 algos
    assert job_counts(result.stdout) == {"train": 5, "aggregate": 1, "export": 1, "figures": 1,
                                         "milestones": 1, "outcomes": 1, "tables": 1, "default": 1}
    train = train_jobs(result.stdout)
    qmix = train["env=matrix, map=m10, algo=qmix, seeds=0-4"]
    assert "--seeds 0-4 --out 'results/runs/matrix/m10/qmix/seed{seed}' --threads 1" in qmix
    assert "mem_mb=2800" in qmix and "runtime=180" in qmix  # 2000 MB + 4 x 200, 60 min + 4 x 30
    assert "--set compile=default" in qmix  # config.yaml's compile: {matrix: default}
    # longest first: train_cost x 5 seeds is each job's priority
    priority = {wildcards.split("algo=")[1].split(",")[0]: float(re.search(r"priority: ([\d.]+)", job).group(1))
                for wildcards, job in train.items()}
    assert sorted(priority, key=priority.get, reverse=True) == ["maven", "qtran_base", "qtran_alt", "qmix", "vdn"]
    assert priority["vdn"] == 5
    with_smax = snakemake(*LOCAL, "-n", "--config", "envs=[matrix,smax]", workdir=tmp_path)
    assert job_counts(with_smax.stdout)["train"] == 10  # smax 3m, 3 seeds, one population per algo
    vdn = train_jobs(with_smax.stdout)["env=smax, map=3m, algo=vdn, seeds=0-2"]
    assert "--seeds 0-2" in vdn and "--threads 2" in vdn and "OMP_NUM_THREADS=2" in vdn
    assert "compile" not in vdn  # SMAX stays eager


@pytest.mark.parametrize("per_job, expected", [
    ("2", {"matrix": ["0-1", "2-3", "4"], "smax": ["0-1", "2"]}),
    ("1", {"matrix": ["0", "1", "2", "3", "4"], "smax": ["0", "1", "2"]}),
    ("{smax: 2}", {"matrix": ["0-4"], "smax": ["0-1", "2"]}),  # merges into config.yaml's {matrix: 5, smax: 5}
])
def test_seeds_per_job_groups_each_cell_into_ceil_seeds_over_size_jobs(per_job, expected, tmp_path):
    result = snakemake(*LOCAL, "-n", "--config", f"seeds_per_job={per_job}", "envs=[matrix,smax]", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    train = train_jobs(result.stdout)
    assert job_counts(result.stdout)["train"] == 5 * (len(expected["matrix"]) + len(expected["smax"]))
    map_of = {"matrix": "m10", "smax": "3m"}
    for env_name, groups in expected.items():
        for seeds in groups:
            job = train[f"env={env_name}, map={map_of[env_name]}, algo=maven, seeds={seeds}"]
            assert f"--seeds {seeds} --out" in job


def test_a_compiled_cell_starts_one_job_before_any_cells_second_job(tmp_path):
    # matrix is compiled in config.yaml, smax is not: with 2 seeds per job, each matrix cell's
    # first job outranks every second job (its compile cache is then warm); smax keeps cost x seeds
    result = snakemake(*LOCAL, "-n", "--config", "seeds_per_job=2", "envs=[matrix,smax]", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    priority = {wildcards: float(re.search(r"priority: ([\d.]+)", job).group(1))
                for wildcards, job in train_jobs(result.stdout).items()}
    firsts = [p for w, p in priority.items() if w.startswith("env=matrix") and w.endswith("seeds=0-1")]
    later = [p for w, p in priority.items() if w.startswith("env=matrix") and not w.endswith("seeds=0-1")]
    assert len(firsts) == 5 and len(later) == 10 and min(firsts) > max(later)
    assert priority["env=matrix, map=m10, algo=maven, seeds=2-3"] == 1.6 * 2
    assert priority["env=smax, map=3m, algo=maven, seeds=0-1"] == 1.6 * 2


def test_a_new_seed_is_trained_alone_and_finished_runs_are_untouched(tmp_path):
    files = finish(tmp_path, "matrix", "m3", "qmix", range(5))
    grid = ["envs=[matrix]", "maps=[m3]", "algos=[qmix]", "seeds=[0,1,2,3,4,5]", "seeds_per_job=5"]
    result = snakemake(*LOCAL, "-n", "--config", *grid, workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout)["train"] == 1
    assert list(train_jobs(result.stdout)) == ["env=matrix, map=m3, algo=qmix, seeds=5"]
    assert "--seeds 5 --out" in result.stdout
    assert untouched(files)


def test_non_contiguous_pending_seeds_form_one_job(tmp_path):
    finish(tmp_path, "matrix", "m3", "qmix", [1, 3])
    grid = ["envs=[matrix]", "maps=[m3]", "algos=[qmix]", "seeds=[0,1,2,3,4,10]", "seeds_per_job=5"]
    result = snakemake(*LOCAL, "-n", "--config", *grid, workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(train_jobs(result.stdout)) == ["env=matrix, map=m3, algo=qmix, seeds=0_2_4_10"]
    assert "--seeds 0,2,4,10 --out" in result.stdout


STUB_TRAINER = """
import argparse, pathlib, sys
parser = argparse.ArgumentParser()
parser.add_argument("command")
parser.add_argument("--seeds")
parser.add_argument("--out")
args, _ = parser.parse_known_args()
with open("trainer_calls.txt", "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
for part in args.seeds.split(","):
    first, _, last = part.partition("-")
    for seed in range(int(first), int(last or first) + 1):
        run = pathlib.Path(args.out.format(seed=seed))
        if (run / "summary.json").exists():
            sys.exit(f"asked to train the finished run {run}")
        run.mkdir(parents=True, exist_ok=True)
        (run / "summary.json").write_text('{"status": "finished"}')
"""


def test_a_real_pipeline_run_trains_only_the_new_seed_and_touches_nothing_finished(tmp_path):
    # A stub trainer: `python -m maven` in the job's working directory finds tmp_path/maven first
    # (its __main__), while `maven.config` and the rest still come from the real package.
    stub = tmp_path / "maven"
    stub.mkdir()
    (stub / "__init__.py").write_text(f"__path__.append({str(ROOT / 'maven')!r})\n")
    (stub / "__main__.py").write_text(STUB_TRAINER)
    files = finish(tmp_path, "matrix", "m3", "qmix", range(5))
    grid = ["envs=[matrix]", "maps=[m3]", "algos=[qmix]", "seeds=[0,1,2,3,4,5]", "seeds_per_job=5"]
    marker = "logs/train/matrix/m3/qmix/seeds5.done"
    result = snakemake(*LOCAL, "--cores", "1", "--config", *grid, "--", marker, workdir=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    calls = (tmp_path / "trainer_calls.txt").read_text().splitlines()
    assert len(calls) == 1 and "--seeds 5 --out results/runs/matrix/m3/qmix/seed{seed} --threads 1" in calls[0]
    assert (tmp_path / "results/runs/matrix/m3/qmix/seed5/summary.json").exists()
    assert (tmp_path / marker).read_text().split() == ["results/runs/matrix/m3/qmix/seed5/summary.json"]
    assert untouched(files)
    # everything is finished now: no train job is left, even when everything is forced
    again = snakemake(*LOCAL, "-n", "--forceall", "--config", *grid, workdir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "train" not in job_counts(again.stdout)


def test_a_stale_marker_does_not_stop_a_pending_run(tmp_path):
    # the job for seed 1 finished once, then someone removed its summary.json to retrain it
    grid = ["envs=[matrix]", "maps=[m3]", "algos=[qmix]", "seeds=[1]"]
    marker = tmp_path / "logs/train/matrix/m3/qmix/seeds1.done"
    marker.parent.mkdir(parents=True)
    marker.write_text("results/runs/matrix/m3/qmix/seed1/summary.json\n")
    result = snakemake(*LOCAL, "-n", "--config", *grid, workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(train_jobs(result.stdout)) == ["env=matrix, map=m3, algo=qmix, seeds=1"]
    assert not marker.exists()


def test_paper_grid_on_slurm_dry_run_resources(tmp_path):
    result = snakemake("--profile", str(ROOT / "profiles/slurm"), "--configfile", str(ROOT / "config/paper.yaml"),
                       "-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["train"] == 4 * 5 * 10 and counts["figures"] == 1  # seeds_per_job {smac: 1}
    train = train_jobs(result.stdout)
    corridor = train["env=smac, map=corridor, algo=maven, seeds=3"]
    assert "gpu=1" in corridor and "runtime=10080" in corridor and "mem_mb=64000" in corridor
    assert "OMP_NUM_THREADS=4" in corridor and "slurm_partition=gpu" in corridor
    assert "--seeds 3 --out 'results/runs/smac/corridor/maven/seed{seed}' --threads 4" in corridor
    assert "mem_mb=32000" in train["env=smac, map=3m, algo=vdn, seeds=0"]


def test_slurm_population_jobs_scale_memory_and_runtime_with_their_members(tmp_path):
    resources = "train_resources={smac: {threads: 4, mem_mb: 32000, runtime: 600, gpu: 1, extra_mem_mb: 4000}}"
    result = snakemake("--profile", str(ROOT / "profiles/slurm"), "--configfile", str(ROOT / "config/paper.yaml"),
                       "-n", "--config", "maps=[3m]", "seeds_per_job={smac: 4}", resources, workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout)["train"] == 5 * 3  # seeds 0-3, 4-7, 8-9
    train = train_jobs(result.stdout)
    four = train["env=smac, map=3m, algo=qmix, seeds=0-3"]
    assert "mem_mb=44000" in four and "runtime=2400" in four and "gpu=1" in four and "--threads 4" in four
    two = train["env=smac, map=3m, algo=qmix, seeds=8-9"]
    assert "mem_mb=36000" in two and "runtime=1200" in two


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
    assert list(train_jobs(result.stdout)) == ["env=matrix, map=m3, algo=qmix, seeds=1"]
    assert "--seeds 1 --out" in result.stdout


def test_named_grid_writes_under_its_results_dir(tmp_path):
    result = snakemake(*LOCAL, "--configfile", str(ROOT / "config/smax_cpu.yaml"), "-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout)["train"] == 5 * 2  # one population of seeds 0-2 per cell
    assert "--out 'results/smax_cpu/runs/smax/2s3z/maven/seed{seed}'" in result.stdout
    assert "results/smax_cpu/figures/smax_curves.png" in result.stdout
    assert "logs/smax_cpu/train/smax/3m/qmix/seeds0-2.log" in result.stdout
    assert "intra_op_parallelism_threads=1" in result.stdout  # XLA keeps to the job's one thread
    assert "results/runs/" not in result.stdout  # nothing of the default grid's results


@pytest.mark.parametrize("override, named", [
    (["maps=[3m,nosuchmap]"], "nosuchmap"),
    (["algos=[qmix,qplex]"], "qplex"),
    (["seeds=[0,-1]"], "-1"),
    (["seeds=[0,0]"], "[0, 0]"),
    (["seeds_per_job=0"], "seeds_per_job"),
    (["compile={matrix: fast}"], "fast"),
    (["envs=[matrix]", "maps=[m3]", "t_max={m3: -5}"], "-5"),
])
def test_config_errors_name_the_value_before_any_job(override, named, tmp_path):
    result = snakemake("-n", "--config", *override, workdir=tmp_path)
    assert result.returncode != 0
    assert named in result.stderr + result.stdout
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


@pytest.mark.parametrize("figures_only", ["true", "false"])
def test_figures_profile_never_trains_whatever_the_config(tmp_path, figures_only):
    """The profile selects workflow/Figures.smk, which has no train rule: a user's --config
    (even figures_only=false, another results_dir) cannot schedule training; missing runs are
    still listed."""
    run = tmp_path / "elsewhere/runs/matrix/m3/qmix/seed0"
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"status": "finished"}')
    overrides = [f"figures_only={figures_only}", "results_dir=elsewhere", "envs=[matrix]", "maps=[m3]",
                 "seeds=[0,1]", "algos=[qmix]"]
    result = snakemake("--profile", "profiles/figures", "-n", "--forceall", "--config", *overrides,
                       workdir=tmp_path, snakefile=False)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert "train" not in counts and counts["aggregate"] == 1 and counts["figures"] == 1
    assert "rule train" not in result.stdout and "seed1" not in result.stdout  # no job for the missing run
    assert "elsewhere/figures/matrix_curves.png" in result.stdout


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
    assert (results / "figures/matrix_success.png").exists()  # config.yaml's outcomes: normalised score 1
    assert "| m2 | qmix | score |" in (results / "tables/outcomes_matrix.md").read_text()
    report = snakemake("--config", *TINY, "--report", str(tmp_path / "report.html"), workdir=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    print(f"tiny pipeline run: {time.perf_counter() - started:.1f} s")


@pytest.mark.slow
def test_killed_population_resumes_and_finished_runs_are_not_rerun(tmp_path):
    config = [c if not c.startswith("t_max") else "t_max={m2: 20000}" for c in TINY]
    command = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--cores", "1",
               "--profile", str(ROOT / "profiles/local"), "--config", *config, "seeds=[0,1]", "algos=[vdn]",
               "seeds_per_job=2"]
    job = subprocess.Popen(command, env=env(), start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    runs = [tmp_path / f"results/runs/matrix/m2/vdn/seed{seed}" for seed in (0, 1)]
    deadline = time.time() + 300
    while time.time() < deadline and not all(any((run / "checkpoints").glob("*")) for run in runs):
        time.sleep(1)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    for run in runs:
        assert any((run / "checkpoints").glob("*")), f"no checkpoint in {run.name} before the kill"
        assert not (run / "summary.json").exists()
    evals_before = [(run / "eval.csv").read_text().count("\n") for run in runs]
    # SIGKILL leaves Snakemake's lock behind, as after a crashed node: unlock, then rerun
    subprocess.run([*command, "--unlock"], env=env(), capture_output=True, timeout=300, check=True)
    rerun = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=900, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (tmp_path / "logs/train/matrix/m2/vdn/seeds0-1.log").read_text().lower()
    assert "resum" in log  # the trainer says it resumed
    for run, before in zip(runs, evals_before):
        assert (run / "summary.json").exists()
        assert (run / "eval.csv").read_text().count("\n") >= before
    marker = (tmp_path / "logs/train/matrix/m2/vdn/seeds0-1.done").read_text().split()
    assert marker == [str(run.relative_to(tmp_path) / "summary.json") for run in runs]
    again = subprocess.run([*command, "-n"], env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_fig3_grid_trains_variants_by_name_and_the_original_only_with_a_clone(tmp_path):
    fig3 = ["--configfile", str(ROOT / "config/fig3.yaml")]
    result = snakemake(*LOCAL, *fig3, "-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["train"] == 6 and counts["outcomes"] == 1 and "train_original" not in counts
    assert "maven_original runs the original code but `original.repo` is empty" in result.stderr
    k1 = train_jobs(result.stdout)["env=matrix, map=m10, algo=qmix_k1, seeds=0-19"]
    assert "--algo maven --preset qmix_k1" in k1 and "--out 'results/fig3/runs/matrix/m10/qmix_k1/seed{seed}'" in k1
    with_clone = snakemake(*LOCAL, *fig3, "-n", "--config", "original={repo: /some/MAVEN, python: py}",
                           workdir=tmp_path)
    assert with_clone.returncode == 0, with_clone.stderr
    assert job_counts(with_clone.stdout)["train_original"] == 40  # one job per seed of each original entry
    assert "--algo qmix_original --seed 7 --out 'results/fig3/runs/matrix/m10/qmix_original/seed7'" in with_clone.stdout
