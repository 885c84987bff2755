"""The configs: every variant by its path (and argument), pinned field by field, and the
family's inheritance kept shallow.

tests/assets/config_variants.json holds each variant's `to_dict()` as the config files made it
when every variant was a file of its own (shipped_finetune.py, shipped_128.py, wild_128.py:ARG);
the variants now live in one module per family, by argument, and must make the same configs.
"""

import json
import pathlib

import pytest

from maskinpaint_jax import cli, errors

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "maskinpaint_jax" / "configs"
PINNED = json.loads((pathlib.Path(__file__).parent / "assets" / "config_variants.json").read_text())

# The name each variant had as a file -> its path now.
VARIANTS = {
    "default": "default.py",
    "tiny": "tiny.py",
    "demo": "demo.py",
    "shipped": "shipped.py",
    "shipped_finetune": "shipped.py:stage=finetune",
    "shipped_128": "shipped.py:stage=finetune,res=128",
    "wild_128": "shipped.py:stage=wild",
    "wild_128:mix": "shipped.py:stage=wild,data=mix",
    "wild_128:celeba": "shipped.py:stage=wild,data=celeba",
}


def _as_json(config) -> dict:
  return json.loads(json.dumps(config.to_dict()))  # tuples -> lists, as the pinned file has


@pytest.mark.parametrize("old", sorted(VARIANTS))
def test_every_variant_makes_the_config_it_made_as_a_file(old):
  assert _as_json(cli.load_config(CONFIGS / VARIANTS[old])) == PINNED[old]


def test_every_pinned_variant_has_a_path():
  assert set(PINNED) == set(VARIANTS)


def test_the_config_flag_reads_a_variant_as_load_config_does():
  """`--config path.py:ARG` (ml_collections) and cli.load_config agree."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  cli.define_config_flag(fv=fv)
  path = f"{CONFIGS / 'shipped.py'}:stage=finetune,res=128"
  fv(["prog", f"--config={path}"])
  assert _as_json(fv.config) == PINNED["shipped_128"]


@pytest.mark.parametrize("arg", ["stage=base,res=128", "stage=wild,res=64", "data=mix",
                                 "stage=finetune,data=mix", "stage=nope", "res", "size=64"])
def test_a_variant_that_does_not_exist_is_an_error_naming_the_choices(arg):
  with pytest.raises(errors.UsageError, match="shipped.py"):
    cli.load_config(f"{CONFIGS / 'shipped.py'}:{arg}")


def test_a_bad_variant_on_the_command_line_is_one_error_line_and_status_2(capsys):
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  cli.define_config_flag(fv=fv)
  with pytest.raises(SystemExit) as e:
    cli.parse_or_exit(["prog", f"--config={CONFIGS / 'shipped.py'}:stage=nope"], fv)
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.count("\n") == 1, err
  assert err.startswith("error: configs/shipped.py: variant part 'stage=nope'") and "wild" in err


def test_no_config_builds_on_one_that_builds_on_another_that_builds_on_a_third():
  """Inheritance at most two deep: a variant is an argument of its family's module, not a file
  over a file (what each file loads is read from its source)."""
  parents = {p.name: [q.name for q in CONFIGS.glob("*.py") if f'with_name("{q.name}")'
                      in p.read_text()] for p in CONFIGS.glob("*.py")}
  def depth(name):
    return 0 if not parents[name] else 1 + max(depth(q) for q in parents[name])
  assert max(depth(n) for n in parents) <= 2, parents
  assert set(parents) == {"default.py", "tiny.py", "demo.py", "shipped.py"}


def test_every_config_path_the_scripts_and_docs_name_loads():
  """launch/, the Makefile and the docs name configs that exist, with variants that exist (a
  path with a shell variable or a placeholder is left out)."""
  import re  # pylint: disable=g-import-not-at-top
  texts = [*ROOT.glob("launch/*"), ROOT / "Makefile", *ROOT.glob("*.md"), *ROOT.glob("docs/*.md"),
           *CONFIGS.parent.glob("pretrained/**/README.md")]
  named = {m for p in texts for m in re.findall(r"configs/[\w.]+\.py(?::[\w=,]+)?", p.read_text())}
  assert "configs/shipped.py:stage=finetune,res=128" in named  # the pattern sees variants
  for path in sorted(named):
    cli.load_config(CONFIGS.parent / path)
