"""Populations: members are independent runs that share only the process.

Member k starts exactly as the single run with seed k; member j's data never reaches member i;
clipping and optimiser steps are per member; every algorithm trains as a population.
"""

import pytest
import torch
from torch.func import vmap

from maven import algos, envs
from maven.batch import EpisodeBatch
from maven.config import resolve
from maven.members import Adam, RMSprop, clip_grad_norm, leaves, tree_map
from maven.runner import ActionStreams, rollout


def cfg_for(algo="qmix", **overrides):
    values = {"bandit_iters": 5, **overrides}
    return resolve({"env": "matrix", "map": "m10", "algo": algo, "seed": 0}, values)


def make_learner(algo, seeds, **overrides):
    cfg = cfg_for(algo, **overrides)
    env = envs.make(cfg, 1, "cpu", seeds)
    return cfg, env, algos.learner_class(algo)(cfg, env.info, "cpu", seeds)


def random_batch(info, S, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    T, N, A = info.episode_limit, info.n_agents, info.n_actions
    filled = torch.ones(S, B, T, dtype=torch.bool)
    filled[:, 0, 6:] = False  # one shorter episode per member
    return EpisodeBatch(
        obs=torch.rand(S, B, T + 1, N, info.obs_dim, generator=g), state=torch.rand(S, B, T + 1, info.state_dim, generator=g),
        avail_actions=torch.ones(S, B, T + 1, N, A, dtype=torch.bool),
        actions=torch.randint(0, A, (S, B, T, N), generator=g), reward=torch.rand(S, B, T, generator=g),
        terminated=torch.zeros(S, B, T, dtype=torch.bool), filled=filled,
        z=torch.randint(0, 16, (S, B), generator=g))


def member(tree, k):
    return tree_map(lambda x: x[k], tree)


def assert_trees_equal(a, b):
    for x, y in zip(leaves(a), leaves(b)):
        assert torch.equal(x, y)


@pytest.mark.parametrize("algo", ["qmix", "maven"])
def test_member_k_starts_exactly_as_the_single_run_with_seed_k(algo):
    cfg, env, population = make_learner(algo, [1, 5, 9])
    _, env_alone, alone = make_learner(algo, [5])
    assert_trees_equal(member(population.params, 1), member(alone.params, 0))
    assert_trees_equal(member(population.target_params, 1), member(alone.target_params, 0))
    # the first training rollout: same episodes, actions and latent z
    everyone = torch.ones(3, dtype=torch.bool)
    batch, stats = rollout(env, population, cfg, ActionStreams([1, 5, 9], "cpu"), [11, 12, 13],
                           torch.full((3,), 0.5), everyone)
    batch1, stats1 = rollout(env_alone, alone, cfg, ActionStreams([5], "cpu"), [12], torch.full((1,), 0.5),
                             everyone[:1])
    T = int(stats1.lengths.max())
    for name, x in vars(batch).items():
        y = getattr(batch1, name)
        assert torch.equal(x[1:2, :, : T + 1] if x.dim() > 2 else x[1:2], y[:, :, : T + 1] if y.dim() > 2 else y), name
    assert torch.equal(stats.returns[1:2], stats1.returns)


@pytest.mark.parametrize("algo", list(algos.ALGOS))
def test_changing_member_js_data_leaves_member_is_update_bit_identical(algo):
    _, env, learner = make_learner(algo, [0, 1, 2])
    _, _, twin = make_learner(algo, [0, 1, 2])
    batch = random_batch(env.info, 3)
    changed = batch.map(torch.clone)
    changed.reward[1] += 5.0
    changed.obs[1] = torch.rand_like(changed.obs[1])
    everyone, episodes = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.int64)
    learner.update(batch, episodes, everyone)
    twin.update(changed, episodes, everyone)
    for k, same in [(0, True), (1, False), (2, True)]:
        equal = all(torch.equal(x, y) for x, y in zip(leaves(member(learner.params, k)), leaves(member(twin.params, k))))
        assert equal == same, (k, same)


def test_the_gradient_of_member_is_loss_wrt_member_js_parameters_is_exactly_zero():
    _, env, learner = make_learner("maven", [0, 1, 2])
    batch = random_batch(env.info, 3)
    params = tree_map(lambda x: x.clone().requires_grad_(True), learner.params)

    def member_loss(p, t, fields):
        return learner._member_loss(p, t, fields)[0]

    losses = vmap(member_loss)(params, learner.target_params, batch.as_tuple())  # [S]
    grads = torch.autograd.grad(losses[1], leaves(params))
    assert all(g[[0, 2]].abs().max() == 0 for g in grads)
    assert any(g[1].abs().max() > 0 for g in grads)


def test_gradient_clipping_is_per_member_as_torch_clips_one_model():
    g = torch.Generator().manual_seed(0)
    grads = {"a": torch.randn(3, 4, 5, generator=g), "b": {"c": torch.randn(3, 7, generator=g)}}
    grads["a"][0] *= 100  # member 0 far over the limit; members 1, 2 under it
    clipped, norms = clip_grad_norm(grads, max_norm=10.0)
    for k in range(3):
        params = [torch.nn.Parameter(torch.zeros_like(x[k])) for x in (grads["a"], grads["b"]["c"])]
        params[0].grad, params[1].grad = grads["a"][k].clone(), grads["b"]["c"][k].clone()
        expected_norm = torch.nn.utils.clip_grad_norm_(params, 10.0)  # clips .grad in place
        assert torch.allclose(norms[k], expected_norm)
        assert torch.allclose(clipped["a"][k], params[0].grad) and torch.allclose(clipped["b"]["c"][k], params[1].grad)
    assert torch.equal(clipped["a"][1], grads["a"][1])  # under the limit: untouched


@pytest.mark.parametrize("kind", ["rmsprop", "adam"])
def test_optimisers_follow_torch_per_member_and_leave_masked_members_alone(kind):
    g = torch.Generator().manual_seed(1)
    params = {"w": torch.randn(2, 3, 4, generator=g)}
    start = params["w"].clone()
    ours = RMSprop(params, lr=0.01, alpha=0.99, eps=1e-5) if kind == "rmsprop" else Adam(params, lr=0.01)
    reference = torch.nn.Parameter(start[0].clone())
    torch_opt = (torch.optim.RMSprop([reference], lr=0.01, alpha=0.99, eps=1e-5) if kind == "rmsprop"
                 else torch.optim.Adam([reference], lr=0.01))
    for _ in range(5):
        grad = torch.randn(2, 3, 4, generator=g)
        ours.step(params, {"w": grad}, torch.tensor([True, False]))
        reference.grad = grad[0].clone()
        torch_opt.step()
    assert torch.allclose(params["w"][0], reference.detach(), rtol=1e-6, atol=1e-7)
    assert torch.equal(params["w"][1], start[1])


def test_target_networks_refresh_per_member_on_their_own_episode_counters():
    _, env, learner = make_learner("qmix", [0, 1], target_update_interval=10)
    batch = random_batch(env.info, 2)
    learner.update(batch, torch.tensor([10, 3]), torch.ones(2, dtype=torch.bool))
    assert_trees_equal(member(learner.target_params["agent"], 0), member(learner.params["agent"], 0))
    assert not torch.equal(learner.target_params["agent"]["fc1.weight"][1], learner.params["agent"]["fc1.weight"][1])
    assert learner.last_target_update_episode.tolist() == [10, 0]


def test_a_population_too_large_for_memory_is_a_one_line_error_before_allocating():
    from maven.errors import UserError
    from maven.replay import ReplayBuffer

    _, env, _ = make_learner("qmix", [0])
    with pytest.raises(UserError, match=r"64 members x buffer_size 100000000 episodes need .* GiB"):
        ReplayBuffer(100_000_000, env.info, 64, "cpu", list(range(64)))


def test_replay_batches_are_cut_to_the_longest_episode_or_padded_to_a_compiled_length():
    from maven.compiled import padded_lengths
    from maven.replay import ReplayBuffer

    assert padded_lengths(10) == (6, 8, 10) and padded_lengths(60) == (36, 48, 60) and padded_lengths(1) == (1,)
    env = envs.make(cfg_for("qmix"), 1, "cpu", [0, 1])
    batch = random_batch(env.info, 2, B=4)
    batch.filled[:, :, 7:] = False  # every episode at most 7 steps
    batch.filled[1, :, 5:] = False  # member 1's at most 5
    everyone, only_1 = torch.ones(2, dtype=torch.bool), torch.tensor([False, True])
    for lengths, expected in ((None, (7, 5)), ((6, 8, 10), (8, 6))):
        buffer = ReplayBuffer(10, env.info, 2, "cpu", [0, 1], lengths)
        buffer.insert(batch, torch.ones(2, 4, dtype=torch.bool))
        # the longest episode of any member that samples decides; the others' rows do not
        assert [buffer.sample(4, members).reward.shape[2] for members in (everyone, only_1)] == list(expected)
