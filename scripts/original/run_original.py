"""Run the original MAVEN code (AnujMahajanOxf/MAVEN at commit be975c5) on the matrix game with the
paper protocol for one seed, on CPU, and convert its log into a run directory, so the suite's
aggregation, figures and tables put the original beside the port (docs/pipeline.md, "The
original code side by side").

    python scripts/original/run_original.py --repo PATH --algo maven_original --seed 0 \
        --out results/fig3/runs/matrix/m10/maven_original/seed0 --python /path/to/venv/bin/python

--repo is a clone of the original repository (a work tree or a bare mirror) that has the
commit; with --clone it is cloned there first (needs internet). The harness never edits the
clone: it exports the commit's tree into a scratch directory, applies the compatibility edits
of compat.py there, runs it with the paper's overrides (reference.md §4.3) and converts the
original's logger history (maven/analysis/original_logs.py). --python is an interpreter with
torch, sacred 0.8, PyYAML, numpy and setuptools < 81 (sacred imports pkg_resources).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import compat

from maven.analysis.original_logs import convert
from maven.errors import UserError

COMMIT = "be975c5f80c74a17674d6b74905f15c8dc7175bf"
URL = "https://github.com/AnujMahajanOxf/MAVEN.git"
# MAVEN:plot_keys/nstep_matrix_noisemix_bandit.py (shared_params) with use_cuda off.
SHARED = {"t_max": 105000, "env_args.steps": 10, "env_args.good_branches": 2, "batch_size_run": 1,
          "test_interval": 1000, "test_nepisode": 64, "test_greedy": True, "log_interval": 1000,
          "runner_log_interval": 2000, "learner_log_interval": 2000, "buffer_cpu_only": True,
          "buffer_size": 1000, "epsilon_finish": 0.01, "epsilon_anneal_time": 100, "discrim_size": 32,
          "use_cuda": False}
# The plotted keys (MAVEN:plot_keys/keys_matrix_games; reference.md §4.3).
ALGOS = {
    "maven_original": {"name": "noisemix", "noise_dim": 16, "bandit_iters": 100, "noise_bandit": True,
                       "rnn_discrim": True, "mi_loss": 1},
    "qmix_original": {"name": "qmix", "noise_dim": 1, "noise_bandit": False, "rnn_discrim": False, "mi_loss": 1,
                      "epsilon_anneal_time": 50000},
}


def export_tree(repo: Path, scratch: Path) -> Path:
    """The commit's maven_code/ tree, written under scratch; returns its src/ directory."""
    try:
        archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", COMMIT, "maven_code"],
                                 capture_output=True, check=True).stdout
    except subprocess.CalledProcessError as error:
        raise UserError(f"--repo {repo}: no commit {COMMIT[:7]} of AnujMahajanOxf/MAVEN there "
                        f"({error.stderr.decode().strip()}); fetch it or pass --clone") from None
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(scratch, filter="data")
    return scratch / "maven_code" / "src"


def command(python: str, algo: str, seed: int, t_max: int | None) -> list[str]:
    overrides = {**SHARED, **ALGOS[algo], "seed": seed}
    if t_max is not None:
        overrides["t_max"] = t_max
    return [python, "src/main.py", "--config=noise_qmix_parallel", "--env-config=nmatrix", "with",
            *(f"{key}={value}" for key, value in overrides.items())]


def versions(python: str) -> dict:
    probe = ("import json, platform, torch, sacred, numpy; print(json.dumps({'python': platform.python_version(),"
             " 'torch': torch.__version__, 'sacred': sacred.__version__, 'numpy': numpy.__version__}))")
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    if out.returncode:
        raise UserError(f"--python {python} cannot import torch, sacred and numpy: {out.stderr.strip()[-200:]}")
    import json

    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="a clone of AnujMahajanOxf/MAVEN with the commit")
    parser.add_argument("--clone", action="store_true", help="clone it into --repo first (needs internet)")
    parser.add_argument("--algo", choices=sorted(ALGOS), required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the run directory to write")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the original")
    parser.add_argument("--t-max", type=int, help="budget in env steps (default the paper's 105000)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep-scratch", type=Path, help="copy the scratch tree (sacred's files, cout) here")
    args = parser.parse_args(argv)
    try:
        if (args.out / "summary.json").exists():
            print(f"{args.out}: finished already (summary.json exists); nothing to do")
            return 0
        if args.clone and not args.repo.exists():
            subprocess.run(["git", "clone", "--quiet", URL, str(args.repo)], check=True)
        if not args.repo.exists():
            raise UserError(f"--repo {args.repo} does not exist; clone {URL} there or pass --clone")
        record = {"commit": COMMIT, "repo": str(args.repo), "algo": args.algo, "versions": versions(args.python),
                  "host": platform.node()}
        with tempfile.TemporaryDirectory(prefix="maven_original_") as scratch_name:
            scratch = Path(scratch_name)
            src = export_tree(args.repo, scratch)
            record["edits"] = compat.apply(src)
            cmd = command(args.python, args.algo, args.seed, args.t_max)
            record["command"] = " ".join(cmd[1:])
            stats_path = scratch / "stats.json"
            env = {**os.environ, "MAVEN_ORIGINAL_STATS": str(stats_path), "OMP_NUM_THREADS": str(args.threads),
                   "MKL_NUM_THREADS": str(args.threads), "CUDA_VISIBLE_DEVICES": ""}
            started = time.perf_counter()
            with open(scratch / "cout.txt", "w") as cout:
                code = subprocess.run(cmd, cwd=src.parent, env=env, stdout=cout, stderr=subprocess.STDOUT,
                                      check=False).returncode
            record["wall_time_s"] = round(time.perf_counter() - started, 1)
            if args.keep_scratch:
                shutil.copytree(scratch, args.keep_scratch, dirs_exist_ok=True)
            if code != 0 or not stats_path.exists():
                tail = (scratch / "cout.txt").read_text()[-1500:]
                raise UserError(f"the original exited with {code} (no stats.json); its output ends:\n{tail}")
            summary = convert(stats_path, args.out, "matrix", "m10", args.algo, args.seed, record)
        print(f"{args.out}: final return {summary['final']['return_mean']} after {summary['env_steps']} steps "
              f"({record['wall_time_s']} s)")
    except (UserError, compat.EditMismatch) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
