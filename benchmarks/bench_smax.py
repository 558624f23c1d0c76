"""Env steps per second of the SMAX adapter vs raw jaxmarl, and of populations of S members.

Table 1, adapter vs raw jaxmarl, side by side, same batch, same run:
raw-loop: one jitted `vmap(env.step)` (auto-reset) per Python call, random valid actions drawn
          inside the same jit, waiting for each step's result (as a learner must): the adapter's
          calling pattern without torch, masks or state assembly.
raw-scan: `--steps` of the above inside one `lax.scan` (no Python in the loop): an upper bound.
adapter:  `SMAXVecEnv.step` with random valid actions drawn in torch (argmax of noise * mask),
          `reset` when every episode has ended (the runner's pattern). Steps/s counts all B
          slots per call; "active" is the share of slots whose episode was still running.
Compile time (first reset + first step) is excluded from the rates and reported.

Table 2, populations: the adapter with S members × B envs (one vmapped XLA call per step) for each
S in --members, timed in interleaved rounds (best round kept) so that a busy machine slows all S
alike. Steps/s counts all S·B slots; "vs S=1" is that rate over the population of one's.

    python benchmarks/bench_smax.py --maps 3m 2s3z --batch-sizes 1 64 512 4096 --steps 100
    python benchmarks/bench_smax.py --tables population --maps 3m --members 1 4 16 --steps 50
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import torch

from maven.envs.smax import SMAXVecEnv, _import_jaxmarl, _jax_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class AdapterLoop:
    """The runner's pattern on one SMAXVecEnv: random valid actions drawn in torch, `reset` when
    every episode has ended. Building it compiles (first reset + first step, timed)."""

    def __init__(self, map_name: str, n_envs: int, device: torch.device, member_seeds: list[int]):
        self.env = SMAXVecEnv(map_name, n_envs, device, member_seeds)
        self.device = device
        self.gen = torch.Generator(device=device).manual_seed(member_seeds[0])
        t0 = time.perf_counter()
        self.out = self.env.reset()
        self.ended = torch.zeros(self.env.n_envs, dtype=torch.bool, device=device)
        self._step()
        _sync(device)
        self.compile_s = time.perf_counter() - t0
        self.active_slots = self.slots = 0

    def _step(self) -> None:
        noise = torch.rand(self.out.avail_actions.shape, generator=self.gen, device=self.device)
        self.out = self.env.step(torch.argmax(noise * self.out.avail_actions, dim=-1))

    def run(self, steps: int) -> float:
        """Seconds for `steps` steps of all S·B envs."""
        t0 = time.perf_counter()
        for _ in range(steps):
            if self.ended.all():
                self.out = self.env.reset()
                self.ended.zero_()
            self.active_slots += int((~self.ended).sum())
            self.slots += self.env.n_envs
            self._step()
            self.ended |= self.out.terminated | self.out.truncated
        _sync(self.device)
        return time.perf_counter() - t0


def bench_adapter(map_name: str, n_envs: int, device: torch.device, steps: int, seed: int = 0) -> dict:
    loop = AdapterLoop(map_name, n_envs, device, [seed])
    elapsed = loop.run(steps)
    loop.env.close()
    return {"steps_s": n_envs * steps / elapsed, "compile_s": loop.compile_s, "active": loop.active_slots / loop.slots}


def bench_population(map_name: str, members: list[int], n_envs: int, device: torch.device, steps: int,
                     rounds: int = 3) -> dict[int, dict]:
    """Steps/s (all S·B slots) per population size S, timed round-robin, best round kept."""
    loops = {S: AdapterLoop(map_name, n_envs, device, list(range(S))) for S in members}
    best = {S: float("inf") for S in members}
    for _ in range(rounds):
        for S, loop in loops.items():
            best[S] = min(best[S], loop.run(steps))
    results = {S: {"steps_s": S * n_envs * steps / best[S], "call_ms": 1e3 * best[S] / steps,
                   "compile_s": loop.compile_s} for S, loop in loops.items()}
    for loop in loops.values():
        loop.env.close()
    return results


def bench_raw(map_name: str, n_envs: int, device: torch.device, steps: int, scan: bool, seed: int = 0) -> dict:
    jax, jaxmarl, smax_env = _import_jaxmarl()
    jnp = jax.numpy
    env = jaxmarl.make("HeuristicEnemySMAX", scenario=smax_env.map_name_to_scenario(map_name))
    agents = list(env.agents)

    def avail_of(state):
        masks = jax.vmap(env.get_avail_actions)(state)
        return jnp.stack([masks[a] for a in agents], axis=1)  # [B, N, A]

    def step(carry, _):
        key, state, avail = carry
        key, action_key, step_key = jax.random.split(key, 3)
        noise = jax.random.uniform(action_key, avail.shape)
        actions = jnp.argmax(noise * avail, axis=-1)
        action_dict = {a: actions[:, i] for i, a in enumerate(agents)}
        _, state, rewards, _, _ = jax.vmap(env.step)(jax.random.split(step_key, n_envs), state, action_dict)
        return (key, state, avail_of(state)), rewards[agents[0]]

    def init(key):
        key, reset_key = jax.random.split(key)
        _, state = jax.vmap(env.reset)(jax.random.split(reset_key, n_envs))
        return key, state, avail_of(state)

    key = jax.device_put(jax.random.PRNGKey(seed), _jax_device(device))
    step_jit = jax.jit(lambda carry: step(carry, None))
    scan_jit = jax.jit(lambda carry: jax.lax.scan(step, carry, None, length=steps))
    results = {}
    t0 = time.perf_counter()
    carry = jax.jit(init)(key)
    carry = step_jit(carry)[0]
    carry = step_jit(carry)[0]  # reset's weakly typed policy state makes the second call compile again
    jax.block_until_ready(carry)
    results["loop_compile_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        carry, reward = step_jit(carry)
        reward.block_until_ready()  # a learner needs every step's result before its next action
    results["loop_steps_s"] = n_envs * steps / (time.perf_counter() - t0)
    if scan:
        t0 = time.perf_counter()
        jax.block_until_ready(scan_jit(carry))
        results["scan_compile_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(scan_jit(carry))
        results["scan_steps_s"] = n_envs * steps / (time.perf_counter() - t0)
    return results


def raw_table(devices: list[torch.device]) -> None:
    header = (f"{'device':6} {'map':5} {'B':>5} | {'raw-loop/s':>11} {'raw-scan/s':>11} {'adapter/s':>11} "
              f"{'ad/loop':>7} {'ad/scan':>7} {'active':>6} | compile s: raw-loop raw-scan adapter")
    print(header)
    for device in devices:
        for map_name in args.maps:
            for n_envs in args.batch_sizes:
                raw = bench_raw(map_name, n_envs, device, args.steps, scan=not args.no_scan)
                ad = bench_adapter(map_name, n_envs, device, args.steps)
                scan = raw.get("scan_steps_s", float("nan"))
                print(f"{device.type:6} {map_name:5} {n_envs:>5} | {raw['loop_steps_s']:>11,.0f} {scan:>11,.0f} "
                      f"{ad['steps_s']:>11,.0f} {ad['steps_s'] / raw['loop_steps_s']:>7.2f} "
                      f"{ad['steps_s'] / scan:>7.2f} {ad['active']:>6.2f} | "
                      f"{raw['loop_compile_s']:8.1f} {raw.get('scan_compile_s', float('nan')):8.1f} "
                      f"{ad['compile_s']:7.1f}", flush=True)


def population_table(devices: list[torch.device]) -> None:
    B = args.members_batch
    print(f"{'device':6} {'map':5} {'S':>3} {'B':>4} | {'steps/s':>11} {'vs S=1':>6} {'ms/step':>8} | compile s")
    for device in devices:
        for map_name in args.maps:
            results = bench_population(map_name, args.members, B, device, args.steps)
            base = results[args.members[0]]["steps_s"]
            for S, r in results.items():
                print(f"{device.type:6} {map_name:5} {S:>3} {B:>4} | {r['steps_s']:>11,.0f} {r['steps_s'] / base:>6.2f} "
                      f"{r['call_ms']:>8.2f} | {r['compile_s']:9.1f}", flush=True)


def main() -> None:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if "raw" in args.tables:
        raw_table(devices)
    if "population" in args.tables:
        population_table(devices)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=["3m", "2s3z"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 64, 512, 4096])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement")
    parser.add_argument("--no-scan", action="store_true", help="skip the raw lax.scan measurement")
    parser.add_argument("--tables", nargs="+", choices=["raw", "population"], default=["raw", "population"])
    parser.add_argument("--members", nargs="+", type=int, default=[1, 4, 16], help="population sizes S")
    parser.add_argument("--members-batch", type=int, default=8, help="envs per member B in the population table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    main()
