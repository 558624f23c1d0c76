"""Analysis of run directories: tidy scores, rliable figures, tables, milestones, marl-eval export.

Reads only the run-directory contract (docs/evaluation.md §2) and the tidy table derived from it,
so every figure can be regenerated from `results/` without the trainer. Modules, one job each:
`aggregate` (run dirs -> scores.csv, runs.csv), `export` (marl-eval JSON), `stats` (rliable
numbers), `figures`, `tables`, `milestones`; `python -m maven.analysis` is the CLI.
"""
