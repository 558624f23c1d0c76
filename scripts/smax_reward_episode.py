"""Print one real SMAX episode's per-step rewards beside SMAC's reward worked out by hand.

Evidence for the SMAC reward on SMAX (docs/environments.md): the adapter's reward (computed
inside its jitted step) next to the same formula evaluated here in plain Python from the enemies'
hit points read off the world state, and jaxmarl's own reward for the same steps (a second
adapter with `reward="jaxmarl"` and the same seed plays the identical episode: the reward does
not change the dynamics). The agents focus fire: each attacks the lowest-index enemy in range,
else moves east (toward the enemies).

    .venv/bin/python scripts/smax_reward_episode.py --map 3m --seed 0
"""

from __future__ import annotations

import argparse

import torch

from maven.envs.smac_rules import REWARD_DEATH_VALUE, REWARD_SCALE_RATE, REWARD_WIN, episode_limit
from maven.envs.smax import SMAXVecEnv


def focus_fire(avail: torch.Tensor) -> torch.Tensor:
    n_actions = avail.shape[-1]
    idx = torch.arange(n_actions).expand_as(avail)
    attack = torch.where(avail & (idx >= 5), idx, n_actions).min(-1).values
    return torch.where(attack < n_actions, attack, torch.where(avail[..., 1], 1, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", default="3m")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit = episode_limit(args.map)
    smac = SMAXVecEnv(args.map, 1, "cpu", [args.seed], max_steps=limit, reward="smac")
    jaxmarl = SMAXVecEnv(args.map, 1, "cpu", [args.seed], max_steps=limit, reward="jaxmarl")
    n_allies = smac.info.n_agents
    unit_health = smac._env.unit_type_health
    out, out_j = smac.reset(), jaxmarl.reset()
    n_units = out.state.shape[1] // 12  # 10 features + team id + type id per unit
    enemy_types = (out.state[0, 11 * n_units + n_allies:] * 5).round().long()  # normalised type ids / 5
    max_health = torch.tensor([float(unit_health[int(t)]) for t in enemy_types], dtype=torch.float64)
    scale = (REWARD_DEATH_VALUE * len(max_health) + REWARD_WIN + float(max_health.sum())) / REWARD_SCALE_RATE

    def enemy_hp(state):
        return state[0, : 10 * n_units].reshape(n_units, 10)[n_allies:, 0].double() * max_health

    print(f"SMAX {args.map}, seed {args.seed}, episode limit {limit}; enemy max HP {max_health.tolist()}; "
          f"max_reward / 20 = {scale:g}")
    print("| step | enemy HP after | damage | kills | won | hand-computed SMAC | adapter (smac) | jaxmarl |")
    print("|---|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0]
    step = 0
    while True:
        before = enemy_hp(out.state)
        actions = focus_fire(out.avail_actions)
        out, out_j = smac.step(actions), jaxmarl.step(actions)
        step += 1
        after = enemy_hp(out.state)
        damage = float((before - after).sum())
        kills = int(((before > 0) & (after == 0)).sum())
        won = bool(out.won[0])
        by_hand = (damage + REWARD_DEATH_VALUE * kills + REWARD_WIN * won) / scale
        values = [by_hand, float(out.reward[0]), float(out_j.reward[0])]
        totals = [t + v for t, v in zip(totals, values)]
        hp = ", ".join(f"{h:g}" for h in after.tolist())
        print(f"| {step} | {hp} | {damage:g} | {kills} | {won} | {values[0]:.6f} | {values[1]:.6f} | {values[2]:.6f} |")
        if bool(out.terminated[0] | out.truncated[0]):
            break
    end = "won" if bool(out.won[0]) else ("time-out" if bool(out.truncated[0]) else "lost or drawn")
    print(f"| total ({end}) | | | | | {totals[0]:.6f} | {totals[1]:.6f} | {totals[2]:.6f} |")


if __name__ == "__main__":
    main()
