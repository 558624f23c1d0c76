"""Command line: `python -m maven train|list|check`. User errors print one line and exit 2; the
other exit codes (diverged 3, checkpoint write failed 4, stopped by a signal 128 + n) are listed
in maven/errors.py."""

from __future__ import annotations

import argparse
import sys

from maven.errors import EXIT_DIVERGED, RunStopped, UserError


def _run_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--env", required=required, help="matrix, smax or smac")
    p.add_argument("--map", required=required, help="e.g. m10 (matrix), 3m (smax/smac)")
    p.add_argument("--algo", required=required, help="maven, qmix, vdn, qtran_base or qtran_alt")
    p.add_argument("--preset", default="paper", help="named settings from maven/presets/<algo>.yaml")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override config keys (see `python -m maven list --keys`); may be repeated")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m maven", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one run, or a population of seeds in one process")
    _run_args(train)
    which = train.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="one run")
    which.add_argument("--seeds", help="a population trained in one process, e.g. 0-19, 0,3,7 or 0-4,10")
    train.add_argument("--out", required=True,
                       help="the run directory; with several seeds a template with {seed}, e.g. 'runs/seed{seed}'")
    train.add_argument("--t-max", type=int, default=None, help="budget in env steps")
    train.add_argument("--device", default=None, choices=["cpu", "cuda", "auto"])
    train.add_argument("--threads", type=int, default=None,
                       help="CPU threads for torch and XLA (default 1; capped at the CPUs this process may use)")
    check = sub.add_parser("check", help="validate a run's settings without training")
    _run_args(check)
    lister = sub.add_parser("list", help="environments, maps, algorithms and presets")
    lister.add_argument("--keys", action="store_true", help="list every config key with its default")
    return parser


def parse_seeds(spec: str) -> list[int]:
    """'0-4,10' -> [0, 1, 2, 3, 4, 10]; a one-line UserError for anything else."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        bounds = part.split("-")
        if not part or len(bounds) > 2 or not all(b.strip().isdigit() for b in bounds):
            raise UserError(f"bad --seeds {spec!r}: expected seeds >= 0 as a list of numbers and ranges, e.g. 0-19 or 0,3,7")
        low, high = int(bounds[0]), int(bounds[-1])
        if high < low:
            raise UserError(f"bad --seeds {spec!r}: the range {part} is empty; write it low-high, e.g. {high}-{low}")
        seeds.extend(range(low, high + 1))
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
    if duplicates:
        raise UserError(f"bad --seeds {spec!r}: seed {duplicates[0]} is listed twice")
    return seeds


def member_outs(out: str, seeds: list[int]) -> list[str]:
    """Each member's run directory from --out (a template with {seed} when there are several)."""
    if "{seed}" not in out:
        if len(seeds) > 1:
            raise UserError(f"--out {out!r} needs {{seed}} for {len(seeds)} seeds, e.g. '{out}/seed{{seed}}'")
        return [out]
    try:
        return [out.format(seed=s) for s in seeds]
    except (KeyError, IndexError, ValueError):
        raise UserError(f"bad --out {out!r}: the only placeholder allowed is {{seed}}") from None


def _resolve(args, seed: int | None = None):
    from maven.config import parse_set, resolve

    run = {"env": args.env, "map": args.map, "algo": args.algo, "preset": args.preset,
           "seed": seed, "t_max": getattr(args, "t_max", None), "device": getattr(args, "device", None)}
    if seed is not None and seed < 0:
        raise UserError(f"bad --seed {seed}: must be >= 0")
    return resolve(run, parse_set(args.overrides))


def cmd_train(args) -> int:
    from maven import allocator, denormals, threads

    # before anything imports jax or torch does work: XLA reads its thread flags once; what it
    # says is printed after the input is validated (errors stay one line)
    notes: list[str] = []
    chosen = threads.configure(args.threads, log=notes.append)
    chosen["allocator"] = allocator.configure()
    chosen["denormals"] = denormals.configure()
    seeds = [args.seed] if args.seed is not None else parse_seeds(args.seeds)
    outs = member_outs(args.out, seeds)
    cfgs = [_resolve(args, seed) for seed in seeds]
    for line in notes:
        print(line, file=sys.stderr, flush=True)
    from maven.trainer import Trainer

    summaries = Trainer(cfgs, outs, threads=chosen).run()
    summaries = summaries if isinstance(summaries, list) else [summaries]
    # each diverged member has printed its own error line; the healthy ones finished
    return EXIT_DIVERGED if any(s and s.get("status") == "diverged" for s in summaries) else 0


def cmd_list(args) -> None:
    from maven import algos, envs
    from maven.config import TrainConfig, preset_names

    if args.keys:
        for key, value in TrainConfig().to_dict().items():
            print(f"{key} = {value!r}")
        return
    print("environments and maps:")
    for env, spec in envs.ENVS.items():
        try:
            names = ", ".join(envs.maps(env))
        except UserError as err:
            names = f"(unavailable: {err})"
        extra = f" [extra: {spec.extra}]" if spec.extra else ""
        print(f"  {env}{extra}: {names}")
    print("algorithms and presets:")
    for algo in algos.ALGOS:
        print(f"  {algo}: {', '.join(preset_names(algo))}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            cmd_list(args)
        elif args.command == "check":
            cfg = _resolve(args)
            print(f"ok: {cfg.env}/{cfg.map} {cfg.algo} preset {cfg.preset}")
        else:
            return cmd_train(args)
    except (UserError, RunStopped) as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0
