"""`python -m maven.analysis aggregate|export|figures|tables|milestones|outcomes ...`"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from maven.analysis import aggregate as agg
from maven.analysis import export, milestones, outcomes, stats, tables
from maven.errors import UserError


def _expected(path: str | None, runs_dir: Path) -> list[agg.RunKey]:
    if path is None:
        return agg.discover_runs(runs_dir)
    grid = pd.read_csv(path, dtype={"env": str, "map": str, "algo": str, "seed": int})
    return [agg.RunKey(r.env, r.map, r.algo, int(r.seed)) for r in grid.itertuples()]


def _csv(path: str) -> pd.DataFrame:
    if not Path(path).exists():
        raise UserError(f"no such file {path}; run `python -m maven.analysis aggregate` first")
    try:
        return agg.read_scores(path) if Path(path).name.startswith("scores") else pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def cmd_aggregate(args) -> None:
    runs_dir = Path(args.runs_dir)
    scores, runs = agg.aggregate(runs_dir, _expected(args.expected, runs_dir))
    out = Path(args.out_dir)
    agg.write_aggregate(scores, runs, out / "scores.csv", out / "runs.csv")
    counts = runs["status"].value_counts().to_dict()
    print(f"{len(runs)} expected runs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for row in runs[runs["status"] != "finished"].itertuples():
        print(f"  {row.status}: {row.reason}", file=sys.stderr)


def cmd_export(args) -> None:
    runs_dir = Path(args.runs_dir)
    merged, problems = export.export_marl_eval(runs_dir, _expected(args.expected, runs_dir))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(merged))
    for problem in problems:
        print(f"  skipped {problem}", file=sys.stderr)


def cmd_figures(args) -> None:
    from maven.analysis import figures

    scores, runs = _csv(args.scores), _csv(args.runs)
    envs = args.envs or sorted(runs["env"].unique())
    settings = figures.FigureSettings(reps=args.reps, seed=args.seed, grid_points=args.grid_points,
                                      curve_metrics={env: args.curve_metrics for env in envs if args.curve_metrics},
                                      labels=_labels(args.labels))
    figures.make_figures(scores, runs, envs, Path(args.out_dir), settings)


def cmd_tables(args) -> None:
    scores, runs = _csv(args.scores), _csv(args.runs)
    headline = scores[scores["metric"] == "score"]
    for name, per_run in (("final", stats.final_scores(headline)), ("best", stats.best_scores(headline))):
        table = tables.score_table(per_run, runs, args.reps, args.seed)
        caption = (f"{name.capitalize()} normalised score per map and algorithm: median [IQR] and IQM "
                   f"[95% bootstrap CI, {args.reps:,} reps] across seeds; n = finished/expected runs. "
                   f"Protocol: {agg.describe_presets(runs)} (column preset).")
        if name == "best":
            caption += " 'Best during training' is biased upward; report final."
        tables.write_tables(table, Path(args.out_dir) / f"{name}_scores", caption)


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        labels = json.loads(text)
    except ValueError:
        labels = None
    if not isinstance(labels, dict):
        raise UserError(f"--labels {text!r}: expected a JSON object, e.g. '{{\"qmix_k1\": \"QMIX (K = 1)\"}}'")
    return {str(k): str(v) for k, v in labels.items()}


def cmd_outcomes(args) -> None:
    scores = _csv(args.scores)
    if args.env:
        scores = scores[scores["env"] == args.env]
    labels = _labels(args.labels)
    known = set(scores["metric"])
    missing = [m for m in [*args.success_metrics, *args.metrics] if m not in known]
    if scores.empty:
        text = f"No finished run{' of ' + args.env if args.env else ''} in {args.scores} yet.\n"
        success = pd.DataFrame()
    else:
        if missing:
            print(f"warning: metrics {missing} are not in {args.scores}; their rows are left out", file=sys.stderr)
        success = outcomes.success_table(scores, [m for m in args.success_metrics if m in known], args.target,
                                         args.references)
        at_steps = {m: milestones.milestones(scores, m, args.steps, None) for m in args.metrics if m in known}
        first = next((m for m in args.success_metrics if m in known), None)
        improvement = (outcomes.improvement_table(scores, first, args.references, args.reps, args.seed)
                       if first else pd.DataFrame())
        text = outcomes.to_markdown(success, at_steps, improvement, args.target, args.steps, args.references,
                                    labels)
    if args.figure:
        text += _success_figure(scores, args, labels)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    success.to_csv(out.with_suffix(".csv"), index=False)
    print(text, end="")


def _success_figure(scores: pd.DataFrame, args, labels: dict[str, str]) -> str:
    """Draw the share of seeds at the target over training into args.figure (.png, .pdf); returns
    the caption for the outcomes file."""
    from maven.analysis import figures

    figures.set_labels(labels)
    figures.style()
    stem = Path(args.figure)
    metrics = [m for m in args.success_metrics if m in set(scores["metric"])]
    curves = outcomes.success_curves(scores, metrics, args.target, args.grid_points) if metrics else pd.DataFrame()
    if curves.empty:
        figures.save(figures.placeholder("no finished runs yet"), stem)
        return f"\n`{stem.name}.png`: no finished runs yet.\n"
    runs = _csv(args.runs) if args.runs else pd.DataFrame({"algo": []})
    protocol = agg.describe_presets(runs) if args.runs else ""
    palette = figures.colours(list(runs["algo"].unique()) + list(scores["algo"].unique()))  # as the other figures
    figures.save(figures.plot_success(curves, palette, args.target, protocol), stem)
    return (f"\n`{stem.name}.png`: the share of seeds whose last evaluation at or before each step reaches "
            f"{args.target:g}, with its exact binomial (Clopper–Pearson) 95% band, for "
            + ", ".join(metrics) + ".\n")


def cmd_milestones(args) -> None:
    scores = _csv(args.scores)
    if args.env:
        scores = scores[scores["env"] == args.env]
    if args.map:
        scores = scores[scores["map"] == args.map]
    if scores.empty or args.metric not in set(scores["metric"]):
        # no finished run yet (e.g. figures from a partial results/): say so in the table itself
        where = " ".join(filter(None, [args.env, args.map]))
        print(f"warning: no {args.metric!r} scores for {where or 'any run'} in {args.scores}", file=sys.stderr)
        text = f"No finished run has {args.metric!r} scores{' for ' + where if where else ''} yet.\n"
    else:
        table = milestones.milestones(scores, args.metric, args.steps, args.target)
        text = milestones.to_markdown(table, args.steps, args.target)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text, end="")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m maven.analysis", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for name, fn in (("aggregate", cmd_aggregate), ("export", cmd_export)):
        p = sub.add_parser(name)
        p.add_argument("--runs-dir", default="results/runs")
        p.add_argument("--expected", help="CSV with env,map,algo,seed (default: every run directory found)")
        if name == "aggregate":
            p.add_argument("--out-dir", default="results/summary")
        else:
            p.add_argument("--out", default="results/summary/marl_eval.json")
        p.set_defaults(fn=fn)
    for name, fn in (("figures", cmd_figures), ("tables", cmd_tables)):
        p = sub.add_parser(name)
        p.add_argument("--scores", default="results/summary/scores.csv")
        p.add_argument("--runs", default="results/summary/runs.csv")
        p.add_argument("--out-dir", default=f"results/{name}")
        p.add_argument("--reps", type=int, default=50_000, help="bootstrap replicates")
        p.add_argument("--seed", type=int, default=0, help="numpy seed set before each bootstrap")
        if name == "figures":
            p.add_argument("--envs", nargs="*")
            p.add_argument("--grid-points", type=int, default=50)
            p.add_argument("--curve-metrics", nargs="+", help="scores.csv metrics drawn side by side")
            p.add_argument("--labels", help="JSON object: grid entry -> label")
        p.set_defaults(fn=fn)
    p = sub.add_parser("milestones")
    p.add_argument("--scores", default="results/summary/scores.csv")
    p.add_argument("--metric", default="return_mean")
    p.add_argument("--steps", type=int, nargs="+", default=[25_000, 50_000, 105_000])
    p.add_argument("--target", type=float)
    p.add_argument("--env")
    p.add_argument("--map")
    p.add_argument("--out")
    p.set_defaults(fn=cmd_milestones)
    p = sub.add_parser("outcomes", help="seeds reaching a target (exact CIs, Fisher tests), medians, P(improvement)")
    p.add_argument("--scores", default="results/summary/scores.csv")
    p.add_argument("--env")
    p.add_argument("--target", type=float, required=True)
    p.add_argument("--success-metrics", nargs="+", default=["return_mean"])
    p.add_argument("--metrics", nargs="+", default=["return_mean"])
    p.add_argument("--steps", type=int, nargs="+", default=[25_000, 50_000, 105_000])
    p.add_argument("--references", nargs="*", default=[])
    p.add_argument("--labels", help="JSON object: grid entry -> label")
    p.add_argument("--reps", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="the Markdown file; the success table goes beside it as .csv")
    p.add_argument("--figure", help="also draw the share of seeds at the target over training: path stem "
                   "(.png and .pdf are written)")
    p.add_argument("--runs", help="runs.csv, for the protocol written under the figure's panels")
    p.add_argument("--grid-points", type=int, default=50, help="common steps of the figure")
    p.set_defaults(fn=cmd_outcomes)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
