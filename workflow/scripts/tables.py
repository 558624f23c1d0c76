"""Snakemake script: scores.csv and runs.csv -> tables/{final,best}_scores.{md,tex,csv}."""

import contextlib
from pathlib import Path

from maven.analysis import __main__ as cli

snakemake = globals()["snakemake"]
out_dir = Path(snakemake.output.csv[0]).parent
args = ["tables", "--scores", snakemake.input.scores, "--runs", snakemake.input.runs, "--out-dir", str(out_dir)]
args += ["--reps", str(snakemake.params.reps), "--seed", str(snakemake.params.seed)]
with open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
    code = cli.main(args)
raise SystemExit(code)
