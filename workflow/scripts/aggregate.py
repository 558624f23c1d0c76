"""Snakemake script: the expected grid -> scores.csv and runs.csv (logic in maven.analysis)."""

import contextlib
from pathlib import Path

from maven.analysis import aggregate as agg

snakemake = globals()["snakemake"]
RUNS_DIR = Path(snakemake.output[0]).parent.parent / "runs"  # results/summary/.. -> results/runs
with open(snakemake.log[0], "w") as log, contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
    expected = [agg.RunKey(r["env"], r["map"], r["algo"], int(r["seed"])) for r in snakemake.params.grid]
    scores, runs = agg.aggregate(RUNS_DIR, expected)
    agg.write_aggregate(scores, runs, snakemake.output.scores, snakemake.output.runs)
    for row in runs.itertuples():
        print(f"{row.status}: {row.env}/{row.map}/{row.algo}/seed{row.seed} {row.reason}")
