"""Typed run configuration, layered as PyMARL does it and validated once at the edge.

Resolution order: field defaults (PyMARL's defaults) -> the environment's protocol defaults ->
the preset for (algorithm, environment) from `maven/presets/<algo>.yaml` -> `--set key=value`.
Everything inside the library receives a validated `TrainConfig`, never a raw dict.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any, Literal, get_args, get_origin

import yaml

from maven.errors import UserError


@dataclass
class TrainConfig:
    # --- what runs -------------------------------------------------------------------------
    env: str = "matrix"
    map: str = "m10"
    algo: str = "qmix"
    preset: str = "paper"
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    t_max: int = 105_000
    """Training budget in env steps (training episodes only, as PyMARL counts `t_env`)."""

    # --- rollout and evaluation ------------------------------------------------------------
    batch_size_run: int = 1
    """Environments stepped in parallel; one gradient step per batch of batch_size_run episodes."""
    test_interval: int = 1000
    test_nepisode: int = 64
    checkpoint_interval: int = 20_000
    """Env steps between checkpoints (a final one is written at the end)."""
    checkpoints_kept: int = 2
    compile: Literal["eager", "default", "reduce-overhead"] = "eager"
    """torch.compile the learner's gradient and optimiser step, the agents' acting step and MAVEN's
    z-policy steps (maven/compiled.py): `default` fuses each into a few kernels (C++ on a CPU,
    Triton on a GPU), `reduce-overhead` also replays them as CUDA graphs on a GPU. Replay batches
    are then padded to 60, 80 or 100% of the episode limit so that shapes are few. Not
    bit-identical to `eager`."""
    on_nonfinite: Literal["stop", "skip_update"] = "stop"
    """A non-finite loss or gradient norm: `stop` the member (summary status `diverged`, exit 3,
    its last good checkpoint kept) or `skip_update` (that gradient step is not applied)."""

    # --- optimisation (PyMARL defaults) ----------------------------------------------------
    buffer_size: int = 5000
    batch_size: int = 32
    lr: float = 5e-4
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    optim_alpha: float = 0.99
    optim_eps: float = 1e-5
    grad_norm_clip: float = 10.0
    gamma: float = 0.99
    target_update_interval: int = 200
    """Hard target refresh after this many training episodes (of all parallel envs)."""
    double_q: bool = True
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_time: int = 50_000
    reward_scale: float = 1.0
    bootstrap_on_timeout: bool = True
    """Treat the time limit as truncation (bootstrap). False = the original SMAC runs (Q14)."""

    # --- networks --------------------------------------------------------------------------
    rnn_hidden_dim: int = 64
    obs_last_action: bool = True
    obs_agent_id: bool = True
    mixing_embed_dim: int = 32
    hypernet_layers: Literal[1, 2] = 1
    hypernet_embed: int = 64

    # --- QTRAN -----------------------------------------------------------------------------
    qtran_opt_loss: float = 1.0
    qtran_nopt_min_loss: float = 0.1
    qtran_network_size: Literal["small", "big"] = "small"
    qtran_alt_opt_detach_agents: bool = True
    """Q9 as coded: L_opt trains only V (agents' utilities detached). False = fixed."""
    qtran_alt_nopt_double_count: bool = True
    """Q10 as coded: agent i's own utility counted twice in L_nopt-min. False = fixed."""
    qtran_alt_nopt_include_unavailable: bool = True
    """Q11 as coded: the min in L_nopt-min runs over unavailable actions too. False = fixed."""
    qtran_alt_double_q: bool = False
    """Q12 as coded: the target uses the target agents' greedy actions. True = double Q."""

    # --- MAVEN -----------------------------------------------------------------------------
    noise_dim: int = 2
    """K, the number of latent values z (one-hot)."""
    z_policy: Literal["uniform", "reinforce", "returns_bandit"] = "uniform"
    bandit_buffer: int = 512
    bandit_iters: int = 8
    bandit_batch: int = 64
    entropy_scaling: float = 0.001
    ez_entropy: Literal["as_coded", "true_entropy"] = "as_coded"
    """Q4: as coded the 'entropy' term is entropy_scaling * sum log pi (a return shift)."""
    bandit_epsilon: float = 0.1
    bandit_reward_scaling: float = 20.0
    bandit_use_state: bool = True
    returns_bandit_state_mismatch: bool = True
    """Q18 as coded: with bandit_use_state False it trains on ones but acts on s0."""
    mi_loss: float = 1.0
    rnn_discrim: bool = True
    rnn_agg_size: int = 32
    discrim_size: int = 32
    discrim_layers: int = 2
    discrim_gru_uses_padded_final_state: bool = True
    """Q1 as coded: the GRU discriminator classifies the state after the batch's padding."""
    hard_qs: bool = False
    mi_intrinsic: bool = False
    mi_scaler: float = 0.1
    mi_intrinsic_sign: Literal["as_coded", "corrected"] = "as_coded"
    """Q3: as coded the intrinsic reward adds +CE (rewards hard-to-infer z)."""
    test_uniform_z: bool = True
    """Also evaluate MAVEN with uniform z (logged as *_uniform_z)."""
    per_z_test_logs_include_train: bool = True
    """Q6 as coded: the policy-z pass's per-z returns (z<i>_return_mean, max_z_return_mean) also
    average the training episodes since the later of the last evaluation and the last train log
    (every runner_log_interval env steps). False = the pass's test episodes only (per_z.py)."""
    runner_log_interval: int = 2000
    """Env steps between the original runner's train logs, which empty its per-z lists (Q6)."""

    # --- environments ----------------------------------------------------------------------
    good_branches: Literal[2, 4] = 2
    smax_max_steps: int = 100
    """SMAX episode limit. Resolved per map: SMAC's limit for the maps SMAC has (3m 60, 2s3z 120,
    ...; maven/envs/smac_rules.py), 100 (jaxmarl's default) for the others."""
    smax_reward: Literal["smac", "jaxmarl"] = "smac"
    """smac: SMAC's dense reward computed from SMAX's health and alive flags (at most 20 per
    episode); jaxmarl: SMAX's own reward (damage fraction + 1 for a win, at most about 2)."""
    smax_normalise_state: bool = True
    """Rescale SMAX's world state (positions /32, cooldowns, type ids) to about [0, 1]."""
    smac_difficulty: str = "7"
    smac_game_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_TYPES = {f.name: f for f in fields(TrainConfig)}
_POSITIVE = {
    "t_max", "batch_size_run", "test_interval", "test_nepisode", "checkpoint_interval",
    "checkpoints_kept", "buffer_size", "batch_size", "target_update_interval",
    "rnn_hidden_dim", "mixing_embed_dim", "hypernet_embed", "noise_dim", "bandit_buffer",
    "bandit_iters", "bandit_batch", "rnn_agg_size", "discrim_size", "discrim_layers",
    "smax_max_steps", "runner_log_interval",
}
_NON_NEGATIVE = {"seed", "epsilon_anneal_time", "grad_norm_clip", "lr", "optim_eps", "mi_loss",
                 "entropy_scaling", "mi_scaler", "qtran_opt_loss", "qtran_nopt_min_loss",
                 "reward_scale", "bandit_reward_scaling"}
_UNIT_INTERVAL = {"gamma", "epsilon_start", "epsilon_finish", "optim_alpha", "bandit_epsilon"}


def _annotation(name: str):
    return eval(_TYPES[name].type, {"Literal": Literal})  # annotations are strings here


def coerce(name: str, value: Any) -> Any:
    """Check one config value against its declared type and range; return it typed."""
    if name not in _TYPES:
        import difflib

        close = difflib.get_close_matches(name, _TYPES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown config key {name!r}{hint}; `python -m maven list --keys` lists them")
    ann = _annotation(name)
    if get_origin(ann) is Literal:
        choices = get_args(ann)
        for choice in choices:
            if value == choice or str(value) == str(choice):
                return choice
        raise UserError(f"bad value {value!r} for {name}; choose one of: {', '.join(map(str, choices))}")
    try:
        if ann is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = value.lower() in ("true", "1")
            elif not isinstance(value, bool):
                raise ValueError
        elif ann is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        elif ann is float:
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
        elif ann is str:
            value = str(value)
    except (TypeError, ValueError):
        raise UserError(f"bad value {value!r} for {name}: expected {ann.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"bad value {value!r} for {name}: must be a finite number")
    if name in _POSITIVE and value <= 0:
        raise UserError(f"bad value {value!r} for {name}: must be > 0")
    if name in _NON_NEGATIVE and value < 0:
        raise UserError(f"bad value {value!r} for {name}: must be >= 0")
    if name in _UNIT_INTERVAL and not 0 <= value <= 1:
        raise UserError(f"bad value {value!r} for {name}: must be in [0, 1]")
    return value


def parse_set(items: list[str]) -> dict[str, Any]:
    """Turn ['key=value', ...] from --set into a dict (values parsed as YAML scalars)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"bad --set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw != "" else ""
    return out


def load_presets(algo: str) -> dict[str, dict]:
    text = resources.files("maven.presets").joinpath(f"{algo}.yaml").read_text()
    return yaml.safe_load(text) or {}


def preset_names(algo: str) -> list[str]:
    return sorted(load_presets(algo))


def preset_overrides(algo: str, preset: str, env: str, map_name: str) -> dict[str, Any]:
    """The preset's values for this environment: `all`, then `<env>`, then `<env>/<map>`."""
    presets = load_presets(algo)
    if preset not in presets:
        raise UserError(f"unknown preset {preset!r} for {algo}; choose one of: {', '.join(sorted(presets))}")
    spec = presets[preset]
    if not any(key in spec for key in ("all", env)):
        has = sorted(key for key in spec if key not in ("description", "maps"))
        raise UserError(f"preset {preset!r} of {algo} has no settings for env {env!r} (it has {', '.join(has)}); "
                        "choose another --preset")
    out: dict[str, Any] = {}
    out.update(spec.get("all", {}) or {})
    out.update(spec.get(env, {}) or {})
    out.update((spec.get("maps", {}) or {}).get(f"{env}/{map_name}", {}) or {})
    return out


def resolve(run: dict[str, Any], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Build and validate the full config for one run.

    `run` holds env, map, algo, preset, seed and optionally device and t_max (None = default).
    """
    from maven import algos, envs  # the registries

    env, map_name, algo = run["env"], run["map"], run["algo"]
    envs.check_map(env, map_name)
    algos.check(algo)
    preset = run.get("preset") or "paper"
    values: dict[str, Any] = {}
    values.update(envs.protocol_defaults(env, map_name))
    values.update(preset_overrides(algo, preset, env, map_name))
    values.update(overrides or {})
    for key in ("env", "map", "algo", "preset"):
        if key in (overrides or {}):
            raise UserError(f"--set {key}=... is not allowed; use --{key}")
    values.update({"env": env, "map": map_name, "algo": algo, "preset": preset})
    for key in ("seed", "device", "t_max"):
        if run.get(key) is not None:
            values[key] = run[key]
    cfg = TrainConfig(**{k: coerce(k, v) for k, v in values.items()})
    if cfg.z_policy != "uniform" and not algos.learner_class(cfg.algo).has_latent:
        raise UserError(f"z_policy={cfg.z_policy!r} needs an algorithm with a latent z, e.g. --algo maven")
    if cfg.mi_intrinsic and cfg.rnn_discrim:
        raise UserError("mi_intrinsic=true needs rnn_discrim=false (the original asserts it)")
    if cfg.epsilon_finish > cfg.epsilon_start:
        raise UserError(
            f"bad value epsilon_finish={cfg.epsilon_finish}: must be <= epsilon_start={cfg.epsilon_start}"
        )
    return cfg
