"""User-facing errors.

Every problem a user can fix (a bad hyperparameter, an unknown environment, a corrupt
checkpoint, an action space an algorithm cannot handle) is raised as a :class:`PgrlError`
whose message names the problem and the way out. The CLI prints the message and exits
with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class PgrlError(Exception):
    """A problem the user can fix; the message says what and how."""


class ConfigError(PgrlError, ValueError):
    """A hyperparameter is missing, unknown or out of its legal range."""


class EnvError(PgrlError):
    """An environment id is unknown, or its spaces do not suit the algorithm."""


class CheckpointError(PgrlError):
    """A checkpoint cannot be read, is corrupt, or does not match the environment."""


class NonFiniteError(PgrlError):
    """A non-finite observation, reward or loss appeared during training."""
