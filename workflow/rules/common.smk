"""Config validation, the expected grid, the pending population jobs, per-job lookups."""

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
RUN_DIR = f"{RESULTS}/runs/{{env}}/{{map}}/{{algo}}/seed{{seed}}"
SUMMARY = f"{RUN_DIR}/summary.json"
# One population job (rules/train.smk): its log, and the marker it writes once every member's
# summary.json exists. `seeds` names the members, e.g. 0-4 or 0_3_7 or 0-4_10.
TRAIN_LOG = f"{LOGS}/train/{{env}}/{{map}}/{{algo}}/seeds{{seeds}}.log"
TRAIN_DONE = f"{LOGS}/train/{{env}}/{{map}}/{{algo}}/seeds{{seeds}}.done"
# The original code's runs (rules/original.smk), one seed per job.
ORIGINAL_LOG = f"{LOGS}/original/{{env}}/{{map}}/{{algo}}/seeds{{seeds}}.log"
ORIGINAL_DONE = f"{LOGS}/original/{{env}}/{{map}}/{{algo}}/seeds{{seeds}}.done"
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


def seeds_per_job_of(env):
    """Members of one population job: an integer for every env, or per env (absent envs: 1)."""
    value = config["seeds_per_job"]
    return value.get(env, 1) if isinstance(value, dict) else value


def variant_of(name):
    """A grid entry's variant: {algo, preset, label, runner} from `variants`, or the plain
    algorithm `name` with its preset from `presets`. The entry's name is the run path's <algo>.
    """
    spec = dict(config["variants"].get(name, {}))
    spec.setdefault("algo", name)
    spec.setdefault("preset", config["presets"].get(name, "paper"))
    spec.setdefault("runner", "port")
    return spec


def algo_of(name):
    return variant_of(name)["algo"]


def preset_of(name):
    return variant_of(name)["preset"]


def labels():
    """Figure and table labels of the grid's variants that name one."""
    return {
        name: spec["label"]
        for name, spec in config["variants"].items()
        if spec.get("label")
    }


def is_original(name):
    return variant_of(name)["runner"] == "original"


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
    from maven import algos as algo_registry

    for name in config["algos"]:
        if name not in algo_registry.ALGOS and name not in config["variants"]:
            _fail(
                f"algos entry {name!r} is neither an algorithm ({', '.join(algo_registry.ALGOS)}) "
                "nor a key of `variants`; add it to `variants` or fix the name"
            )
    seen = set()
    for run in runs:
        combo = (run["env"], run["map"], run["algo"])
        if is_original(run["algo"]) and (run["env"], run["map"]) != ("matrix", "m10"):
            _fail(
                f"{run['algo']!r} runs the original code, which the harness runs on matrix/m10 "
                f"only, not {run['env']}/{run['map']}; narrow maps or drop it"
            )
        if combo in seen or is_original(run["algo"]):
            continue
        seen.add(combo)
        try:
            resolve(
                {
                    "env": run["env"],
                    "map": run["map"],
                    "algo": algo_of(run["algo"]),
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
    seeds=r"\d+(-\d+)?(_\d+(-\d+)?)*",


def seeds_token(seeds):
    """Sorted seeds as a file-name token: [0, 1, 2, 3, 4, 10] -> "0-4_10"."""
    parts, seeds = [], sorted(seeds)
    start = previous = seeds[0]
    for seed in seeds[1:] + [None]:
        if seed is not None and seed == previous + 1:
            previous = seed
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = seed
    return "_".join(parts)


def seeds_of(token):
    """The inverse of seeds_token: "0-4_10" -> [0, 1, 2, 3, 4, 10]."""
    seeds = []
    for part in token.split("_"):
        first, _, last = part.partition("-")
        seeds += range(int(first), int(last or first) + 1)
    return seeds


def _pending_jobs():
    """The population jobs still to run: each cell's unfinished seeds, sorted, in chunks of
    seeds_per_job. Finished runs (summary.json present) are in no job, so no job can touch them.
    """
    cells = {}
    for run in RUNS:
        if not Path(SUMMARY.format(**run)).exists():
            cell = (run["env"], run["map"], run["algo"])
            cells.setdefault(cell, []).append(run["seed"])
    jobs = []
    for (env, map_name, algo), seeds in cells.items():
        if is_original(algo) and not config["original"].get("repo"):
            # Not trained, not dropped: the aggregation lists these runs as missing.
            print(
                f"warning: {algo} runs the original code but `original.repo` is empty; its "
                f"{len(seeds)} run(s) stay missing (set --config original='{{repo: PATH, python: PY}}')",
                file=sys.stderr,
            )
            continue
        size, seeds = seeds_per_job_of(env), sorted(seeds)
        if is_original(algo):
            size = 1  # the original code trains one seed per process
        for first in range(0, len(seeds), size):
            token = seeds_token(seeds[first : first + size])
            jobs.append({"env": env, "map": map_name, "algo": algo, "seeds": token})
    return jobs


PENDING_JOBS = [] if config["figures_only"] else _pending_jobs()
for _job in PENDING_JOBS:
    # A pending job's marker can only be left from an earlier job with the same members, one
    # of whose summary.json was deleted since (to retrain it): stale, or Snakemake would call
    # the job done.
    Path(TRAIN_DONE.format(**_job)).unlink(missing_ok=True)


def run_targets():
    """What the aggregation waits for: the finished runs' summary.json files and the markers of
    the population jobs that train the rest (none in figures_only mode)."""
    done = [SUMMARY.format(**run) for run in RUNS]
    done = [path for path in done if Path(path).exists()]
    return done + [
        (ORIGINAL_DONE if is_original(job["algo"]) else TRAIN_DONE).format(**job)
        for job in PENDING_JOBS
    ]


def train_resource(wildcards, name):
    """One population job's resources. train_resources describe one run; memory and runtime
    grow by extra_mem_mb / extra_runtime (default: mem_mb / runtime) per member after the first.
    """
    merged = dict(DEFAULT_RESOURCES)
    merged.update(config["train_resources"].get(wildcards.env, {}))
    merged.update(config["train_resources"].get(f"{wildcards.env}/{wildcards.map}", {}))
    if name in ("mem_mb", "runtime"):
        extra = merged.get(f"extra_{name}", merged[name])
        return merged[name] + (len(seeds_of(wildcards.seeds)) - 1) * extra
    return merged[name]


# Added to the priority of a compiled cell's first job (larger than any cost x seeds).
FIRST_COMPILED_JOB_BONUS = 10_000


def _first_jobs_of_split_cells():
    """(env, map, algo, seeds) of the first job of every cell split into several jobs."""
    jobs_per_cell = {}
    for job in PENDING_JOBS:
        jobs_per_cell.setdefault((job["env"], job["map"], job["algo"]), []).append(
            job["seeds"]
        )
    return {
        (*cell, seeds[0]) for cell, seeds in jobs_per_cell.items() if len(seeds) > 1
    }


FIRST_JOBS_OF_SPLIT_CELLS = _first_jobs_of_split_cells()


def train_priority(wildcards):
    """Longest job first: Snakemake starts higher priorities first, so on a few cores the job
    left running alone at the end is a short one (config train_cost, per run, times seeds).
    A compiled cell split into several jobs starts one of them before any cell's second job:
    the later jobs then find torch's compile cache warm instead of compiling the same graphs
    side by side (m10, 10 seeds: MAVEN compiles ~2 minutes cold, QMIX ~1).
    """
    w = wildcards
    priority = config["train_cost"].get(w.algo, 1) * len(seeds_of(w.seeds))
    compiled = config["compile"].get(w.env, "eager") != "eager"
    if compiled and (w.env, w.map, w.algo, w.seeds) in FIRST_JOBS_OF_SPLIT_CELLS:
        priority += FIRST_COMPILED_JOB_BONUS
    return priority


def _cell(wildcards):
    return {"env": wildcards.env, "map": wildcards.map, "algo": wildcards.algo}


def train_out(wildcards):
    """The trainer's --out: the cell's run directory with {seed} left for the trainer to fill."""
    return RUN_DIR.format(seed="{seed}", **_cell(wildcards))


def train_members(wildcards):
    """The members' summary.json files, checked (not declared as outputs) after the job."""
    return [
        SUMMARY.format(seed=seed, **_cell(wildcards))
        for seed in seeds_of(wildcards.seeds)
    ]


def train_flags(wildcards):
    flags = [f"--algo {algo_of(wildcards.algo)} --preset {preset_of(wildcards.algo)}"]
    budget = t_max_of(wildcards.env, wildcards.map)
    if budget is not None:
        flags.append(f"--t-max {budget}")
    flags.append(f"--device {config['device'].get(wildcards.env, 'auto')}")
    compile_mode = config["compile"].get(wildcards.env, "eager")
    if compile_mode != "eager":
        flags.append(f"--set compile={compile_mode}")
    flags += [f"--set {shlex.quote(item)}" for item in config["train_set"]]
    return " ".join(flags)


FIGURE_KINDS = ["curves", "aggregate", "profiles", "improvement", "sample_efficiency"]
TABLES = ["final_scores", "best_scores"]
PORT_ALGOS = [name for name in config["algos"] if not is_original(name)]
ORIGINAL_ALGOS = [name for name in config["algos"] if is_original(name)]
PYTHON = sys.executable
