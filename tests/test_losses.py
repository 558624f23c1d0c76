"""Losses against values worked by hand on tiny tensors."""

import math

import numpy as np
import pytest
import torch

from baselines.vdn import VDNLearner
from maven.batch import EpisodeBatch
from maven.config import TrainConfig
from maven.discriminator import GRUDiscriminator, discriminator_inputs, mi_loss
from maven.envs.base import EnvInfo
from maven.zpolicy import ReinforceZ

INFO = EnvInfo(n_agents=2, n_actions=2, obs_dim=3, state_dim=3, episode_limit=2, has_win=False)


def hand_batch():
    avail = torch.ones(1, 3, 2, 2, dtype=torch.bool)
    avail[0, 2, 1, 1] = False  # agent 1 may not take action 1 at the last position
    return EpisodeBatch(
        obs=torch.zeros(1, 3, 2, 3), state=torch.zeros(1, 3, 3), avail_actions=avail,
        actions=torch.tensor([[[1, 0], [1, 1]]]), reward=torch.tensor([[1.0, 2.0]]),
        terminated=torch.tensor([[False, True]]), filled=torch.tensor([[True, True]]),
        z=torch.zeros(1, dtype=torch.long))


LIVE_Q = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]], [[0.0, 5.0], [2.0, 1.0]], [[4.0, 1.0], [0.0, 6.0]]]])
TARGET_Q = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]], [[7.0, 3.0], [1.0, 2.0]], [[2.0, 9.0], [5.0, 8.0]]]])


@pytest.mark.parametrize("double_q, expected", [(True, 10.0), (False, 8.125)])
def test_vdn_double_q_td_loss_matches_hand_computation(double_q, expected):
    # chosen Q_tot: t0 = 2 + 3 = 5, t1 = 5 + 1 = 6 (gamma 0.5)
    # double Q: next actions from the live net -> targets 1 + 0.5 * (3 + 1) = 3 and 2 (terminal)
    #   loss = ((5 - 3)^2 + (6 - 2)^2) / 2 = 10
    # plain max over the target net: 1 + 0.5 * (7 + 2) = 5.5 -> ((-0.5)^2 + 4^2) / 2 = 8.125
    learner = VDNLearner(TrainConfig(gamma=0.5, double_q=double_q), INFO, "cpu")
    learner.unroll = lambda agent, batch: (TARGET_Q, None)
    loss, _ = learner.td_loss(hand_batch(), LIVE_Q)
    assert loss.item() == pytest.approx(expected)


def test_padded_steps_do_not_count_in_the_td_loss():
    learner = VDNLearner(TrainConfig(gamma=0.5), INFO, "cpu")
    learner.unroll = lambda agent, batch: (TARGET_Q, None)
    batch = hand_batch()
    batch.filled[0, 1] = False
    loss, _ = learner.td_loss(batch, LIVE_Q)
    assert loss.item() == pytest.approx(4.0)


def test_mi_cross_entropy_per_step_and_per_episode():
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])  # [B=1, T=2, K=2], true z = 1
    loss, per_step = mi_loss(logits, torch.tensor([1]), torch.ones(1, 2))
    assert per_step[0].tolist() == pytest.approx([-math.log(0.75), math.log(2.0)])
    assert loss.item() == pytest.approx((-math.log(0.75) + math.log(2.0)) / 2)
    episode_logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    loss, _ = mi_loss(episode_logits, torch.tensor([0, 1]), None)
    assert loss.item() == pytest.approx((-math.log(0.75) + math.log(2.0)) / 2)


def test_padded_steps_give_a_uniform_discriminator_input():
    q = torch.tensor([[[[5.0, 1.0]], [[2.0, 2.0]]]])  # [B, T, N=1, A=2]
    avail = torch.tensor([[[[True, True]], [[False, False]]]])
    p = discriminator_inputs(q, avail, torch.zeros(1, 2, 1), hard=False)
    assert p[0, 1, :2].tolist() == [0.5, 0.5]
    assert p[0, 0, 0].item() == pytest.approx(1 / (1 + math.exp(-4)))


@pytest.mark.parametrize("as_coded", [True, False])
def test_gru_discriminator_final_state_quirk_q1(as_coded):
    cfg = TrainConfig(noise_dim=3, rnn_agg_size=4, discrim_size=5, discrim_layers=2,
                      discrim_gru_uses_padded_final_state=as_coded)
    disc = GRUDiscriminator(2, cfg)
    p = torch.randn(2, 3, 2)
    lengths = torch.tensor([1, 3])
    logits = disc(p, lengths)
    short_alone = disc(p[:1, :1], torch.tensor([1]))  # the short episode without its padding
    full = disc(p[:1], torch.tensor([3]))
    assert torch.allclose(logits[0], full[0] if as_coded else short_alone[0])
    assert not torch.allclose(short_alone, full)
    assert torch.allclose(logits[1], disc(p[1:], torch.tensor([3]))[0])


def _torch_reinforce_loss(params, s0, z, ret, c, mode):
    w1, b1, w2, b2 = (torch.tensor(params[k], requires_grad=True) for k in ("w1", "b1", "w2", "b2"))
    logp = torch.log_softmax(torch.relu(torch.tensor(s0) @ w1 + b1) @ w2 + b2, -1)
    chosen = logp[torch.arange(len(z)), torch.tensor(z)]
    if mode == "as_coded":
        loss = -(chosen * torch.tensor(ret)).sum() + c * chosen.sum()
    else:
        loss = -(chosen * torch.tensor(ret)).sum() - c * (-(logp.exp() * logp).sum(-1)).sum()
    loss.backward()
    return loss.item(), {"w1": w1.grad, "b1": b1.grad, "w2": w2.grad, "b2": b2.grad}


@pytest.mark.parametrize("mode", ["as_coded", "true_entropy"])
def test_reinforce_z_policy_gradients_and_adam_match_autograd(mode):
    cfg = TrainConfig(noise_dim=4, entropy_scaling=0.3, ez_entropy=mode, lr=0.01)
    policy = ReinforceZ(cfg, state_dim=3, seed=0)
    rng = np.random.default_rng(1)
    s0, z, ret = rng.normal(size=(5, 3)), rng.integers(4, size=5), rng.normal(size=5) * 3
    loss, grads, _ = policy.loss_and_grads(s0, z, ret)
    ref_loss, ref_grads = _torch_reinforce_loss(policy.params, s0, z, ret, 0.3, mode)
    assert loss == pytest.approx(ref_loss)
    for k in grads:
        np.testing.assert_allclose(grads[k], ref_grads[k].numpy(), rtol=1e-6, atol=1e-9)
    # two Adam steps by hand equal torch.optim.Adam's
    ref = {k: torch.tensor(v, requires_grad=True) for k, v in policy.params.items()}
    adam = torch.optim.Adam(ref.values(), lr=0.01)
    for _ in range(2):
        _, grads, _ = policy.loss_and_grads(s0, z, ret)
        policy._adam_step(grads)
        for k, p in ref.items():
            p.grad = torch.tensor(grads[k]) if _ == 0 else _torch_reinforce_loss(
                {n: q.detach().numpy() for n, q in ref.items()}, s0, z, ret, 0.3, mode)[1][k]
        adam.step()
    for k, value in ref.items():
        np.testing.assert_allclose(policy.params[k], value.detach().numpy(), rtol=1e-6, atol=1e-9)


def test_reinforce_prefers_the_better_latent():
    cfg = TrainConfig(noise_dim=2, bandit_iters=20, bandit_batch=16, lr=0.01)
    policy = ReinforceZ(cfg, state_dim=2, seed=0)
    s0 = np.ones((1, 2))
    for _ in range(30):
        z = policy.sample(s0, uniform=False)
        policy.update(s0, z, np.where(z == 1, 1.0, 0.0))
    assert policy.probs(s0)[0, 1] > 0.9


def test_returns_bandit_regresses_returns_and_prefers_the_better_latent():
    from maven.zpolicy import ReturnsBandit

    cfg = TrainConfig(noise_dim=2, bandit_iters=10, bandit_batch=16, lr=0.001, bandit_epsilon=0.1)
    bandit = ReturnsBandit(cfg, state_dim=2, seed=0)
    s0 = np.ones((4, 2))
    for _ in range(60):
        z = bandit.sample(s0, uniform=False)
        bandit.update(s0, z, np.where(z == 1, 1.0, 0.0))
    with torch.no_grad():
        predicted = bandit.net(torch.ones(1, 2, dtype=torch.float64))[0] * cfg.bandit_reward_scaling
    assert predicted.tolist() == pytest.approx([0.0, 1.0], abs=0.15)  # regresses each z's return
    # samples from 0.9 * softmax(predicted returns) + 0.1 / K: about 0.9 * 0.73 + 0.05 for z = 1
    assert bandit.probs(s0[:1])[0, 1] == pytest.approx(0.9 / (1 + np.exp(-1)) + 0.05, abs=0.05)


@pytest.mark.parametrize("mismatch", [True, False])
def test_returns_bandit_state_input_quirk_q18(mismatch):
    from maven.zpolicy import ReturnsBandit

    cfg = TrainConfig(noise_dim=2, bandit_use_state=False, returns_bandit_state_mismatch=mismatch)
    bandit = ReturnsBandit(cfg, state_dim=3, seed=0)
    s0 = np.full((1, 3), 5.0)
    acting = bandit._inputs(s0, acting=True)
    assert torch.equal(acting, torch.full((1, 3), 5.0, dtype=torch.float64) if mismatch else torch.ones(1, 3,
                       dtype=torch.float64))
    assert torch.equal(bandit._inputs(s0, acting=False), torch.ones(1, 3, dtype=torch.float64))
