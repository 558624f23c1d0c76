"""QTRAN-base and QTRAN-alt: losses against values worked by hand, quirks Q9–Q12, gradient flow,
and a few learner updates. All tiny: B = 1, T = 1, N = 2, A = 2 for the hand-worked cases."""

import copy

import pytest
import torch

from baselines.qtran import (
    QTranAltLearner,
    QTranBaseLearner,
    bootstrap_actions,
    counterfactual_inputs,
    qtran_alt_losses,
    qtran_base_losses,
)
from maven.batch import EpisodeBatch
from maven.config import TrainConfig
from maven.envs.base import EnvInfo
from maven.learner import Nets
from maven.members import tree_map


def t(values, dtype=torch.float32):
    """A [1, 1, ...] tensor (B = 1, T = 1) from nested lists."""
    return torch.tensor(values, dtype=dtype).reshape(1, 1, *torch.tensor(values).shape)


# --- QTRAN-base, by hand -----------------------------------------------------------------------
# Utilities Q_0 = [1, 3], Q_1 = [2, 0]; taken u = (0, 1) -> Σ Q_i(u_i) = 1 + 0 = 1;
# greedy ū = (1, 0) -> Σ max Q_i = 3 + 2 = 5. Q_jt(u) = 2, Q_jt(ū) = 4, V = 0.5,
# Q⁻_jt(t+1) = 3, r = 1, γ = 0.5 -> y = 1 + 0.5·3 = 2.5.
BASE = {
    "utilities": t([[1.0, 3.0], [2.0, 0.0]]), "actions": t([0, 1], torch.long), "greedy": t([1, 0], torch.long),
    "joint_q_taken": t(2.0), "joint_q_greedy": t(4.0), "v_jt": t(0.5), "target_joint_q_next": t(3.0),
    "reward": t(1.0), "terminated": t(False, torch.bool), "mask": t(1.0),
}


def base_losses(**changes):
    args = {**BASE, **changes}
    return qtran_base_losses(**args, gamma=0.5, opt_loss_coef=1.0, nopt_min_loss_coef=0.1)


def test_base_losses_by_hand():
    loss, terms = base_losses()
    assert terms["td_loss"].item() == pytest.approx(0.25)  # (2 − 2.5)²
    assert terms["opt_loss"].item() == pytest.approx(2.25)  # (5 − 4 + 0.5)²
    assert terms["nopt_loss"].item() == pytest.approx(0.25)  # min(1 − 2 + 0.5, 0)² = (−0.5)²
    assert loss.item() == pytest.approx(0.25 + 2.25 + 0.1 * 0.25)  # 2.525


def test_base_nopt_is_zero_when_positive_and_terminal_drops_bootstrap():
    _, terms = base_losses(v_jt=t(2.0), terminated=t(True, torch.bool))
    assert terms["nopt_loss"].item() == 0.0  # min(1 − 2 + 2, 0) = 0
    assert terms["td_loss"].item() == pytest.approx(1.0)  # y = r = 1: (2 − 1)²
    assert terms["opt_loss"].item() == pytest.approx(9.0)  # (5 − 4 + 2)²


def test_base_masked_mean_ignores_padded_steps():
    def two_steps(x, pad):
        return torch.cat([x, torch.full_like(x, pad)], dim=1)

    padded = {k: two_steps(v, 1 if v.dtype == torch.long else 7) for k, v in BASE.items()
              if k not in ("terminated", "mask")}
    loss, _ = qtran_base_losses(**padded, terminated=two_steps(BASE["terminated"], 0),
                                mask=torch.tensor([[1.0, 0.0]]), gamma=0.5, opt_loss_coef=1.0,
                                nopt_min_loss_coef=0.1)
    assert loss.item() == pytest.approx(2.525)


def test_base_gradients_by_hand():
    utilities = BASE["utilities"].clone().requires_grad_()
    joint_q_taken, joint_q_greedy = t(2.0).requires_grad_(), t(4.0).requires_grad_()
    loss, _ = base_losses(utilities=utilities, joint_q_taken=joint_q_taken, joint_q_greedy=joint_q_greedy)
    loss.backward()
    # L_opt: 2·1.5 = 3 at the greedy utilities; L_nopt: 0.1·2·(−0.5) = −0.1 at the taken ones.
    assert torch.allclose(utilities.grad, t([[-0.1, 3.0], [3.0, -0.1]]))
    assert joint_q_taken.grad.item() == pytest.approx(-1.0)  # L_td only: 2·(2 − 2.5)
    assert joint_q_greedy.grad is None  # stop-gradient inside L_opt


# --- QTRAN-alt, by hand ------------------------------------------------------------------------
# Utilities Q_0 = [1, 3], Q_1 = [2, 4]; taken u = (0, 0): Q_i(u_i) = (1, 2), Σ = 3;
# greedy ū = (1, 1): Σ max = 3 + 4 = 7. V = 0.5, r = 1, γ = 0.5.
# Q_jt(s, ·, u_{−i}): agent 0 [2, 8], agent 1 [5, 1]  -> at u_i: (2, 5)
# Q_jt(s, ·, ū_{−i}): agent 0 [6, 7], agent 1 [0, 8]  -> at ū_i: (7, 8)
# Q⁻_jt(s', ·, ū⁻_{−i}): agent 0 [1, 2], agent 1 [3, 4], ū⁻ = (1, 0) -> (2, 3); y = (2, 2.5)
ALT = {
    "utilities": t([[1.0, 3.0], [2.0, 4.0]]), "avail": t([[True, True], [True, True]], torch.bool),
    "actions": t([0, 0], torch.long), "greedy": t([1, 1], torch.long),
    "joint_q_taken": t([[2.0, 8.0], [5.0, 1.0]]), "joint_q_greedy": t([[6.0, 7.0], [0.0, 8.0]]),
    "v_jt": t(0.5), "target_joint_q_next": t([[1.0, 2.0], [3.0, 4.0]]),
    "target_next_actions": t([1, 0], torch.long), "reward": t(1.0), "terminated": t(False, torch.bool),
    "mask": t(1.0),
}
AS_CODED = {"opt_detach_agents": True, "nopt_double_count": True, "nopt_include_unavailable": True}


def alt_losses(flags=AS_CODED, **changes):
    args = {**ALT, **changes}
    return qtran_alt_losses(**args, gamma=0.5, opt_loss_coef=1.0, nopt_min_loss_coef=1.0, **flags)


def test_alt_losses_as_coded_by_hand():
    loss, terms = alt_losses()
    assert terms["td_loss"].item() == pytest.approx(3.125)  # ((2 − 2)² + (5 − 2.5)²) / 2
    assert terms["opt_loss"].item() == pytest.approx(0.25)  # ((7 − 7 + .5)² + (7 − 8 + .5)²) / 2
    # L_nopt-min, Q_i(a) + Σ_j Q_j(u_j) − Q_jt[a] + V with Σ_j = 3:
    #   agent 0: a=0: 1 + 3 − 2 + .5 = 2.5, a=1: 3 + 3 − 8 + .5 = −1.5 -> min −1.5 -> 2.25
    #   agent 1: a=0: 2 + 3 − 5 + .5 = 0.5, a=1: 4 + 3 − 1 + .5 = 6.5  -> min 0.5  -> 0.25
    assert terms["nopt_loss"].item() == pytest.approx(1.25)
    assert loss.item() == pytest.approx(3.125 + 0.25 + 1.25)


def test_alt_q10_double_count_vs_fixed():
    fixed = {**AS_CODED, "nopt_double_count": False}
    _, terms = alt_losses(fixed)
    # Excluding j = i shifts agent i's whole row, hence its min, by −Q_i(u_i) = (−1, −2):
    #   agent 0: −1.5 − 1 = −2.5 -> 6.25; agent 1: 0.5 − 2 = −1.5 -> 2.25
    assert terms["nopt_loss"].item() == pytest.approx((6.25 + 2.25) / 2)  # 4.25 vs 1.25 as coded
    _, coded = alt_losses()
    assert terms["td_loss"].item() == coded["td_loss"].item()
    assert terms["opt_loss"].item() == coded["opt_loss"].item()


def test_alt_q11_unavailable_action_vs_fixed():
    avail = t([[True, False], [True, True]], torch.bool)  # agent 0's action 1 unavailable
    _, coded = alt_losses(avail=avail)
    assert coded["nopt_loss"].item() == pytest.approx(1.25)  # min still reaches the unavailable −1.5
    _, fixed = alt_losses({**AS_CODED, "nopt_include_unavailable": False}, avail=avail)
    # agent 0 only has a=0: 2.5 -> 6.25; agent 1 unchanged 0.25
    assert fixed["nopt_loss"].item() == pytest.approx((6.25 + 0.25) / 2)
    _, both = alt_losses({**AS_CODED, "nopt_include_unavailable": False, "nopt_double_count": False},
                         avail=avail)
    assert both["nopt_loss"].item() == pytest.approx((1.5 ** 2 + 1.5 ** 2) / 2)  # agent 0: 2.5 − 1


def test_alt_q11_fixed_is_finite_on_steps_without_actions():
    """Padded steps have no available action; the fixed min must not turn them into inf or NaN."""
    pad = {k: torch.cat([v, v], 1) for k, v in ALT.items() if k not in ("avail", "mask")}
    avail = torch.cat([ALT["avail"], torch.zeros_like(ALT["avail"])], 1)
    utilities = pad.pop("utilities").requires_grad_()
    loss, terms = qtran_alt_losses(utilities, avail, **{k: v for k, v in pad.items()},
                                   mask=torch.tensor([[1.0, 0.0]]), gamma=0.5, opt_loss_coef=1.0,
                                   nopt_min_loss_coef=1.0, opt_detach_agents=True, nopt_double_count=True,
                                   nopt_include_unavailable=False)
    loss.backward()
    assert terms["nopt_loss"].item() == pytest.approx(1.25)
    assert torch.isfinite(utilities.grad).all()


def test_alt_terminal_drops_bootstrap():
    _, terms = alt_losses(terminated=t(True, torch.bool))
    assert terms["td_loss"].item() == pytest.approx(((2 - 1) ** 2 + (5 - 1) ** 2) / 2)  # y = r = 1


def test_alt_q9_opt_gradient_detached_as_coded_and_flows_when_fixed():
    # With V = 1.5: opt errors (7 − 7 + 1.5, 7 − 8 + 1.5) = (1.5, 0.5); dL_opt/dΣmax = (3 + 1) / 2 = 2.
    for detach, expected in ((True, 0.0), (False, 2.0)):
        utilities = ALT["utilities"].clone().requires_grad_()
        v_jt = t(1.5).requires_grad_()
        _, terms = alt_losses({**AS_CODED, "opt_detach_agents": detach}, utilities=utilities, v_jt=v_jt)
        terms["opt_loss"].backward()
        grad = torch.zeros_like(utilities) if utilities.grad is None else utilities.grad
        assert torch.allclose(grad, t([[0.0, expected], [0.0, expected]]))  # only at ū = (1, 1)
        assert v_jt.grad.item() == pytest.approx(2.0)  # V always learns from L_opt


def test_bootstrap_actions_q12():
    live = t([[1.0, 0.0], [0.0, 1.0]])  # live greedy (0, 1)
    target = t([[0.0, 1.0], [1.0, 0.0]])  # target greedy (1, 0)
    avail = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    assert bootstrap_actions(live, target, avail, use_live_agents=False).tolist() == [[[1, 0]]]
    assert bootstrap_actions(live, target, avail, use_live_agents=True).tolist() == [[[0, 1]]]
    avail[0, 0, 0, 1] = False  # greedy is over available actions only
    assert bootstrap_actions(live, target, avail, use_live_agents=False).tolist() == [[[0, 0]]]
    # In the loss, ū⁻ = (1, 0) reads (2, 3) from Q⁻_jt; ū = (0, 1) reads (1, 4): y = (1.5, 3).
    _, terms = alt_losses(target_next_actions=t([0, 1], torch.long))
    assert terms["td_loss"].item() == pytest.approx(((2 - 1.5) ** 2 + (5 - 3) ** 2) / 2)


def test_counterfactual_inputs_zero_own_slot():
    state = torch.tensor([[[9.0]]])  # [1, 1, S=1]
    inputs = counterfactual_inputs(state, t([1, 0], torch.long), n_actions=2)  # [1, 1, 2, 1 + 4 + 2]
    assert inputs[0, 0].tolist() == [[9.0, 0, 0, 1, 0, 1, 0],  # agent 0 sees only agent 1's action 0
                                     [9.0, 0, 1, 0, 0, 0, 1]]  # agent 1 sees only agent 0's action 1


# --- the learners ------------------------------------------------------------------------------
INFO = EnvInfo(n_agents=2, n_actions=3, obs_dim=5, state_dim=4, episode_limit=4, has_win=False)


def make_cfg(algo, **changes):
    return TrainConfig(algo=algo, rnn_hidden_dim=8, mixing_embed_dim=8, batch_size=3, **changes)


def random_batch(seed=0, B=3, T=4, info=INFO):
    g = torch.Generator().manual_seed(seed)
    N, A = info.n_agents, info.n_actions
    lengths = torch.tensor([T, 2, 3][:B])
    filled = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
    present = torch.cat([filled, filled[:, -1:]], 1)  # obs positions 0..length are real
    present[torch.arange(B), lengths] = True
    avail = torch.rand(B, T + 1, N, A, generator=g) < 0.7
    avail[..., 0] = True
    avail &= present[..., None, None]
    q_choice = torch.rand(B, T, N, A, generator=g).masked_fill(~avail[:, :-1], -1)
    actions = q_choice.argmax(-1) * filled[..., None]
    terminated = torch.zeros(B, T, dtype=torch.bool)
    terminated[1, 1] = True  # episode 1 ends in a terminal state; the others time out or run on
    return EpisodeBatch(
        obs=torch.randn(B, T + 1, N, info.obs_dim, generator=g) * present[..., None, None],
        state=torch.randn(B, T + 1, info.state_dim, generator=g) * present[..., None],
        avail_actions=avail, actions=actions, reward=torch.randn(B, T, generator=g) * filled,
        terminated=terminated, filled=filled, z=torch.zeros(B, dtype=torch.long))


LEARNERS = [(QTranBaseLearner, "qtran_base", {}), (QTranBaseLearner, "qtran_base", {"qtran_network_size": "big"}),
            (QTranAltLearner, "qtran_alt", {}),
            (QTranAltLearner, "qtran_alt", {"qtran_alt_opt_detach_agents": False,
                                            "qtran_alt_nopt_double_count": False,
                                            "qtran_alt_nopt_include_unavailable": False,
                                            "qtran_alt_double_q": True, "qtran_network_size": "big"})]


def make_learner(cls, algo, seed=0, **changes):
    return cls(make_cfg(algo, **changes), INFO, torch.device("cpu"), seeds=[seed])


def one_member(batch):
    return batch.map(lambda x: x.unsqueeze(0))  # [1, B, ...]: a population of one


def update(learner, batch, episode):
    return learner.update(one_member(batch), torch.tensor([episode]), torch.tensor([True]))


def live_nets(learner):
    """Member 0's networks on parameters that collect gradients: (nets, params)."""
    params = tree_map(lambda x: x[0].clone().requires_grad_(), learner.params)
    targets = tree_map(lambda x: x[0], learner.target_params)
    return Nets(learner.modules, params, targets), params


def term_grads(learner, term):
    """Gradient of one loss term on (agent, mixer) parameters: name -> grad or None."""
    nets, params = live_nets(learner)
    _, terms = learner.loss_terms(nets, random_batch())
    terms[term].backward()
    return ({n: p.grad for n, p in params["agent"].items()}, {n: p.grad for n, p in params["mixer"].items()})


def nonzero(grad):
    return grad is not None and grad.abs().sum().item() > 0


def flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


@pytest.mark.parametrize("cls,algo,changes", LEARNERS)
def test_updates_run_and_change_parameters(cls, algo, changes):
    learner = make_learner(cls, algo, target_update_interval=2, **changes)
    before = copy.deepcopy(learner.member_state(0))
    for episode in range(1, 4):
        stats = update(learner, random_batch(seed=episode), episode * 3)
        assert all(torch.isfinite(v).all() for v in stats.values()), stats
    assert set(stats) >= {"td_loss", "opt_loss", "nopt_loss", "grad_norm"}
    after = learner.member_state(0)
    for group in ("params", "target_params"):
        for part in ("agent", "mixer"):
            b, a = flat(before[group][part]), flat(after[group][part])
            assert any(not torch.equal(b[k], a[k]) for k in a), (group, part)


def test_base_gradient_flow():
    learner = make_learner(QTranBaseLearner, "qtran_base")
    agent, _ = term_grads(learner, "opt_loss")
    assert nonzero(agent["fc2.weight"]) and nonzero(agent["rnn.weight_hh_l0"])  # L_opt reaches the agents
    agent, mixer = term_grads(learner, "td_loss")
    # Hidden states enter Q_jt undetached: L_td trains the agent trunk but not the utility head.
    assert nonzero(agent["rnn.weight_hh_l0"]) and not nonzero(agent["fc2.weight"])
    assert nonzero(mixer["action_encoding.0.weight"]) and not nonzero(mixer["v.0.weight"])


def test_alt_q9_gradient_flow_in_learner():
    coded = make_learner(QTranAltLearner, "qtran_alt")
    agent, mixer = term_grads(coded, "opt_loss")
    assert not any(nonzero(g) for g in agent.values())  # as coded L_opt trains only V
    assert nonzero(mixer["v.0.weight"]) and not nonzero(mixer["q.0.weight"])
    fixed = make_learner(QTranAltLearner, "qtran_alt", qtran_alt_opt_detach_agents=False)
    agent, _ = term_grads(fixed, "opt_loss")
    assert nonzero(agent["fc2.weight"])
    agent, _ = term_grads(coded, "nopt_loss")
    assert nonzero(agent["fc2.weight"])  # L_nopt-min reaches the utilities in both settings


def test_q12_learner_action_choice():
    batch = random_batch()
    for cls, algo, flag in ((QTranAltLearner, "qtran_alt", "qtran_alt_double_q"),
                            (QTranBaseLearner, "qtran_base", "double_q")):
        for use_live in (False, True):
            # Alt as coded ignores double_q: set it opposite to the flag under test.
            changes = {flag: use_live, **({"double_q": not use_live} if algo == "qtran_alt" else {})}
            learner = make_learner(cls, algo, **changes)
            for p in learner.target_params["agent"].values():
                p.add_(torch.randn_like(p))
            nets = learner.member_nets(0)
            q, _ = learner.unroll(nets.agent, batch)
            target_q, _ = learner.unroll(nets.target_agent, batch)
            chosen = learner.bootstrap_actions(q, target_q, batch.avail_actions)
            expected = (q if use_live else target_q)[:, 1:].masked_fill(~batch.avail_actions[:, 1:], -1e9)
            assert torch.equal(chosen, expected.argmax(-1)), (algo, use_live)


@pytest.mark.parametrize("cls,algo,changes", LEARNERS[::2])
def test_member_state_round_trip(cls, algo, changes):
    learner = make_learner(cls, algo, **changes)
    update(learner, random_batch(seed=1), 1)
    state = copy.deepcopy(learner.member_state(0))
    restored = make_learner(cls, algo, seed=5, **changes)  # a different init, then overwritten
    batch = random_batch(seed=2)
    assert not torch.equal(learner.member_loss(0, batch)[0], restored.member_loss(0, batch)[0])
    restored.load_member_state(0, state)
    assert torch.equal(learner.member_loss(0, batch)[0], restored.member_loss(0, batch)[0])
    update(learner, batch, 2)
    update(restored, batch, 2)
    a, b = flat(learner.member_state(0)["params"]), flat(restored.member_state(0)["params"])
    for k, v in a.items():
        assert torch.equal(v, b[k]), k
