"""Snakemake script: scores.csv and runs.csv -> figures/*.png|pdf and captions.md."""

from pathlib import Path

import pandas as pd

from maven.analysis import figures
from maven.analysis.aggregate import read_scores

snakemake = globals()["snakemake"]
settings = figures.FigureSettings(
    reps=snakemake.params.reps,
    seed=snakemake.params.seed,
    grid_points=snakemake.params.grid_points,
    curve_metrics=dict(snakemake.params.curve_metrics),
    labels=dict(snakemake.params.labels),
)
figures.make_figures(
    read_scores(snakemake.input.scores),
    pd.read_csv(snakemake.input.runs),
    snakemake.params.envs,
    Path(snakemake.output.captions).parent,
    settings,
)
