"""One command-line convention (maskinpaint_jax/cli.py) for every entry point: absl flags defined
by `define_flags(fv)`, snake_case names, checks at parse time, `--help` exits 0."""

import importlib
import re
import sys
import types

from absl import app, flags
import pytest

from conftest import REPO, run_cli
from maskinpaint_jax import cli

# Every `python -m` program of the project, and the flags each one needs to parse.
PROGRAMS = {
    "maskinpaint_jax.tools.build": ["--src", str(REPO / "sample_data"), "--data_dir", "/tmp/x"],
    "maskinpaint_jax.tools.bench_holes": ["--data_dir", "/tmp/x"],
    "maskinpaint_jax.tools.mask_colors": ["--src", "/tmp/x"],
    "maskinpaint_jax.tools.bench_faces": ["--src", "/tmp/x"],
    "maskinpaint_jax.tools.bench_photos": ["--realmask", "/tmp/x", "--nomask", "/tmp/y"],
    "maskinpaint_jax.tools.bench_sizes": ["--data_dir", "/tmp/x", "--models", "m"],
    "maskinpaint_jax.tools.train_face_heads": ["--shared", "/a", "--not_human", "/b"],
    "maskinpaint_jax.tools.train_face_check": ["--celeba", "/a", "--realmask", "/b", "--nomask",
                                               "/c"],
    "maskinpaint_jax.tools.train":
        ["--config", str(REPO / "configs" / "tiny.py"), "--workdir", "/w"],
    "maskinpaint_jax.tools.evaluate": [],
    "maskinpaint_jax.tools.inpaint": ["-o", "/tmp/out", "photo.jpg"],
    "maskinpaint_jax.tools.app": ["--port", "7860"],
    "maskinpaint_jax.tools.demo": [],
    "maskinpaint_jax.tools.export": ["--workdir", "/w"],
    "maskinpaint_jax.tools.bench": ["train"],
    "maskinpaint_jax.tools.recipes": [],
    "maskinpaint_jax.tools.ablations":
        ["--config", str(REPO / "configs" / "tiny.py"), "--workdir", "/w"],
    "maskinpaint_jax.tools.report": [],
    "maskinpaint_jax.tools.profiling": ["trace_dir"],
    "maskinpaint_jax.tools.gpu_check": ["--out", "/tmp/out"],
    "maskinpaint_jax.tools.model_summary": ["--config", str(REPO / "configs" / "tiny.py")],
    "maskinpaint_jax.tools.bench_wild": ["--limit", "3"],
    "maskinpaint_jax.tools.bench_startup": ["--runs", "2"],
    "maskinpaint_jax.tools.link_photos": ["--src", "/a,/b", "--out", "/tmp/x"],
    "maskinpaint_jax.tools.travel_set": ["--data_dir", "/tmp/x", "--out", "/tmp/y"],
    "maskinpaint_jax.tools.gpu_run": ["--out", "/tmp/out"],
}
# Entry points that run a program of PROGRAMS by name (maskinpaint_jax.commands).
ENTRY_POINTS = {"maskinpaint_jax.train"}


def test_every_python_m_program_of_the_project_is_listed():
  """A new entry point joins PROGRAMS (and so the checks below)."""
  mains = {str(p.relative_to(REPO).with_suffix("")).replace("/", ".")
           for d in ("data_prep", "maskinpaint_jax") for p in (REPO / d).rglob("*.py")
           if re.search(r'^if __name__ == "__main__":', p.read_text(), re.M)}
  assert mains == set(PROGRAMS) | ENTRY_POINTS


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_flags_are_snake_case_and_parse_in_a_fresh_flag_set(name):
  program = importlib.import_module(name)
  f, _ = cli.parse(program.define_flags, PROGRAMS[name])
  own = [fl.name for fl in f.get_flags_for_module(name)]
  assert own, name
  for flag in own:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", flag), (name, flag)
  assert not any(n in flags.FLAGS for n in own)
  # Defined again in another fresh set: nothing was registered globally.
  cli.parse(program.define_flags, PROGRAMS[name])


@pytest.mark.parametrize("name, argv, message", [
    ("maskinpaint_jax.tools.build",
         ["--src", "/no/such/dir", "--data_dir", "x"], "not a directory"),
    ("maskinpaint_jax.tools.build", ["--src", "sample_data", "--data_dir", "x", "--limit", "0"],
     "positive integer"),
    ("maskinpaint_jax.tools.build",
         ["--src", "sample_data", "--data_dir", "x", "--occlusions", "face"],
     "choose from face_mask, rect"),
    ("maskinpaint_jax.tools.build",
         ["--src", "sample_data", "--data_dir", "x", "--require_splits", "dev"],
     "choose from train, validation, test"),
    ("maskinpaint_jax.tools.build", ["--src", "sample_data"], "--data_dir"),
    ("maskinpaint_jax.tools.inpaint", ["photo.jpg", "-o", "x", "--add_mask", "scarf"], "surgical"),
    ("maskinpaint_jax.tools.inpaint", ["photo.jpg", "-o", "x", "--face_finder", "cnn"], "mesh"),
    ("maskinpaint_jax.tools.gpu_check", ["--out", "x", "--phases", "bench,deploy"], "choose from"),
    ("maskinpaint_jax.tools.bench_holes",
         ["--data_dir", "x", "--landmarks", "dlib"], "stored, mesh"),
])
def test_a_bad_flag_is_refused_when_parsed_and_named(monkeypatch, name, argv, message):
  monkeypatch.chdir(REPO)
  program = importlib.import_module(name)
  with pytest.raises(flags.Error, match=re.escape(message)):
    cli.parse(program.define_flags, argv)


def test_bool_list_and_short_flags_read_as_on_the_command_line():
  from maskinpaint_jax.tools import build
  from maskinpaint_jax.tools import inpaint
  f, _ = cli.parse(build.define_flags, ["--src", str(REPO / "sample_data"), "--data_dir", "d",
                                        "--occlusions", "face_mask,rect", "--require_splits=",
                                        "--overwrite"])
  assert f.occlusions == ["face_mask", "rect"] and f.require_splits == [] and f.overwrite
  f, rest = cli.parse(inpaint.define_flags, ["a.jpg", "-o", "out", "b/", "--noside_by_side"])
  assert rest == ["a.jpg", "b/"] and f.out == "out" and f.side_by_side is False


@pytest.mark.slow  # one interpreter per program
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_help_exits_0_and_lists_the_programs_flags(name):
  r = run_cli([name, "--help"], timeout=120)
  assert r.returncode == 0, r.stderr
  program = importlib.import_module(name)
  f, _ = cli.parse(program.define_flags, PROGRAMS[name])
  for flag in f.get_flags_for_module(name):
    shown = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    assert shown in r.stdout, (name, flag.name)


@pytest.mark.slow
def test_a_bad_flag_or_argument_on_the_command_line_is_one_error_line_and_status_2():
  r = run_cli(["maskinpaint_jax.tools.build", "--src", "sample_data", "--data_dir", "/tmp/x",
               "--limit", "0"],
              timeout=120)
  assert r.returncode == 2
  assert r.stderr.strip() == "error: flag --limit=0: 0 is not a positive integer"
  r = run_cli(["maskinpaint_jax.tools.inpaint", "-o", "/tmp/x"], timeout=120)  # no photo named
  assert r.returncode == 2
  assert r.stderr.strip().startswith("error: name at least one photo") and "\n" not in \
      r.stderr.strip()
  r = run_cli(["maskinpaint_jax.tools.bench_holes", "-h"], timeout=120)
  assert r.returncode == 0 and "--landmarks" in r.stdout


def test_config_overrides_apply_in_a_fresh_flag_set():
  from maskinpaint_jax.tools import train
  f, _ = cli.parse(train.define_flags, ["--config", REPO / "configs" / "tiny.py", "--workdir",
                                        "w", "--config.batch_size=4", "--config.model.mmrm=false"])
  assert f.config.batch_size == 4 and f.config.model.mmrm is False
  assert cli.load_config(REPO / "configs" / "tiny.py").batch_size != 4


@pytest.mark.parametrize("name, argv", [
    ("maskinpaint_jax.tools.bench_holes", ["--data_dir", "x", "--landmarks", "stored", "mesh"]),
    ("maskinpaint_jax.tools.demo", ["--update_readme", "false"]),
    ("maskinpaint_jax.tools.build",
         ["--src", str(REPO / "sample_data"), "--data_dir", "x", "extra"]),
])
def test_a_stray_word_is_refused_not_ignored(name, argv):
  with pytest.raises(app.UsageError, match="unexpected argument") as error:
    cli.call(importlib.import_module(name), argv)
  assert error.value.exitcode == 2


def test_call_gives_the_program_its_own_command_line(monkeypatch):
  monkeypatch.setattr(sys, "argv", ["pytest", "-q"])
  seen = {}
  program = types.SimpleNamespace(
      __name__="some.program",
      define_flags=lambda fv: flags.DEFINE_integer("n", 1, "n", flag_values=fv),
      main=lambda argv, f: seen.update(argv=list(sys.argv), rest=argv, n=f.n))
  cli.call(program, ["a", "--n", "3"])
  assert seen == {"argv": ["some.program", "a", "--n", "3"], "rest": ["a"], "n": 3}
  assert sys.argv == ["pytest", "-q"]
