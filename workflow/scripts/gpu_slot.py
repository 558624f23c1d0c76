"""Run a command on a GPU of its own: `gpu_slot.py --gpus N --lock-dir D -- CMD ...`.

Snakemake's `--resources gpu=N` caps how many GPU jobs run at once but does not say which GPU
each gets. This wrapper takes the first free GPU by holding an exclusive `flock` on
D/gpu<i>.lock for as long as the command runs, sets CUDA_VISIBLE_DEVICES to it, and returns the
command's exit status. Locks die with the process, so a killed job frees its GPU.
Nothing is done when the job asks for no GPU or a scheduler (SLURM) already chose the device.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def visible_gpus() -> list[str]:
    """GPU indices from MAVEN_GPUS (e.g. "0,2") or `nvidia-smi -L`; none if unavailable."""
    if os.environ.get("MAVEN_GPUS"):
        return [g.strip() for g in os.environ["MAVEN_GPUS"].split(",") if g.strip()]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def acquire(gpus: list[str], count: int, lock_dir: Path, poll_s: float = 2.0) -> tuple[list[str], list]:
    """Block until `count` GPUs are free; return their ids and the open lock files."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        held = []
        for gpu in gpus:
            handle = open(lock_dir / f"gpu{gpu}.lock", "w")  # noqa: SIM115 (held while the job runs)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append((gpu, handle))
            except BlockingIOError:
                handle.close()
            if len(held) == count:
                return [gpu for gpu, _ in held], [handle for _, handle in held]
        for _, handle in held:
            handle.close()
        time.sleep(poll_s)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs this job needs")
    parser.add_argument("--lock-dir", type=Path, default=Path(".snakemake/gpu_slots"))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    env = dict(os.environ)
    if args.gpus > 0 and "CUDA_VISIBLE_DEVICES" not in env:
        gpus = visible_gpus()
        if len(gpus) < args.gpus:
            print(f"gpu_slot: job needs {args.gpus} GPU(s), found {len(gpus)}; running without pinning",
                  file=sys.stderr)
        else:
            chosen, _locks = acquire(gpus, args.gpus, args.lock_dir)
            env["CUDA_VISIBLE_DEVICES"] = ",".join(chosen)
            print(f"gpu_slot: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", file=sys.stderr)
    child = subprocess.Popen(command, env=env)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
