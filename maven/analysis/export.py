"""Merge per-run `metrics.json` files (marl-eval format) into one file for the whole grid."""

from __future__ import annotations

import json
from pathlib import Path

from maven.analysis.aggregate import RunKey


def _merge(into: dict, other: dict) -> None:
    for name, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(name), dict):
            _merge(into[name], value)
        else:
            into[name] = value


def export_marl_eval(runs_dir: Path, keys: list[RunKey]) -> tuple[dict, list[str]]:
    """(merged marl-eval dict, problems). Runs without a readable metrics.json are listed."""
    merged: dict = {}
    problems = []
    for key in sorted(keys):
        path = key.path(runs_dir) / "metrics.json"
        if not (key.path(runs_dir) / "summary.json").exists():
            continue  # only finished runs are exported
        try:
            _merge(merged, json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            problems.append(f"{path}: {error}")
    return merged, problems
