"""A training workdir: created and checked before any work, and held by one training run at a
time.

`hold(workdir)` takes an exclusive `fcntl.flock` on `workdir/train.lock` and writes the holder
(host, pid, start time) into it. The lock belongs to the open file, so the operating system
releases it when the process ends in any way (exit, crash, SIGKILL): a dead run never leaves a
stale lock behind, and the file's leftover text is only informative. A second `hold` on the same
workdir fails at once with `WorkdirInUseError` naming the holder. Readers (evaluate, export,
recipes) never take the lock. Multi-host runs: only process 0 holds it (only it writes the
run's record). flock is local to a host on some network file systems (older NFS): two hosts that
share a workdir over such a file system are not kept apart.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import socket

from maskinpaint_jax import errors

LOCK_FILE = "train.lock"


class WorkdirInUseError(errors.WorkdirError):
  """Another training run holds the workdir."""


def prepare(workdir) -> pathlib.Path:
  """The absolute workdir, created if needed and checked writable.

  Raises:
    errors.WorkdirError: it cannot be created (a file in the way, no permission) or written.
  """
  path = pathlib.Path(workdir).expanduser().absolute()
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise errors.WorkdirError(f"cannot create the workdir {path}: {e.strerror or e}. Choose "
                              "another --workdir, or fix the permissions of its parent.") from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise errors.WorkdirError(f"the workdir {path} is not writable. Choose another --workdir, "
                              "or fix its permissions.")
  return path


def holder(workdir) -> dict | None:
  """What the lock file says about its last holder ({host, pid, started}), or None."""
  try:
    return json.loads((pathlib.Path(workdir) / LOCK_FILE).read_text())
  except (OSError, ValueError):
    return None


def describe(info: dict | None) -> str:
  if not info:
    return "another process (it has not written its name yet)"
  return f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"


@contextlib.contextmanager
def hold(workdir):
  """Holds `workdir` (which must exist) for one training run while the block runs.

  Raises:
    WorkdirInUseError: another process holds it; nothing in the workdir was changed.
  """
  path = pathlib.Path(workdir) / LOCK_FILE
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    raise WorkdirInUseError(
        f"the workdir {path.parent} is in use by another training run: "
        f"{describe(holder(path.parent))}. Wait for it to finish or stop it, or train into "
        "another --workdir.") from None
  try:
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(me) + "\n").encode())
    yield me
  finally:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
