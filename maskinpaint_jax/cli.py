"""Shared command-line plumbing: `--config path.py` plus `--config.field=value` overrides.

Every CLI does

    _CONFIG = cli.define_config_flag()
    ...
    if __name__ == "__main__":
      cli.run(main)

`cli.run` turns the two mistakes people make with overrides (an unknown field, a value of the
wrong type) into one clear line and exit status 2, instead of an absl traceback.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags


def define_config_flag(default: str | None = None, required: bool = True):
  """Defines `--config` (a `configs/*.py` file returning a ConfigDict), locked to its fields."""
  holder = config_flags.DEFINE_config_file(
      "config", default, "Config file (configs/*.py); override fields with --config.a.b=value.",
      lock_config=True)
  if required and default is None:
    flags.mark_flag_as_required("config")
  return holder


def load_config(path):
  """get_config() of a configs/*.py file, by path (how one config builds on another)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  spec = importlib.util.spec_from_file_location(f"maskinpaint_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _config_overrides(argv):
  return [a for a in argv[1:] if a.startswith("--config.")]


def _parse(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    msg = str(e)
    if "--config." in msg:
      msg = f"wrong type or value in a config override: {msg}"
    sys.stderr.write(f"error: {msg}\n")
    sys.exit(2)
  except (AttributeError, KeyError) as e:
    # ml_collections raises AttributeError("'name'") from deep inside flag parsing when an
    # override names a field the config does not have.
    field = str(e).strip("\"'")
    culprits = [a for a in _config_overrides(argv) if field in a.split("=")[0].split(".")]
    which = culprits[0] if culprits else ", ".join(_config_overrides(argv))
    sys.stderr.write(f"error: unknown config field {field!r} in {which}. "
                     "The config is locked: only fields defined in the config file can be set.\n")
    sys.exit(2)


def run(main):
  """`absl.app.run` with clear errors for bad `--config.*` overrides. Library INFO logs (Orbax
  writes several lines per checkpoint) are hidden unless --verbosity is given."""
  def quiet_main(argv):
    if not any(a.startswith(("--verbosity", "-v=")) for a in sys.argv[1:]):
      logging.set_verbosity(logging.WARNING)
    return main(argv)
  app.run(quiet_main, flags_parser=_parse)
