"""Why a run stops short, each with the one-line message it prints and its exit code.

The exit codes are the trainer's contract with shells, Snakemake and SLURM (README, "Exit codes"):
0 finished (or nothing to do), 1 an unexpected crash (a traceback), 2 a user error or a run
directory held by another trainer, 3 a member diverged, 4 a checkpoint could not be written,
128 + the signal number (130 SIGINT, 143 SIGTERM) stopped by a signal after checkpointing.
"""

EXIT_DIVERGED = 3


class UserError(Exception):
    """Bad input from the user (CLI, config, missing dependency). Printed without a traceback."""

    exit_code = 2


class RunStopped(Exception):
    """A run that stopped on a fault or on request; printed as one line, without a traceback."""

    exit_code = 1


class CheckpointWriteError(RunStopped):
    """A checkpoint could not be written (disk full, directory not writable): the partial file
    is removed and the previous checkpoints are kept, so a rerun resumes from them."""

    exit_code = 4


class Interrupted(RunStopped):
    """SIGTERM or SIGINT: the current iteration finished and every running member checkpointed."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def choose(kind: str, value: str, choices) -> None:
    """Raise a UserError unless `value` is one of `choices`."""
    choices = sorted(choices)
    if value not in choices:
        raise UserError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
