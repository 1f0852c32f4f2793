"""User-facing errors.

Anything the user can fix (bad path, unknown class, bad config) raises
`UserError`; the CLI prints its one-line message and exits with code 2, so
users never see a traceback for their own input.
"""


class UserError(Exception):
    """A problem with the user's input, described in words they can act on."""

    exit_code = 2


class DataError(UserError):
    """The dataset is missing, empty, or unreadable."""


class ConfigError(UserError):
    """The configuration has an unknown key, a wrong type, or a bad value."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, unsafe, or for another model."""


class DivergenceError(RuntimeError):
    """Training produced NaN/Inf; raised so nothing bad gets checkpointed."""

    exit_code = 3
