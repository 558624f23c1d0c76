"""Snakemake script: merge the grid's metrics.json files into one marl-eval file."""

import json
from pathlib import Path

from maven.analysis import aggregate as agg
from maven.analysis.export import export_marl_eval

snakemake = globals()["snakemake"]
RUNS_DIR = Path(snakemake.output[0]).parent.parent / "runs"  # results/summary/.. -> results/runs
expected = [agg.RunKey(r["env"], r["map"], r["algo"], int(r["seed"])) for r in snakemake.params.grid]
merged, problems = export_marl_eval(RUNS_DIR, expected)
with open(snakemake.output[0], "w") as out:
    json.dump(merged, out)
with open(snakemake.log[0], "w") as log:
    log.write("".join(f"skipped {problem}\n" for problem in problems))
