"""maven.cpu_exp must return exactly what torch.exp and torch.logsumexp return: the z-policy's
numbers, and so every shipped MAVEN run, depend on it to the last bit."""

import numpy as np
import pytest
import torch

from maven import cpu_exp


def every_float32(high: float, low: float) -> torch.Tensor:
    """Every float32 from high down to low (both negative), in order."""
    bits = np.arange(np.float32(high).view(np.int32), np.float32(low).view(np.int32) + 1, dtype=np.int32)
    return torch.from_numpy(bits.view(np.float32).copy())


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit, NaNs included."""
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_exp_matches_torch_on_every_float32_where_it_underflows():
    x = every_float32(-80.0, -200.0)  # normal, subnormal and zero results: 10 million inputs
    assert same(cpu_exp.exp(x), torch.exp(x))


def test_thresholds_are_where_exp_leaves_the_normal_range_and_reaches_zero():
    smallest_normal = torch.finfo(torch.float32).tiny
    at_normal_min = torch.tensor([cpu_exp.NORMAL_MIN])
    below = torch.nextafter(at_normal_min, torch.tensor([-np.inf]))
    assert torch.exp(at_normal_min).item() >= smallest_normal > torch.exp(below).item()
    at_zero_max = torch.tensor([cpu_exp.ZERO_MAX])
    above = torch.nextafter(at_zero_max, torch.tensor([np.inf]))
    assert torch.exp(at_zero_max).item() == 0 < torch.exp(above).item()


def test_exp_matches_torch_on_special_and_random_values():
    special = torch.tensor([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.7, 89.0, 1e-30, -1e30])
    assert same(cpu_exp.exp(special), torch.exp(special))
    gen = torch.Generator().manual_seed(0)
    for scale in (1.0, 30.0, 300.0, 1e4):
        x = torch.randn(4, 64, 16, generator=gen) * scale - scale
        assert same(cpu_exp.exp(x), torch.exp(x))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_go_to_torch(dtype):
    x = torch.linspace(-800, 10, 1001).to(dtype)
    assert torch.equal(cpu_exp.exp(x), torch.exp(x))


def test_logsumexp_matches_torch_including_infinite_rows():
    gen = torch.Generator().manual_seed(1)
    for trial in range(300):
        x = torch.randn(5, 64, 16, generator=gen) * 10 ** (trial % 5 - 1)
        x[0, 0, :] = -np.inf  # an all -inf row: torch gives -inf
        x[1, 1, :3] = -np.inf
        x[2, 2, 0] = np.inf
        x[3, 3, 5] = np.nan
        assert same(cpu_exp.logsumexp(x), torch.logsumexp(x, -1, keepdim=True))
