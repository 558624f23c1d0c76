"""SMAC's dense reward and per-map episode limits, for SMAX runs that stand in for SMAC.

SMAX (jaxmarl) pays its own reward (at most about 2 per episode) and runs every map to 100
steps, while the presets carry settings tuned on SMAC, which pays at most 20 and ends each map at
its own limit. This module holds SMAC's two rules so the SMAX adapter can apply them
(docs/environments.md). It imports no JAX at module level: config resolution reads the limits
without jaxmarl installed.

SMAC's reward (`oxwhirl/smac:smac/env/starcraft2/starcraft2.py`, `reward_battle` and `step`, with
the default `reward_only_positive=True`, `reward_death_value=10`, `reward_win=200`,
`reward_scale_rate=20`), per step:

    |Σ_enemies alive before the step (health before − health after) + 10 · enemies killed|
      + 200 if the battle was won on this step
    divided by max_reward / 20, max_reward = 10 · n_enemies + 200 + Σ_enemies max health.

SMAC counts health + shields in both the damage and max_reward. SMAX units have no shields, but
its Protoss health already equals SMAC's health + shield (stalker 160 = 80 + 80, zealot 150 =
100 + 50), so its health plays SMAC's health + shield; what SMAX lacks is shield regeneration,
the reason for SMAC's absolute value (the value is kept; in SMAX health never rises).
"""

from __future__ import annotations

# SMAC's map registry (oxwhirl/smac:smac/env/starcraft2/maps/smac_maps.py, commit d6aab33), map
# -> limit in env steps. Only the SMAX scenarios among them are used; the rest document the table.
SMAC_EPISODE_LIMITS: dict[str, int] = {
    "3m": 60, "8m": 120, "25m": 150, "5m_vs_6m": 70, "8m_vs_9m": 120, "10m_vs_11m": 150,
    "27m_vs_30m": 180, "MMM": 150, "MMM2": 180, "2s3z": 120, "3s5z": 150, "3s5z_vs_3s6z": 170,
    "3s_vs_3z": 150, "3s_vs_4z": 200, "3s_vs_5z": 250, "1c3s5z": 180, "2m_vs_1z": 150,
    "corridor": 400, "6h_vs_8z": 150, "2s_vs_1sc": 300, "so_many_baneling": 100,
    "bane_vs_bane": 200, "2c_vs_64zg": 400,
}
SMAX_DEFAULT_EPISODE_LIMIT = 100
"""For SMAX scenarios SMAC does not have (smacv2_*): jaxmarl's own default `max_steps`."""

REWARD_DEATH_VALUE = 10.0
REWARD_WIN = 200.0
REWARD_SCALE_RATE = 20.0


def episode_limit(map_name: str) -> int:
    """SMAC's limit for a map SMAC has, else SMAX's default of 100."""
    return SMAC_EPISODE_LIMITS.get(map_name, SMAX_DEFAULT_EPISODE_LIMIT)


def max_reward(enemy_max_health):
    """SMAC's max_reward from the enemies' max health ([..., n_enemies]) -> [...]."""
    n_enemies = enemy_max_health.shape[-1]
    return REWARD_DEATH_VALUE * n_enemies + REWARD_WIN + enemy_max_health.sum(-1)


def smac_reward(health_before, alive_before, health_after, alive_after, won, enemy_max_health):
    """SMAC's scaled dense reward of one step, from the enemies' health and alive flags.

    health_*, alive_*, enemy_max_health: [..., n_enemies] (health in hit points); won: [...] bool,
    the battle was won on this step. Returns [...] float32. Works on JAX or NumPy arrays.
    """
    import jax.numpy as jnp

    alive_before = jnp.asarray(alive_before, dtype=bool)
    health_after = jnp.where(alive_after, health_after, 0.0)  # SMAC reads a dead unit's health as 0
    damage = jnp.where(alive_before, health_before - health_after, 0.0).sum(-1)
    kills = (alive_before & ~jnp.asarray(alive_after, dtype=bool)).sum(-1)
    battle = jnp.abs(damage + REWARD_DEATH_VALUE * kills)  # reward_only_positive
    total = battle + jnp.where(won, REWARD_WIN, 0.0)
    return (total / (max_reward(jnp.asarray(enemy_max_health)) / REWARD_SCALE_RATE)).astype(jnp.float32)
