"""The MAVEN paper's m-step matrix game, batched in torch (reference.md §4, as coded).

Two agents with actions {0, 1}. The joint action at step 0, index a1*2 + a2, picks the branch for
the episode. With `good_branches` 2 a step pays 1 when the branch is 0 or 3 and the joint action
repeats the branch index; on branch 0 the last step pays [[1, 1], [1, 4]][a1][a2] instead. The
episode ends at the first zero reward or after m steps. Optimum for m = 10: 13 (branch 0 then
(1, 1) at the end); trap: 10 (branch 3 throughout). Every end is terminal (no truncation).
"""

from __future__ import annotations

import torch

from maven.envs import matrix_optimal_return, matrix_steps
from maven.envs.base import EnvInfo, EnvStep, seeds_per_member
from maven.networks import one_hot


def maps() -> list[str]:
    return ["m1", "m2", "m3", "m5", "m10", "m20"]


def check_map(map_name: str) -> None:
    matrix_steps(map_name)


optimal_return = matrix_optimal_return  # defined once, beside the map names


class MatrixGame:
    """n_envs games (all members' together: the game is deterministic, so members need nothing
    of their own)."""

    def __init__(self, steps: int, n_envs: int, good_branches: int = 2, device="cpu", n_members: int = 1):
        if good_branches not in (2, 4):
            raise ValueError(f"good_branches must be 2 or 4, got {good_branches}")
        self.steps, self.n_envs, self.good_branches = steps, n_envs, good_branches
        self.n_members = n_members
        self.device = torch.device(device)
        obs_dim = steps + 1 + 4 if steps > 1 else 2
        self.info = EnvInfo(n_agents=2, n_actions=2, obs_dim=obs_dim, state_dim=obs_dim,
                            episode_limit=steps, has_win=False)
        self.final_payoff = torch.tensor([[1.0, 1.0], [1.0, 4.0]], device=self.device)  # [a1, a2]
        self.t = torch.zeros(n_envs, dtype=torch.long, device=self.device)
        self.branch = torch.zeros_like(self.t)
        self.ended = torch.zeros(n_envs, dtype=torch.bool, device=self.device)

    def _observe(self, reward, terminated) -> EnvStep:
        # one-hot columns by comparison, not by assignment: `obs[rows, col] = 1.0` would copy the
        # scalar from the host on every step, which waits for a GPU
        B, dev = self.n_envs, self.device
        obs = one_hot(self.t.clamp(max=max(1, self.steps)), self.info.obs_dim)  # [B, O], the same for both agents
        if self.steps > 1:
            obs = obs + one_hot(self.steps + 1 + self.branch, self.info.obs_dim)  # the branch, after the steps
        false = torch.zeros(B, dtype=torch.bool, device=dev)
        return EnvStep(
            obs=obs.unsqueeze(1).expand(B, 2, -1).contiguous(),  # [B, N, O]
            state=obs,
            avail_actions=torch.ones(B, 2, 2, dtype=torch.bool, device=dev),
            reward=reward, terminated=terminated, truncated=false, won=false, crashed=false,
        )

    def reset(self, seeds=None) -> EnvStep:
        seeds_per_member(seeds, self.n_members)  # checked only: the game is deterministic
        self.t.zero_()
        self.branch.zero_()
        self.ended.zero_()
        zeros = torch.zeros(self.n_envs, device=self.device)
        return self._observe(zeros, torch.zeros_like(self.ended))

    def step(self, actions: torch.Tensor) -> EnvStep:
        a1, a2 = actions[:, 0].long(), actions[:, 1].long()  # [B]
        joint = a1 * 2 + a2
        live = ~self.ended
        branch = torch.where(self.t == 0, joint, self.branch)
        if self.good_branches == 2:
            good = (branch == 0) | (branch == 3)
        else:
            good = torch.ones_like(live)
        reward = (good & (joint == branch)).float()
        if self.steps > 1:
            last_on_branch0 = (self.t == self.steps - 1) & (branch == 0)
            reward = torch.where(last_on_branch0, self.final_payoff.flatten().gather(0, joint), reward)
        terminated = ~((self.t + 1 < self.steps) & (reward > 0))
        reward, terminated = reward * live, terminated & live
        self.branch = torch.where(live, branch, self.branch)
        self.t = torch.where(live, self.t + 1, self.t)
        self.ended = self.ended | terminated
        return self._observe(reward, terminated)

    def close(self) -> None:
        pass

    def metadata(self) -> dict:
        return {"matrix_steps": self.steps, "good_branches": self.good_branches}


def make(cfg, n_envs: int, device, member_seeds) -> MatrixGame:
    S = len(member_seeds)
    return MatrixGame(matrix_steps(cfg.map), S * n_envs, cfg.good_branches, device, n_members=S)
