"""What a population buys: per-member training throughput against the number of members S.

For each case (the m10 paper protocol with MAVEN and QMIX, SMAX 3m with QMIX) and each S, a
population is built exactly as `python -m maven train --seeds 0-(S-1)` builds it, its replay
buffers are filled, and then the real training iteration (rollout, z-policy, replay, update) is
timed; evaluation is not. Printed per S: env steps/s of all members together (what one core
delivers to the grid), learner ms per update for the population and per member (the update
alone, on one sampled batch per member), both as ratios to S = 1, measured side by side in one
run. T is the sampled batch's padded length. GFLOP/s is the update's matrix-product arithmetic
(torch's FlopCounterMode) per second: against what one core reaches on a large matrix product
it shows how much of the update is arithmetic and how much everything else.

    python benchmarks/bench_population.py [--sizes 1 2 4 8 16 32 64] [--cases matrix-maven ...]
                                          [--iterations 20] [--device cpu|cuda] [--threads 1]
                                          [--compile eager|default|reduce-overhead]

Short episodes early in training make env steps/s depend on the phase: every case is measured in
the same phase (just after the buffers first hold a batch), so compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from maven import allocator, denormals, threads

CASES = {
    "matrix-maven": {"env": "matrix", "map": "m10", "algo": "maven"},
    "matrix-qmix": {"env": "matrix", "map": "m10", "algo": "qmix"},
    "smax3m-qmix": {"env": "smax", "map": "3m", "algo": "qmix"},
}


def build(case: dict, seeds: list[int], device: str, out: str, compile_mode: str = "eager"):
    """A population as `python -m maven train --seeds ...` builds it, ready to iterate (no run
    directories are written)."""
    from maven.config import resolve
    from maven.trainer import Trainer

    cfgs = [resolve({**case, "preset": "paper", "seed": s, "device": device}, {"compile": compile_mode})
            for s in seeds]
    trainer = Trainer(cfgs, [f"{out}/seed{s}" for s in seeds], progress=False)
    trainer._build([(c, None, "new") for c in cfgs])
    trainer.started = time.perf_counter()
    return trainer


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def compile_every_length(trainer) -> None:
    """A compiled learner's batches are padded to one of a few lengths, each compiled on first
    use (maven/compiled.py): update once at each of them, so that no compilation is timed."""
    import torch

    lengths = trainer.buffer.lengths
    if lengths is None:
        return
    everyone = torch.ones(trainer.n_members, dtype=torch.bool, device=trainer.device)
    for length in lengths:
        trainer.buffer.lengths = (length, lengths[-1])  # `length` if the sampled episodes fit in it
        batch = trainer.buffer.sample(trainer.cfg.batch_size, everyone)
        trainer.learner.update(batch, torch.as_tensor(trainer.episode), everyone)
    trainer.buffer.lengths = lengths


def measure(case: dict, S: int, iterations: int, device: str, compile_mode: str = "eager") -> dict:
    import torch

    with tempfile.TemporaryDirectory() as out:
        trainer = build(case, list(range(S)), device, out, compile_mode)
        running = np.ones(S, bool)
        while not bool(trainer.buffer.can_sample(trainer.cfg.batch_size).all()):  # fill the buffers
            trainer._train_iteration(running)
            trainer.episode += trainer.cfg.batch_size_run
        for _ in range(3):  # warm-up (allocations, JAX and vmap first calls, compilation)
            trainer._train_iteration(running)
        compile_every_length(trainer)
        sync(device)
        steps_before, start = trainer.t_env.copy(), time.perf_counter()
        for _ in range(iterations):
            trainer._train_iteration(running)
            trainer.episode += trainer.cfg.batch_size_run
        sync(device)
        seconds = time.perf_counter() - start
        steps = float((trainer.t_env - steps_before).sum())  # all members together
        everyone = torch.ones(S, dtype=torch.bool, device=trainer.device)
        batch = trainer.buffer.sample(trainer.cfg.batch_size, everyone)
        episodes = torch.as_tensor(trainer.episode)
        from torch.func import grad, vmap
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:  # matrix products only: the arithmetic floor
            eager = vmap(grad(trainer.learner._member_loss, has_aux=True))
            eager(trainer.learner.params, trainer.learner.target_params, batch.as_tuple())
        trainer.learner.update(batch, episodes, everyone)  # (compiles for this batch's length if needed)
        sync(device)
        start = time.perf_counter()
        reps = 5
        for _ in range(reps):
            trainer.learner.update(batch, episodes, everyone)
        sync(device)
        update_ms = (time.perf_counter() - start) / reps * 1000
        trainer.env.close()
    return {"steps_per_s": steps / seconds, "update_ms": update_ms, "batch_steps": batch.reward.shape[2],
            "gflop": counter.get_total_flops() / 1e9}


def peak_gflops(device: str) -> float:
    """What this device reaches on one large float32 matrix product (the roofline's ceiling)."""
    import torch

    a = torch.randn(1024, 1024, device=device)
    a @ a
    sync(device)
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ a
    sync(device)
    return 2 * 1024 ** 3 * reps / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--iterations", type=int, default=20, help="timed training iterations per size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of torch and XLA (default 1)")
    parser.add_argument("--compile", default="eager", choices=["eager", "default", "reduce-overhead"],
                        help="the `compile` config value (maven/compiled.py); compilation is not timed")
    args = parser.parse_args()
    chosen = threads.configure(args.threads)
    heap = allocator.configure()  # as `python -m maven train` does
    denormals.configure()
    print(f"device {args.device}, compile {args.compile}, torch threads {chosen['torch_threads']}, allocator {heap}, "
          f"{args.iterations} iterations per size; a 1024x1024 matrix product runs at "
          f"{peak_gflops(args.device):.0f} GFLOP/s")
    for name in args.cases:
        print(f"\n{name} (paper preset)")
        print(f"{'S':>4} {'env steps/s (all)':>19} {'x S=1':>7} {'learner ms/update':>18} "
              f"{'ms/member':>10} {'x S=1':>7} {'T':>4} {'GFLOP/s':>8}")
        base = None
        for S in args.sizes:
            r = measure(CASES[name], S, args.iterations, args.device, args.compile)
            per_member_ms = r["update_ms"] / S
            base = base or (r["steps_per_s"], per_member_ms)
            print(f"{S:>4} {r['steps_per_s']:>19.0f} {r['steps_per_s'] / base[0]:>7.2f} {r['update_ms']:>18.1f} "
                  f"{per_member_ms:>10.2f} {base[1] / per_member_ms:>7.2f} {r['batch_steps']:>4} "
                  f"{r['gflop'] / (r['update_ms'] / 1000):>8.1f}", flush=True)


if __name__ == "__main__":
    main()
