"""SMAC's reward and episode limits on SMAX: hand-worked steps for the reward function, real SMAX
episodes checked against the same reward recomputed from the world state, and the limits
that config resolution gives each map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("jax")

from maven.config import resolve
from maven.envs.smac_rules import SMAC_EPISODE_LIMITS, episode_limit, max_reward, smac_reward

MARINE = 45.0
FULL = np.full(3, MARINE, np.float32)  # 3m: three enemy marines
SCALE_3M = (3 * 10 + 200 + 3 * MARINE) / 20  # max_reward 365 / reward_scale_rate 20 = 18.25


def reward(before, alive_before, after, alive_after, won=False, max_health=FULL):
    return float(smac_reward(np.asarray(before, np.float32), np.asarray(alive_before), np.asarray(after, np.float32),
                             np.asarray(alive_after), np.asarray(won), max_health))


def test_max_reward_counts_deaths_win_and_health():
    assert float(max_reward(FULL)) == 365.0
    # 2s3z: 2 stalkers (SMAX 160 = SMAC 80 health + 80 shield), 3 zealots (150 = 100 + 50)
    assert float(max_reward(np.array([160, 160, 150, 150, 150], np.float32))) == 5 * 10 + 200 + 320 + 450


def test_a_hit_pays_the_damage_dealt():
    # one marine shot (9 damage) on enemy 0
    r = reward([45, 45, 45], [True] * 3, [36, 45, 45], [True] * 3)
    assert r == pytest.approx(9 / SCALE_3M)


def test_a_kill_pays_the_health_left_plus_ten():
    # enemy 1 at 9 hit points takes a 9-damage shot and dies: 9 + 10 = 19
    r = reward([45, 9, 45], [True] * 3, [45, 0, 45], [True, False, True])
    assert r == pytest.approx(19 / SCALE_3M)


def test_overkill_pays_only_the_health_the_unit_had():
    # SMAC's delta for a dying unit is its previous health, whatever the damage: 4 + 10
    r = reward([45, 4, 45], [True] * 3, [45, 0, 45], [True, False, True])
    assert r == pytest.approx(14 / SCALE_3M)


def test_the_winning_step_adds_two_hundred():
    # the last enemy (5 hit points) dies and allies are alive: 5 + 10 + 200
    r = reward([0, 0, 5], [False, False, True], [0, 0, 0], [False] * 3, won=True)
    assert r == pytest.approx(215 / SCALE_3M)


def test_dead_enemies_pay_nothing_again():
    r = reward([0, 0, 45], [False, False, True], [0, 0, 45], [False, False, True])
    assert r == 0.0


def test_a_draw_pays_no_win_bonus():
    # time-out: nothing happened on the last step, not won
    assert reward([45, 20, 45], [True] * 3, [45, 20, 45], [True] * 3) == 0.0
    # mutual annihilation: the last enemy dies but so did every ally (won is False): kill only
    r = reward([0, 0, 5], [False, False, True], [0, 0, 0], [False] * 3, won=False)
    assert r == pytest.approx(15 / SCALE_3M)


def test_a_clean_win_totals_exactly_twenty():
    # five marine shots per enemy (9 each), enemies killed one after another, won on the last
    health = np.array(FULL)
    alive = np.ones(3, bool)
    total = 0.0
    for enemy in range(3):
        for _ in range(5):
            before, alive_before = health.copy(), alive.copy()
            health[enemy] -= 9
            alive = health > 0
            total += reward(before, alive_before, health, alive, won=not alive.any())
    assert not alive.any()
    assert total == pytest.approx(20.0, abs=1e-5)


def test_batched_shapes():
    before = np.stack([FULL, FULL])  # [2 envs, 3 enemies]
    after = np.array([[36, 45, 45], [45, 45, 45]], np.float32)
    out = smac_reward(before, np.ones((2, 3), bool), after, np.ones((2, 3), bool), np.zeros(2, bool),
                      np.stack([FULL, FULL]))
    assert out.shape == (2,)
    np.testing.assert_allclose(np.asarray(out), [9 / SCALE_3M, 0.0], rtol=1e-6)


def test_episode_limits_are_smacs_per_map():
    pytest.importorskip("jaxmarl")
    assert SMAC_EPISODE_LIMITS["3m"] == 60 and SMAC_EPISODE_LIMITS["2s3z"] == 120
    for map_name, limit in [("3m", 60), ("2s3z", 120), ("5m_vs_6m", 70), ("6h_vs_8z", 150),
                            ("3s_vs_5z", 250), ("27m_vs_30m", 180), ("smacv2_5_units", 100)]:
        cfg = resolve({"env": "smax", "map": map_name, "algo": "qmix"})
        assert cfg.smax_max_steps == limit == episode_limit(map_name)
        assert cfg.smax_reward == "smac"
    overridden = resolve({"env": "smax", "map": "3m", "algo": "qmix"}, {"smax_max_steps": 100,
                                                                      "smax_reward": "jaxmarl"})
    assert (overridden.smax_max_steps, overridden.smax_reward) == (100, "jaxmarl")


def focus_fire(avail: torch.Tensor) -> torch.Tensor:
    """Attack the lowest-index enemy in range, else move east (toward the enemies), else stop."""
    n_actions = avail.shape[-1]
    idx = torch.arange(n_actions).expand_as(avail)
    attack = torch.where(avail & (idx >= 5), idx, n_actions).min(-1).values
    move = torch.where(avail[..., 1], 1, 4)
    return torch.where(attack < n_actions, attack, move)


def hand_computed(prev_state, state, won, n_allies, n_units, max_health):
    """SMAC's reward from the normalised world state's health fractions (first of 10 features per
    unit; a dead unit is all zeros) -> [B]: the reference the adapter's XLA reward must equal."""
    def enemy_health(world_state):
        return world_state[:, : 10 * n_units].reshape(-1, n_units, 10)[:, n_allies:, 0].double() * max_health

    before, after = enemy_health(prev_state), enemy_health(state)
    damage = (before - after).clamp(min=0).sum(1)
    kills = ((before > 0) & (after == 0)).sum(1)
    total = damage + 10 * kills + 200 * won.double()
    return total / ((10 * max_health.numel() + 200 + max_health.sum()) / 20)


@pytest.mark.parametrize("map_name,max_health", [("3m", [45.0] * 3), ("2s3z", [160.0] * 2 + [150.0] * 3)])
def test_real_smax_episodes_pay_smacs_reward(map_name, max_health):
    pytest.importorskip("jaxmarl")
    from maven.envs.smax import SMAXVecEnv

    n_envs, max_health = 16, torch.tensor(max_health, dtype=torch.float64)
    env = SMAXVecEnv(map_name, n_envs, "cpu", member_seeds=[3], max_steps=episode_limit(map_name))
    n_allies, n_units = env.info.n_agents, env.info.n_agents + len(max_health)
    out = env.reset()
    returns = torch.zeros(n_envs, dtype=torch.float64)
    ended = torch.zeros(n_envs, dtype=torch.bool)
    won = torch.zeros(n_envs, dtype=torch.bool)
    while not ended.all():
        prev_state = out.state.clone()
        out = env.step(focus_fire(out.avail_actions))
        expected = hand_computed(prev_state, out.state, out.won, n_allies, n_units, max_health)
        torch.testing.assert_close(out.reward.double(), torch.where(ended, 0.0, expected), atol=1e-5, rtol=1e-5)
        returns += out.reward.double()
        won |= out.won
        ended |= out.terminated | out.truncated
    env.close()
    assert won.any(), "focus fire should win some episodes"
    torch.testing.assert_close(returns[won], torch.full_like(returns[won], 20.0), atol=1e-4, rtol=0)
    assert (returns[~won] < 20 - 200 / ((10 * len(max_health) + 200 + max_health.sum()) / 20) + 1e-4).all()


def test_jaxmarl_reward_is_one_value_away():
    pytest.importorskip("jaxmarl")
    from maven.envs.smax import SMAXVecEnv

    env = SMAXVecEnv("3m", 16, "cpu", member_seeds=[3], max_steps=60, reward="jaxmarl")
    out = env.reset()
    returns, ended, won = torch.zeros(16), torch.zeros(16, dtype=torch.bool), torch.zeros(16, dtype=torch.bool)
    while not ended.all():
        out = env.step(focus_fire(out.avail_actions))
        returns += out.reward
        won |= out.won
        ended |= out.terminated | out.truncated
    assert won.any()
    torch.testing.assert_close(returns[won], torch.full_like(returns[won], 2.0), atol=1e-4, rtol=0)
    assert env.metadata()["smax_reward"] == "jaxmarl"

