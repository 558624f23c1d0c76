"""Aggregation, tables, milestones and figures on small synthetic run directories (tmp_path only)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest

from maven.analysis import __main__ as cli
from maven.analysis import aggregate as agg
from maven.analysis import milestones, stats, tables
from maven.analysis.export import export_marl_eval

EVAL_HEADER = "step,episode,return_mean,return_std,win_rate,ep_length_mean,wall_time_s"


def make_run(root, env, map_name, algo, seed, rows, *, finished=True, uniform=None, preset="paper"):
    """rows: [(step, return_mean, win_rate or None)]. Writes the run-directory contract."""
    run_dir = agg.RunKey(env, map_name, algo, seed).path(root)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(f"env: {env}\nmap: {map_name}\nalgo: {algo}\nseed: {seed}\n")
    header = EVAL_HEADER + (",return_mean_uniform_z,win_rate_uniform_z" if uniform else "")
    lines = [header]
    for i, (step, ret, win) in enumerate(rows):
        line = f"{step},{10 * (i + 1)},{ret},0.0,{'' if win is None else win},10,{i}"
        if uniform:
            line += f",{uniform[i]},"
        lines.append(line)
    (run_dir / "eval.csv").write_text("\n".join(lines) + "\n")
    steps = {f"step_{i}": {"step_count": step, "return": [ret]} for i, (step, ret, _) in enumerate(rows)}
    (run_dir / "metrics.json").write_text(json.dumps({env: {map_name: {algo: {f"seed_{seed}": steps}}}}))
    if finished:
        last = rows[-1]
        (run_dir / "summary.json").write_text(json.dumps({
            "env_steps": last[0], "episodes": 10 * len(rows), "wall_time_s": 1.5, "env_steps_per_s": 1.0,
            "final": {"return_mean": last[1], "win_rate": last[2], "step": last[0]},
            "best": {"return_mean": max(r[1] for r in rows), "win_rate": None, "step": last[0]},
            "status": "finished", "preset": preset}))
    return run_dir


@pytest.fixture
def matrix_grid(tmp_path):
    """m10 (optimum 13): maven seeds 0-2, qmix seeds 0-2; final returns worked below."""
    root = tmp_path / "runs"
    finals = {"maven": [13.0, 13.0, 10.0], "qmix": [6.0, 8.0, 10.0]}
    for algo, values in finals.items():
        for seed, final in enumerate(values):
            rows = [(1000, 2.0, None), (2000, 6.0 + seed, None), (3000, final, None)]
            make_run(root, "matrix", "m10", algo, seed, rows,
                     uniform=[1.0, 2.0, 3.0] if algo == "maven" else None)
    return root


def test_scores_round_trip_and_normalisation(matrix_grid, tmp_path):
    scores, runs = agg.aggregate(matrix_grid)
    assert list(scores.columns) == agg.SCORE_COLUMNS
    assert set(runs["status"]) == {"finished"} and len(runs) == 6
    agg.write_aggregate(scores, runs, tmp_path / "s.csv", tmp_path / "r.csv")
    again = agg.read_scores(tmp_path / "s.csv")
    pd.testing.assert_frame_equal(again, scores.reset_index(drop=True), check_dtype=False)
    final = scores.query("algo == 'maven' and seed == 2 and step == 3000")
    assert final.set_index("metric")["value"]["score"] == pytest.approx(10 / 13)
    assert final.set_index("metric")["value"]["score_uniform_z"] == pytest.approx(3 / 13)
    assert "win_rate" not in set(scores["metric"])  # empty for the matrix game


def test_runs_statuses_missing_running_and_corrupt(matrix_grid):
    make_run(matrix_grid, "matrix", "m10", "vdn", 0, [(1000, 1.0, None)], finished=False)
    bad_summary = make_run(matrix_grid, "matrix", "m10", "vdn", 1, [(1000, 1.0, None)])
    (bad_summary / "summary.json").write_text('{"env_steps": 10')  # truncated
    bad_eval = make_run(matrix_grid, "matrix", "m10", "vdn", 2, [(1000, 1.0, None)])
    (bad_eval / "eval.csv").write_text("step,episode\nabc,\x00\x01")
    nan_eval = make_run(matrix_grid, "matrix", "m10", "vdn", 3, [(1000, "nan", None)])
    expected = [agg.RunKey("matrix", "m10", "vdn", s) for s in range(5)]
    scores, runs = agg.aggregate(matrix_grid, expected)
    status = runs.set_index("seed")["status"].to_dict()
    assert status == {0: "running", 1: "failed", 2: "failed", 3: "failed", 4: "missing"}
    reasons = runs.set_index("seed")["reason"]
    assert str(bad_summary / "summary.json") in reasons[1]
    assert str(bad_eval / "eval.csv") in reasons[2]
    assert "NaN" in reasons[3] and str(nan_eval / "eval.csv") in reasons[3]
    assert scores.empty  # nothing unfinished or broken leaks into the scores


def test_aggregate_cli_names_the_bad_file(matrix_grid, tmp_path, capsys):
    broken = agg.RunKey("matrix", "m10", "qmix", 1).path(matrix_grid) / "summary.json"
    broken.write_text("not json")
    assert cli.main(["aggregate", "--runs-dir", str(matrix_grid), "--out-dir", str(tmp_path / "s")]) == 0
    assert str(broken) in capsys.readouterr().err
    runs = pd.read_csv(tmp_path / "s" / "runs.csv")
    assert (runs["status"] == "failed").sum() == 1


def test_export_merges_runs(matrix_grid):
    merged, problems = export_marl_eval(matrix_grid, agg.discover_runs(matrix_grid))
    assert problems == []
    assert sorted(merged["matrix"]["m10"]) == ["maven", "qmix"]
    assert sorted(merged["matrix"]["m10"]["qmix"]) == ["seed_0", "seed_1", "seed_2"]


def test_table_median_iqr_by_hand(matrix_grid):
    scores, runs = agg.aggregate(matrix_grid)
    per_run = stats.final_scores(scores[scores["metric"] == "score"])
    table = tables.score_table(per_run, runs, reps=200).set_index("algo")
    # qmix finals 6, 8, 10 -> /13; numpy's linear percentiles: q25 = 7, median = 8, q75 = 9
    assert table.loc["qmix", ["q25", "median", "q75"]].tolist() == pytest.approx([7 / 13, 8 / 13, 9 / 13])
    # maven finals 10, 13, 13 -> q25 = 11.5, median = 13, q75 = 13; IQM of 3 values is their mean
    assert table.loc["maven", ["q25", "median", "q75"]].tolist() == pytest.approx([11.5 / 13, 1.0, 1.0])
    assert table.loc["qmix", "n"] == 3
    text = tables.formatted(table.reset_index())
    assert text.set_index("algo").loc["qmix", "median [IQR]"] == "0.62 [0.54, 0.69]"


def test_table_marks_missing_cells(matrix_grid, tmp_path):
    scores, runs = agg.aggregate(matrix_grid, agg.discover_runs(matrix_grid)
                                 + [agg.RunKey("matrix", "m10", "vdn", 0)])
    per_run = stats.final_scores(scores[scores["metric"] == "score"])
    table = tables.score_table(per_run, runs, reps=100)
    paths = tables.write_tables(table, tmp_path / "final", "caption")
    assert "| matrix | m10 | vdn |  | missing | missing | 0/1 |" in paths[1].read_text()
    assert "| matrix | m10 | qmix | paper |" in paths[1].read_text()
    assert r"qtran" not in paths[2].read_text() and r"\toprule" in paths[2].read_text()


def test_figures_and_tables_name_the_presets(matrix_grid, tmp_path):
    _, runs = agg.aggregate(matrix_grid)
    assert agg.describe_presets(runs) == "preset paper"
    make_run(matrix_grid, "matrix", "m10", "vdn", 0, [(1000, 2.0, None)], preset="matched")
    _, runs = agg.aggregate(matrix_grid)
    assert agg.describe_presets(runs) == "presets maven paper, qmix paper, vdn matched"
    assert agg.describe_presets(runs.drop(columns="preset")) == "preset not recorded"
    summary = tmp_path / "summary"
    assert cli.main(["aggregate", "--runs-dir", str(matrix_grid), "--out-dir", str(summary)]) == 0
    common = ["--scores", str(summary / "scores.csv"), "--runs", str(summary / "runs.csv"), "--reps", "50"]
    assert cli.main(["tables", *common, "--out-dir", str(tmp_path / "tab")]) == 0
    text = (tmp_path / "tab" / "final_scores.md").read_text()
    assert "Protocol: presets maven paper, qmix paper, vdn matched" in text
    assert "| matrix | m10 | vdn | matched |" in text
    assert cli.main(["figures", *common, "--out-dir", str(tmp_path / "fig"), "--grid-points", "5"]) == 0
    assert "Protocol: presets maven paper, qmix paper, vdn matched." in (tmp_path / "fig" / "captions.md").read_text()


def test_milestones_by_hand():
    rows = []
    # seed s evaluates every 1000 steps; return = step/1000 + s, so at 2500 (last eval 2000): 2, 3, 4
    for seed in range(3):
        for step in (1000, 2000, 3000, 4000):
            rows.append(("matrix", "m10", "qmix", seed, step + seed, "return_mean", step / 1000 + seed))
    scores = pd.DataFrame(rows, columns=agg.SCORE_COLUMNS)
    table = milestones.milestones(scores, "return_mean", [2500], target=4.0).iloc[0]
    # at 2500: seed0 last eval 2000 -> 2; seed1 2001 -> 3; seed2 2002 -> 4
    assert (table["q25@2500"], table["median@2500"], table["q75@2500"]) == (2.5, 3.0, 3.5)
    # median across seeds first reaches 4 at step 3000: with the slack of 10% of the evaluation gap
    # (100 steps) seed1's 3001 and seed2's 3002 count as "at 3000" -> 3, 4, 5
    assert table["first_step_median_reaches_target"] == 3000
    text = milestones.to_markdown(pd.DataFrame([table]), [2500], 4.0)
    assert "3.0 [2.5, 3.5]" in text.replace("3 [2.5, 3.5]", "3.0 [2.5, 3.5]") and "3,000" in text


def test_on_grid_never_extrapolates():
    scores = pd.DataFrame([("smax", "3m", "vdn", 0, s, "score", v) for s, v in ((10, 0.1), (20, 0.5))],
                          columns=agg.SCORE_COLUMNS)
    gridded = stats.on_grid(scores, np.array([5, 10, 15, 20, 25]))
    assert np.allclose(gridded["value"].to_numpy(), [np.nan, 0.1, 0.1, 0.5, np.nan], equal_nan=True)


def test_same_inputs_same_intervals(matrix_grid):
    scores, _ = agg.aggregate(matrix_grid)
    matrices, tasks, _ = stats.score_matrices(stats.final_scores(scores[scores["metric"] == "score"]))
    assert tasks == ["matrix/m10"] and matrices["qmix"].shape == (3, 1)
    first = stats.aggregate_intervals(matrices, reps=300, seed=3)
    np.random.seed(12345)  # disturbing the global RNG in between must not matter
    second = stats.aggregate_intervals(matrices, reps=300, seed=3)
    for algo in matrices:
        np.testing.assert_array_equal(first[1][algo], second[1][algo])


def test_figures_and_tables_cli(matrix_grid, tmp_path):
    summary = tmp_path / "summary"
    make_run(matrix_grid, "smax", "3m", "maven", 0, [(10_000, 1.0, 0.25), (20_000, 2.0, 0.5)],
             uniform=[0.0, 0.0])
    make_run(matrix_grid, "smax", "3m", "qmix", 0, [(10_000, 1.0, 0.5), (20_000, 2.0, 0.75)])
    assert cli.main(["aggregate", "--runs-dir", str(matrix_grid), "--out-dir", str(summary)]) == 0
    common = ["--scores", str(summary / "scores.csv"), "--runs", str(summary / "runs.csv"), "--reps", "50"]
    assert cli.main(["figures", *common, "--out-dir", str(tmp_path / "fig"), "--grid-points", "5"]) == 0
    assert cli.main(["tables", *common, "--out-dir", str(tmp_path / "tab")]) == 0
    for env in ("matrix", "smax"):
        for kind in ("curves", "aggregate", "profiles", "improvement", "sample_efficiency"):
            for suffix in ("png", "pdf"):
                assert (tmp_path / "fig" / f"{env}_{kind}.{suffix}").stat().st_size > 1000
    assert "n = 6 finished of 6" in (tmp_path / "fig" / "captions.md").read_text()
    for suffix in ("md", "tex", "csv"):
        assert (tmp_path / "tab" / f"final_scores.{suffix}").exists()


def test_cli_missing_input_is_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["tables", "--scores", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_milestones_without_finished_runs_write_a_note_not_an_error(matrix_grid, tmp_path, capsys):
    from maven.analysis.__main__ import main

    scores, _ = agg.aggregate(matrix_grid)
    path = tmp_path / "scores.csv"
    scores.to_csv(path, index=False)
    out = tmp_path / "milestones_smax.md"
    code = main(["milestones", "--scores", str(path), "--env", "smax", "--metric", "win_rate", "--steps", "10",
                 "--out", str(out)])
    assert code == 0 and "No finished run has 'win_rate' scores for smax" in out.read_text()
    assert "warning" in capsys.readouterr().err


def test_curve_iqm_equals_rliables_iqm_at_every_step():
    from rliable import metrics

    curves = {"qmix": np.random.default_rng(0).random((6, 2, 9))}
    points, intervals = stats.curve_iqm(curves, reps=50)
    expected = [metrics.aggregate_iqm(curves["qmix"][..., step]) for step in range(9)]
    assert np.allclose(points["qmix"], expected) and intervals["qmix"].shape == (2, 9)


def test_every_entry_of_a_large_grid_gets_its_own_colour():
    from maven.analysis import figures

    few = figures.colours(["maven", "qmix", "qmix_k1"])
    assert few["maven"] == figures.colours(["maven", "vdn"])["maven"]  # stable across a grid's figures
    many = figures.colours([f"variant{i}" for i in range(12)])
    assert len(set(many.values())) == 12
