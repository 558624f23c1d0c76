"""What maven/denormals.py and maven/cpu_exp.py buy: MAVEN's z-policy update (the m10 paper
protocol's 100 Adam steps per episode) in the state real training leaves it in.

A population of S MAVEN runs (`paper` preset, m10, seeds 0..S-1) is trained for --iterations
episodes as `python -m maven train` trains it, except that subnormal floats are kept (torch's
default), so that its state holds the subnormals they leave behind (Adam's moments of weights
whose gradients have died out). Its z-policy has collapsed by then, as in every shipped run:
the unchosen z's log-probabilities lie far below -87, where torch's exp leaves its vector path.
Then the z-policy's update on the last episodes is timed from that state in four modes, alternating in one process so that they are measured
side by side: subnormals kept or flushed to zero (x86 FTZ/DAZ), and the log-softmax's exps by
torch.exp or by cpu_exp. Whether all four give the same parameters, to the last bit, is printed.

    python benchmarks/bench_zpolicy.py [--sizes 5] [--iterations 2000] [--repeats 5] [--updates 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from bench_population import build

from maven import allocator, cpu_exp, threads

EXPS = {"torch.exp": (torch.exp, lambda x: torch.logsumexp(x, -1, keepdim=True)),
        "cpu_exp": (cpu_exp.exp, cpu_exp.logsumexp)}


def trained_policy(S: int, iterations: int, out: str):
    """The z-policy of a population trained for `iterations` episodes, and the arguments of its
    last update (the last episode of every member)."""
    trainer = build({"env": "matrix", "map": "m10", "algo": "maven"}, list(range(S)), "cpu", out)
    policy = trainer.learner.z_policy
    last = {}
    update = policy.update

    def recording(*args):
        last["args"] = [a.clone() if torch.is_tensor(a) else a for a in args]
        return update(*args)

    policy.update = recording
    running = np.ones(S, bool)
    torch.set_flush_denormal(False)
    for _ in range(iterations):
        trainer._train_iteration(running)
        trainer.episode += trainer.cfg.batch_size_run
    policy.update = update
    return policy, last["args"], int(trainer.t_env.min())


def time_updates(policy, args, updates: int, flush: bool, exp_name: str) -> tuple[float, torch.Tensor]:
    """ms per update, and the parameters after `updates` updates on the same episodes."""
    torch.set_flush_denormal(flush)
    chosen_exp, chosen_lse = cpu_exp.exp, cpu_exp.logsumexp
    cpu_exp.exp, cpu_exp.logsumexp = EXPS[exp_name]
    try:
        start = time.perf_counter()
        for _ in range(updates):
            policy.update(*args)
        return (time.perf_counter() - start) / updates * 1000, policy.params.clone()
    finally:
        cpu_exp.exp, cpu_exp.logsumexp = chosen_exp, chosen_lse
        torch.set_flush_denormal(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5])
    parser.add_argument("--iterations", type=int, default=2000, help="training episodes before timing")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the four modes, alternating")
    parser.add_argument("--updates", type=int, default=20, help="timed z-policy updates per mode and round")
    args = parser.parse_args()
    threads.configure(1)
    allocator.configure()  # as `python -m maven train` does
    modes = [(flush, exp_name) for flush in (False, True) for exp_name in EXPS]
    print("ms per z-policy update (100 Adam steps of 64 samples per member), median of the rounds; "
          "x = speed against subnormals kept + torch.exp")
    for S in args.sizes:
        with tempfile.TemporaryDirectory() as out:
            policy, update_args, steps = trained_policy(S, args.iterations, out)
        s0 = update_args[0].to(torch.float32)[:, :1]
        log_probs = torch.log_softmax(policy.mlp.forward(policy.params, s0), -1)  # [S, 1, K]
        unchosen = log_probs.sort(-1, descending=True).values[..., 1:]
        tiny = torch.finfo(torch.float32).tiny
        state = torch.cat([policy.params, policy.optimiser_state["adam_m"], policy.optimiser_state["adam_v"]], 1)
        subnormal = ((state != 0) & (state.abs() < tiny)).float().mean()
        print(f"\nS = {S}, after {args.iterations} episodes (>= {steps} env steps per member): unchosen z's "
              f"log-probabilities at s0 from {unchosen.min():.0f} to {unchosen.max():.0f}; "
              f"{subnormal:.1%} of the weights and Adam moments subnormal")
        saved = [policy.member_state(k) for k in range(S)]  # every mode starts from this state
        times, results = {mode: [] for mode in modes}, {}
        for _ in range(args.repeats):
            for mode in modes:
                for k, state in enumerate(saved):
                    policy.load_member_state(k, state)
                ms, results[mode] = time_updates(policy, update_args, args.updates, *mode)
                times[mode].append(ms)
        base = float(np.median(times[modes[0]]))
        for mode in modes:
            ms = float(np.median(times[mode]))
            same = torch.equal(results[mode], results[modes[0]])
            print(f"  subnormals {'flushed' if mode[0] else 'kept   '}  {mode[1]:<10} {ms:8.2f} ms  x{base / ms:5.2f}  "
                  f"parameters {'identical' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
