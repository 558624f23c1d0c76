"""Members as a batch axis for torch modules.

A population holds S copies of each network's parameters stacked along a leading member axis
(trees of tensors [S, ...]). A learner's loss is written for one member as a pure function of
(parameters, batch); `torch.func.vmap` runs it for all members at once, so S members cost one
set of kernel launches. The optimisers and gradient clipping here work on the stacked trees with
a per-member mask: each member's numbers follow torch.optim's formulas exactly as if it were
alone, and a masked-out member does not change at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

Tree = dict  # nested dict of tensors, every leaf [S, ...]


def build_members(build: Callable[[], dict[str, nn.Module]], seeds: Sequence[int], device) -> tuple[dict, Tree]:
    """Build one set of modules per seed, each right after torch.manual_seed(seed), so member k's
    initial parameters are exactly those of a population of one with seed k.

    Returns (templates: the first member's modules, used as the code for functional calls;
    params: {module name: {parameter name: [S, ...]}})."""
    per_member = []
    with torch.random.fork_rng(devices=[]):
        for seed in seeds:
            torch.manual_seed(int(seed))
            per_member.append({name: module.to(device) for name, module in build().items()})
    templates = per_member[0]
    params = {name: {key: torch.stack([m[name].state_dict()[key] for m in per_member]).detach()
                     for key in templates[name].state_dict()}
              for name in templates}
    return templates, params


def tree_map(fn, *trees):
    """fn over the leaves of trees of the same structure."""
    first = trees[0]
    if isinstance(first, dict):
        return {key: tree_map(fn, *(t[key] for t in trees)) for key in first}
    return fn(*trees)


def leaves(tree) -> list[torch.Tensor]:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in leaves(value)]
    return [tree]


def member_slice(tree, k: int):
    """Member k's values as CPU tensors (for checkpoints)."""
    return tree_map(lambda x: x[k].detach().cpu().clone(), tree)


def load_member_slice(tree, k: int, values) -> None:
    def put(x, v):
        x[k] = v.to(x.device, x.dtype)
    tree_map(put, tree, values)


def _expand(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-member [S] tensor shaped to broadcast over x [S, ...]."""
    return mask.view(-1, *([1] * (x.dim() - 1)))


def masked_assign(tree, new, mask: torch.Tensor) -> None:
    """tree[k] = new[k] for every member k with mask[k], in place."""
    def put(x, y):
        x.copy_(torch.where(_expand(mask, x), y, x))
    tree_map(put, tree, new)


def clip_grad_norm(grads: Tree, max_norm: float) -> tuple[Tree, torch.Tensor]:
    """torch.nn.utils.clip_grad_norm_ per member: the norm of each member's whole gradient (the
    norm of the per-tensor norms, as torch computes it) -> (clipped grads, norms [S])."""
    per_tensor = torch.stack([g.flatten(1).norm(dim=1) for g in leaves(grads)])  # [P, S]
    total = per_tensor.norm(dim=0)  # [S]
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    return tree_map(lambda g: g * _expand(scale, g), grads), total


class RMSprop:
    """torch.optim.RMSprop (no momentum, not centred) on stacked parameters, per member."""

    def __init__(self, params: Tree, lr: float, alpha: float = 0.99, eps: float = 1e-8):
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.square_avg = tree_map(torch.zeros_like, params)

    def step(self, params: Tree, grads: Tree, active: torch.Tensor) -> None:
        def update(p, g, sq):
            on = _expand(active, p)
            new_sq = sq * self.alpha + (1 - self.alpha) * g * g
            sq.copy_(torch.where(on, new_sq, sq))
            p.copy_(torch.where(on, p - self.lr * g / (new_sq.sqrt() + self.eps), p))
        tree_map(update, params, grads, self.square_avg)

    def member_state(self, k: int) -> dict:
        return {"square_avg": member_slice(self.square_avg, k)}

    def load_member_state(self, k: int, state: dict) -> None:
        load_member_slice(self.square_avg, k, state["square_avg"])


class Adam:
    """torch.optim.Adam (no weight decay, not amsgrad) on stacked parameters, per member."""

    def __init__(self, params: Tree, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = tree_map(torch.zeros_like, params)
        self.exp_avg_sq = tree_map(torch.zeros_like, params)
        some_leaf = leaves(params)[0]
        self.steps = torch.zeros(some_leaf.shape[0], dtype=torch.float64, device=some_leaf.device)

    def step(self, params: Tree, grads: Tree, active: torch.Tensor) -> None:
        self.steps += active.to(self.steps.dtype)
        b1, b2 = self.betas

        def update(p, g, m, v):
            on = _expand(active, p)
            step = _expand(self.steps, p).clamp(min=1)
            new_m = torch.lerp(m, g, 1 - b1)
            new_v = v * b2 + (1 - b2) * g * g
            bias1 = (1 - b1 ** step).to(p.dtype)
            bias2_sqrt = (1 - b2 ** step).sqrt().to(p.dtype)
            new_p = p - (self.lr / bias1) * new_m / (new_v.sqrt() / bias2_sqrt + self.eps)
            m.copy_(torch.where(on, new_m, m))
            v.copy_(torch.where(on, new_v, v))
            p.copy_(torch.where(on, new_p, p))
        tree_map(update, params, grads, self.exp_avg, self.exp_avg_sq)

    def member_state(self, k: int) -> dict:
        return {"exp_avg": member_slice(self.exp_avg, k), "exp_avg_sq": member_slice(self.exp_avg_sq, k),
                "steps": float(self.steps[k])}

    def load_member_state(self, k: int, state: dict) -> None:
        load_member_slice(self.exp_avg, k, state["exp_avg"])
        load_member_slice(self.exp_avg_sq, k, state["exp_avg_sq"])
        self.steps[k] = state["steps"]


def make_optimiser(params: Tree, cfg):
    if cfg.optimizer == "adam":
        return Adam(params, lr=cfg.lr)
    return RMSprop(params, lr=cfg.lr, alpha=cfg.optim_alpha, eps=cfg.optim_eps)
