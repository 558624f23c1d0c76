"""maven.allocator: freed activation-sized blocks stay in the process instead of page-faulting
back in on every step (each case in its own process: mallopt is process-wide)."""

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, resource, sys
from maven import allocator
done = allocator.configure() if sys.argv[1] == "tuned" else "untouched"
import torch
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # a few 2 MiB activations alive together, then freed, as in a training step
    a = torch.ones(512, 1024)
    b = a * 2
    return (b + 1).sum()
for _ in range(5):  # warm up
    step()
before = faults()
for _ in range(200):
    step()
print(json.dumps({"done": done, "faults": faults() - before}))
"""


def probe(mode: str, **env) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                          env={**os.environ, **env})
    return json.loads(proc.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_blocks_are_reused_without_page_faults():
    # glibc's starting mmap threshold made static: its dynamic threshold would otherwise adapt to
    # this probe's one block size on some runs, which is no baseline
    untouched, tuned = probe("untouched", MALLOC_MMAP_THRESHOLD_="131072"), probe("tuned")
    assert untouched["faults"] > 200 * 50  # without: freed blocks go back to the OS and fault back in
    assert tuned["done"] == "mallopt" and tuned["faults"] < untouched["faults"] / 5


def test_glibc_tunables_set_by_the_user_are_kept():
    result = probe("tuned", MALLOC_MMAP_THRESHOLD_="131072")
    assert result["done"] == "environment"
