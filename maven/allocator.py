"""Keep freed tensor memory inside the process (glibc), so each training step does not page-fault
its activations back in.

Why this exists (issue 9): a population's activations are a few hundred kilobytes to a few
megabytes each ([S, B, T, N, H] floats), allocated and freed thousands of times per second. glibc
serves blocks above its mmap threshold (128 KiB to start) with a fresh mmap and returns them with
munmap, and it trims the top of the heap back to the OS once more than 128 KiB is free there. Every
such block comes back as new zeroed pages. glibc raises its mmap threshold as it sees large
frees, so this fades during a run but never stops: measured on the m10 paper protocol after 40
iterations, 240-800 minor page faults per training iteration with 5 members and 3,500-4,400 with
16, against 2-30 with the thresholds raised here. The time that saves is small (CPU per iteration
0.99-1.14x, `benchmarks/bench_allocator.py`), and the arithmetic is untouched (the same kernels on
the same values: parameters identical to the last bit).

The cost is memory the process keeps after a peak (at most `TRIM_THRESHOLD` above what it uses).
Only glibc (Linux) has `mallopt`; elsewhere nothing changes. A user who sets glibc's own tunables
(`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES`) keeps them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameters from glibc's malloc.h
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value (64-bit): blocks below it come from the heap
TRIM_THRESHOLD = 256 * 1024 * 1024  # free memory kept at the heap's top before it is returned
USER_TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def configure() -> str:
    """Raise glibc's mmap and trim thresholds for this process; returns what was done, for
    config.yaml ('mallopt', 'environment' when the user set glibc's tunables, or 'unavailable')."""
    if any(os.environ.get(name) for name in USER_TUNABLES):
        return "environment"
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl without mallopt, Windows)
        return "unavailable"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return "mallopt" if ok else "unavailable"
