"""Failures the user can act on, as opposed to bugs.

Every program runs through `cli.run`, which prints an `ActionableError` as one `error:` line
(what went wrong and what to do) and exits with status 1; any other exception is a bug and keeps
its traceback. Each class also derives from the built-in exception it refines, so callers that
catch `FileNotFoundError`, `ValueError` or `OSError` keep working.
"""

from __future__ import annotations


class ActionableError(Exception):
  """An expected failure whose message says what to do."""


class NotFoundError(ActionableError, FileNotFoundError):
  """A dataset, checkpoint or exported model that is not where it was asked for."""

  def __str__(self):  # FileNotFoundError would format (errno, strerror) pairs
    return str(self.args[0]) if self.args else ""


class MismatchError(ActionableError, ValueError):
  """Inputs that exist but do not fit together: a checkpoint of another model shape or config,
  a batch that does not split over the devices, an empty or missing split."""


class WorkdirError(ActionableError, OSError):
  """A workdir that cannot be created or written, or that another training run holds."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""
