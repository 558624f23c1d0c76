"""Command line: `python -m maven train|list|check`. User errors print one line and exit 2."""

from __future__ import annotations

import argparse
import sys

from maven.errors import UserError


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
    train = sub.add_parser("train", help="train one run into a run directory")
    _run_args(train)
    train.add_argument("--seed", type=int, required=True)
    train.add_argument("--out", required=True, help="the run directory")
    train.add_argument("--t-max", type=int, default=None, help="budget in env steps")
    train.add_argument("--device", default=None, choices=["cpu", "cuda", "auto"])
    check = sub.add_parser("check", help="validate a run's settings without training")
    _run_args(check)
    lister = sub.add_parser("list", help="environments, maps, algorithms and presets")
    lister.add_argument("--keys", action="store_true", help="list every config key with its default")
    return parser


def _resolve(args):
    from maven.config import parse_set, resolve

    run = {"env": args.env, "map": args.map, "algo": args.algo, "preset": args.preset,
           "seed": getattr(args, "seed", None), "t_max": getattr(args, "t_max", None),
           "device": getattr(args, "device", None)}
    if run["seed"] is not None and run["seed"] < 0:
        raise UserError(f"bad --seed {run['seed']}: must be >= 0")
    return resolve(run, parse_set(args.overrides))


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
            from maven.trainer import Trainer

            cfg = _resolve(args)
            Trainer(cfg, args.out).run()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0
