"""Config validation, the expected grid and per-run lookups shared by every rule."""

import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def _typed(value):
    """`--config` delivers nested values as strings: turn numbers and booleans back into them."""
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
    return value


for _key in set(config) - {"envs", "maps", "algos", "presets", "train_set", "device"}:
    config[_key] = _typed(config[_key])
validate(config, schema="../schemas/config.schema.yaml")

SCRIPTS = Path(workflow.current_basedir).parent / "scripts"
# Everything a grid writes lives under results_dir (default results/), so named grids such as
# config/smax_cpu.yaml keep their runs, figures and tables apart from the default grid's.
RESULTS = config["results_dir"].rstrip("/")
LOGS = "logs" if RESULTS == "results" else f"logs/{Path(RESULTS).name}"
SUMMARY = f"{RESULTS}/runs/{{env}}/{{map}}/{{algo}}/seed{{seed}}/summary.json"
DEFAULT_RESOURCES = {"threads": 1, "mem_mb": 4000, "runtime": 60, "gpu": 0}


def _fail(message):
    """One line naming the bad value, raised while parsing: no job has run yet."""
    raise WorkflowError(f"config: {message}")


def _maps_for(env):
    maps = config["maps"]
    if isinstance(
        maps, dict
    ):  # entries of envs not in the grid are ignored (config files merge)
        return list(maps.get(env, []))
    from maven import envs as env_registry
    from maven.errors import UserError

    kept = []
    for name in maps:
        try:
            env_registry.check_map(env, name)
            kept.append(name)
        except UserError:
            pass
    return kept


def _seeds_for(env):
    seeds = config["seeds"]
    if isinstance(seeds, dict):
        if env not in seeds:
            _fail(f"no seeds for env {env!r}; seeds has {sorted(seeds)}")
        return seeds[env]
    return seeds


def preset_of(algo):
    return config["presets"].get(algo, "paper")


def t_max_of(env, map_name):
    budgets = config["t_max"]
    return budgets.get(f"{env}/{map_name}", budgets.get(map_name))


def _check_grid(runs):
    """Every (env, map, algo, preset) through the package's own resolver, budget included."""
    from maven.config import parse_set, resolve
    from maven.errors import UserError

    flat_maps = [] if isinstance(config["maps"], dict) else list(config["maps"])
    used = {run["map"] for run in runs}
    if flat_maps and set(flat_maps) - used:
        _fail(
            f"map(s) {sorted(set(flat_maps) - used)} belong to none of envs {config['envs']}"
        )
    seen = set()
    for run in runs:
        combo = (run["env"], run["map"], run["algo"])
        if combo in seen:
            continue
        seen.add(combo)
        try:
            resolve(
                {
                    "env": run["env"],
                    "map": run["map"],
                    "algo": run["algo"],
                    "preset": preset_of(run["algo"]),
                    "t_max": t_max_of(run["env"], run["map"]),
                },
                parse_set(config["train_set"]),
            )
        except UserError as error:
            _fail("{}/{}/{}: {}".format(*combo, error))
        except OSError as error:
            _fail("{}/{}/{}: cannot read the preset file: {}".format(*combo, error))


def expected_runs():
    runs = [
        {"env": env, "map": map_name, "algo": algo, "seed": seed}
        for env in config["envs"]
        for map_name in _maps_for(env)
        for algo in config["algos"]
        for seed in _seeds_for(env)
    ]
    if not runs:
        _fail(
            f"the grid is empty: no map of {config['maps']} belongs to envs {config['envs']}"
        )
    return runs


RUNS = expected_runs()
_check_grid(RUNS)
ENVS = sorted({run["env"] for run in RUNS})


wildcard_constraints:
    env="|".join(ENVS),
    map=r"[A-Za-z0-9_]+",
    algo="|".join(config["algos"]),
    seed=r"\d+",


def expected_summaries():
    """Inputs of the aggregation: every run, or in figures_only mode the finished ones only."""
    paths = [SUMMARY.format(**run) for run in RUNS]
    if config["figures_only"]:
        return [path for path in paths if Path(path).exists()]
    return paths


def train_resource(wildcards, name):
    merged = dict(DEFAULT_RESOURCES)
    merged.update(config["train_resources"].get(wildcards.env, {}))
    merged.update(config["train_resources"].get(f"{wildcards.env}/{wildcards.map}", {}))
    return merged[name]


def train_flags(wildcards):
    flags = [f"--preset {preset_of(wildcards.algo)}"]
    budget = t_max_of(wildcards.env, wildcards.map)
    if budget is not None:
        flags.append(f"--t-max {budget}")
    flags.append(f"--device {config['device'].get(wildcards.env, 'auto')}")
    flags += [f"--set {shlex.quote(item)}" for item in config["train_set"]]
    return " ".join(flags)


FIGURE_KINDS = ["curves", "aggregate", "profiles", "improvement", "sample_efficiency"]
TABLES = ["final_scores", "best_scores"]
PYTHON = sys.executable
