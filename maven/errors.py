"""User-facing errors: one line, names the bad value and the valid choices, exit code 2."""


class UserError(Exception):
    """Bad input from the user (CLI, config, missing dependency). Printed without a traceback."""

    exit_code = 2


def choose(kind: str, value: str, choices) -> None:
    """Raise a UserError unless `value` is one of `choices`."""
    choices = sorted(choices)
    if value not in choices:
        raise UserError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
