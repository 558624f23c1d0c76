"""The minimal edits that let the original MAVEN code (commit be975c5) run on current Python,
torch, PyYAML and sacred (reference.md §4.5), applied at run time to a scratch copy of its tree.

Each edit names a file, a text that must occur there exactly `count` times, and its
replacement; a tree that does not match (another commit, an edited copy) fails loudly instead of
running something else. None of the edits changes a value the algorithm computes.
"""

from __future__ import annotations

from pathlib import Path

# The harness's logger dump: run() ends with os._exit, so sacred's last write is lost; this
# writes the logger's full history to $MAVEN_ORIGINAL_STATS first.
_DUMP = (
    "    import json as _json\n"
    "    with open(os.environ.get('MAVEN_ORIGINAL_STATS', 'stats.json'), 'w') as _out:\n"
    "        _json.dump({k: [[int(t), float(v)] for t, v in vs] for k, vs in logger.stats.items()}, _out)\n"
)

# sacred 0.8 hands the main function read-only containers; the code mutates them.
_PLAIN = (
    "def _plain(value):\n"
    "    if isinstance(value, dict):\n"
    "        return {k: _plain(v) for k, v in value.items()}\n"
    "    if isinstance(value, (list, tuple)):\n"
    "        return [_plain(v) for v in value]\n"
    "    return value\n\n\n"
    "@ex.main\n"
)

EDITS = [
    # (file under maven_code/src, old text, new text, occurrences, why)
    ("main.py", "yaml.load(f)", "yaml.safe_load(f)", 2, "PyYAML 6: yaml.load needs a Loader"),
    ("main.py", "collections.Mapping", "collections.abc.Mapping", 1, "Python 3.10 moved Mapping"),
    ("main.py", "import collections\n", "import collections\nimport collections.abc\n", 1, "for the above"),
    ("main.py", "FileStorageObserver.create(file_obs_path)", "FileStorageObserver(file_obs_path)", 1,
     "sacred 0.8 removed .create"),
    ("main.py", "@ex.main\n", _PLAIN, 1, "a plain copy of sacred's read-only config"),
    ("main.py", "    env_args['seed'] = _config[\"seed\"]\n",
     "    _config = _plain(_config)\n    _config['env_args']['seed'] = _config[\"seed\"]\n", 1,
     "mutate the plain copy, not sacred's read-only one"),
    ("envs/__init__.py", "from .starcraft2 import StarCraft2Env\n",
     ("try:\n    from .starcraft2 import StarCraft2Env\nexcept ImportError:  # pysc2 absent: matrix game only\n"
      "    StarCraft2Env = None\n"), 1, "StarCraft II's import needs pysc2"),
    ("learners/noise_q_learner.py", "mac_out[avail_actions == 0] = -9999999",
     "mac_out = mac_out.masked_fill(avail_actions == 0, -9999999)", 2,
     "current autograd rejects masking in place a tensor gather saved for backward"),
    ("run.py", "    # Making sure framework really exits\n", "    # Making sure framework really exits\n" + _DUMP, 1,
     "keep the full log: os._exit skips sacred's last write"),
]


class EditMismatch(RuntimeError):
    pass


def apply(src: Path) -> list[str]:
    """Apply every edit under src (maven_code/src); returns one line per edit for the run's record."""
    done = []
    for name, old, new, count, why in EDITS:
        path = src / name
        text = path.read_text()
        found = text.count(old)
        if found != count:
            raise EditMismatch(f"{path}: expected {count} occurrence(s) of {old.strip()!r}, found {found}; "
                               "is this commit be975c5 of AnujMahajanOxf/MAVEN?")
        path.write_text(text.replace(old, new))
        done.append(f"{name}: {why}")
    return done
