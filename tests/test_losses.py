"""Losses against values worked by hand on tiny tensors."""

import math

import pytest
import torch

from baselines.vdn import VDNLearner
from maven.batch import EpisodeBatch
from maven.config import TrainConfig
from maven.discriminator import GRUDiscriminator, discriminator_inputs, mi_loss
from maven.envs.base import EnvInfo

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
    learner = VDNLearner(TrainConfig(gamma=0.5, double_q=double_q), INFO, "cpu", seeds=[0])
    learner.unroll = lambda agent, batch: (TARGET_Q, None)
    loss, _ = learner.td_loss(learner.member_nets(0), hand_batch(), LIVE_Q)
    assert loss.item() == pytest.approx(expected)


def test_padded_steps_do_not_count_in_the_td_loss():
    learner = VDNLearner(TrainConfig(gamma=0.5), INFO, "cpu", seeds=[0])
    learner.unroll = lambda agent, batch: (TARGET_Q, None)
    batch = hand_batch()
    batch.filled[0, 1] = False
    loss, _ = learner.td_loss(learner.member_nets(0), batch, LIVE_Q)
    assert loss.item() == pytest.approx(4.0)


class HandNets:
    """Networks replaced by fixed numbers: the agents' Q-values come from `unroll` below, the
    mixer sums (as VDN), and the discriminator returns fixed per-step logits."""

    agent, target_agent = "live", "target"

    def __init__(self, logits):
        self.logits = logits

    def mixer(self, agent_qs, state):
        return agent_qs.sum(-1)

    target_mixer = mixer

    def discriminator(self, p, lengths):
        return self.logits


@pytest.mark.parametrize("sign, expected_td", [
    # targets y_t + sign * 0.1 * CE_t with CE = (-log 0.75, log 2) and y = (3, 2) (the VDN case above):
    ("as_coded", ((5 - (3 + 0.1 * -math.log(0.75))) ** 2 + (6 - (2 + 0.1 * math.log(2.0))) ** 2) / 2),
    ("corrected", ((5 - (3 - 0.1 * -math.log(0.75))) ** 2 + (6 - (2 - 0.1 * math.log(2.0))) ** 2) / 2),
])
def test_maven_loss_is_td_plus_weighted_mi_with_the_q3_intrinsic_sign(sign, expected_td):
    from maven.maven_learner import MavenLearner

    cfg = TrainConfig(gamma=0.5, noise_dim=2, rnn_discrim=False, mi_loss=2.0, mi_intrinsic=True,
                      mi_scaler=0.1, mi_intrinsic_sign=sign)
    learner = MavenLearner(cfg, INFO, "cpu", seeds=[0])
    learner.unroll = lambda agent, batch: (LIVE_Q if agent == "live" else TARGET_Q, None)
    batch = hand_batch()
    batch.z[0] = 1
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])  # CE of z = 1: -log 0.75, then log 2
    loss, stats = learner.loss(HandNets(logits), batch)
    mi = (-math.log(0.75) + math.log(2.0)) / 2
    assert stats["mi_loss"].item() == pytest.approx(mi)
    assert stats["td_loss"].item() == pytest.approx(expected_td)
    assert loss.item() == pytest.approx(expected_td + 2.0 * mi)  # L_TD + mi_loss * L_MI


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
    # more padding than the batch's own longest episode (a population pads to the longest of
    # any member) reads the same states: as coded, the state after this batch's longest episode
    padded = torch.cat([p, torch.zeros(2, 4, 2)], 1)
    assert torch.allclose(disc(padded, lengths), logits)
