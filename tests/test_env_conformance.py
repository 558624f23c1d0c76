"""One conformance suite for every `VecEnv`: the matrix game, SMAX (3m, 2s3z) and SMAC (on a fake).

Each case says what its masks look like (the dead agent's only action, the actions a live agent
always or never has), whether ended envs repeat their last obs, and how to force time-outs.
Most tests use a population of one member; the population tests check that member k of a
population of three plays exactly what a population of one with member k's seed plays, and that
members do not influence each other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from maven.config import TrainConfig

torch.set_num_threads(1)
N_ENVS = 8  # one batch size for all tests: each new one costs a SMAX compile


def _cfg(env: str, map_name: str, seed: int, overrides: dict) -> TrainConfig:
    cfg = TrainConfig(env=env, map=map_name, seed=seed)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def _build_matrix(n_envs, member_seeds, device, **overrides):
    from maven import envs

    return envs.make(_cfg("matrix", "m10", member_seeds[0], overrides), n_envs, device, member_seeds)


def _smax_builder(map_name: str):
    def build(n_envs, member_seeds, device, **overrides):
        pytest.importorskip("jaxmarl")
        from maven import envs

        return envs.make(_cfg("smax", map_name, member_seeds[0], overrides), n_envs, device, member_seeds)

    return build


def _build_fake_smac(n_envs, member_seeds, device, **overrides):
    from fake_smac import FakeSMACFactory

    from maven.envs import smac

    return smac.make(_cfg("smac", "3m", member_seeds[0], overrides), n_envs, device, member_seeds,
                     env_factory=FakeSMACFactory())


def random_policy(avail: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A uniformly random available action per agent: [B, N, A] bool -> [B, N] int64."""
    noise = torch.rand(avail.shape, generator=gen).to(avail.device)
    return torch.argmax(noise * avail, dim=-1)


def _first_attack_or(avail: torch.Tensor, first_attack: int, fallback: list[int]) -> torch.Tensor:
    """The lowest-index available attack, else the first available fallback action."""
    n_actions = avail.shape[-1]
    idx = torch.arange(n_actions, device=avail.device).expand_as(avail)
    attack = torch.where(avail & (idx >= first_attack), idx, n_actions).min(-1).values
    choice = torch.full_like(attack, fallback[-1])
    for action in reversed(fallback[:-1]):
        choice = torch.where(avail[..., action], torch.full_like(attack, action), choice)
    return torch.where(attack < n_actions, attack, choice)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable
    dead_action: int | None = None  # the only action a dead agent may take
    live_always: tuple[int, ...] = ()  # always available to a live agent
    live_never: tuple[int, ...] = ()  # never available to a live agent
    repeats_obs: bool = False  # an ended env repeats its last obs/state/avail
    win_reward: float | None = None  # a won episode's last reward is at least this, a lost one's below
    truncation: dict | None = None  # how to make every episode time out: cfg overrides, policy name
    aggressive: Callable | None = None  # a policy that wins some episodes
    expect_win: bool = False
    state_bounds: tuple[float, float] | None = None  # every state entry lies in [low, high]
    random_starts: bool = False  # episodes start differently unless reseeded alike
    population: bool = True  # run the population tests (one SMAX map suffices: each shape compiles)


# normalised SMAX state: cooldown jitter (up to +2/16 s) lifts a cooldown fraction to at most 1.25
SMAX_STATE_BOUNDS = (0.0, 1.3)
CASES = [
    Case("matrix", _build_matrix),
    Case("smax-3m", _smax_builder("3m"), dead_action=4, live_always=(0, 1, 2, 3, 4), repeats_obs=True,
         win_reward=200 / (365 / 20), truncation={"overrides": {"smax_max_steps": 3}, "policy": "random"},
         aggressive=lambda avail, gen: _first_attack_or(avail, 5, [1, 4]), expect_win=True,
         state_bounds=SMAX_STATE_BOUNDS, random_starts=True),
    Case("smax-2s3z", _smax_builder("2s3z"), dead_action=4, live_always=(0, 1, 2, 3, 4), repeats_obs=True,
         win_reward=200 / (1020 / 20), aggressive=lambda avail, gen: _first_attack_or(avail, 5, [1, 4]),
         state_bounds=SMAX_STATE_BOUNDS, random_starts=True, population=False),
    Case("smac-fake-3m", _build_fake_smac, dead_action=0, live_always=(1,), live_never=(0,), repeats_obs=True,
         win_reward=200 / (365 / 20), truncation={"overrides": {}, "policy": "passive"},
         aggressive=lambda avail, gen: _first_attack_or(avail, 6, [1, 0]), expect_win=True,
         random_starts=True),
]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request):
    return request.param


@pytest.fixture
def make_env():
    """Build envs for one test; all are closed at teardown."""
    built = []

    def make(case: Case, n_envs=N_ENVS, seeds=(0,), device="cpu", **overrides):
        env = case.build(n_envs, list(seeds), device, **overrides)
        built.append(env)
        return env

    yield make
    for env in built:
        env.close()


def rollout(env, policy, gen: torch.Generator, seeds=None):
    """reset, then step until every env's episode ended; returns [reset, step 1, step 2, ...]."""
    steps = [env.reset(seeds)]
    ended = torch.zeros(env.n_envs, dtype=torch.bool, device=env.device)
    for _ in range(env.info.episode_limit + 1):
        if ended.all():
            break
        step = env.step(policy(steps[-1].avail_actions, gen))
        steps.append(step)
        ended |= step.terminated | step.truncated | step.crashed
    assert ended.all(), "an episode ran past episode_limit"
    return steps


def end_steps(steps) -> torch.Tensor:
    """The step index (1-based) at which each env's episode ended: [B]."""
    ends = torch.stack([s.terminated | s.truncated | s.crashed for s in steps[1:]])  # [T, B]
    assert (ends.sum(0) == 1).all(), "every episode must end exactly once"
    return ends.int().argmax(0) + 1


# --- tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_shapes_dtypes_and_device(case, make_env, device):
    env = make_env(case, device=device)
    info, b = env.info, env.n_envs
    assert env.device == torch.device(device) or env.device.type == device
    assert env.n_members == 1 and b == N_ENVS
    first = env.reset([1])
    step = env.step(random_policy(first.avail_actions, torch.Generator().manual_seed(0)))
    for out in (first, step):
        assert out.obs.shape == (b, info.n_agents, info.obs_dim) and out.obs.dtype == torch.float32
        assert out.state.shape == (b, info.state_dim) and out.state.dtype == torch.float32
        assert out.avail_actions.shape == (b, info.n_agents, info.n_actions)
        assert out.avail_actions.dtype == torch.bool
        assert out.reward.shape == (b,) and out.reward.dtype == torch.float32
        for flag in (out.terminated, out.truncated, out.won, out.crashed):
            assert flag.shape == (b,) and flag.dtype == torch.bool
        for tensor in out:
            assert tensor.device.type == torch.device(device).type
        assert torch.isfinite(out.obs).all() and torch.isfinite(out.state).all()
    assert (first.reward == 0).all()
    assert not (first.terminated | first.truncated | first.won | first.crashed).any()
    assert info.episode_limit >= 1


def test_masks(case, make_env):
    env = make_env(case, seeds=[2])
    saw_dead = False
    for seed in (2, 3):
        for out in rollout(env, random_policy, torch.Generator().manual_seed(seed), seeds=[seed]):
            avail = out.avail_actions
            assert avail.any(-1).all(), "every agent needs at least one available action"
            if case.state_bounds is not None:
                low, high = case.state_bounds
                assert out.state.min() >= low and out.state.max() <= high, "state outside its normalised range"
            if case.dead_action is None:
                continue
            only = torch.zeros(env.info.n_actions, dtype=torch.bool)
            only[case.dead_action] = True
            dead = (avail == only).all(-1)  # [B, N]
            saw_dead |= bool(dead.any())
            assert (out.obs[dead] == 0).all(), "a dead agent observes nothing"
            live = avail[~dead]
            assert live[:, list(case.live_always)].all()
            if case.live_never:
                assert not live[:, list(case.live_never)].any()
    if case.dead_action is not None:
        assert saw_dead, "random play should kill some agents"


def test_episodes_end_once_with_consistent_flags(case, make_env):
    env = make_env(case, seeds=[4])
    steps = rollout(env, random_policy, torch.Generator().manual_seed(4), seeds=[4])
    lengths = end_steps(steps)
    assert (lengths <= env.info.episode_limit).all()
    for t, out in enumerate(steps[1:], start=1):
        flags = torch.stack([out.terminated, out.truncated, out.crashed]).int()
        assert (flags.sum(0) <= 1).all(), "terminated, truncated and crashed are exclusive"
        assert not (out.won & ~out.terminated).any(), "a win is a real end"
        assert not (out.truncated & (lengths != env.info.episode_limit)).any(), "truncation only at the limit"
        assert not out.crashed.any()
        if not env.info.has_win:
            assert not out.won.any()


def test_truncation_at_time_limit(case, make_env):
    if case.truncation is None:
        pytest.skip(f"no time-out scenario for {case.name} (matrix: none; SMAX: 3m only, one compile less)")
    env = make_env(case, seeds=[5], **case.truncation["overrides"])
    if case.truncation["policy"] == "passive":
        def policy(avail, gen):
            return torch.where(avail[..., 1], 1, 0)  # stop, or no-op when dead
    else:
        policy = random_policy
    steps = rollout(env, policy, torch.Generator().manual_seed(5), seeds=[5])
    last = steps[-1]
    assert len(steps) - 1 == env.info.episode_limit
    assert last.truncated.all() and not last.terminated.any() and not last.won.any()
    assert not any(s.truncated.any() or s.terminated.any() for s in steps[1:-1])


def test_won_matches_reward(case, make_env):
    if case.aggressive is None:
        pytest.skip(f"{case.name} has no win")
    env = make_env(case, seeds=[6])
    wins = 0
    for seed in (6, 7):
        steps = rollout(env, case.aggressive, torch.Generator().manual_seed(seed), seeds=[seed])
        for out in steps[1:]:
            big = out.reward >= case.win_reward
            assert torch.equal(out.won, out.terminated & big), "won <=> a real end that paid the win bonus"
            wins += int(out.won.sum())
    if case.expect_win:
        assert wins > 0, "the aggressive policy should win some episodes"


def test_deterministic_under_seed(case, make_env):
    runs = []
    for _ in range(2):
        env = make_env(case, seeds=[8])
        runs.append(rollout(env, random_policy, torch.Generator().manual_seed(8), seeds=None))
        again = env.reset([11]).obs
        assert torch.equal(again, env.reset([11]).obs), "reset(seeds) twice gives the same start"
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs):
        for x, y in zip(a, b):
            assert torch.equal(x, y)


def test_ended_envs_not_advanced_and_reset_restarts(case, make_env):
    env = make_env(case, seeds=[9])
    gen = torch.Generator().manual_seed(9)
    steps = rollout(env, random_policy, gen, seeds=[9])
    lengths = end_steps(steps)
    # Replay the kept trajectory's ended envs: after its end each env is frozen.
    for t, out in enumerate(steps[1:], start=1):
        after = t > lengths
        assert (out.reward[after] == 0).all()
        for flag in (out.terminated, out.truncated, out.won, out.crashed):
            assert not flag[after].any()
        if case.repeats_obs:
            prev = steps[t - 1]
            assert torch.equal(out.obs[after], prev.obs[after])
            assert torch.equal(out.state[after], prev.state[after])
            assert torch.equal(out.avail_actions[after], prev.avail_actions[after])
    # Stepping again after all ended changes nothing and reports nothing.
    final = steps[-1]
    extra = env.step(random_policy(final.avail_actions, gen))
    assert (extra.reward == 0).all()
    assert not (extra.terminated | extra.truncated | extra.won | extra.crashed).any()
    if case.repeats_obs:
        assert torch.equal(extra.obs, final.obs) and torch.equal(extra.state, final.state)
    # reset starts a new episode everywhere: every env runs and ends once more.
    again = rollout(env, random_policy, gen, seeds=[10])
    assert not (again[0].terminated | again[0].truncated).any() and (again[0].reward == 0).all()
    end_steps(again)


# --- populations ---------------------------------------------------------------------------------
MEMBER_SEEDS = (3, 14, 15)


@pytest.fixture
def population_case(case):
    if not case.population:
        pytest.skip(f"population tests run on one map per environment, not {case.name}")
    return case


def per_member_policy(gen_seeds):
    """Fixed per-member random actions: member k draws from its own generator, for its own rows."""
    gens = [torch.Generator().manual_seed(s) for s in gen_seeds]

    def policy(avail: torch.Tensor) -> torch.Tensor:
        members = avail.chunk(len(gens))  # [S·B, N, A] -> S × [B, N, A]
        return torch.cat([random_policy(rows, gen) for rows, gen in zip(members, gens)])

    return policy


def play(env, policy, resets) -> list:
    """For each entry of `resets`: reset with it, then step episode_limit times (ended envs stay
    frozen, so every population steps alike). Returns every EnvStep, resets included."""
    steps = []
    for seeds in resets:
        steps.append(env.reset(seeds))
        for _ in range(env.info.episode_limit):
            steps.append(env.step(policy(steps[-1].avail_actions)))
    return steps


def member(steps, k: int, n_envs: int = N_ENVS) -> list:
    """Member k's rows of every EnvStep."""
    return [[x[k * n_envs:(k + 1) * n_envs] for x in out] for out in steps]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for out_a, out_b in zip(a, b, strict=True) for x, y in zip(out_a, out_b))


def test_population_members_match_populations_of_one(population_case, make_env):
    case, S = population_case, len(MEMBER_SEEDS)
    gen_seeds = (30, 31, 32)
    env = make_env(case, seeds=MEMBER_SEEDS)
    assert env.n_members == S and env.n_envs == S * N_ENVS
    steps = play(env, per_member_policy(gen_seeds), [None, [20, 21, 22]])
    assert all(x.shape[0] == S * N_ENVS for out in steps for x in out)
    for k, seed in enumerate(MEMBER_SEEDS):
        alone = make_env(case, seeds=[seed])
        expected = play(alone, per_member_policy([gen_seeds[k]]), [None, [20 + k]])
        assert same(member(steps, k), expected), f"member {k} differs from its population of one"
    if case.random_starts:
        assert not torch.equal(member(steps, 0)[0][0], member(steps, 1)[0][0]), "members share a start"


def test_one_members_actions_leave_the_others_alone(population_case, make_env):
    runs = []
    for gen_seeds in ((40, 41, 42), (40, 99, 42)):  # member 1 acts differently
        env = make_env(population_case, seeds=MEMBER_SEEDS)
        runs.append(play(env, per_member_policy(gen_seeds), [None, None]))
    for k in (0, 2):
        assert same(member(runs[0], k), member(runs[1], k)), f"member {k} changed with member 1's actions"
    assert not same(member(runs[0], 1), member(runs[1], 1)), "member 1's own trajectory should change"


def test_reset_reseeds_only_the_members_given_a_seed(population_case, make_env):
    case = population_case
    gen_seeds = (50, 51, 52)
    env = make_env(case, seeds=MEMBER_SEEDS)
    steps = play(env, per_member_policy(gen_seeds), [[5, 6, 7], [8, None, 9]])
    for k, resets in enumerate(([[5], [8]], [[6], None], [[7], [9]])):
        alone = make_env(case, seeds=[MEMBER_SEEDS[k]])
        expected = play(alone, per_member_policy([gen_seeds[k]]), resets)
        assert same(member(steps, k), expected), f"member {k} differs from its population of one"
    if case.random_starts:  # member 1 continued its own randomness: no replay of its first episode
        second = 1 + env.info.episode_limit
        assert not torch.equal(member(steps, 1)[0][0], member(steps, 1)[second][0])
    with pytest.raises(ValueError, match="one seed"):
        env.reset([1, 2])


def test_smax_without_jaxmarl_is_a_user_error(monkeypatch):
    from maven import envs
    from maven.errors import UserError

    monkeypatch.setitem(sys.modules, "jaxmarl", None)  # makes `import jaxmarl` fail
    for call in (lambda: envs.check_map("smax", "3m"), lambda: envs.make(_cfg("smax", "3m", 0, {}), 1, "cpu", [0])):
        with pytest.raises(UserError, match=r"pip install -e '\.\[smax\]'") as err:
            call()
        assert err.value.exit_code == 2
    assert envs.maps("smax") == []
