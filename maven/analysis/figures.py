"""Paper-style figures from the tidy scores: per-map curves and rliable aggregates.

Each `plot_*` takes already-computed numbers and returns a Figure; `make_figures` computes
(through `stats`) and saves PNG and PDF. Captions state n, budget and what is missing.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator
from rliable import plot_utils

from maven.analysis import stats
from maven.analysis.aggregate import describe_presets

FOCUS = "maven"
COLUMN_IN = 3.4  # one column of a two-column paper
KINDS = ["curves", "aggregate", "profiles", "improvement", "sample_efficiency"]
LABELS = {"maven": "MAVEN", "qmix": "QMIX", "vdn": "VDN", "qtran_base": "QTRAN-base", "qtran_alt": "QTRAN-alt"}
YLABEL = {"matrix": "normalised return", "smax": "win rate", "smac": "win rate"}
# The curves figure's default columns: the headline, the uniform-z pass and the maximum over z
# (reference.md §1.7), those a grid logged; any scores.csv metric can be named instead.
CURVE_METRICS = ["score", "score_uniform_z", "score_max_z"]
METRIC_TITLES = {"score": "test (z from the z-policy)", "score_uniform_z": "test, uniform z",
                 "score_max_z": "max over z (z-policy pass)", "score_max_z_uniform_z": "max over z (uniform pass)",
                 "return_mean": "test return (z from the z-policy)", "return_mean_uniform_z": "test return, uniform z",
                 "max_z_return_mean": "max over z of the test return", "win_rate": "test win rate",
                 "win_rate_uniform_z": "test win rate, uniform z", "max_z_win_rate": "max over z of the win rate"}


@dataclass(frozen=True)
class FigureSettings:
    reps: int = 50_000
    seed: int = 0
    grid_points: int = 50
    profile_taus: int = 51
    curve_metrics: dict[str, list[str]] = field(default_factory=dict)
    """env -> the metrics of its curves figure (default CURVE_METRICS)."""
    labels: dict[str, str] = field(default_factory=dict)
    """grid entry -> label, adding to or replacing LABELS (e.g. variants of one algorithm)."""

    def curves_of(self, env: str) -> list[str]:
        return list(self.curve_metrics.get(env, CURVE_METRICS))


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)
    plt.rcParams.update({"pdf.fonttype": 42, "savefig.bbox": "tight", "savefig.dpi": 200})


def colours(algos: list[str]) -> dict[str, tuple]:
    """A colour per entry, the same in every figure of a grid: the colour-blind palette over the
    entries and the known algorithms while they fit its 10 colours, else over the entries alone,
    else a palette with one distinct hue per entry."""
    order = sorted(set(algos) | set(LABELS))
    if len(order) > 10:
        order = sorted(set(algos))
    palette = sns.color_palette("colorblind" if len(order) <= 10 else "husl", len(order))
    return dict(zip(order, palette))


def _label(algo: str) -> str:
    return LABELS.get(algo, algo)


def set_labels(extra: dict[str, str]) -> None:
    """Labels of a grid's variants, e.g. qmix_k1 -> "QMIX (MAVEN code, K = 1)"."""
    LABELS.update(extra)


def placeholder(message: str) -> plt.Figure:
    """A missing figure is drawn as missing, never as zeros."""
    figure, ax = plt.subplots(figsize=(COLUMN_IN, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return figure


def _panels(n_rows: int, n_cols: int):
    """One row of panels per map, one column per metric, on one y scale."""
    return plt.subplots(n_rows, n_cols, figsize=(min(7.0, 2.4 * n_cols), 2.0 * n_rows), squeeze=False, sharey=True)


def _n_text(counts: list[int]) -> str:
    if not counts:
        return "no runs"
    return f"n={min(counts)}" if len(set(counts)) == 1 else f"n={min(counts)}–{max(counts)}"


def _label_panel(ax, title: str) -> None:
    ax.set_title(title, fontsize="small")
    ax.set_xlabel("env steps")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))


def _legend_and_protocol(figure: plt.Figure, axes, max_columns: int, protocol: str) -> plt.Figure:
    """One legend for all panels (each label once) above them, and the protocol the figure shows
    (e.g. "preset matched") in a line under them, wrapped to the figure's width."""
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(max_columns, len(handles)),
                  frameon=False, bbox_to_anchor=(0.5, 1.0))
    figure.tight_layout()
    if protocol:
        width_chars = int(16 * figure.get_figwidth())  # small font: about 16 characters per inch
        figure.text(0.5, 0.0, textwrap.fill(f"Protocol: {protocol}", width_chars), ha="center", va="top",
                    fontsize="small")
    return figure


def plot_curves(gridded: pd.DataFrame, env: str, palette: dict, metrics: list[str],
                protocol: str = "") -> plt.Figure:
    """Median across seeds with the interquartile band: one row of panels per map, one column per
    metric (side by side on one y scale), every algorithm in each panel; MAVEN on top.
    `protocol` (e.g. "preset matched") goes under the panels."""
    maps = sorted(gridded["map"].unique())
    metrics = [m for m in metrics if m in set(gridded["metric"])] or ["score"]
    figure, axes = _panels(len(maps), len(metrics))
    for row, map_name in enumerate(maps):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            panel = gridded[(gridded["map"] == map_name) & (gridded["metric"] == metric)]
            counts = []
            for algo in sorted(panel["algo"].unique(), key=lambda a: (a == FOCUS, a)):
                rows_ = panel[panel["algo"] == algo]
                band = rows_.groupby("step")["value"].quantile([0.25, 0.5, 0.75]).unstack()
                zorder = 3 if algo == FOCUS else 2
                ax.plot(band.index, band[0.5], color=palette[algo], label=_label(algo), zorder=zorder, lw=1.2)
                ax.fill_between(band.index, band[0.25], band[0.75], color=palette[algo], alpha=0.2, lw=0,
                                zorder=zorder)
                counts.append(rows_["seed"].nunique())
            _label_panel(ax, f"{map_name}: {METRIC_TITLES.get(metric, metric)}\n({_n_text(counts)})")
        raw = {"return_mean": "test return", "win_rate": "test win rate"}
        axes[row, 0].set_ylabel(YLABEL.get(env, "score") if metrics[0].startswith("score")
                                else raw.get(metrics[0], metrics[0]))
    return _legend_and_protocol(figure, axes, 4, protocol)


def plot_success(curves: pd.DataFrame, palette: dict, target: float, protocol: str = "") -> plt.Figure:
    """The share of seeds at or above target over training (outcomes.success_curves) with its exact
    95% band: one row of panels per map, one column per metric, every entry in each panel."""
    maps, metrics = sorted(curves["map"].unique()), list(dict.fromkeys(curves["metric"]))
    figure, axes = _panels(len(maps), len(metrics))
    for row, map_name in enumerate(maps):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            panel = curves[(curves["map"] == map_name) & (curves["metric"] == metric)]
            counts, entries = [], sorted(panel["algo"].unique(), key=lambda a: (a == FOCUS, a))
            alpha = max(0.05, 0.3 / max(len(entries), 1))  # exact bands are wide: keep the lines readable
            for algo in entries:
                line = panel[panel["algo"] == algo].sort_values("step")
                zorder = 3 if algo == FOCUS else 2
                ax.plot(line["step"], line["share"], color=palette[algo], label=_label(algo), lw=1.2,
                        zorder=zorder, drawstyle="steps-post")
                ax.fill_between(line["step"], line["ci_low"], line["ci_high"], color=palette[algo], alpha=alpha,
                                lw=0, zorder=zorder, step="post")
                counts.append(int(line["n"].max()))
            _label_panel(ax, f"{map_name}: {METRIC_TITLES.get(metric, metric)}\nreaches {target:g} "
                         f"({_n_text(counts)})")
            ax.set_ylim(-0.02, 1.02)
        axes[row, 0].set_ylabel("share of seeds")
    return _legend_and_protocol(figure, axes, 3, protocol)


def plot_aggregate(points: dict, intervals: dict, palette: dict) -> plt.Figure:
    algos = sorted(points, key=lambda a: (a != FOCUS, a))
    figure, _ = plot_utils.plot_interval_estimates(
        {_label(a): points[a] for a in algos}, {_label(a): intervals[a] for a in algos},
        metric_names=list(stats.AGGREGATES), algorithms=[_label(a) for a in algos],
        colors={_label(a): palette[a] for a in algos}, xlabel="normalised score", subfigure_width=1.9,
        row_height=0.32, xlabel_y_coordinate=-0.55)
    for ax in figure.axes:  # rliable picks dense ticks that collide at column width
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3, min_n_ticks=2))
        ax.tick_params(axis="x", labelsize=8)
    return figure


def plot_profiles(taus: np.ndarray, profiles: dict, profile_cis: dict, palette: dict) -> plt.Figure:
    figure, ax = plt.subplots(figsize=(COLUMN_IN, 2.4))
    plot_utils.plot_performance_profiles(
        {_label(a): v for a, v in profiles.items()}, taus,
        performance_profile_cis={_label(a): v for a, v in profile_cis.items()},
        colors={_label(a): palette[a] for a in profiles}, xlabel=r"normalised score $\tau$",
        ylabel=r"fraction of runs with score $> \tau$", ax=ax, labelsize="medium", ticklabelsize="small")
    ax.legend(fontsize="small", frameon=False)
    return figure


def plot_improvement(points: dict, intervals: dict, palette: dict) -> plt.Figure:
    """P(MAVEN > baseline) per pair "maven,<baseline>", each bar in its baseline's colour."""
    # rliable splits each pair at its comma, so a comma inside a label becomes a semicolon
    relabel = {pair: ",".join(_label(a).replace(",", ";") for a in pair.split(",")) for pair in points}
    ax = plot_utils.plot_probability_of_improvement(
        {relabel[p]: v for p, v in points.items()}, {relabel[p]: v for p, v in intervals.items()},
        colors=[palette[p.split(",")[1]] for p in points],  # rliable indexes these by position
        figsize=(COLUMN_IN, 0.45 * len(points) + 0.8), xlabel="P(MAVEN > baseline)",
        left_ylabel="", right_ylabel="baseline")
    return ax.get_figure()


def plot_sample_efficiency(steps: np.ndarray, points: dict, intervals: dict, palette: dict) -> plt.Figure:
    figure, ax = plt.subplots(figsize=(COLUMN_IN, 2.4))
    for algo in sorted(points, key=lambda a: (a == FOCUS, a)):
        ax.plot(steps, points[algo], color=palette[algo], label=_label(algo), lw=1.2,
                zorder=3 if algo == FOCUS else 2)
        ax.fill_between(steps, intervals[algo][0], intervals[algo][1], color=palette[algo], alpha=0.2, lw=0)
    ax.set_xlabel("env steps")
    ax.set_ylabel("IQM normalised score")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax.legend(fontsize="small", frameon=False)
    return figure


def _title_above(figure: plt.Figure, text: str) -> None:
    """A title above everything already drawn (rliable's panels put their own titles on top)."""
    renderer = figure.canvas.get_renderer()
    top = max(ax.get_tightbbox(renderer).y1 for ax in figure.axes) / figure.bbox.height
    figure.suptitle(text, fontsize="small", y=top + 0.01, va="bottom")


def save(figure: plt.Figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        figure.savefig(path)
    plt.close(figure)
    return paths


def _caption_facts(env_runs: pd.DataFrame, env_scores: pd.DataFrame, dropped: dict) -> str:
    finished = env_runs[env_runs["status"] == "finished"]
    not_done = env_runs[env_runs["status"] != "finished"]
    budget = env_scores.groupby(["map"])["step"].max()
    text = [f"n = {len(finished)} finished of {len(env_runs)} expected runs"]
    if len(budget):
        text.append("budget (last evaluation): " + ", ".join(f"{m} {int(s):,} steps" for m, s in budget.items()))
    if len(not_done):
        text.append("not included: " + "; ".join(
            f"{r.map}/{r.algo}/seed{r.seed} ({r.status})" for r in not_done.itertuples()))
    if dropped.get("tasks"):
        text.append("maps left out of aggregates (not every algorithm has runs): " + ", ".join(dropped["tasks"]))
    if dropped.get("runs"):
        text.append("seeds left out of aggregates (missing on some map): " + ", ".join(dropped["runs"]))
    return ". ".join(text) + "."


def make_env_figures(scores: pd.DataFrame, runs: pd.DataFrame, env: str, out_dir: Path,
                     settings: FigureSettings) -> dict[str, str]:
    """All figures of one environment; returns kind -> caption."""
    style()
    out_dir = Path(out_dir)
    curve_metrics = list(dict.fromkeys(["score", *settings.curves_of(env)]))
    env_scores = scores[(scores["env"] == env) & scores["metric"].isin(curve_metrics)]
    headline = env_scores[env_scores["metric"] == "score"]
    per_run = stats.final_scores(headline)
    matrices, tasks, dropped = stats.score_matrices(per_run) if len(per_run) else ({}, [], {})
    palette = colours(list(runs["algo"].unique()) + list(env_scores["algo"].unique()))
    env_runs = runs[runs["env"] == env]
    protocol = describe_presets(env_runs)
    facts = f"Protocol: {protocol}. " + _caption_facts(env_runs, headline, dropped)
    captions, figures = {}, {}
    if headline.empty:
        for kind in KINDS:
            figures[kind] = placeholder(f"{env}: no finished runs yet")
            captions[kind] = f"{env}: no finished runs. {facts}"
    else:
        gridded = pd.concat([
            stats.on_grid(rows, stats.step_grid(rows, settings.grid_points)).assign(metric=metric)
            for (map_name, metric), rows in env_scores.groupby(["map", "metric"])])
        figures["curves"] = plot_curves(gridded, env, palette, settings.curves_of(env), protocol)
        shown = [m for m in settings.curves_of(env) if m in set(env_scores["metric"])]
        notes = []
        if any(m.startswith("score") for m in shown):
            notes.append("scores: " + ("return normalised by the optimum" if env == "matrix" else "test win rate"))
        if any("max_z" in m for m in shown):
            notes.append("max over z as the original logs it, reference.md §1.7")
        captions["curves"] = (f"{env}: median across seeds and interquartile band, side by side: "
                              + "; ".join(METRIC_TITLES.get(m, m) for m in shown)
                              + (f" ({'; '.join(notes)})" if notes else "") + ". " + facts)
        points, intervals = stats.aggregate_intervals(matrices, settings.reps, settings.seed)
        figures["aggregate"] = plot_aggregate(points, intervals, palette)
        captions["aggregate"] = (f"{env}: final normalised scores over {len(tasks)} map(s), 95% stratified "
                                 f"bootstrap CIs ({settings.reps:,} reps). " + facts)
        taus = np.linspace(0.0, 1.0, settings.profile_taus)
        profiles, profile_cis = stats.performance_profiles(matrices, taus, settings.reps, settings.seed)
        figures["profiles"] = plot_profiles(taus, profiles, profile_cis, palette)
        captions["profiles"] = f"{env}: performance profiles of final scores with 95% CIs. " + facts
        if FOCUS in matrices and len(matrices) > 1:
            improvement = stats.probability_of_improvement(matrices, FOCUS, settings.reps, settings.seed)
            figures["improvement"] = plot_improvement(*improvement, palette)
            captions["improvement"] = f"{env}: probability that MAVEN's final score beats each baseline. " + facts
        else:
            figures["improvement"] = placeholder(f"{env}: needs MAVEN and at least one baseline")
            captions["improvement"] = f"{env}: not computed (needs MAVEN and a baseline). " + facts
        grid = stats.step_grid(headline, settings.grid_points)
        curves = stats.curve_matrices(stats.on_grid(headline, grid), tasks)
        points, intervals = stats.curve_iqm(curves, settings.reps, settings.seed)
        figures["sample_efficiency"] = plot_sample_efficiency(grid, points, intervals, palette)
        captions["sample_efficiency"] = (f"{env}: IQM of the normalised score at common steps (last evaluation at "
                                         "or before each step, no extrapolation), 95% CIs. " + facts)
    for kind, figure in figures.items():
        if kind != "curves":  # the curves name it under their panels; their legend sits on top
            _title_above(figure, f"{env}, {protocol}")
        save(figure, out_dir / f"{env}_{kind}")
    return captions


def make_figures(scores: pd.DataFrame, runs: pd.DataFrame, envs: list[str], out_dir: Path,
                 settings: FigureSettings) -> Path:
    """Figures for every environment and a captions.md beside them."""
    set_labels(settings.labels)
    lines = ["# Figure captions", ""]
    for env in envs:
        for kind, caption in make_env_figures(scores, runs, env, out_dir, settings).items():
            lines += [f"**{env}_{kind}**: {caption}", ""]
    path = Path(out_dir) / "captions.md"
    path.write_text("\n".join(lines))
    return path
