"""Flush subnormal floats to zero on the CPU in training processes (x86: FTZ and DAZ).

Why this exists (issue 9): x86 CPUs take a microcode assist for every arithmetic operation that
reads or produces a subnormal float (|x| < 1.2e-38 in float32), tens to hundreds of times slower
than the normal path. MAVEN's z-policy produces them as soon as pi(z | s0) nearly collapses: its
probabilities of the unchosen z's, their gradients and Adam's moments fall below the normal
range. Measured with torch 2.13 on this project's 2-core machines: a [5, 129, 64] x [5, 64, 16]
batched product took 1.4 ms with half of one input subnormal against 11 us without, and sqrt of
[5, 3600] with 1% subnormal inputs 19 us against 2.8 us.

What it changes: a subnormal result becomes 0 and a subnormal input counts as 0. Such a value is
below 2^-126; every place it can reach in training is added to values many orders of magnitude
larger (Adam's step adds m / (sqrt(v) + 1e-8) to weights of order 0.01-1), so it is rounded
away either way. This is checked, not assumed: the 25 runs of the default grid retrained with
flushing on equal those trained without it in every logged number (docs/findings.md §5,
"Subnormal floats"). JAX's CPU backend already flushes subnormals inside its own computations.

The setting is per thread and threads inherit it when they are created, so `configure` runs
before torch's thread pool starts. Only x86 with SSE3 supports it; elsewhere nothing changes.
`--set` cannot turn it off: it is a property of the process, recorded in config.yaml
(`population.threads.denormals`).
"""

from __future__ import annotations

import torch


def configure() -> str:
    """Flush subnormals to zero in this thread and the threads it starts; returns what was done,
    for config.yaml ('flush to zero' or 'unavailable')."""
    return "flush to zero" if torch.set_flush_denormal(True) else "unavailable"
