"""Mixer shapes, VDN's sum and QMIX's monotonicity."""

import pytest
import torch

from baselines.qmix import QMixer
from baselines.vdn import VDNMixer


def test_vdn_sums_the_chosen_utilities():
    q = torch.tensor([[[1.0, 2.0, -0.5], [0.0, 3.0, 1.0]]])  # [B=1, T=2, N=3]
    assert VDNMixer()(q, torch.zeros(1, 2, 4)).tolist() == [[2.5, 4.0]]


@pytest.mark.parametrize("layers", [1, 2])
def test_qmix_shape_and_monotonicity(layers):
    mixer = QMixer(n_agents=3, state_dim=5, embed_dim=8, hypernet_layers=layers, hypernet_embed=16)
    q = torch.randn(4, 6, 3, requires_grad=True)
    state = torch.randn(4, 6, 5)
    q_tot = mixer(q, state)
    assert q_tot.shape == (4, 6)
    (grad,) = torch.autograd.grad(q_tot.sum(), q)
    assert (grad >= 0).all() and (grad > 0).any()
    n_params = sum(p.numel() for p in mixer.parameters())
    one_layer = 5 * 24 + 24 + 5 * 8 + 8 + 5 * 8 + 8 + 5 * 8 + 8 + 8 + 1
    assert (n_params == one_layer) == (layers == 1)


def test_maven_hypernetwork_head_is_a_per_agent_matrix_without_bias():
    from maven.networks import HyperHeadAgent

    agent = HyperHeadAgent(input_dim=4, n_actions=3, hidden_dim=5, noise_dim=2, n_agents=2)
    hidden = torch.randn(2, 4, 2, 5)  # [B, T, N, H]
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    q = agent.head(hidden, z)
    for b in range(2):
        for i in range(2):
            w = agent.hyper_w(torch.cat([z[b], torch.eye(2)[i]])).view(3, 5)  # W_i(z) [A, H]
            assert torch.allclose(q[b, :, i], hidden[b, :, i] @ w.T, atol=1e-6)
    assert torch.equal(agent.head(torch.zeros(1, 1, 2, 5), z[:1]), torch.zeros(1, 1, 2, 3))  # no bias


def test_unrolled_gru_and_one_step_cell_match_nn_gru():
    from maven.networks import RNNAgent, gru_unroll

    agent = RNNAgent(input_dim=4, n_actions=3, hidden_dim=6)
    x, h0 = torch.randn(5, 7, 6), torch.randn(5, 6)
    expected, _ = agent.rnn(x, h0.unsqueeze(0))
    assert torch.allclose(gru_unroll(agent.rnn, x, h0), expected, atol=1e-6)
    assert torch.allclose(agent.cell(x[:, 0], h0), expected[:, 0], atol=1e-6)
