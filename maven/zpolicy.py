"""MAVEN's latent (z) policies for a population: z is drawn once per episode from the initial state s0.

- `UniformZ`: z ~ Uniform{0..K-1}, no learning (the original's default).
- `ReinforceZ`: the paper's hierarchical policy pi(z | s0) (the original's EZ_agent), an MLP
  Sd -> 128 -> K trained by REINFORCE on the episode return with Adam.
- `ReturnsBandit`: regresses the return of each z (MLP 256-256, RMSprop) and samples from a
  softmax of the predictions.

Every class holds the S members of a population stacked on a leading axis and steps them together:
the matrix protocol takes 100 small optimiser steps after every episode, which per member and in
Python was the suite's biggest cost. Member k computes what a population of one with seed k
computes: its initial weights come from its seed alone, its randomness from its own streams
(`maven.streams`: "z_sample" for sampling z, "z_minibatch" for the update's minibatches), its
episodes go to its own FIFO, and the members' weights only meet in batched matrix products.
A member that is masked out, or keeps no episode in an update, does not change at all (every
member steps, so that shapes stay fixed for `compile`, and only the learners' results are kept).
With `compile` set, ReinforceZ's steps run through torch.compile (maven/compiled.py), ten to a
call; eager, they are torch.optim.Adam's arithmetic bit for bit.

Precision: parameters, optimiser state, FIFO and math are float32 (`DTYPE`; s0 and returns are
cast to it), as in the original, whose EZ_agent is a torch nn.Module in torch's default float32.
It also halves the bytes of the ReinforceZ update (bandit_iters Adam steps per episode), MAVEN
training's largest cost on CPU: about 1.6x faster than float64 per update with 16 or more members,
1.2x for one (per-op overhead). Changing `DTYPE` is the one line to switch.
"""

from __future__ import annotations

import itertools
import math

import torch

from maven import cpu_exp
from maven.compiled import compile_fn
from maven.members import masked_assign
from maven.streams import Streams

DTYPE = torch.float32  # the z-policies' parameters, optimiser state and math (see above)
# ReinforceZ's Adam steps per call of its (compiled) step function: a compiled call costs about
# 60 us on a CPU, a step of the m10 protocol's 10 members about 250 us, so steps are unrolled in
# tens (one core, 10 members: 329 us per step one per call, 231 in tens, 243 in 25s; compiling
# tens takes 13 s)
STEPS_PER_CALL = 10


class MemberFIFOs:
    """Each member's last `capacity` (s0, z, return) triples: [S, capacity, ...], with per-member
    size and next slot."""

    def __init__(self, n_members: int, capacity: int, state_dim: int, device: torch.device):
        self.capacity = capacity
        self.s0 = torch.zeros(n_members, capacity, state_dim, dtype=DTYPE, device=device)
        self.z = torch.zeros(n_members, capacity, dtype=torch.int64, device=device)
        self.ret = torch.zeros(n_members, capacity, dtype=DTYPE, device=device)
        self.size = torch.zeros(n_members, dtype=torch.int64, device=device)
        self.next = torch.zeros(n_members, dtype=torch.int64, device=device)
        # [S, 1]: where each member's slots start with the members' FIFOs laid end to end
        self.offsets = torch.arange(n_members, device=device).unsqueeze(1) * capacity

    def add(self, s0: torch.Tensor, z: torch.Tensor, ret: torch.Tensor, kept: torch.Tensor) -> None:
        """Append each member's kept episodes ([S, B] mask) in episode order, as one at a time would."""
        rank = kept.cumsum(1) - 1  # [S, B]: the episode's place among its member's kept ones
        count = kept.sum(1)  # [S]
        # more than capacity: only the last ones, so that no slot is written twice (no defined order)
        kept = kept & (rank >= (count - self.capacity).unsqueeze(1))
        members, episodes = kept.nonzero(as_tuple=True)
        slots = (self.next[members] + rank[members, episodes]) % self.capacity
        self.s0[members, slots] = s0[members, episodes]
        self.z[members, slots] = z[members, episodes]
        self.ret[members, slots] = ret[members, episodes]
        self.next = (self.next + count) % self.capacity
        self.size = (self.size + count).clamp_max(self.capacity)

    def gather(self, slots: torch.Tensor):
        """slots [..., S, n] (each member's own slots) -> s0 [..., S, n, Sd], z [..., S, n], ret [..., S, n]."""
        flat = (slots + self.offsets).flatten()  # index_select on one flat index: 2.5x faster than s0[rows, slots]
        return (self.s0.flatten(0, 1).index_select(0, flat).view(*slots.shape, -1),
                self.z.flatten().index_select(0, flat).view(slots.shape),
                self.ret.flatten().index_select(0, flat).view(slots.shape))

    def member_state(self, k: int) -> dict:
        return {"s0": self.s0[k].cpu().clone(), "z": self.z[k].cpu().clone(), "ret": self.ret[k].cpu().clone(),
                "size": int(self.size[k]), "next": int(self.next[k])}

    def load_member_state(self, k: int, state: dict) -> None:
        for name in ("s0", "z", "ret"):
            getattr(self, name)[k] = state[name]
        self.size[k], self.next[k] = state["size"], state["next"]


class StackedMLP:
    """One ReLU MLP per member, all weights in one [S, P] DTYPE tensor. Layer l is one block
    [in_l + 1, out_l]: its weight stored [in, out] (a layer is x @ w, batched over the members) with
    the bias as the last row, so x with a ones column times the block is the layer's output."""

    def __init__(self, sizes: list[int]):
        self.blocks = [(n_in + 1, n_out) for n_in, n_out in itertools.pairwise(sizes)]
        self.offsets = [0, *itertools.accumulate(rows * cols for rows, cols in self.blocks)]

    @property
    def n_params(self) -> int:
        return self.offsets[-1]

    def init(self, seeds: list[int], device: torch.device) -> torch.Tensor:
        """torch.nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and
        bias, drawn per member from a generator seeded with seed + 1 -> [S, P]."""
        rows = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed + 1)
            for n_rows, n_cols in self.blocks:
                bound = 1 / math.sqrt(n_rows - 1)
                rows.append(torch.empty(n_rows * n_cols, dtype=DTYPE).uniform_(-bound, bound, generator=gen))
        return torch.cat(rows).view(len(seeds), self.n_params).to(device)

    def layers(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """[A, P] -> each layer's [A, in + 1, out] block (views sharing flat's memory)."""
        return [flat[:, start:stop].view(len(flat), *block)
                for block, start, stop in zip(self.blocks, self.offsets[:-1], self.offsets[1:])]

    def forward(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """x [A, B, in] -> [A, B, out]."""
        for depth, layer in enumerate(self.layers(flat)):
            if depth:
                x = x.relu()
            x = torch.baddbmm(layer[:, -1:], x, layer[:, :-1])
        return x


class UniformZ:
    learns = False

    def __init__(self, cfg, state_dim: int, seeds: list[int], device):
        self.cfg, self.k, self.device = cfg, cfg.noise_dim, torch.device(device)
        self.n_members = len(seeds)
        self.sample_streams = Streams(seeds, "z_sample", self.device)

    def sample(self, s0: torch.Tensor, uniform: bool, members: torch.Tensor) -> torch.Tensor:
        """s0 [S, B, Sd] -> z [S, B]; rows of members not in `members` ([S] bool) hold any value."""
        return self.sample_streams.integers(self.k, s0.shape[1], members.to(self.device))

    def update(self, s0, z, returns, kept, members) -> dict[str, torch.Tensor]:
        return {}

    def entropy(self, s0: torch.Tensor) -> torch.Tensor:
        return torch.full((self.n_members,), math.log(self.k), dtype=DTYPE, device=self.device)

    def member_state(self, k: int) -> dict:
        return {"sample_stream": self.sample_streams.member_state(k)}

    def load_member_state(self, k: int, state: dict) -> None:
        self.sample_streams.load_member_state(k, state["sample_stream"])


class LearnedZ(UniformZ):
    """A z-policy with probabilities pi(z | s0), trained after each batch of training episodes on
    minibatches drawn with replacement from each member's FIFO. Training episodes sample from pi;
    the uniform test pass (MAVEN's `test_uni_`) ignores it.

    Subclasses define the network (`mlp`), the optimiser state (`optimiser_state`, [S, ...] each),
    `probs`, and `_train`, which takes all bandit_iters steps."""

    learns = True
    stat_name: str

    def __init__(self, cfg, state_dim: int, seeds: list[int], device, mlp: StackedMLP):
        super().__init__(cfg, state_dim, seeds, device)
        self.mlp = mlp
        self.params = mlp.init(seeds, self.device)  # [S, P]
        self.optimiser_state: dict[str, torch.Tensor] = {}
        self.fifo = MemberFIFOs(len(seeds), cfg.bandit_buffer, state_dim, self.device)
        self.minibatch_streams = Streams(seeds, "z_minibatch", self.device)

    def probs(self, s0: torch.Tensor) -> torch.Tensor:
        """s0 [S, B, Sd] (DTYPE) -> pi(. | s0) [S, B, K]."""
        raise NotImplementedError

    def sample(self, s0: torch.Tensor, uniform: bool, members: torch.Tensor) -> torch.Tensor:
        if uniform:
            return super().sample(s0, uniform, members)
        probs = self.probs(s0.to(self.device, DTYPE))  # [S, B, K]
        u = self.sample_streams.uniform(s0.shape[1], members.to(self.device))  # [S, B]
        return (probs.cumsum(-1) < u.unsqueeze(-1)).sum(-1).clamp_max(self.k - 1)

    def entropy(self, s0: torch.Tensor) -> torch.Tensor:
        p = self.probs(s0.to(self.device, DTYPE))
        return -(p * torch.log(p + 1e-12)).sum(-1).mean(-1)

    def update(self, s0, z, returns, kept, members) -> dict[str, torch.Tensor]:
        """Store each member's kept episodes, then bandit_iters optimiser steps for the members that
        kept any. Returns {stat_name: [S]}, NaN for members that did not learn."""
        cfg, device = self.cfg, self.device
        kept = kept.to(device) & members.to(device).unsqueeze(1)  # [S, B]
        self.fifo.add(s0.to(device, DTYPE), z.to(device, torch.int64), returns.to(device, DTYPE), kept)
        learning = kept.any(1)  # [S]
        if not bool(learning.any()):
            return {self.stat_name: torch.full((self.n_members,), math.nan, dtype=DTYPE, device=device)}
        # every member steps (fixed shapes: a compiled step is not compiled again for each number of
        # learners); the others' rows of minibatches, parameters and state are thrown away below
        n, S = cfg.bandit_iters * cfg.bandit_batch, self.n_members
        slots = self.minibatch_streams.integers(self.fifo.size.clamp_min(1), n, learning)  # [S, n]
        # one minibatch per step, gathered step-major so that each is contiguous: [iters, S, batch, ...]
        slots = slots.view(S, cfg.bandit_iters, cfg.bandit_batch).transpose(0, 1)
        s0_mb, z_mb, ret_mb = self.fifo.gather(slots)
        params, state, stat = self._train(self.params, self.optimiser_state, s0_mb, z_mb, ret_mb)
        masked_assign(self.params, params, learning)
        masked_assign(self.optimiser_state, state, learning)
        return {self.stat_name: torch.where(learning, stat, math.nan)}

    def _train(self, params, state, s0_mb, z_mb, ret_mb):
        """bandit_iters steps from params [S, P] and optimiser state on minibatches [iters, S, batch, ...]
        -> new params, new state (dicts of [S, ...]) and the statistic [S]; the inputs are not changed."""
        raise NotImplementedError

    def member_state(self, k: int) -> dict:
        return {**super().member_state(k), "params": self.params[k].cpu().clone(),
                "optimiser": {name: value[k].cpu().clone() for name, value in self.optimiser_state.items()},
                "fifo": self.fifo.member_state(k), "minibatch_stream": self.minibatch_streams.member_state(k)}

    def load_member_state(self, k: int, state: dict) -> None:
        super().load_member_state(k, state)
        self.params[k] = state["params"]
        for name, value in state["optimiser"].items():
            self.optimiser_state[name][k] = value
        self.fifo.load_member_state(k, state["fifo"])
        self.minibatch_streams.load_member_state(k, state["minibatch_stream"])


class ReinforceZ(LearnedZ):
    """pi(z | s0) = softmax(W2 relu(W1 s0 + b1) + b2), trained by REINFORCE with Adam.

    Loss on a minibatch of b triples drawn with replacement from the FIFO (sums, no baseline):
      as_coded:     -Σ log pi(z_k|s0_k) R_k + c Σ log pi(z_k|s0_k)   (quirk Q4: a return shift)
      true_entropy: -Σ log pi(z_k|s0_k) R_k - c Σ H(pi(.|s0_k))
    Gradients by hand (a few batched products; checked against autograd in the tests) and
    torch.optim.Adam's update (default betas and eps, its CPU formula and rounding) per member.
    """

    hidden = 128
    betas, adam_eps = (0.9, 0.999), 1e-8
    stat_name = "z_policy_entropy"

    def __init__(self, cfg, state_dim: int, seeds: list[int], device):
        super().__init__(cfg, state_dim, seeds, device, StackedMLP([state_dim, self.hidden, cfg.noise_dim]))
        self.optimiser_state = {"adam_m": torch.zeros_like(self.params), "adam_v": torch.zeros_like(self.params),
                                "steps": torch.zeros(len(seeds), dtype=torch.int64, device=self.device)}
        self._compiled_steps = compile_fn(self._steps, cfg.compile, self.device)

    def probs(self, s0: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp.forward(self.params, s0), -1)

    def _gradients(self, params, s0, z, ret):
        """d loss / d params [A, P] for one minibatch: s0 [A, b, Sd], z [A, b], ret [A, b]. Returns the
        gradient and pi's probs and log-probs [A, b, K]."""
        layer1, layer2 = self.mlp.layers(params)
        # built per minibatch, inside the (compiled) step: materialising every step's at once cost
        # a quarter of a compiled 10-member m10 update in memory traffic
        x = torch.cat([s0, s0.new_ones(*s0.shape[:-1], 1)], -1)  # [A, b, Sd + 1]: a ones column for the bias
        onehot = (z.unsqueeze(-1) == torch.arange(self.k, device=z.device)).to(DTYPE)  # [A, b, K]
        pre = torch.bmm(x, layer1)  # [A, b, H]
        h = torch.cat([pre.clamp_min(0), x[..., -1:]], -1)  # [A, b, H + 1]: relu, then a ones column
        logits = torch.bmm(h, layer2)  # [A, b, K]
        log_probs = logits - cpu_exp.logsumexp(logits)  # log_softmax, which is slow for small K
        probs = cpu_exp.exp(log_probs)
        c = self.cfg.entropy_scaling
        if self.cfg.ez_entropy == "as_coded":
            d_logits = (probs - onehot).mul_((ret - c).unsqueeze(-1))
        else:
            entropy = -(probs * log_probs).sum(-1, keepdim=True)
            d_logits = (probs - onehot).mul_(ret.unsqueeze(-1)).add_(c * probs * (log_probs + entropy))
        grad2 = torch.bmm(h.transpose(1, 2), d_logits)  # [A, H + 1, K]: the ones column gives the bias row
        d_hidden = torch.bmm(d_logits, layer2[:, :-1].transpose(1, 2))  # [A, b, H]
        d_pre = torch.ops.aten.threshold_backward(d_hidden, pre, 0)  # relu's backward: 0 where pre <= 0
        grad1 = torch.bmm(x.transpose(1, 2), d_pre)  # [A, Sd + 1, H]
        return torch.cat([grad1.flatten(1), grad2.flatten(1)], 1), probs, log_probs

    def _step(self, params, m, v, s0, z, ret, neg_step_size, bc2_sqrt):
        """One minibatch's gradient and torch.optim.Adam step (its CPU formula and rounding) ->
        new params, m, v [A, P], and pi's probs and log-probs. A pure function of its arguments, so
        that `compile` can fuse it (maven/compiled.py)."""
        b1, b2 = self.betas
        grad, probs, log_probs = self._gradients(params, s0, z, ret)
        m = m.lerp(grad, 1 - b1)
        v = (v * b2).addcmul_(grad, grad, value=1 - b2)
        denom = torch.sqrt(v).div_(bc2_sqrt).add_(self.adam_eps)
        return params + (m * neg_step_size).div_(denom), m, v, probs, log_probs

    def _bias_corrections(self, steps: torch.Tensor):
        """Adam's -lr / (1 - b1^t) and sqrt(1 - b2^t) for the next bandit_iters steps of each member
        (steps [A]) -> [iters, A, 1] each, computed in Python floats and rounded to DTYPE, as
        torch.optim.Adam's Python-scalar arguments are."""
        b1, b2 = self.betas
        iters, lr = self.cfg.bandit_iters, self.cfg.lr
        starts, which = torch.unique(steps, return_inverse=True)  # members usually share one count
        table = torch.tensor([[(-lr / (1 - b1 ** t), (1 - b2 ** t) ** 0.5) for t in range(s + 1, s + iters + 1)]
                              for s in starts.tolist()], dtype=DTYPE, device=self.device)  # [U, iters, 2]
        per_member = table[which].permute(2, 1, 0).unsqueeze(-1)  # [2, iters, A, 1]
        return per_member[0].contiguous(), per_member[1].contiguous()

    def _steps(self, params, m, v, s0, z, ret, neg_step_size, bc2_sqrt):
        """`_step` on each minibatch in turn (the inputs' leading axis); one call of the compiled
        function per STEPS_PER_CALL steps, as each call costs more than a step's arithmetic."""
        for i in range(len(s0)):
            params, m, v, probs, log_probs = self._step(params, m, v, s0[i], z[i], ret[i], neg_step_size[i],
                                                        bc2_sqrt[i])
        return params, m, v, probs, log_probs

    def _train(self, params, state, s0_mb, z_mb, ret_mb):
        neg_step_size, bc2_sqrt = self._bias_corrections(state["steps"])
        iters = len(s0_mb)
        m, v = state["adam_m"], state["adam_v"]
        for i in range(0, iters, STEPS_PER_CALL):
            chunk = slice(i, i + STEPS_PER_CALL)
            params, m, v, probs, log_probs = self._compiled_steps(params, m, v, s0_mb[chunk], z_mb[chunk],
                                                                  ret_mb[chunk], neg_step_size[chunk], bc2_sqrt[chunk])
        entropy = -(probs * log_probs).sum(-1).mean(-1)  # the last minibatch's mean entropy
        return params, {"adam_m": m, "adam_v": v, "steps": state["steps"] + iters}, entropy


class ReturnsBandit(LearnedZ):
    """Predicts the return of each z from s0 (MLP 256-256, x bandit_reward_scaling, RMSprop with
    torch's defaults) and samples from (1 - eps) softmax(predictions) + eps / K.

    With bandit_use_state False it trains on all-ones inputs and, as coded (quirk Q18,
    returns_bandit_state_mismatch), still acts on s0."""

    alpha, rms_eps = 0.99, 1e-8
    stat_name = "z_policy_loss"

    def __init__(self, cfg, state_dim: int, seeds: list[int], device):
        super().__init__(cfg, state_dim, seeds, device, StackedMLP([state_dim, 256, 256, cfg.noise_dim]))
        self.optimiser_state = {"square_avg": torch.zeros_like(self.params)}

    def _inputs(self, s0: torch.Tensor, acting: bool) -> torch.Tensor:
        if not self.cfg.bandit_use_state and not (acting and self.cfg.returns_bandit_state_mismatch):
            return torch.ones_like(s0)
        return s0

    def predicted_returns(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params [A, P], inputs [A, B, Sd] -> [A, B, K]."""
        return self.mlp.forward(params, x) * self.cfg.bandit_reward_scaling

    def probs(self, s0: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(self.predicted_returns(self.params, self._inputs(s0, acting=True)), -1)
        eps = self.cfg.bandit_epsilon
        return (1 - eps) * p + eps / self.k

    def _train(self, params, state, s0_mb, z_mb, ret_mb):
        square_avg, lr = state["square_avg"].clone(), self.cfg.lr
        params = params.clone().requires_grad_()
        for i in range(self.cfg.bandit_iters):
            pred = self.predicted_returns(params, self._inputs(s0_mb[i], acting=False))  # [A, b, K]
            chosen = pred.gather(2, z_mb[i].unsqueeze(2)).squeeze(2)  # [A, b]
            loss = ((chosen - ret_mb[i]) ** 2).mean(1)  # [A]: each member's own mean
            (grad,) = torch.autograd.grad(loss.sum(), params)
            with torch.no_grad():
                square_avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
                params.addcdiv_(grad, square_avg.sqrt().add_(self.rms_eps), value=-lr)
        return params.detach(), {"square_avg": square_avg}, loss.detach()


Z_POLICIES = {"uniform": UniformZ, "reinforce": ReinforceZ, "returns_bandit": ReturnsBandit}
