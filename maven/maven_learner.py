"""MAVEN: QMIX conditioned on a per-episode latent z, plus the MI term and the z-policy.

- agent: the hypernetwork head on [e_z, agent id] (networks.HyperHeadAgent);
- mixer: QMIX on s ⊕ e_z (one-layer hypernetworks in the original);
- loss: L_TD + mi_loss · L_MI, one RMSprop over agents, mixer and discriminator;
- z-policy: trained separately after every batch of training episodes (zpolicy.py).
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.qmix import QMixer
from maven.batch import EpisodeBatch
from maven.discriminator import GRUDiscriminator, MLPDiscriminator, discriminator_inputs, mi_loss
from maven.learner import QLearner, one_hot_z
from maven.networks import HyperHeadAgent
from maven.zpolicy import Z_POLICIES


class MavenLearner(QLearner):
    has_latent = True

    def __init__(self, cfg, info, device, seeds):
        super().__init__(cfg, info, device, seeds)
        self.z_policy = Z_POLICIES[cfg.z_policy](cfg, info.state_dim, self.seeds, self.device)

    def build_agent(self) -> nn.Module:
        cfg, info = self.cfg, self.info
        return HyperHeadAgent(self.input_dim, info.n_actions, cfg.rnn_hidden_dim, cfg.noise_dim, info.n_agents)

    def build_mixer(self) -> nn.Module:
        cfg, info = self.cfg, self.info
        return QMixer(info.n_agents, info.state_dim + cfg.noise_dim, cfg.mixing_embed_dim,
                      cfg.hypernet_layers, cfg.hypernet_embed)

    def build_extra(self) -> dict[str, nn.Module]:
        in_dim = self.info.n_agents * self.info.n_actions + self.info.state_dim
        disc = GRUDiscriminator if self.cfg.rnn_discrim else MLPDiscriminator
        return {"discriminator": disc(in_dim, self.cfg)}

    def z_onehot(self, z: torch.Tensor) -> torch.Tensor:
        return one_hot_z(z, self.cfg.noise_dim)

    def mixer_state(self, batch: EpisodeBatch) -> torch.Tensor:
        z = self.z_onehot(batch.z)  # [B, K]
        steps = batch.state.shape[1]
        return torch.cat([batch.state, z.unsqueeze(1).expand(-1, steps, -1)], -1)  # [B, T+1, S+K]

    def loss(self, nets, batch: EpisodeBatch):
        cfg = self.cfg
        q, _ = self.unroll(nets.agent, batch)  # [B, T+1, N, A]
        p = discriminator_inputs(q[:, :-1], batch.avail_actions[:, :-1], batch.state[:, :-1], cfg.hard_qs)
        if cfg.mi_intrinsic:
            p = p.detach()
        logits = nets.discriminator(p, batch.lengths)
        mask = batch.filled.float()
        mi, ce_per_step = mi_loss(logits, batch.z, mask)
        intrinsic = None
        if cfg.mi_intrinsic:  # MLP discriminator only (checked in config.resolve)
            sign = 1.0 if cfg.mi_intrinsic_sign == "as_coded" else -1.0  # Q3: as coded adds +CE
            intrinsic = sign * cfg.mi_scaler * ce_per_step.detach()
        td, stats = self.td_loss(nets, batch, q, intrinsic)
        stats["mi_loss"] = mi.detach()
        return td + cfg.mi_loss * mi, stats

    # --- the latent policy ---------------------------------------------------------------------
    def sample_z(self, s0: torch.Tensor, uniform: bool, members: torch.Tensor) -> torch.Tensor:
        return self.z_policy.sample(s0, uniform, members)

    def after_rollout(self, s0, z, returns, kept, members) -> dict:
        stats = self.z_policy.update(s0, z, returns, kept, members)
        if "z_policy_entropy" not in stats:
            stats["z_policy_entropy"] = self.z_policy.entropy(s0)
        return stats

    def member_state(self, k: int) -> dict:
        return {**super().member_state(k), "z_policy": self.z_policy.member_state(k)}

    def load_member_state(self, k: int, state: dict) -> None:
        super().load_member_state(k, state)
        self.z_policy.load_member_state(k, state["z_policy"])
