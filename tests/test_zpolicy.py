"""The z-policies of a population: hand gradients and optimisers against torch's, learning the better
latent, and each member computing exactly what it would alone, untouched by the other members."""

import math

import pytest
import torch

from maven.config import TrainConfig
from maven.streams import Streams
from maven.zpolicy import DTYPE, Z_POLICIES, ReinforceZ, ReturnsBandit

F64 = torch.float64
SEEDS = [3, 7, 11]
SMALL = {"noise_dim": 3, "bandit_buffer": 6, "bandit_iters": 3, "bandit_batch": 4, "lr": 0.01}


def everyone(n: int) -> torch.Tensor:
    return torch.ones(n, dtype=torch.bool)


def rollouts(n_rounds: int, n_members: int, episodes: int = 3, state_dim: int = 3, seed: int = 0):
    """Each round's (s0 [S, B, Sd] float32 as envs give it, returns [S, B], kept [S, B])."""
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(n_members, episodes, state_dim, generator=gen),
             torch.randn(n_members, episodes, generator=gen, dtype=F64) * 5,
             torch.rand(n_members, episodes, generator=gen) < 0.7) for _ in range(n_rounds)]


def drive(policy, rounds, members=None) -> list:
    """Sample z from each round's s0 and update on it; -> [(z, stats)] per round."""
    out = []
    for s0, returns, kept in rounds:
        mask = everyone(len(s0)) if members is None else members
        z = policy.sample(s0, uniform=False, members=mask)
        out.append((z, policy.update(s0, z, returns, kept, mask)))
    return out


def member(rounds, k: int) -> list:
    """Member k's rows of each round, as a population of one sees them."""
    return [tuple(x[k:k + 1] for x in r) for r in rounds]


def assert_identical(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_identical(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


# --- the math against torch ---------------------------------------------------------------------
# Done in the z-policies' DTYPE (float32, as the original's EZ_agent): torch's reference gets the
# same inputs and initial weights. Where both sides do the same float32 operations in the same order
# (Adam's update from the same gradient) they agree bit for bit; where only the order of a sum differs
# (batched products vs autograd's or Linear's) they agree to float32 rounding, about 1e-7 relative,
# so the tolerances are float32's, with margin, not float64's 1e-12.
def _torch_reinforce_loss(layers, s0, z, ret, c, mode):
    """One member's REINFORCE loss by autograd; layers are [in + 1, out] blocks, bias last."""
    w1, w2 = layers
    logp = torch.log_softmax(torch.relu(s0 @ w1[:-1] + w1[-1]) @ w2[:-1] + w2[-1], -1)
    chosen = logp[torch.arange(len(z)), z]
    if mode == "as_coded":
        return -(chosen * ret).sum() + c * chosen.sum()
    return -(chosen * ret).sum() - c * (-(logp.exp() * logp).sum(-1)).sum()


@pytest.mark.parametrize("mode", ["as_coded", "true_entropy"])
def test_reinforce_hand_gradients_match_autograd_and_its_adam_is_torchs(mode):
    iters, batch, c = 3, 5, 0.3
    cfg = TrainConfig(noise_dim=4, entropy_scaling=c, ez_entropy=mode, lr=0.01, bandit_iters=iters,
                      bandit_batch=batch)
    policy = ReinforceZ(cfg, state_dim=3, seeds=[0], device="cpu")
    gen = torch.Generator().manual_seed(1)
    s0, z = torch.randn(1, 6, 3, generator=gen, dtype=DTYPE), torch.randint(4, (1, 6), generator=gen)
    ret = torch.randn(1, 6, generator=gen, dtype=DTYPE) * 3
    # replay update's minibatches from the member's stream; hand gradients fed to torch.optim.Adam
    slots = Streams([0], "z_minibatch").integers(6, iters * batch)[0].view(iters, batch)
    params = policy.params.clone().requires_grad_()
    adam = torch.optim.Adam([params], lr=0.01)
    for rows in slots:
        with torch.no_grad():
            grad, _, _ = policy._gradients(params, s0[:, rows], z[:, rows], ret[:, rows])
        reference = params.detach().clone().requires_grad_()
        loss = _torch_reinforce_loss([w[0] for w in policy.mlp.layers(reference)], s0[0, rows], z[0, rows],
                                     ret[0, rows], c, mode)
        loss.backward()
        # the same sums in another order (batched products vs autograd's): equal to float32 rounding,
        # measured within 2.3e-7 of the largest gradient element (60 seeds and data); small elements
        # are sums that cancel, so the absolute tolerance is relative to that largest element
        scale = float(reference.grad.abs().max())
        torch.testing.assert_close(grad, reference.grad, rtol=1e-5, atol=1e-5 * scale)
        params.grad = grad
        adam.step()
    policy.update(s0, z, ret, torch.ones(1, 6, dtype=torch.bool), everyone(1))
    # torch.optim.Adam's formula and float32 rounding (its Python scalars rounded to float32), so exact
    assert torch.equal(policy.params, params.detach())
    assert policy.optimiser_state["steps"].tolist() == [iters]


def test_returns_bandit_update_is_torchs_mlp_with_rmsprop():
    cfg = TrainConfig(noise_dim=3, bandit_iters=3, bandit_batch=4, lr=0.01, bandit_reward_scaling=2.0)
    bandit = ReturnsBandit(cfg, state_dim=2, seeds=[5], device="cpu")
    net = torch.nn.Sequential(torch.nn.Linear(2, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 3)).to(DTYPE)
    with torch.no_grad():
        for linear, block in zip(net[::2], bandit.mlp.layers(bandit.params)):
            linear.weight.copy_(block[0, :-1].T)
            linear.bias.copy_(block[0, -1])
    rmsprop = torch.optim.RMSprop(net.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(2)
    s0, z = torch.randn(1, 5, 2, generator=gen, dtype=DTYPE), torch.randint(3, (1, 5), generator=gen)
    ret = torch.randn(1, 5, generator=gen, dtype=DTYPE)
    for rows in Streams([5], "z_minibatch").integers(5, 12)[0].view(3, 4):
        chosen = (net(s0[0, rows]) * 2.0).gather(1, z[0, rows, None]).squeeze(1)
        rmsprop.zero_grad()
        ((chosen - ret[0, rows]) ** 2).mean().backward()
        rmsprop.step()
    bandit.update(s0, z, ret, torch.ones(1, 5, dtype=torch.bool), everyone(1))
    for linear, block in zip(net[::2], bandit.mlp.layers(bandit.params)):
        # batched products vs Linear's addmm: equal to float32 rounding, amplified by RMSprop, which
        # divides each gradient element by its own RMS: its early steps are about lr / sqrt(1 - alpha)
        # = 0.1 whatever the gradient's size, so a small, cancelling element's rounding error becomes
        # that of its step. Here within 7e-6 (and 5e-4 at worst over 30 other seeds and data).
        torch.testing.assert_close(block[0, :-1], linear.weight.detach().T, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(block[0, -1], linear.bias.detach(), rtol=1e-5, atol=1e-4)


# --- learning -----------------------------------------------------------------------------------
def test_reinforce_prefers_the_better_latent():
    cfg = TrainConfig(noise_dim=2, bandit_iters=20, bandit_batch=16, lr=0.01)
    policy = ReinforceZ(cfg, state_dim=2, seeds=[0, 1], device="cpu")
    s0 = torch.ones(2, 1, 2)
    for _ in range(30):
        z = policy.sample(s0, uniform=False, members=everyone(2))
        policy.update(s0, z, (z == 1).double(), torch.ones(2, 1, dtype=torch.bool), everyone(2))
    assert (policy.probs(s0.to(DTYPE))[:, 0, 1] > 0.9).all()


def test_returns_bandit_regresses_returns_and_prefers_the_better_latent():
    cfg = TrainConfig(noise_dim=2, bandit_iters=10, bandit_batch=16, lr=0.001, bandit_epsilon=0.1)
    bandit = ReturnsBandit(cfg, state_dim=2, seeds=[0], device="cpu")
    s0 = torch.ones(1, 4, 2)
    for _ in range(60):
        z = bandit.sample(s0, uniform=False, members=everyone(1))
        bandit.update(s0, z, (z == 1).double(), torch.ones(1, 4, dtype=torch.bool), everyone(1))
    predicted = bandit.predicted_returns(bandit.params, torch.ones(1, 1, 2, dtype=DTYPE))[0, 0]
    assert predicted.tolist() == pytest.approx([0.0, 1.0], abs=0.15)  # regresses each z's return
    # samples from 0.9 * softmax(predicted returns) + 0.1 / K: about 0.9 * 0.73 + 0.05 for z = 1
    assert float(bandit.probs(s0[:, :1].to(DTYPE))[0, 0, 1]) == pytest.approx(0.9 / (1 + math.exp(-1)) + 0.05,
                                                                            abs=0.05)


@pytest.mark.parametrize("mismatch", [True, False])
def test_returns_bandit_state_input_quirk_q18(mismatch):
    cfg = TrainConfig(noise_dim=2, bandit_use_state=False, returns_bandit_state_mismatch=mismatch)
    bandit = ReturnsBandit(cfg, state_dim=3, seeds=[0], device="cpu")
    s0 = torch.full((1, 1, 3), 5.0, dtype=DTYPE)
    assert torch.equal(bandit._inputs(s0, acting=True), s0 if mismatch else torch.ones_like(s0))
    assert torch.equal(bandit._inputs(s0, acting=False), torch.ones_like(s0))


def test_uniform_test_pass_ignores_the_learned_policy():
    policy = ReinforceZ(TrainConfig(**SMALL), state_dim=3, seeds=SEEDS, device="cpu")
    z = policy.sample(torch.zeros(3, 2000, 3), uniform=True, members=everyone(3))
    assert z.dtype == torch.int64 and z.shape == (3, 2000)
    assert all(abs(count - 2000) < 200 for count in torch.bincount(z.flatten(), minlength=3).tolist())


# --- populations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(Z_POLICIES))
def test_a_member_computes_what_it_would_alone(name):
    cfg = TrainConfig(**SMALL)
    rounds = rollouts(5, len(SEEDS))
    crowd = Z_POLICIES[name](cfg, 3, SEEDS, "cpu")
    alone = Z_POLICIES[name](cfg, 3, [SEEDS[1]], "cpu")
    crowd_out, alone_out = drive(crowd, rounds), drive(alone, member(rounds, 1))
    # bit for bit: every op is per member (batched products loop over the members with the same shapes)
    for (z, stats), (z_alone, stats_alone) in zip(crowd_out, alone_out):
        assert torch.equal(z[1:2], z_alone)
        for key in stats:
            torch.testing.assert_close(stats[key][1:2], stats_alone[key], rtol=0, atol=0, equal_nan=True)
    assert_identical(crowd.member_state(1), alone.member_state(0))
    assert torch.equal(crowd.entropy(rounds[0][0])[1:2], alone.entropy(rounds[0][0][1:2]))


@pytest.mark.parametrize("name", ["reinforce", "returns_bandit"])
def test_other_members_data_does_not_reach_a_member(name):
    cfg = TrainConfig(**SMALL)
    rounds = rollouts(4, len(SEEDS))
    changed = [(s0.clone(), returns.clone(), kept.clone()) for s0, returns, kept in rounds]
    for s0, returns, kept in changed:
        s0[0], returns[0], kept[0] = 0.5, returns[0] + 100, True
    a, b = (Z_POLICIES[name](cfg, 3, SEEDS, "cpu") for _ in range(2))
    drive(a, rounds)
    drive(b, changed)
    assert not torch.equal(a.params[0], b.params[0])
    for k in (1, 2):
        assert_identical(a.member_state(k), b.member_state(k))


@pytest.mark.parametrize("name", list(Z_POLICIES))
def test_a_member_masked_out_or_keeping_nothing_does_not_change(name):
    policy = Z_POLICIES[name](TrainConfig(**SMALL), 3, SEEDS, "cpu")
    drive(policy, rollouts(2, len(SEEDS)))
    before = [policy.member_state(k) for k in range(3)]
    s0, returns, kept = rollouts(1, len(SEEDS), seed=1)[0]
    kept[0], kept[2] = True, False  # member 1 masked out, member 2 keeps nothing (all crashed)
    members = torch.tensor([True, False, True])
    z = policy.sample(s0, uniform=False, members=torch.tensor([True, False, False]))
    stats = policy.update(s0, z, returns, kept, members)
    assert_identical(policy.member_state(1), before[1])
    assert_identical(policy.member_state(2), before[2])
    for values in stats.values():
        assert not values[0].isnan() and values[1:].isnan().all()  # only member 0 learnt
    if policy.learns:
        assert not torch.equal(policy.params[0], before[0]["params"])


@pytest.mark.parametrize("name", list(Z_POLICIES))
def test_member_state_resumes_exactly_in_any_population(name):
    cfg = TrainConfig(**SMALL)
    rounds = rollouts(5, len(SEEDS))
    uninterrupted = Z_POLICIES[name](cfg, 3, SEEDS, "cpu")
    drive(uninterrupted, rounds[:2])
    saved = [uninterrupted.member_state(k) for k in range(3)]
    expected = drive(uninterrupted, rounds[2:])
    resumed = Z_POLICIES[name](cfg, 3, SEEDS, "cpu")
    for k in range(3):
        resumed.load_member_state(k, saved[k])
    alone = Z_POLICIES[name](cfg, 3, [SEEDS[2]], "cpu")  # member 2 resumed as a population of one
    alone.load_member_state(0, saved[2])
    got, got_alone = drive(resumed, rounds[2:]), drive(alone, member(rounds[2:], 2))
    for (z, _), (z_resumed, _), (z_alone, _) in zip(expected, got, got_alone):
        assert torch.equal(z, z_resumed) and torch.equal(z[2:], z_alone)
    for k in range(3):
        assert_identical(resumed.member_state(k), uninterrupted.member_state(k))
    assert_identical(alone.member_state(0), uninterrupted.member_state(2))


def test_a_checkpoint_of_another_seed_is_refused():
    policy = ReinforceZ(TrainConfig(**SMALL), 3, SEEDS, "cpu")
    with pytest.raises(ValueError, match="does not belong"):
        policy.load_member_state(0, policy.member_state(1))


def test_fifo_keeps_each_members_last_episodes_in_order():
    cfg = TrainConfig(**{**SMALL, "bandit_buffer": 4})
    policy = ReinforceZ(cfg, 1, [0, 1], "cpu")
    s0 = torch.arange(12.0).view(2, 6, 1)
    kept = torch.tensor([[True] * 6, [True, False, True, False, False, False]])
    policy.update(s0, torch.zeros(2, 6, dtype=torch.int64), s0[..., 0], kept, everyone(2))
    fifo = policy.fifo
    # member 0 wrote 0..5 into 4 slots: 4, 5 overwrote 0, 1; member 1 kept episodes 0 and 2
    assert fifo.ret[0].tolist() == [4.0, 5.0, 2.0, 3.0] and fifo.ret[1, :2].tolist() == [6.0, 8.0]
    assert fifo.size.tolist() == [4, 2] and fifo.next.tolist() == [2, 2]
