"""`snakemake --lint` and snakefmt report nothing on the workflow."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name):
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return str(path)


def test_snakemake_lint_reports_nothing():
    proc = subprocess.run([tool("snakemake"), "--lint", "--cores", "1"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_snakefmt_leaves_the_workflow_unchanged():
    proc = subprocess.run([tool("snakefmt"), "--check", "Snakefile", "workflow"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
