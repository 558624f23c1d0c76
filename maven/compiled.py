"""torch.compile for the population's hot functions, behind the `compile` config value.

A population's tensors are small, so eager PyTorch spends most of its time launching operations
rather than doing arithmetic: the member-vmapped gradient of the loss is hundreds of tiny
kernels, and so is every acting step and every one of MAVEN's z-policy Adam steps (ReinforceZ:
100 per episode in the matrix protocol, compiled ten to a call). torch.compile traces such a
function once and fuses it into a few kernels (C++ on a CPU, Triton on a GPU); with
`reduce-overhead` a GPU also replays them as one CUDA graph, one launch per call.

Two things follow from tracing. Shapes must stay fixed, or each new shape compiles again: the
agents' nn.GRU is unrolled over time when traced, so the replay buffer pads batches to one of
three lengths (`padded_lengths`, the longest the episode limit; padded steps are masked out of
every loss, and MAVEN's discriminator reads its state at the batch's own longest episode, so
the padding changes rounding only), and the z-policy steps every member and keeps the results
of those that learn this time. And the fused kernels add numbers in another order, so a compiled run
is not bit-identical to an eager one: `eager` stays the default, and every run records its
setting in config.yaml (runs from before this setting existed were eager).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.utils import _pytree as pytree


def padded_lengths(episode_limit: int) -> tuple[int, ...]:
    """The lengths a compiled learner's replay batches are padded to: 60%, 80% and 100% of the
    episode limit, rounded up. Early in epsilon-greedy training most episodes end within a few
    steps, and padding every batch to the limit made that phase's updates up to 1.7x costlier
    (m10 QMIX: the longest of a batch's sampled episodes was 5.8 steps on average in the first
    3,400 steps, 7 or fewer in 97% of batches); each length compiles once, so shorter, rarer
    lengths would cost more compiling than they save."""
    return tuple(sorted({math.ceil(episode_limit * share) for share in (0.6, 0.8)} | {episode_limit}))


def compile_fn(fn: Callable, mode: str, device: torch.device) -> Callable:
    """fn itself for mode 'eager'; else torch.compile(fn) with fixed shapes. On a CPU with mode
    'default' the compiled function calls its kernels from C++ rather than Python (inductor's
    `cpp_wrapper`): the same kernels, so the same numbers, with less time between them, and one
    C++ file to build per graph instead of one per kernel (measured in docs/findings.md §5, "Every
    compiled function called from C++"). Untested on a GPU, so off there."""
    if mode == "eager":
        return fn
    from torch._dynamo import config as dynamo_config  # imported only when compiling

    dynamo_config.allow_rnn = True  # trace nn.GRU (unrolled over time) instead of breaking the graph
    # every vmapped function shares functorch's wrapper code, whose compiled variants (each shape,
    # with and without grad mode) count against one limit; past it dynamo silently runs eagerly
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    # C++ kernels: tanh as 2 / (1 + exp(-2x)) - 1 instead of SLEEF's tanh, 2.5x slower per call
    # here (a compiled tanh of 41k floats: 76 us against 31). The GRU's gates are about a third of
    # a compiled m10 update, whose 10-member MAVEN form takes 26 ms instead of 32. At most 1.8e-7
    # from torch.tanh on [-20, 20] (inductor's default is SLEEF's since pytorch#148254).
    from torch._inductor import config as inductor_config

    inductor_config.cpp.use_decompose_tanh = True
    cpp_wrapper = mode == "default" and torch.device(device).type == "cpu"
    options = {"cpp_wrapper": True} if cpp_wrapper else None  # torch.compile takes mode or options
    compiled = torch.compile(fn, mode=None if mode == "default" else mode, dynamic=False, options=options)
    if mode != "reduce-overhead":
        return compiled

    def replayed(*args):
        # a CUDA graph's outputs live in its own memory, which the next replay overwrites:
        # start a new step and hand the caller copies it may keep
        torch.compiler.cudagraph_mark_step_begin()
        out = compiled(*args)
        return pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, out)

    return replayed
