"""CPU threads of one training process: torch's and XLA's pools, decided once before any work.

Why this exists (issue 13): torch and XLA (JAX's CPU backend, used by SMAX) each start one
compute thread per core in every process. Two training processes on 2 cores then fight over
four busy pools: measured 17x slower than with OMP_NUM_THREADS=1. The tensors of one training
step are tiny, so one thread per process is the default; `--threads N` asks for more.

Call `configure` first thing in a command, before jax is imported: XLA reads XLA_FLAGS once,
when its CPU backend starts, and a later change has no effect (a warning says so). torch's
intra-op pool can be resized at any time; its inter-op pool only before torch first uses it,
so that part is skipped silently when it is too late.

Precedence: what the user set in the environment wins (OMP_NUM_THREADS for torch,
intra_op_parallelism_threads inside XLA_FLAGS for XLA), then `requested`, then 1. A request is
capped at the CPUs this process may use (its affinity mask and SLURM_CPUS_PER_TASK).

Measured with jaxlib 0.10.2 on 2 cores: `--xla_cpu_multi_thread_eigen=false` is the flag that
acts; XLA skips the bare token `intra_op_parallelism_threads=N` (written with `--` it aborts on
an unknown flag), which stays as the widely used spelling and a record of the number. Small ops
ran on one core either way; large dots (1500x1500) still used both cores through XNNPACK unless
XLA_FLAGS also had `--xla_cpu_use_xnnpack=false`, left to the user because it changes kernels.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

from maven.errors import UserError

_XLA_THREADS = re.compile(r"(?:^|\s)-{0,2}intra_op_parallelism_threads=(\S+)")


def available_cpus() -> tuple[int, str]:
    """How many CPUs this process may use, and where that number came from."""
    try:
        count, origin = len(os.sched_getaffinity(0)), "the CPU affinity mask"
    except (AttributeError, OSError):  # not Linux
        count, origin = os.cpu_count() or 1, "os.cpu_count()"
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and 0 < int(slurm) < count:
        count, origin = int(slurm), "SLURM_CPUS_PER_TASK"
    return max(count, 1), origin


def _omp_threads() -> int | None:
    """OMP_NUM_THREADS from the environment (its first level if it lists several), or None."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not raw:
        return None
    first = raw.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise UserError(f"bad OMP_NUM_THREADS={raw!r} in the environment: use an integer >= 1, or unset it")
    return int(first)


def configure(requested: int | None, *, log: Callable[[str], None] = print) -> dict:
    """Set torch's and XLA's CPU thread pools; return what was chosen, for config.yaml and summary.json.

    `requested` is `--threads N` (None: the default, 1). Raises UserError for N < 1.
    """
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 1):
        raise UserError(f"bad --threads {requested!r}: use an integer >= 1 (e.g. --threads 1)")
    cpus, origin = available_cpus()
    threads, source = (1, "default") if requested is None else (requested, "--threads")
    if threads > cpus:
        log(f"threads: --threads {threads} capped at {cpus}, the CPUs this process may use ({origin})")
        threads = cpus

    torch_threads, torch_source = threads, source
    from_env = _omp_threads()
    if from_env is not None and from_env != threads:  # equal (as the pipeline sets it): nothing to say
        chosen = f"--threads {threads}" if source == "--threads" else f"the default {threads}"
        log(f"threads: OMP_NUM_THREADS={from_env} in the environment wins over {chosen} for torch")
        torch_threads, torch_source = from_env, "OMP_NUM_THREADS"

    xla_threads, xla_source = _configure_xla(threads, source, log)

    import torch

    torch.set_num_threads(torch_threads)
    try:
        torch.set_num_interop_threads(torch_threads)
    except RuntimeError:  # torch already ran parallel work: the inter-op pool keeps its size
        pass
    return {"torch_threads": torch.get_num_threads(), "xla_threads": xla_threads, "source": torch_source,
            "xla_source": xla_source, "available_cpus": cpus}


def _configure_xla(threads: int, source: str, log: Callable[[str], None]) -> tuple[int | None, str]:
    """Append the thread flags to XLA_FLAGS unless the user's XLA_FLAGS already sets them."""
    flags = os.environ.get("XLA_FLAGS", "").strip()
    found = _XLA_THREADS.search(flags)
    if found:
        value = found.group(1)
        log(f"threads: XLA_FLAGS in the environment sets intra_op_parallelism_threads={value}: left as is")
        return (int(value) if value.isdigit() else None), "XLA_FLAGS"
    if flags and not flags.startswith("--"):  # XLA reads such a value as the name of a flag file
        log(f"threads: XLA_FLAGS={flags!r} names a flag file: left as is, XLA threads not set")
        return None, "XLA_FLAGS"
    if "jax" in sys.modules:
        log("threads: jax was imported before the threads were configured; XLA keeps its CPU pool "
            "if it has already started (call maven.threads.configure before importing jax)")
    added = [] if "xla_cpu_multi_thread_eigen" in flags else ["--xla_cpu_multi_thread_eigen=false"]
    # the "--" flag first: XLA would read a value starting with "intra_op..." as a file name
    os.environ["XLA_FLAGS"] = " ".join([flags, *added, f"intra_op_parallelism_threads={threads}"]).strip()
    return threads, source
