"""The one command-line convention: absl flags, snake_case, `--config path.py` plus
`--config.field=value` overrides where a program takes a model config.

Every entry point (`python -m maskinpaint_jax.tools.X`) does

    def define_flags(fv: flags.FlagValues = flags.FLAGS):
      flags.DEFINE_string("out", None, "...", required=True, flag_values=fv)

    def main(argv, f: flags.FlagValues = flags.FLAGS):  # argv: positional arguments
      ...

    if __name__ == "__main__":
      define_flags()
      cli.run(main)

Flags are defined only when the module runs as a program, so importing it is side-effect free,
two programs' flags never collide in one process, and `--help` is quick. `call(module, argv)`
runs a program in-process (tests) with its own FlagValues: the same flags, defaults and checks
as on the command line. `run` turns a bad flag (an unknown config field, a value of
the wrong type, a failed check) into one `error:` line and exit status 2, not a traceback.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
import ml_collections
from ml_collections import config_flags

from maskinpaint_jax import errors

# The flags defined here (`--config`) belong to the program that asks for them, and so are
# listed by its --help.
flags.disclaim_key_flags()


def define_config_flag(default: str | None = None, required: bool = True,
                       fv: flags.FlagValues = flags.FLAGS):
  """Defines `--config` (a `configs/*.py` file returning a ConfigDict), locked to its fields."""
  holder = config_flags.DEFINE_config_file(
      "config", default, "Config file (configs/*.py); override fields with --config.a.b=value.",
      flag_values=fv, lock_config=True)
  if required and default is None:
    flags.mark_flag_as_required("config", flag_values=fv)
  return holder


def check(name: str, ok, message: str, fv: flags.FlagValues):
  """A check of one flag's value, run when flags are parsed (an error names the flag)."""
  flags.register_validator(name, lambda v: v is None or ok(v), message=message, flag_values=fv)


def check_choices(name: str, choices, fv: flags.FlagValues):
  """Every item of a list flag is one of `choices`."""
  check(name, lambda items: set(items) <= set(choices), f"choose from {', '.join(choices)}", fv)


def no_args(argv):
  """For a program that takes only flags: a stray word (`--flag value` written `--flag
  value1 value2`, or a bool given a value) is an error, not silently ignored."""
  if argv:
    raise app.UsageError(f"unexpected argument(s) {' '.join(argv)}: every option is a --flag, "
                         "a boolean one --name or --noname", exitcode=2)


def parse(define_flags, argv) -> tuple[flags.FlagValues, list[str]]:
  """Parses `argv` (no program name) as the command line would, into a fresh FlagValues.

  Returns the flag values and the positional arguments. Raises `flags.Error` on a bad flag."""
  argv = ["python", *(str(a) for a in argv)]
  fv = flags.FlagValues()
  # ml_collections defines a `--config.a.b` override flag for each one it finds in sys.argv.
  saved, sys.argv = sys.argv, argv
  try:
    define_flags(fv)
    rest = fv(argv)
  finally:
    sys.argv = saved
  return fv, rest[1:]


def call(program, argv):
  """`program.main` in-process, on `argv` parsed by `program.define_flags` (see the top).
  sys.argv is the program's own meanwhile: programs record the command that made a result."""
  fv, rest = parse(program.define_flags, argv)
  saved, sys.argv = sys.argv, [program.__name__, *(str(a) for a in argv)]
  try:
    return program.main(rest, fv)
  finally:
    sys.argv = saved


def load_config(path):
  """get_config() of a configs/*.py file, by path, as `--config` reads it: "path.py:ARG" calls
  get_config(ARG) (a variant, see `variant`), "path.py" get_config()."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  path, *arg = str(path).split(":", 1)
  path = pathlib.Path(path)
  spec = importlib.util.spec_from_file_location(f"maskinpaint_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(*arg)


def set_fields(config, overrides: dict):
  """Sets `overrides` ({"data.data_dir": value, ...}) in `config` (a ConfigDict, in place), as
  `--config.a.b=value` would.

  Raises:
    errors.MismatchError: a field the config does not have.
  """
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
      raise errors.MismatchError(f"--config.{key}: the config has no such field")
    with node.unlocked():
      node[leaf] = value


def variant(arg: str | None, choices: dict[str, tuple], where: str) -> dict[str, str]:
  """The options of a config variant argument, big_vision's `get_config(arg)`:
  "stage=finetune,res=128" -> {"stage": "finetune", "res": "128"}, every key of `choices`
  present (a missing one takes its first choice). `choices`: {key: (allowed values, first
  = default)}; `where` names the config file in the error.

  Raises:
    errors.UsageError: an unknown key, a value outside its choices, or a part without "=".
  """
  out = {key: values[0] for key, values in choices.items()}
  for part in filter(None, (p.strip() for p in (arg or "").split(","))):
    key, eq, value = part.partition("=")
    if not eq or key not in choices or value not in choices[key]:
      raise errors.UsageError(
          f"{where}: variant part {part!r}; expected KEY=VALUE, comma-separated, with "
          + "; ".join(f"{k} in {'|'.join(c for c in v if c)}" for k, v in choices.items()))
    out[key] = value
  return out


def _config_overrides(argv):
  return [a for a in argv[1:] if a.startswith("--config.")]


def config_overrides(argv, config) -> dict:
  """{"data.data_dir": value, ...}: each `--config.a.b=...` of `argv`, with its parsed value
  read from `config` (the config the flag parsed it into)."""
  out = {}
  for arg in _config_overrides(argv):
    key = arg[len("--config."):].split("=", 1)[0]
    value = config
    for part in key.split("."):
      value = value[part]
    out[key] = value
  return out


def parse_or_exit(argv, fv: flags.FlagValues = flags.FLAGS) -> list[str]:
  """`fv(argv)` (argv[0] is the program), or one `error:` line on stderr and exit status 2."""
  argv = ["--help" if a == "-h" else a for a in argv]  # absl knows --help, -?, not -h
  try:
    return fv(argv)
  except SystemExit as e:
    # absl's --help exits with status 1; asking for help is not a failure.
    if e.code == 1 and set(argv[1:]) & {"--help", "-?", "--helpshort", "--helpfull"}:
      sys.exit(0)
    raise
  except flags.Error as e:
    msg = str(e)
    if "--config." in msg:
      msg = f"wrong type or value in a config override: {msg}"
    elif "Error whilst parsing config file" in msg:
      # ml_collections puts get_config's whole traceback in the message: its last line is the
      # config's own error ("Class: what went wrong"), which is all a user needs.
      msg = msg.strip().splitlines()[-1].split(": ", 1)[-1]
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
  """`absl.app.run` with clear errors for bad flags; `main` gets the positional arguments.
  Library INFO logs (Orbax writes several lines per checkpoint) are hidden unless --verbosity is
  given."""
  def quiet_main(argv):
    if not any(a.startswith(("--verbosity", "-v=")) for a in sys.argv[1:]):
      logging.set_verbosity(logging.WARNING)
    try:
      return main(argv[1:])
    except app.UsageError as e:  # one line, as for a bad flag (absl would print the whole help)
      sys.stderr.write(f"error: {e} (--help lists the flags)\n")
      sys.exit(e.exitcode)
    except errors.ActionableError as e:  # expected: what went wrong and what to do, no traceback
      sys.stderr.write(f"error: {e}\n")
      sys.exit(e.exit_code)
  app.run(quiet_main, flags_parser=parse_or_exit)
