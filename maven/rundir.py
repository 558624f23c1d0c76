"""The run directory contract (docs: evaluation.md §2).

config.yaml at start; eval.csv appended per evaluation; metrics.json (marl-eval format) rewritten
per evaluation; summary.json written last and atomically: it marks the run finished (status
"finished") or stopped for good (status "diverged"). `.lock` is held (flock) by the one trainer
writing the directory.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from maven.errors import UserError

EVAL_COLUMNS = ["step", "episode", "return_mean", "return_std", "win_rate", "ep_length_mean", "wall_time_s"]
LATENT_COLUMNS = ["return_mean_uniform_z", "win_rate_uniform_z"]  # algorithms with a latent z


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for pkg in ("torch", "numpy", "jax", "jaxmarl", "smac", "maven-suite"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_state() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False,
                                  timeout=10).stdout.strip()

        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no") != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        for name in ("config", "eval", "metrics", "summary", "checkpoints"):
            setattr(self, name, self.path / {"config": "config.yaml", "eval": "eval.csv",
                                             "metrics": "metrics.json", "summary": "summary.json",
                                             "checkpoints": "checkpoints"}[name])
        self.lock_file = self.path / ".lock"
        self._lock_handle = None

    # --- one writer: an exclusive flock, released by the OS when the process ends ------------
    def lock(self) -> None:
        """Hold the directory's lock for the life of this process (or until unlock); a UserError
        when another process holds it, before any run file is touched."""
        if self._lock_handle is not None:
            return
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} is a file, not a directory; choose a directory path")
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_file, "a")  # noqa: SIM115 - held while training; "a" never truncates
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserError(f"--out {self.path} is being written by another trainer (it holds {self.lock_file}); "
                            "wait for it to end or choose another --out") from None
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()  # closing the only descriptor releases the flock
            self._lock_handle = None

    # --- identity: which run a directory holds ---------------------------------------------
    def claim(self, resolved: dict, defaults: dict | None = None) -> str:
        """Check the directory can hold this run: returns 'finished', 'diverged', 'resume' or 'new'.

        Refuses (UserError) a path that is a file or a directory holding another run's files.
        A key missing from the recorded config (added to the code since the run started) matches
        when the run asks for its default.
        """
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} is a file, not a directory; choose a directory path")
        if not self.config.exists():
            others = [p.name for p in self.path.iterdir()] if self.path.is_dir() else []
            if set(others) & {"eval.csv", "metrics.json", "summary.json", "checkpoints"}:
                raise UserError(f"--out {self.path} holds run files but no config.yaml; "
                                "choose an empty directory or remove it")
            return "new"
        defaults = defaults or {}
        try:
            recorded = yaml.safe_load(self.config.read_text())["config"]
        except Exception:  # noqa: BLE001 - any unreadable config means "not ours"
            raise UserError(f"--out {self.path}: config.yaml is unreadable; choose another directory") from None
        recorded = {**{k: v for k, v in defaults.items() if k not in recorded}, **recorded}
        differing = sorted(k for k in set(recorded) | set(resolved) if recorded.get(k) != resolved.get(k))
        if differing:
            shown = ", ".join(f"{k}={recorded.get(k)!r} (asked {resolved.get(k)!r})" for k in differing[:4])
            raise UserError(f"--out {self.path} holds another run ({shown}); choose another --out")
        if self.summary.exists():
            return "diverged" if self.read_summary().get("status") == "diverged" else "finished"
        return "resume"

    def read_summary(self) -> dict:
        try:
            summary = json.loads(self.summary.read_text())
        except (OSError, ValueError):
            return {}
        return summary if isinstance(summary, dict) else {}

    def list_checkpoints(self) -> list[Path]:
        """The resumable checkpoints, oldest first."""
        return sorted(self.checkpoints.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))

    def write_config(self, resolved: dict, device: str, env_metadata: dict, population: dict) -> None:
        """population: the seeds trained together in this process, and the threads it used."""
        self.path.mkdir(parents=True, exist_ok=True)
        doc = {"config": resolved, "versions": package_versions(), "git": git_state(),
               "device": device, "host": platform.node(), "argv": sys.argv,
               "started": datetime.now(UTC).isoformat(timespec="seconds"),
               "environment": env_metadata, "population": population}
        atomic_write(self.config, yaml.safe_dump(doc, sort_keys=False))

    def write_eval(self, rows: list[dict], columns: list[str]) -> None:
        """Rewrite eval.csv from the rows so far (cheap: one row per evaluation)."""
        tmp = self.eval.with_name(".eval.csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
        os.replace(tmp, self.eval)

    def write_metrics(self, env: str, map_name: str, algo: str, seed: int, steps: list[dict]) -> None:
        """marl-eval's layout: env -> task -> algorithm -> run -> step_i / absolute_metrics."""
        run = {f"step_{i}": entry for i, entry in enumerate(steps)}
        doc = {env: {map_name: {algo: {f"seed_{seed}": run}}}}
        atomic_write(self.metrics, json.dumps(doc))

    def write_summary(self, summary: dict) -> None:
        atomic_write(self.summary, json.dumps(summary, indent=2))
