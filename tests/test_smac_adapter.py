"""The SMAC adapter: clear errors without smac or StarCraft II, crashes, time-outs, pass-through,
per-member seeds and crashes in a population."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from fake_smac import FakeSMACFactory

from maven import envs
from maven.config import TrainConfig
from maven.envs import smac
from maven.envs.base import EnvInfo
from maven.errors import UserError

torch.set_num_threads(1)


def _cfg(**overrides) -> TrainConfig:
    cfg = TrainConfig(env="smac", map="3m", seed=0)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture
def make_env():
    built = []

    def make(factory=None, n_envs=2, member_seeds=(0,), **overrides):
        env = smac.make(_cfg(**overrides), n_envs, "cpu", list(member_seeds),
                        env_factory=factory or FakeSMACFactory())
        built.append(env)
        return env

    yield make
    for env in built:
        env.close()


def stop_or_noop(avail: torch.Tensor) -> torch.Tensor:
    return torch.where(avail[..., 1], 1, 0)


def random_actions(avail: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.argmax(torch.rand(avail.shape, generator=gen) * avail, dim=-1)


# --- clear errors ----------------------------------------------------------------------------
def test_missing_smac_package_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac", None)  # makes `import smac.env` fail
    monkeypatch.setitem(sys.modules, "smac.env", None)
    with pytest.raises(UserError) as err:
        smac.make(_cfg(), 1, "cpu", [0])
    message = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in message
    assert "pip install -e '.[smac]'" in message and "SMAC3" in message


def test_pypi_smac3_is_not_mistaken_for_oxwhirl_smac(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac.env", types.ModuleType("smac.env"))  # no StarCraft2Env
    with pytest.raises(UserError, match="oxwhirl smac package"):
        smac.make(_cfg(), 1, "cpu", [0])


def test_missing_starcraft_is_a_user_error(monkeypatch, tmp_path):
    module = types.ModuleType("smac.env")
    module.StarCraft2Env = object
    monkeypatch.setitem(sys.modules, "smac.env", module)
    missing = tmp_path / "NoStarCraft"
    monkeypatch.setenv("SC2PATH", str(missing))
    with pytest.raises(UserError) as err:
        smac.make(_cfg(), 1, "cpu", [0])
    assert err.value.exit_code == 2
    assert str(err.value) == f"StarCraft II not found at {missing}: install it and set SC2PATH"


def test_map_and_difficulty_checks_need_no_smac():
    envs.check_map("smac", "corridor")
    assert {"3m", "2s3z", "6h_vs_8z", "so_many_baneling", "bane_vs_bane"} <= set(envs.maps("smac"))
    with pytest.raises(UserError, match="'corridor'"):
        envs.check_map("smac", "micro_corridor")
    with pytest.raises(UserError, match="unknown smac map 'nope'; choose one of: .*3m"):
        envs.check_map("smac", "nope")
    with pytest.raises(UserError, match="smac difficulty '11'"):
        smac.make(_cfg(smac_difficulty="11"), 1, "cpu", [0], env_factory=FakeSMACFactory())


def test_metadata_records_the_starcraft_build(monkeypatch, tmp_path):
    for build in ("Base69232", "Base75689", "Base7"):
        (tmp_path / "Versions" / build).mkdir(parents=True)
    monkeypatch.setenv("SC2PATH", str(tmp_path))
    assert smac.installed_sc2_build() == "Base75689"
    env = smac.make(_cfg(), 1, "cpu", [0], env_factory=FakeSMACFactory())
    try:
        meta = env.metadata()
        assert meta["sc2_build"] == "Base75689" and meta["smac_map"] == "3m" and "smac" in meta
    finally:
        env.close()
    env = smac.make(_cfg(smac_game_version="4.10"), 1, "cpu", [0], env_factory=FakeSMACFactory())
    try:
        assert env.metadata()["sc2_build"] == "4.10"
    finally:
        env.close()


# --- behaviour on the fake -------------------------------------------------------------------
def test_env_info_and_actions_pass_through(make_env):
    env = make_env()
    assert env.info == EnvInfo(n_agents=3, n_actions=9, obs_dim=30, state_dim=48, episode_limit=60, has_win=True)
    env.reset()
    actions = torch.tensor([[1, 6, 8], [2, 7, 5]])
    out = env.step(actions)
    last_actions = out.state[:, -27:].reshape(2, 3, 9)  # the fake's state ends in one-hot last actions
    assert torch.equal(last_actions.argmax(-1), actions)
    with pytest.raises(RuntimeError, match="unavailable actions"):
        env.step(torch.zeros(2, 3, dtype=torch.int64))  # no-op is never available to a live agent


def test_timeout_is_truncation_not_termination(make_env):
    env = make_env()
    out = env.reset()
    for t in range(1, 61):
        out = env.step(stop_or_noop(out.avail_actions))
        if t < 60:
            assert not (out.terminated | out.truncated).any()
    assert out.truncated.all() and not out.terminated.any() and not out.won.any() and not out.crashed.any()
    assert [s["timeouts"] for s in env.stats()] == [1, 1]


@pytest.mark.parametrize("mode", ["relaunch", "raise", "exit"])
def test_crash_mid_episode_is_flagged_and_recovered(make_env, tmp_path, mode):
    factory = FakeSMACFactory(crash_at_step=4, crash_mode=mode, crash_seeds=(1,),
                              crash_once_file=str(tmp_path / "crashed"))
    env = make_env(factory, n_envs=3)
    out = env.reset()
    for t in range(1, 5):
        out = env.step(stop_or_noop(out.avail_actions))
        expected = torch.tensor([False, t == 4, False])
        assert torch.equal(out.crashed, expected)
        assert not (out.terminated | out.truncated | out.won).any()
        assert (out.reward[out.crashed] == 0).all()
    # SMAC relaunches the game itself (Q15); a worker that raised or died is restarted.
    assert env.worker_restarts == (0 if mode == "relaunch" else 1)
    # the crashed env is not advanced further; the others play on to the limit
    for _ in range(5, 61):
        out = env.step(stop_or_noop(out.avail_actions))
        assert not out.crashed.any() and not out.truncated[1]
    assert torch.equal(out.truncated, torch.tensor([True, False, True]))
    # after reset, every env (the restarted one too) plays a normal episode
    out = env.reset()
    gen = torch.Generator().manual_seed(0)
    ended = torch.zeros(3, dtype=torch.bool)
    for _ in range(60):
        out = env.step(random_actions(out.avail_actions, gen))
        assert not out.crashed.any()
        ended |= out.terminated | out.truncated
        if ended.all():
            break
    assert ended.all()


def test_reset_with_a_seed_reproduces_episodes(make_env):
    env = make_env()
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    first = env.reset([5])
    a = [env.step(random_actions(first.avail_actions, gen_a)).state for _ in range(1)]
    second = env.reset([5])
    b = [env.step(random_actions(second.avail_actions, gen_b)).state for _ in range(1)]
    assert torch.equal(first.obs, second.obs) and torch.equal(a[0], b[0])
    third = env.reset()  # no seed: the games continue their own streams
    assert not torch.equal(third.obs, second.obs)


def test_hung_worker_is_a_crash_and_restarted(tmp_path):
    factory = FakeSMACFactory(crash_at_step=2, crash_mode="hang", crash_seeds=(0,),
                              crash_once_file=str(tmp_path / "hung"))
    env = smac.SMACVecEnv("3m", 2, "cpu", [0], env_factory=factory, step_timeout_s=1.0)
    try:
        out = env.reset()
        out = env.step(stop_or_noop(out.avail_actions))
        out = env.step(stop_or_noop(out.avail_actions))
        assert torch.equal(out.crashed, torch.tensor([True, False])) and env.worker_restarts == 1
        out = env.reset()
        assert not out.crashed.any() and not env.step(stop_or_noop(out.avail_actions)).crashed.any()
    finally:
        env.close()


def test_a_game_that_cannot_start_is_a_clear_error():
    with pytest.raises(RuntimeError, match="failed to start: env 0: ValueError: fake SMAC has no map 'MMM'"):
        smac.make(_cfg(map="MMM"), 1, "cpu", [0], env_factory=FakeSMACFactory())


# --- populations -----------------------------------------------------------------------------
def test_member_games_are_launched_and_reseeded_with_their_own_seeds(make_env):
    env = make_env(n_envs=2, member_seeds=(0, 10, 20))
    assert env.n_members == 3 and env.n_envs == 6
    alone = [make_env(n_envs=2, member_seeds=(seed,)) for seed in (0, 10, 20)]
    first = env.reset()
    for k in range(3):  # member k's game i was launched with seed_k + i
        assert torch.equal(first.obs[2 * k:2 * k + 2], alone[k].reset().obs)
    second = env.reset([5, None, 7])
    assert torch.equal(second.obs[0:2], make_env(n_envs=2, member_seeds=(5,)).reset().obs)
    assert torch.equal(second.obs[2:4], alone[1].reset().obs), "member 1 continues its own games"
    assert not torch.equal(second.obs[2:4], first.obs[2:4])
    assert torch.equal(second.obs[4:6], make_env(n_envs=2, member_seeds=(7,)).reset().obs)
    with pytest.raises(ValueError, match="one seed"):
        env.reset(5)


@pytest.mark.parametrize("mode", ["relaunch", "exit"])
def test_a_crash_concerns_only_its_own_env(make_env, tmp_path, mode):
    """Member 1's second game crashes at step 3; every other game plays as in a crash-free run."""
    seeds = (0, 10, 20)
    factory = FakeSMACFactory(crash_at_step=3, crash_mode=mode, crash_seeds=(11,),
                              crash_once_file=str(tmp_path / "crashed"))
    crashing, crash_free = make_env(factory, n_envs=2, member_seeds=seeds), make_env(n_envs=2, member_seeds=seeds)
    runs = []
    for env in (crashing, crash_free):
        gen = torch.Generator().manual_seed(1)
        steps = [env.reset()]
        for _ in range(60):
            steps.append(env.step(random_actions(steps[-1].avail_actions, gen)))
        runs.append(steps)
    crashed = torch.stack([out.crashed for out in runs[0]])  # [T, S·B]
    assert crashed.sum() == 1 and crashed[3, 3], "only member 1's second game crashed, at step 3"
    assert not torch.stack([out.crashed for out in runs[1]]).any()
    assert crashing.worker_restarts == (0 if mode == "relaunch" else 1)
    others = [0, 1, 2, 4, 5]
    for with_crash, without in zip(*runs):
        for x, y in zip(with_crash, without):
            assert torch.equal(x[others], y[others])
