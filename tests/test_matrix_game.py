"""The m-step matrix game against hand-worked episodes (reference.md §4)."""

import torch

from maven.envs.matrix import MatrixGame, optimal_return


def play(game, joint_actions):
    """Play one scripted episode in every env; returns per-step rewards and terminated flags."""
    game.reset()
    rewards, dones = [], []
    for a in joint_actions:
        out = game.step(torch.tensor(a))
        rewards.append(out.reward.tolist())
        dones.append(out.terminated.tolist())
    return rewards, dones


def test_optimal_trap_and_dead_branches_for_m10():
    game = MatrixGame(10, n_envs=4)
    # env 0: (0,0) x9 then (1,1) -> 13; env 1: (1,1) x10 -> 10; env 2: (0,1) -> branch 1, ends at 0
    # env 3: (0,0) x10 -> stays on branch 0 but misses the final 4 -> 10
    script = []
    for t in range(10):
        script.append([[1, 1] if t == 9 else [0, 0], [1, 1], [0, 1], [0, 0]])
    rewards, dones = play(game, script)
    returns = torch.tensor(rewards).sum(0)
    assert returns.tolist() == [13.0, 10.0, 0.0, 10.0]
    assert dones[0] == [False, False, True, False]  # env 2 ends at its first (zero) reward
    assert dones[9] == [True, True, False, True]  # env 2 is not advanced once ended
    assert rewards[9] == [4.0, 1.0, 0.0, 1.0]
    assert optimal_return("m10") == 13.0


def test_wrong_action_on_branch_zero_ends_the_episode_and_obs_encode_step_and_branch():
    game = MatrixGame(3, n_envs=1)
    first = game.reset()
    # obs: one-hot step (positions 0..3) then one-hot branch (positions 4..7); branch 0 shown at reset (Q16)
    assert first.obs.shape == (1, 2, 8) and first.obs[0, 0].tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    out = game.step(torch.tensor([[1, 1]]))  # joint index 3 -> branch 3, reward 1
    assert out.reward.item() == 1.0 and not out.terminated.item()
    assert out.obs[0, 1].tolist() == [0, 1, 0, 0, 0, 0, 0, 1]
    out = game.step(torch.tensor([[0, 0]]))  # index 0 != branch 3 -> reward 0 -> end
    assert out.reward.item() == 0.0 and out.terminated.item() and not out.truncated.item()
    assert torch.equal(out.state, out.obs[:, 0])


def test_good_branches_four_pays_on_every_branch():
    game = MatrixGame(2, n_envs=2, good_branches=4)
    rewards, _ = play(game, [[[0, 1], [1, 0]], [[0, 1], [1, 0]]])
    assert torch.tensor(rewards).sum(0).tolist() == [2.0, 2.0]
    two = MatrixGame(2, n_envs=2, good_branches=2)
    rewards, _ = play(two, [[[0, 1], [1, 0]], [[0, 1], [1, 0]]])
    assert torch.tensor(rewards).sum(0).tolist() == [0.0, 0.0]


def test_the_optimum_is_defined_once_and_m1_pays_at_most_one():
    from maven.analysis.aggregate import optimum

    game = MatrixGame(1, n_envs=4)
    game.reset()
    rewards = game.step(torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])).reward
    assert rewards.max().item() == optimal_return("m1") == optimum("matrix", "m1") == 1.0
    assert optimum("matrix", "m10") == optimal_return("m10") == 13.0
