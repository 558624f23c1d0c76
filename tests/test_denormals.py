"""maven.denormals: a training process flushes subnormal floats to zero (x86 FTZ/DAZ)."""

import platform

import pytest
import torch

from maven import denormals

TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ is x86 only")
def test_configure_flushes_subnormal_results_and_inputs():
    subnormal = torch.tensor([TINY / 4])
    assert 0 < subnormal.item() < TINY  # kept by default
    assert denormals.configure() == "flush to zero"
    assert (torch.tensor([TINY]) / 4).item() == 0  # a subnormal result becomes 0
    assert (subnormal * 4).item() == 0  # a subnormal input counts as 0
    assert (torch.tensor([TINY]) * 2).item() == 2 * TINY  # normal numbers are untouched
