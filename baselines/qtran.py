"""QTRAN: utilities Q_i trained to factorise a learned joint action-value Q_jt.

Two variants, each reproducing its source:
- QTRAN-base as PyMARL codes it (reference §3.3): Q_jt reads the agents' GRU hidden states and
  actions, a scalar per joint action; L_opt and L_nopt tie Σ_i Q_i to Q_jt − V_jt.
- QTRAN-alt as the MAVEN repository codes it (reference §3.4): a counterfactual Q_jt(s, ·, u_{−i})
  per agent on the state and the others' actions, with the quirks Q9–Q12 behind config flags.

The loss arithmetic lives in `qtran_base_losses` and `qtran_alt_losses`, pure functions of
tensors, so it can be checked against values worked by hand.
"""

from __future__ import annotations

import torch
from torch import nn

from maven.batch import EpisodeBatch
from maven.learner import QLearner, greedy_actions, td_targets
from maven.networks import one_hot


def _mlp(in_dim: int, embed: int, out_dim: int, hidden_layers: int) -> nn.Sequential:
    """Linear(in -> E) ReLU, then (hidden_layers − 1) × [Linear(E -> E) ReLU], then Linear(E -> out)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, embed), nn.ReLU()]
    for _ in range(hidden_layers - 1):
        layers += [nn.Linear(embed, embed), nn.ReLU()]
    layers.append(nn.Linear(embed, out_dim))
    return nn.Sequential(*layers)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ m·v / Σ m, with mask [B, T] broadcast over any trailing (agent) dimension of values."""
    mask = mask.reshape(*mask.shape, *([1] * (values.dim() - mask.dim()))).expand_as(values)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def bootstrap_actions(live_q_next: torch.Tensor, target_q_next: torch.Tensor, avail_next: torch.Tensor,
                      use_live_agents: bool) -> torch.Tensor:
    """The joint action ū_{t+1} the TD target evaluates: greedy over available actions of the
    live agents (double Q) or of the target agents. All [B, T, N, A] -> [B, T, N]."""
    chooser = live_q_next.detach() if use_live_agents else target_q_next
    return greedy_actions(chooser, avail_next)


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [..., A] at index [...] -> [...]."""
    return values.gather(-1, index.unsqueeze(-1)).squeeze(-1)


class _QTranLearner(QLearner):
    """QTRAN replaces QLearner's TD-through-the-mixer loss; `loss_terms` keeps the terms attached."""

    def loss_terms(self, nets, batch: EpisodeBatch):
        raise NotImplementedError

    def loss(self, nets, batch: EpisodeBatch):
        loss, terms = self.loss_terms(nets, batch)
        return loss, {name: value.detach() for name, value in terms.items()}


# --- QTRAN-base (PyMARL) ------------------------------------------------------------------------
class QTranBaseMixer(nn.Module):
    """PyMARL's `qtran_paper` joint network: Q_jt([s ⊕ Σ_i enc(h_i ⊕ onehot(u_i))]) and V_jt(s)."""

    def __init__(self, n_agents: int, n_actions: int, state_dim: int, hidden_dim: int, embed_dim: int,
                 network_size: str):
        super().__init__()
        self.n_actions = n_actions
        enc_dim = hidden_dim + n_actions
        hidden_layers = 2 if network_size == "small" else 3
        self.action_encoding = nn.Sequential(nn.Linear(enc_dim, enc_dim), nn.ReLU(), nn.Linear(enc_dim, enc_dim))
        self.q = _mlp(state_dim + enc_dim, embed_dim, 1, hidden_layers)
        self.v = _mlp(state_dim, embed_dim, 1, hidden_layers)

    def forward(self, hidden: torch.Tensor, actions: torch.Tensor, state: torch.Tensor):
        """hidden [B, T, N, H], actions [B, T, N] int, state [B, T, S] -> q_jt [B, T], v_jt [B, T]."""
        actions_onehot = one_hot(actions, self.n_actions, hidden.dtype)  # [B, T, N, A]
        encoding = self.action_encoding(torch.cat([hidden, actions_onehot], -1)).sum(-2)  # [B, T, H+A]
        q_jt = self.q(torch.cat([state, encoding], -1)).squeeze(-1)
        return q_jt, self.v(state).squeeze(-1)


def qtran_base_losses(utilities: torch.Tensor, actions: torch.Tensor, greedy: torch.Tensor,
                      joint_q_taken: torch.Tensor, joint_q_greedy: torch.Tensor, v_jt: torch.Tensor,
                      target_joint_q_next: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor,
                      mask: torch.Tensor, *, gamma: float, opt_loss_coef: float, nopt_min_loss_coef: float):
    """QTRAN-base's L = L_td + opt·L_opt + nopt_min·L_nopt, masked means over valid steps.

    utilities [B, T, N, A] (live agents, steps 0..T−1), actions and greedy (ū_t, over available
    actions) [B, T, N]; joint_q_taken = Q_jt(τ_t, u_t), joint_q_greedy = Q_jt(τ_t, ū_t),
    v_jt = V_jt(s_t), target_joint_q_next = Q⁻_jt(τ_{t+1}, ū_{t+1}), reward, terminated, mask: [B, T].
    Q_jt is a stop-gradient target inside L_opt and L_nopt, so those two train the utilities and V.
    Returns (loss, {"td_loss", "opt_loss", "nopt_loss"}), all still attached to the graph.
    """
    chosen_utility_sum = _gather(utilities, actions).sum(-1)  # [B, T]
    max_utility_sum = _gather(utilities, greedy).sum(-1)  # [B, T]
    targets = td_targets(target_joint_q_next, reward, terminated, gamma).detach()
    td_loss = _masked_mean((joint_q_taken - targets) ** 2, mask)
    opt_error = max_utility_sum - joint_q_greedy.detach() + v_jt
    opt_loss = _masked_mean(opt_error ** 2, mask)
    nopt_error = (chosen_utility_sum - joint_q_taken.detach() + v_jt).clamp(max=0)
    nopt_loss = _masked_mean(nopt_error ** 2, mask)
    loss = td_loss + opt_loss_coef * opt_loss + nopt_min_loss_coef * nopt_loss
    return loss, {"td_loss": td_loss, "opt_loss": opt_loss, "nopt_loss": nopt_loss}


class QTranBaseLearner(_QTranLearner):
    """QTRAN-base as PyMARL: hidden states enter Q_jt undetached, so L_td also trains the agent trunk."""

    def build_mixer(self) -> nn.Module:
        cfg, info = self.cfg, self.info
        return QTranBaseMixer(info.n_agents, info.n_actions, info.state_dim, cfg.rnn_hidden_dim,
                              cfg.mixing_embed_dim, cfg.qtran_network_size)

    def bootstrap_actions(self, q: torch.Tensor, target_q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """ū_{t+1} from the live agents when double_q (PyMARL honours it), else the target agents."""
        return bootstrap_actions(q[:, 1:], target_q[:, 1:], avail[:, 1:], self.cfg.double_q)

    def loss_terms(self, nets, batch: EpisodeBatch):
        q, hidden = self.unroll(nets.agent, batch)  # [B, T+1, N, A], [B, T+1, N, H]
        with torch.no_grad():
            target_q, target_hidden = self.unroll(nets.target_agent, batch)
        greedy = greedy_actions(q.detach(), batch.avail_actions)  # [B, T+1, N]
        state = self.mixer_state(batch)
        joint_q_taken, v_jt = nets.mixer(hidden[:, :-1], batch.actions, state[:, :-1])  # [B, T]
        joint_q_greedy, _ = nets.mixer(hidden[:, :-1], greedy[:, :-1], state[:, :-1])
        with torch.no_grad():
            next_actions = self.bootstrap_actions(q, target_q, batch.avail_actions)
            target_joint_q_next, _ = nets.target_mixer(target_hidden[:, 1:], next_actions, state[:, 1:])
        cfg = self.cfg
        return qtran_base_losses(
            q[:, :-1], batch.actions, greedy[:, :-1], joint_q_taken, joint_q_greedy, v_jt,
            target_joint_q_next, batch.reward, batch.terminated, batch.filled.float(),
            gamma=cfg.gamma, opt_loss_coef=cfg.qtran_opt_loss, nopt_min_loss_coef=cfg.qtran_nopt_min_loss)


# --- QTRAN-alt (MAVEN repository) ----------------------------------------------------------------
def counterfactual_inputs(state: torch.Tensor, actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Per agent i: [s ⊕ one-hot actions of all agents with i's slot zeroed ⊕ onehot(i)].

    state [B, T, S], actions [B, T, N] int -> [B, T, N, S + N·A + N].
    """
    B, T, N = actions.shape
    actions_onehot = one_hot(actions, n_actions, state.dtype)  # [B, T, N, A]
    others = 1.0 - torch.eye(N, dtype=state.dtype, device=state.device)  # [N(i), N(j)]
    others_onehot = actions_onehot.unsqueeze(2) * others.view(N, N, 1)  # [B, T, N(i), N(j), A]
    agent_ids = torch.eye(N, dtype=state.dtype, device=state.device).expand(B, T, N, N)
    return torch.cat([state.unsqueeze(2).expand(B, T, N, state.shape[-1]),
                      others_onehot.reshape(B, T, N, N * n_actions), agent_ids], -1)


class QTranAltMixer(nn.Module):
    """The MAVEN repository's `qtran_alt` network: Q_jt(s, ·, u_{−i}) for each agent i, and V_jt(s).

    `small` is the reference's shape; `big` adds one E -> E layer to each, as QTRAN-base's `big`
    does (the MAVEN repository's `big` shape is not confirmed in the reference).
    """

    def __init__(self, n_agents: int, n_actions: int, state_dim: int, embed_dim: int, network_size: str):
        super().__init__()
        self.n_actions = n_actions
        big = network_size == "big"
        self.q = _mlp(state_dim + n_agents * n_actions + n_agents, embed_dim, n_actions, 3 if big else 2)
        self.v = _mlp(state_dim, embed_dim, 1, 2 if big else 1)

    def forward(self, state: torch.Tensor, actions: torch.Tensor):
        """state [B, T, S], actions [B, T, N] int -> q_jt [B, T, N, A] (agent i's action varies), v_jt [B, T]."""
        q_jt = self.q(counterfactual_inputs(state, actions, self.n_actions))
        return q_jt, self.v(state).squeeze(-1)


def qtran_alt_losses(utilities: torch.Tensor, avail: torch.Tensor, actions: torch.Tensor, greedy: torch.Tensor,
                     joint_q_taken: torch.Tensor, joint_q_greedy: torch.Tensor, v_jt: torch.Tensor,
                     target_joint_q_next: torch.Tensor, target_next_actions: torch.Tensor,
                     reward: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor, *, gamma: float,
                     opt_loss_coef: float, nopt_min_loss_coef: float, opt_detach_agents: bool,
                     nopt_double_count: bool, nopt_include_unavailable: bool):
    """QTRAN-alt's L = L_td + opt·L_opt + nopt_min·L_nopt-min as the MAVEN repository codes it.

    Every term is a mean over (episode, step, agent) with the valid-step mask. utilities and
    avail [B, T, N, A] (steps 0..T−1); actions u_t, greedy ū_t (live agents, over available actions)
    and target_next_actions ū_{t+1} [B, T, N]; joint_q_taken = Q_jt(s_t, ·, u_{−i}),
    joint_q_greedy = Q_jt(s_t, ·, ū_{−i}), target_joint_q_next = Q⁻_jt(s_{t+1}, ·, ū_{−i}) all
    [B, T, N, A]; v_jt, reward, terminated, mask [B, T]. The flags select the quirks:
    opt_detach_agents (Q9) keeps L_opt off the utilities; nopt_double_count (Q10) sums Q_j(u_j) over
    all j, counting agent i's own taken utility next to Q_i(a); nopt_include_unavailable (Q11) takes
    the min over all actions. Returns (loss, {"td_loss", "opt_loss", "nopt_loss"}), still attached.
    """
    mask = mask.unsqueeze(-1)  # [B, T, 1], broadcast over agents
    v_jt = v_jt.unsqueeze(-1)  # [B, T, 1]
    joint_q_chosen = _gather(joint_q_taken, actions)  # [B, T, N]
    target_joint_q_chosen = _gather(target_joint_q_next, target_next_actions)  # [B, T, N]
    targets = td_targets(target_joint_q_chosen, reward.unsqueeze(-1), terminated.unsqueeze(-1), gamma)
    td_loss = _masked_mean((joint_q_chosen - targets.detach()) ** 2, mask)

    opt_utilities = utilities.detach() if opt_detach_agents else utilities
    max_utility_sum = _gather(opt_utilities, greedy).sum(-1, keepdim=True)  # [B, T, 1]
    opt_error = max_utility_sum - _gather(joint_q_greedy, greedy).detach() + v_jt  # [B, T, N]
    opt_loss = _masked_mean(opt_error ** 2, mask)

    chosen_utilities = _gather(utilities, actions)  # [B, T, N]
    others_chosen = chosen_utilities.sum(-1, keepdim=True)  # Σ_j Q_j(u_j), [B, T, 1]
    if not nopt_double_count:
        others_chosen = others_chosen - chosen_utilities  # Σ_{j≠i} Q_j(u_j), [B, T, N]
    nopt_values = (utilities + others_chosen.unsqueeze(-1) - joint_q_taken.detach()
                   + v_jt.unsqueeze(-1))  # [B, T, N, A]
    if nopt_include_unavailable:
        min_nopt = nopt_values.min(-1).values  # [B, T, N]
    else:
        min_nopt = nopt_values.masked_fill(~avail, float("inf")).min(-1).values
        min_nopt = torch.where(avail.any(-1), min_nopt, torch.zeros_like(min_nopt))  # padding: no action
    nopt_loss = _masked_mean(min_nopt ** 2, mask)

    loss = td_loss + opt_loss_coef * opt_loss + nopt_min_loss_coef * nopt_loss
    return loss, {"td_loss": td_loss, "opt_loss": opt_loss, "nopt_loss": nopt_loss}


class QTranAltLearner(_QTranLearner):
    """QTRAN-alt as the MAVEN repository: a counterfactual joint net on states and actions only."""

    def build_mixer(self) -> nn.Module:
        cfg, info = self.cfg, self.info
        return QTranAltMixer(info.n_agents, info.n_actions, info.state_dim, cfg.mixing_embed_dim,
                             cfg.qtran_network_size)

    def bootstrap_actions(self, q: torch.Tensor, target_q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """ū_{t+1} from the target agents as coded (Q12: `double_q` ignored); live ones if fixed."""
        return bootstrap_actions(q[:, 1:], target_q[:, 1:], avail[:, 1:], self.cfg.qtran_alt_double_q)

    def loss_terms(self, nets, batch: EpisodeBatch):
        q, _ = self.unroll(nets.agent, batch)  # [B, T+1, N, A]
        with torch.no_grad():
            target_q, _ = self.unroll(nets.target_agent, batch)
        greedy = greedy_actions(q[:, :-1].detach(), batch.avail_actions[:, :-1])  # [B, T, N]
        state = self.mixer_state(batch)
        joint_q_taken, v_jt = nets.mixer(state[:, :-1], batch.actions)  # [B, T, N, A], [B, T]
        joint_q_greedy, _ = nets.mixer(state[:, :-1], greedy)
        with torch.no_grad():
            next_actions = self.bootstrap_actions(q, target_q, batch.avail_actions)  # [B, T, N]
            target_joint_q_next, _ = nets.target_mixer(state[:, 1:], next_actions)
        cfg = self.cfg
        return qtran_alt_losses(
            q[:, :-1], batch.avail_actions[:, :-1], batch.actions, greedy, joint_q_taken, joint_q_greedy,
            v_jt, target_joint_q_next, next_actions, batch.reward, batch.terminated, batch.filled.float(),
            gamma=cfg.gamma, opt_loss_coef=cfg.qtran_opt_loss, nopt_min_loss_coef=cfg.qtran_nopt_min_loss,
            opt_detach_agents=cfg.qtran_alt_opt_detach_agents,
            nopt_double_count=cfg.qtran_alt_nopt_double_count,
            nopt_include_unavailable=cfg.qtran_alt_nopt_include_unavailable)
