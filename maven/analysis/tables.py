"""Final and best score per map and algorithm: median [IQR], IQM [95% CI] and n.

One numeric DataFrame is built once; Markdown, LaTeX and CSV are renderings of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from maven.analysis import stats

CELL = ["env", "map", "algo"]


def score_table(per_run: pd.DataFrame, runs: pd.DataFrame, reps: int, seed: int = 0) -> pd.DataFrame:
    """Numeric table, one row per expected (env, map, algo); cells with no finished run stay NaN."""
    expected = runs.groupby(CELL).size().rename("expected").reset_index()
    presets = _presets_per_cell(runs)
    groups = {"/".join(key): rows["value"].to_numpy()[:, None] for key, rows in per_run.groupby(CELL)}
    points, intervals = stats.iqm_intervals(groups, reps, seed) if groups else ({}, {})
    rows = []
    for cell in expected.itertuples(index=False):
        name = f"{cell.env}/{cell.map}/{cell.algo}"
        values = groups.get(name, np.empty((0, 1)))[:, 0]
        row = {"env": cell.env, "map": cell.map, "algo": cell.algo,
               "preset": presets.get((cell.env, cell.map, cell.algo), ""), "n": len(values),
               "expected": cell.expected}
        if len(values):
            q25, median, q75 = np.percentile(values, [25, 50, 75])
            row |= {"median": median, "q25": q25, "q75": q75, "iqm": float(points[name][0]),
                    "iqm_lo": float(intervals[name][0, 0]), "iqm_hi": float(intervals[name][1, 0])}
        rows.append(row)
    columns = ["env", "map", "algo", "preset", "n", "expected", "median", "q25", "q75", "iqm", "iqm_lo", "iqm_hi"]
    return pd.DataFrame(rows).reindex(columns=columns)


def _presets_per_cell(runs: pd.DataFrame) -> dict[tuple, str]:
    """(env, map, algo) -> the preset(s) its finished runs used ("" when not recorded)."""
    if "preset" not in runs:
        return {}
    finished = runs[(runs["status"] == "finished") & runs["preset"].notna()]
    return {key: "/".join(sorted(set(rows["preset"]))) for key, rows in finished.groupby(CELL)}


def formatted(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Human-readable cells; a cell without runs reads 'missing'."""
    def fmt(value):
        return f"{value:.{digits}f}"

    def cells(row):
        if row["n"] == 0:
            return pd.Series({"median [IQR]": "missing", "IQM [95% CI]": "missing"})
        return pd.Series({
            "median [IQR]": f"{fmt(row['median'])} [{fmt(row['q25'])}, {fmt(row['q75'])}]",
            "IQM [95% CI]": f"{fmt(row['iqm'])} [{fmt(row['iqm_lo'])}, {fmt(row['iqm_hi'])}]",
        })

    out = table[["env", "map", "algo", "preset"]].copy()
    out[["median [IQR]", "IQM [95% CI]"]] = table.apply(cells, axis=1)
    out["n"] = table["n"].astype(str) + "/" + table["expected"].astype(str)
    return out


def to_markdown(text_table: pd.DataFrame) -> str:
    header = "| " + " | ".join(text_table.columns) + " |"
    rule = "|" + "|".join("---" for _ in text_table.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in text_table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def to_latex(text_table: pd.DataFrame, caption: str) -> str:
    def escape(text):
        return str(text).replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%")

    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{escape(caption)}}}",
             r"\begin{tabular}{" + "l" * len(text_table.columns) + "}", r"\toprule",
             " & ".join(escape(c) for c in text_table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(v) for v in row) + r" \\" for row in text_table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_tables(table: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    """Write <stem>.csv (numeric), <stem>.md and <stem>.tex (formatted) from one table."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    text = formatted(table)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    table.to_csv(paths[0], index=False)
    paths[1].write_text(f"{caption}\n\n{to_markdown(text)}")
    paths[2].write_text(to_latex(text, caption))
    return paths
