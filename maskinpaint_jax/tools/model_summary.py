r"""Parameter counts and forward FLOPs of G and D, for the config and each paper ablation.

  python -m maskinpaint_jax.tools.model_summary --config configs/default.py [--config.model.x=y]

FLOPs per image come from XLA's cost analysis of the lowered forward pass (batch 1; a
multiply-add counts as 2 FLOPs). Nothing is run or compiled: shapes only.
"""

from __future__ import annotations

import jax
import ml_collections
from absl import flags

from maskinpaint_jax import cli
from maskinpaint_jax import models


def count_params(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


def forward_flops(module, variables, *inputs) -> float:
  cost = jax.jit(module.apply).lower(variables, *inputs).cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX returned one dict per device
    cost = cost[0]
  return float(cost["flops"])


def summarize(config: ml_collections.ConfigDict) -> dict:
  """{params, flops} of the generator and discriminator of `config` (per image)."""
  image, hole = models.example_inputs(config.data.image_size)
  g, d = models.build(config.model), models.build_discriminator(config)
  gv = jax.eval_shape(g.init, jax.random.key(0), image, hole)
  dv = jax.eval_shape(d.init, jax.random.key(0), image)
  return dict(g_params=count_params(gv["params"]), d_params=count_params(dv["params"]),
              g_flops=forward_flops(g, gv, image, hole), d_flops=forward_flops(d, dv, image))


def ablation_table(config: ml_collections.ConfigDict) -> list[dict]:
  rows = []
  for name, overrides in models.ABLATIONS.items():
    c = ml_collections.ConfigDict(config.to_dict())
    c.model.update(overrides)
    rows.append(dict(variant=name, **summarize(c)))
  return rows


def to_markdown(rows, config) -> str:
  m = config.model
  lines = [f"Image {config.data.image_size} px, base width {m.base_width}, width multipliers "
           f"{tuple(m.width_multipliers)}, D widths {tuple(config.disc.widths)}, "
           f"dtype {m.dtype}. FLOPs: XLA cost analysis, forward, per image.", "",
           "| variant | G params | G GFLOPs | D params | D GFLOPs |",
           "|---|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['variant']} | {r['g_params']:,} | {r['g_flops'] / 1e9:.2f} | "
                 f"{r['d_params']:,} | {r['d_flops'] / 1e9:.3f} |")
  return "\n".join(lines)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  config = f.config
  print(to_markdown(ablation_table(config), config))


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  cli.define_config_flag(fv=fv)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
