"""The original MAVEN code beside the port: its recorded log converts into the run-directory
contract and aggregates like a port run; the harness's compatibility edits refuse another tree."""

import csv
import json
import sys
from pathlib import Path

import pytest

from maven.analysis import aggregate as agg
from maven.analysis.original_logs import convert, read_stats
from maven.errors import UserError

DATA = Path(__file__).parent / "data" / "original"
STATS, INFO = DATA / "maven_seed1_t1100_stats.json", DATA / "maven_seed1_t1100_info.json"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "original"))


def test_recorded_log_converts_into_a_finished_run_directory(tmp_path):
    out = tmp_path / "runs" / "matrix" / "m10" / "maven_original" / "seed1"
    summary = convert(STATS, out, "matrix", "m10", "maven_original", 1, {"commit": "be975c5", "wall_time_s": 86.0})
    with open(out / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 1005]
    last = rows[-1]
    # as logged by the original at t_env 1005: the headline 10, the uniform pass 9.578125, and the
    # policy pass's max over z below the headline (its per-z lists mix in training episodes, Q6)
    assert float(last["return_mean"]) == 10.0 and float(last["return_mean_uniform_z"]) == 9.578125
    assert float(last["max_z_return_mean"]) == pytest.approx(8.284974093264248)
    assert float(last["max_z_return_mean_uniform_z"]) == 10.0
    assert float(last["z7_return_mean"]) == pytest.approx(8.284974093264248) and last["z1_return_mean"] == ""
    assert last["episode"] == "131" and float(last["z_policy_entropy"]) < 1e-5  # collapsed onto z = 7
    assert summary["final"]["return_mean"] == 10.0 and summary["runner"] == "original"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["matrix"]["m10"]["maven_original"]["seed_1"]["step_1"]["return"] == [10.0]
    scores, runs = agg.aggregate(tmp_path / "runs", [agg.RunKey("matrix", "m10", "maven_original", 1)])
    assert runs["status"].tolist() == ["finished"]
    final = scores[scores["step"] == 1005].set_index("metric")["value"]
    assert final["score"] == pytest.approx(10 / 13) and final["score_max_z"] == pytest.approx(8.284974093264248 / 13)


def test_sacred_info_json_gives_the_same_test_log_without_pickled_tensors():
    from_stats, from_info = read_stats(STATS), read_stats(INFO)
    assert from_info["test_return_mean"] == from_stats["test_return_mean"]
    assert from_info["max_noise_test_ret_u_0"] == from_stats["max_noise_test_ret_u_0"]
    assert "grad_norm" in from_stats and "grad_norm" not in from_info  # sacred pickled the tensor


def test_a_log_without_evaluations_is_refused(tmp_path):
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"episode": [[1000, 100]]}))
    with pytest.raises(UserError, match="no test_return_mean"):
        read_stats(path)


def test_compatibility_edits_refuse_a_tree_that_is_not_the_pinned_commit(tmp_path):
    import compat

    src = tmp_path / "src"
    for name, *_ in compat.EDITS:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("nothing to edit\n")
    with pytest.raises(compat.EditMismatch, match="be975c5"):
        compat.apply(src)
