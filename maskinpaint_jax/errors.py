"""Failures the user can act on, as opposed to bugs.

The library raises; only the programs exit. Every program runs through `cli.run`, which prints
an `ActionableError` as one `error:` line (what went wrong and what to do) and exits with its
`exit_code` (1 unless the class says otherwise); any other exception is a bug and keeps its
traceback. Each class also derives from the built-in exception it refines, so callers that
catch `FileNotFoundError`, `ValueError` or `OSError` keep working.
"""

from __future__ import annotations


class ActionableError(Exception):
  """An expected failure whose message says what to do."""
  exit_code = 1


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


class UsageError(ActionableError, ValueError):
  """A request that cannot be carried out as given (missing input, clashing options)."""
  exit_code = 2


class SetupError(ActionableError, RuntimeError):
  """Nothing can be restored or run: a model, a face finder or a dependency cannot be loaded."""
  exit_code = 2


class BuildError(ActionableError, ValueError):
  """A dataset cannot be built as asked (no photos, an empty split, clashing options); the
  message says why and how to fix it."""
  exit_code = 2


class NonFiniteLossError(ActionableError, FloatingPointError):
  """Training produced a NaN or infinite loss; no checkpoint of that state was written."""
  exit_code = 3


class TrainingInterrupted(ActionableError, KeyboardInterrupt):
  """Training was stopped by a signal after saving a checkpoint it resumes from exactly."""
  exit_code = 130
