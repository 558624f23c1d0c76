"""Env steps per second of the SMAX adapter vs raw jaxmarl, side by side, same batch, same run.

raw-loop: one jitted `vmap(env.step)` (auto-reset) per Python call, random valid actions drawn
          inside the same jit, waiting for each step's result (as a learner must): the adapter's
          calling pattern without torch, masks or state assembly.
raw-scan: `--steps` of the above inside one `lax.scan` (no Python in the loop): an upper bound.
adapter:  `SMAXVecEnv.step` with random valid actions drawn in torch (argmax of noise * mask),
          `reset` when every episode has ended (the runner's pattern). Steps/s counts all B
          slots per call; "active" is the share of slots whose episode was still running.
Compile time (first reset + first step) is excluded from the rates and reported.

    python benchmarks/bench_smax.py --maps 3m 2s3z --batch-sizes 1 64 512 4096 --steps 100
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


def bench_adapter(map_name: str, n_envs: int, device: torch.device, steps: int, seed: int = 0) -> dict:
    env = SMAXVecEnv(map_name, n_envs, device, seed=seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    t0 = time.perf_counter()
    out = env.reset()
    ended = torch.zeros(n_envs, dtype=torch.bool, device=device)

    def one_step(out):
        noise = torch.rand(out.avail_actions.shape, generator=gen, device=device)
        return env.step(torch.argmax(noise * out.avail_actions, dim=-1))

    out = one_step(out)
    _sync(device)
    compile_s = time.perf_counter() - t0
    active = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        if ended.all():
            out = env.reset()
            ended.zero_()
        active += int((~ended).sum())
        out = one_step(out)
        ended |= out.terminated | out.truncated
    _sync(device)
    elapsed = time.perf_counter() - t0
    env.close()
    return {"steps_s": n_envs * steps / elapsed, "compile_s": compile_s, "active": active / (n_envs * steps)}


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


def main() -> None:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=["3m", "2s3z"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 64, 512, 4096])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement")
    parser.add_argument("--no-scan", action="store_true", help="skip the raw lax.scan measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    main()
