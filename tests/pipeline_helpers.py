"""Running Snakemake from tests: the repository's venv on PATH, one thread per library."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")


def env() -> dict:
    out = dict(os.environ)
    out.update({"PATH": f"{BIN}:{out.get('PATH', '')}", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "JAX_PLATFORMS": "cpu"})
    return out


def snakemake(*args: str, workdir: Path = ROOT, timeout: float = 600, snakefile: bool = True,
              **popen) -> subprocess.CompletedProcess:
    """snakefile=False: the Snakefile a profile selects (run from the repository root, as a user would)."""
    chosen = ["--snakefile", str(ROOT / "Snakefile")] if snakefile else []
    command = [SNAKEMAKE, *chosen, "--directory", str(workdir), *args]
    popen.setdefault("cwd", ROOT)
    return subprocess.run(command, capture_output=True, text=True, env=env(), timeout=timeout, check=False, **popen)


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a (dry) run."""
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m.group(1) != "total"}
