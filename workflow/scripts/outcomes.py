"""Snakemake script: scores.csv -> tables/outcomes_<env>.md and .csv, figures/<env>_success.png and .pdf
(logic in maven.analysis)."""

import contextlib
import json
from pathlib import Path

from maven.analysis import __main__ as cli

snakemake = globals()["snakemake"]
spec = snakemake.params.spec
args = ["outcomes", "--scores", snakemake.input.scores, "--env", snakemake.wildcards.env]
args += ["--target", str(spec["target"]), "--success-metrics", *spec["success_metrics"]]
args += ["--metrics", *spec["metrics"], "--steps", *map(str, spec["steps"])]
args += ["--references", *spec.get("references", []), "--labels", json.dumps(snakemake.params.labels)]
args += ["--reps", str(snakemake.params.reps), "--seed", str(snakemake.params.seed)]
args += ["--out", snakemake.output.md, "--runs", snakemake.input.runs]
args += ["--figure", str(Path(snakemake.output.png).with_suffix("")), "--grid-points", str(snakemake.params.grid_points)]
with open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
    code = cli.main(args)
raise SystemExit(code)
