"""Environment registry: one entry per environment, looked up by name.

Each entry names its module (imported only when that environment is used, so SMAC's and
SMAX's dependencies stay optional), how to list its maps, and its evaluation protocol.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from maven.errors import UserError, choose

if TYPE_CHECKING:
    from maven.config import TrainConfig
    from maven.envs.base import VecEnv


@dataclass(frozen=True)
class EnvSpec:
    module: str  # provides make(cfg, n_envs, device, member_seeds) -> VecEnv and maps() -> list[str]
    protocol: dict = field(default_factory=dict)  # test_interval, test_nepisode, t_max
    extra: str = ""  # the pip extra that installs its dependencies
    external: bool = False
    """An external simulator in worker processes (SMAC): test episodes reuse the training
    workers, and episodes are not reseeded (relaunching StarCraft II per episode is too slow,
    and the game is not bit-reproducible anyway), so such runs resume but not bit-exactly."""


ENVS: dict[str, EnvSpec] = {
    "matrix": EnvSpec("maven.envs.matrix", {"test_interval": 1000, "test_nepisode": 64, "t_max": 105_000}),
    "smax": EnvSpec("maven.envs.smax", {"test_interval": 10_000, "test_nepisode": 32, "t_max": 1_000_000}, "smax"),
    "smac": EnvSpec("maven.envs.smac", {"test_interval": 10_000, "test_nepisode": 32, "t_max": 2_050_000}, "smac",
                    external=True),
}


def _module(env: str):
    choose("environment", env, ENVS)
    return importlib.import_module(ENVS[env].module)


def maps(env: str) -> list[str]:
    return list(_module(env).maps())


def check_map(env: str, map_name: str) -> None:
    module = _module(env)
    if hasattr(module, "check_map"):
        module.check_map(map_name)
        return
    choose(f"{env} map", map_name, module.maps())


def protocol_defaults(env: str, map_name: str | None = None) -> dict:
    """The environment's protocol; for SMAX also the map's episode limit (SMAC's where SMAC has
    the map, see smac_rules.py)."""
    choose("environment", env, ENVS)
    defaults = dict(ENVS[env].protocol)
    if env == "smax" and map_name is not None:
        from maven.envs.smac_rules import episode_limit

        defaults["smax_max_steps"] = episode_limit(map_name)
    return defaults


def make(cfg: TrainConfig, n_envs: int, device, member_seeds: Sequence[int]) -> VecEnv:
    """n_envs environments for each member of a population (seeds `member_seeds`), member-major."""
    return _module(cfg.env).make(cfg, n_envs, device, list(member_seeds))


MATRIX_MAP = re.compile(r"^m([1-9][0-9]*)$")


def matrix_steps(map_name: str) -> int:
    match = MATRIX_MAP.match(map_name)
    if not match:
        raise UserError(f"unknown matrix map {map_name!r}; matrix maps are m<M> for M >= 1 steps, e.g. m10")
    return int(match.group(1))


def matrix_optimal_return(map_name: str) -> float:
    """The best return of the m-step matrix game: m + 3 (branch 0, then (1, 1) paying 4 on the
    last step) for m > 1; 1 for m = 1, whose single step has no final payoff."""
    steps = matrix_steps(map_name)
    return steps + 3.0 if steps > 1 else 1.0
