"""Outcome tables on small synthetic run directories (tmp_path only): seeds reaching the optimum
with exact CIs and Fisher tests, medians of any logged metric, P(improvement); curves of several
metrics side by side with variant labels."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from maven.analysis import __main__ as cli
from maven.analysis import aggregate as agg
from maven.analysis import outcomes

HEADER = ("step,episode,return_mean,return_std,win_rate,ep_length_mean,wall_time_s,return_mean_uniform_z,"
          "win_rate_uniform_z,z_policy_entropy,max_z_return_mean,z0_return_mean,z1_return_mean")


def make_run(root, algo, seed, finals):
    """A finished m10 run with evaluations at 25k, 50k, 105k; finals: (return, uniform, max over z)."""
    run_dir = agg.RunKey("matrix", "m10", algo, seed).path(root)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(f"config: {{algo: {algo}, seed: {seed}}}\n")
    ret, uniform, max_z = finals
    lines = [HEADER]
    for step, scale in ((25000, 0.5), (50000, 0.8), (105000, 1.0)):
        lines.append(f"{step},{step // 10},{ret * scale},0,,10,1,{uniform * scale},,0.5,{max_z * scale},"
                     f"{max_z * scale},{ret * scale}")
    (run_dir / "eval.csv").write_text("\n".join(lines) + "\n")
    (run_dir / "metrics.json").write_text("{}")
    (run_dir / "summary.json").write_text(json.dumps({"status": "finished", "env_steps": 105000,
                                                      "wall_time_s": 1.0}))


@pytest.fixture
def grid(tmp_path):
    """maven: 3 of 4 seeds end at 13; qmix: none; qmix_k1: 1 of 4. Max over z reaches 13 for all maven seeds."""
    root = tmp_path / "runs"
    finals = {"maven": [(13, 10, 13), (13, 10, 13), (13, 13, 13), (10, 10, 13)],
              "qmix": [(10, 10, 10)] * 4,
              "qmix_k1": [(13, 13, 13), (10, 10, 10), (10, 10, 10), (10, 10, 10)]}
    for algo, runs in finals.items():
        for seed, final in enumerate(runs):
            make_run(root, algo, seed, final)
    scores, runs = agg.aggregate(root)
    agg.write_aggregate(scores, runs, tmp_path / "scores.csv", tmp_path / "runs.csv")
    return tmp_path


def test_exact_binomial_cis_and_fisher_tests_match_worked_values():
    assert outcomes.clopper_pearson(0, 20) == pytest.approx((0.0, 0.16843), abs=1e-5)
    assert outcomes.clopper_pearson(10, 20) == pytest.approx((0.27196, 0.72804), abs=1e-5)
    assert outcomes.fisher_p(5, 5, 0, 5) == pytest.approx(2 / 252)  # the one table as extreme, both tails
    assert outcomes.fisher_p(3, 4, 3, 4) == pytest.approx(1.0)


def test_every_logged_metric_is_aggregated_but_per_z_columns_are_not(grid):
    metrics = set(agg.read_scores(grid / "scores.csv")["metric"])
    assert {"return_mean", "return_mean_uniform_z", "max_z_return_mean", "z_policy_entropy", "score",
            "score_uniform_z", "score_max_z"} <= metrics
    assert not {"z0_return_mean", "step", "episode", "wall_time_s", "win_rate"} & metrics


def test_outcome_table_counts_seeds_reaching_13_per_metric(grid):
    scores = agg.read_scores(grid / "scores.csv")
    table = outcomes.success_table(scores, ["return_mean", "max_z_return_mean"], 13, ["maven", "qmix"])
    row = table.set_index(["algo", "metric"])
    assert row.loc[("maven", "return_mean"), ["reached", "n"]].tolist() == [3, 4]
    assert row.loc[("maven", "max_z_return_mean"), "reached"] == 4
    assert row.loc[("qmix", "return_mean"), "reached"] == 0
    low, high = outcomes.clopper_pearson(3, 4)
    assert row.loc[("maven", "return_mean"), ["ci_low", "ci_high"]].tolist() == pytest.approx([low, high])
    assert row.loc[("maven", "return_mean"), "fisher_p_vs_qmix"] == pytest.approx(outcomes.fisher_p(3, 4, 0, 4))
    assert row.loc[("qmix_k1", "return_mean"), "fisher_p_vs_maven"] == pytest.approx(outcomes.fisher_p(1, 4, 3, 4))
    assert math.isnan(row.loc[("maven", "return_mean"), "fisher_p_vs_maven"])
    assert row.loc[("maven", "return_mean"), "seeds_reached"] == "0 1 2"
    assert row.loc[("qmix", "return_mean"), "seeds_reached"] == ""


def test_outcomes_command_writes_markdown_with_labels_medians_and_improvement(grid):
    out = grid / "tables" / "outcomes_matrix.md"
    code = cli.main(["outcomes", "--scores", str(grid / "scores.csv"), "--env", "matrix", "--target", "13",
                     "--success-metrics", "return_mean", "max_z_return_mean",
                     "--metrics", "return_mean", "z_policy_entropy", "--steps", "25000", "105000",
                     "--references", "maven", "qmix", "--labels", '{"qmix_k1": "QMIX (MAVEN code, K = 1)"}',
                     "--reps", "200", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert "| m10 | QMIX (MAVEN code, K = 1) | return_mean | 1 / 4 |" in text
    assert "| m10 | maven | 4 | 6.500 [6.125, 6.500] | 13.000 [12.250, 13.000] |" in text  # at 25k (x 0.5), 105k
    assert "## P(entry > reference) on the final return_mean" in text
    assert "| m10 | maven | qmix | 0.88 [" in text  # 3 of 4 seeds beat every qmix seed, 1 ties: (3 + 0.5) / 4
    assert (grid / "tables" / "outcomes_matrix.csv").read_text().startswith("env,map,algo,metric,n,reached")


def test_success_curves_count_seeds_at_the_target_at_each_common_step(grid):
    scores = agg.read_scores(grid / "scores.csv")
    curves = outcomes.success_curves(scores, ["return_mean", "max_z_return_mean"], 13, grid_points=3)
    ret = curves[curves["metric"] == "return_mean"].set_index(["algo", "step"])
    # grid 25k, 65k, 105k; 65k reads each seed's 50k evaluation (x 0.8: below 13)
    assert ret.loc["maven", "reached"].tolist() == [0, 0, 3]
    assert ret.loc["qmix_k1", "share"].tolist() == [0, 0, 0.25]
    assert ret.loc["qmix", "n"].tolist() == [4, 4, 4]
    assert ret.loc[("maven", 105000), ["ci_low", "ci_high"]].tolist() == pytest.approx(outcomes.clopper_pearson(3, 4))
    max_z = curves[curves["metric"] == "max_z_return_mean"].set_index(["algo", "step"])
    assert max_z.loc["maven", "reached"].tolist() == [0, 0, 4]


def test_outcomes_command_draws_the_share_over_training_with_its_caption(grid):
    out, stem = grid / "tables" / "outcomes_matrix.md", grid / "figures" / "matrix_success"
    code = cli.main(["outcomes", "--scores", str(grid / "scores.csv"), "--runs", str(grid / "runs.csv"),
                     "--env", "matrix", "--target", "13", "--success-metrics", "return_mean", "max_z_return_mean",
                     "--references", "maven", "--reps", "50", "--grid-points", "3", "--out", str(out),
                     "--figure", str(stem)])
    assert code == 0
    assert stem.with_suffix(".png").stat().st_size > 0 and stem.with_suffix(".pdf").stat().st_size > 0
    assert "`matrix_success.png`: the share of seeds" in out.read_text()


def test_curves_show_the_chosen_metrics_side_by_side_with_variant_labels(grid):
    code = cli.main(["figures", "--scores", str(grid / "scores.csv"), "--runs", str(grid / "runs.csv"),
                     "--out-dir", str(grid / "figures"), "--reps", "50", "--grid-points", "3",
                     "--curve-metrics", "return_mean", "return_mean_uniform_z", "max_z_return_mean",
                     "--labels", '{"qmix_k1": "QMIX (MAVEN code, K = 1)"}'])
    assert code == 0
    captions = (grid / "figures" / "captions.md").read_text()
    assert ("test return (z from the z-policy); test return, uniform z; max over z of the test return"
            in captions)
    assert (grid / "figures" / "matrix_curves.pdf").exists()


def test_bad_labels_are_a_user_error(grid, capsys):
    code = cli.main(["outcomes", "--scores", str(grid / "scores.csv"), "--target", "13", "--labels", "[1]",
                     "--out", str(grid / "o.md")])
    assert code == 2 and "--labels" in capsys.readouterr().err
