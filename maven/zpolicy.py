"""MAVEN's latent (z) policies: z is drawn once per episode from the initial state s0.

- `UniformZ`: z ~ Uniform{0..K-1}, no learning (the original's default).
- `ReinforceZ`: the paper's hierarchical policy pi(z | s0) (the original's EZ_agent), an MLP
  S -> 128 -> K trained by REINFORCE on the episode return with Adam. Written in NumPy: the matrix
  protocol takes 100 small Adam steps after every episode, where torch's per-op overhead
  dominates (see benchmarks/bench_learner.py).
- `ReturnsBandit`: regresses the return of each z and samples from a softmax of the predictions.

All keep their randomness in their own numpy Generator so a checkpoint can restore it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FIFO:
    """The last `capacity` (s0, z, return) triples."""

    def __init__(self, capacity: int, state_dim: int):
        self.s0 = np.zeros((capacity, state_dim), np.float64)
        self.z = np.zeros(capacity, np.int64)
        self.ret = np.zeros(capacity, np.float64)
        self.size, self.next = 0, 0

    def add(self, s0: np.ndarray, z: np.ndarray, ret: np.ndarray) -> None:
        for i in range(len(z)):
            self.s0[self.next], self.z[self.next], self.ret[self.next] = s0[i], z[i], ret[i]
            self.next = (self.next + 1) % len(self.z)
            self.size = min(self.size + 1, len(self.z))

    def state_dict(self) -> dict:
        return {k: getattr(self, k).copy() if isinstance(getattr(self, k), np.ndarray) else getattr(self, k)
                for k in ("s0", "z", "ret", "size", "next")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v.copy() if isinstance(v, np.ndarray) else v)


def _uniform_sample(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.integers(k, size=n)


def _categorical_sample(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    u = rng.random(len(probs))[:, None]
    return np.minimum((probs.cumsum(1) < u).sum(1), probs.shape[1] - 1)


class UniformZ:
    learns = False

    def __init__(self, cfg, state_dim: int, seed: int):
        self.k = cfg.noise_dim
        self.rng = np.random.default_rng(seed)

    def sample(self, s0: np.ndarray, uniform: bool) -> np.ndarray:
        return _uniform_sample(self.rng, len(s0), self.k)

    def update(self, s0, z, returns) -> dict:
        return {}

    def entropy(self, s0: np.ndarray) -> float:
        return float(np.log(self.k))

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class LearnedZ(UniformZ):
    """A z-policy with probabilities pi(z | s0): training episodes sample from it; the uniform
    test pass (MAVEN's `test_uni_`) ignores it."""

    learns = True

    def probs(self, s0: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sample(self, s0: np.ndarray, uniform: bool) -> np.ndarray:
        if uniform:
            return _uniform_sample(self.rng, len(s0), self.k)
        return _categorical_sample(self.rng, self.probs(s0))

    def entropy(self, s0: np.ndarray) -> float:
        p = self.probs(s0)
        return float(-(p * np.log(p + 1e-12)).sum(1).mean())


class ReinforceZ(LearnedZ):
    """pi(z | s0) = softmax(W2 relu(W1 s0 + b1) + b2), trained by REINFORCE with Adam.

    Loss on a minibatch of b triples drawn with replacement from the FIFO (sums, no baseline):
      as_coded:     -Σ log pi(z_k|s0_k) R_k + c Σ log pi(z_k|s0_k)   (quirk Q4: a return shift)
      true_entropy: -Σ log pi(z_k|s0_k) R_k - c Σ H(pi(.|s0_k))
    """

    hidden = 128
    betas, adam_eps = (0.9, 0.999), 1e-8

    def __init__(self, cfg, state_dim: int, seed: int):
        super().__init__(cfg, state_dim, seed)
        self.cfg = cfg
        init_rng = np.random.default_rng(seed + 1)

        def linear(fan_in, fan_out):  # torch.nn.Linear's default initialisation
            bound = 1 / np.sqrt(fan_in)
            return (init_rng.uniform(-bound, bound, (fan_in, fan_out)), init_rng.uniform(-bound, bound, fan_out))

        w1, b1 = linear(state_dim, self.hidden)
        w2, b2 = linear(self.hidden, self.k)
        # one flat vector with named views, so each Adam step is a few array operations
        shapes = {"w1": w1.shape, "b1": b1.shape, "w2": w2.shape, "b2": b2.shape}
        sizes = [int(np.prod(v)) for v in shapes.values()]
        self.flat = np.concatenate([w1.ravel(), b1, w2.ravel(), b2])
        self.flat_grad = np.zeros_like(self.flat)
        offsets = np.cumsum([0, *sizes])
        self.params, self.grad_views = {}, {}
        for (name, shape), start, stop in zip(shapes.items(), offsets[:-1], offsets[1:]):
            self.params[name] = self.flat[start:stop].reshape(shape)
            self.grad_views[name] = self.flat_grad[start:stop].reshape(shape)
        self.m = np.zeros_like(self.flat)
        self.v = np.zeros_like(self.flat)
        self.steps = 0
        self.fifo = FIFO(cfg.bandit_buffer, state_dim)

    def probs(self, s0: np.ndarray) -> np.ndarray:
        p = self.params
        logits = np.maximum(s0 @ p["w1"] + p["b1"], 0) @ p["w2"] + p["b2"]
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    def loss_and_grads(self, s0: np.ndarray, z: np.ndarray, ret: np.ndarray):
        """The minibatch loss and its gradients by hand (checked against autograd in the tests)."""
        p = self.params
        pre = s0 @ p["w1"] + p["b1"]  # [b, 128]
        h = np.maximum(pre, 0)
        logits = h @ p["w2"] + p["b2"]  # [b, K]
        logits = logits - logits.max(1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        probs = np.exp(log_probs)
        rows = np.arange(len(z))
        onehot = np.zeros_like(probs)
        onehot[rows, z] = 1.0
        c = self.cfg.entropy_scaling
        if self.cfg.ez_entropy == "as_coded":
            weight = ret - c
            loss = -(log_probs[rows, z] * weight).sum()
            d_logits = -weight[:, None] * (onehot - probs)
        else:
            ent = -(probs * log_probs).sum(1)
            loss = -(log_probs[rows, z] * ret).sum() - c * ent.sum()
            d_logits = -ret[:, None] * (onehot - probs) + c * probs * (log_probs + ent[:, None])
        d_h = (d_logits @ p["w2"].T) * (pre > 0)
        grads = {"w2": h.T @ d_logits, "b2": d_logits.sum(0), "w1": s0.T @ d_h, "b1": d_h.sum(0)}
        return loss, grads, float(-(probs * log_probs).sum(1).mean())

    def _adam_step(self, grads) -> None:
        """torch.optim.Adam's update (default betas and eps) on the flat parameter vector."""
        for name, g in grads.items():
            self.grad_views[name][...] = g
        g = self.flat_grad
        self.steps += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        self.m *= b1
        self.m += (1 - b1) * g
        self.v *= b2
        self.v += (1 - b2) * g * g
        self.flat -= (self.cfg.lr / bc1) * self.m / (np.sqrt(self.v) / np.sqrt(bc2) + self.adam_eps)

    def update(self, s0: np.ndarray, z: np.ndarray, returns: np.ndarray) -> dict:
        """After each batch of training episodes: store them, then bandit_iters Adam steps."""
        self.fifo.add(s0, z, returns)
        entropy = 0.0
        for _ in range(self.cfg.bandit_iters):
            idx = self.rng.integers(self.fifo.size, size=self.cfg.bandit_batch)
            _, grads, entropy = self.loss_and_grads(self.fifo.s0[idx], self.fifo.z[idx], self.fifo.ret[idx])
            self._adam_step(grads)
        return {"z_policy_entropy": entropy}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "steps": self.steps, "fifo": self.fifo.state_dict(),
                "params": self.flat.copy(), "adam_m": self.m.copy(), "adam_v": self.v.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.steps = state["steps"]
        self.fifo.load_state_dict(state["fifo"])
        self.flat[...] = state["params"]  # in place: the named views stay valid
        self.m[...] = state["adam_m"]
        self.v[...] = state["adam_v"]


class ReturnsBandit(LearnedZ):
    """Predicts the return of each z from s0 (MLP 256-256, x bandit_reward_scaling, RMSprop) and
    samples from (1 - eps) softmax(predictions) + eps / K."""

    def __init__(self, cfg, state_dim: int, seed: int):
        super().__init__(cfg, state_dim, seed)
        self.cfg = cfg
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(2 ** 31, (1,), generator=gen)))
            self.net = nn.Sequential(nn.Linear(state_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                     nn.Linear(256, self.k)).double()
        self.optimiser = torch.optim.RMSprop(self.net.parameters(), lr=cfg.lr)
        self.fifo = FIFO(cfg.bandit_buffer, state_dim)

    def _inputs(self, s0: np.ndarray, acting: bool) -> torch.Tensor:
        x = torch.as_tensor(s0, dtype=torch.float64)
        if not self.cfg.bandit_use_state and not (acting and self.cfg.returns_bandit_state_mismatch):
            x = torch.ones_like(x)
        return x

    def probs(self, s0: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            pred = self.net(self._inputs(s0, acting=True)) * self.cfg.bandit_reward_scaling
            p = torch.softmax(pred, -1).numpy()
        eps = self.cfg.bandit_epsilon
        return (1 - eps) * p + eps / self.k

    def update(self, s0, z, returns) -> dict:
        self.fifo.add(s0, z, returns)
        loss = torch.zeros(())
        for _ in range(self.cfg.bandit_iters):
            idx = self.rng.integers(self.fifo.size, size=self.cfg.bandit_batch)
            pred = self.net(self._inputs(self.fifo.s0[idx], acting=False)) * self.cfg.bandit_reward_scaling
            chosen = pred.gather(1, torch.as_tensor(self.fifo.z[idx]).unsqueeze(1)).squeeze(1)
            loss = ((chosen - torch.as_tensor(self.fifo.ret[idx])) ** 2).mean()
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
        return {"z_policy_loss": float(loss.detach())}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "fifo": self.fifo.state_dict(),
                "net": self.net.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.fifo.load_state_dict(state["fifo"])
        self.net.load_state_dict(state["net"])
        self.optimiser.load_state_dict(state["optimiser"])


Z_POLICIES = {"uniform": UniformZ, "reinforce": ReinforceZ, "returns_bandit": ReturnsBandit}
