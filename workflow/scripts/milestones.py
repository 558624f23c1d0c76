"""Snakemake script: the milestone table of one environment (metric at given steps, target)."""

import contextlib

from maven.analysis import __main__ as cli

snakemake = globals()["snakemake"]
spec = snakemake.params.spec
args = ["milestones", "--scores", snakemake.input.scores, "--env", snakemake.wildcards.env]
args += ["--metric", spec["metric"], "--steps", *map(str, spec["steps"]), "--out", snakemake.output[0]]
if spec.get("target") is not None:
    args += ["--target", str(spec["target"])]
with open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
    code = cli.main(args)
raise SystemExit(code)
