r"""One GPU machine for minutes: train the recipe on a travel set, export and score G, benchmark
the step against its PyTorch twin; every result in --out (`launch/gpu_run.sh` fires it).

  python -m maskinpaint_jax.tools.gpu_run --travel data/travel128 --out OUT \
      [--config configs/shipped.py:stage=wild] [--config.a.b=value] [--work runs/gpu_run]
      [--started_at EPOCH_S] [--total_s 540] [--probe_s 100] [--train_s 330] [--score_s 35]
      [--margin_s 15]
      [--batches 64,128,256] [--widths 1,2,4] [--min_epochs 20] [--dtype bfloat16]
      [--bench_batches 64,128,256] [--bench_dtypes float32,bfloat16]
      [--torch_modes eager,compile] ...

The phases and their deadlines are `maskinpaint_jax.gpu_run`'s (probe the batch, choose the
width, train, export, score, bench). OUT gets run.json (plan, choices, seconds, errors),
train_log.jsonl, generator/ (weights in files of at most --max_file_mb MiB), scores.json and
bench.json. SIGTERM or Ctrl-C during training: a checkpoint in --work, G exported, the rest
skipped. Exit status 1 if any phase failed (run.json says which and why).
"""

from __future__ import annotations

import pathlib
import shlex
import sys

from absl import flags

from maskinpaint_jax import cli, gpu_run, trainer

# The shipped 128 px recipe: the one place that names it (configs may be renamed).
RECIPE = "configs/shipped.py:stage=wild"


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  cli.define_config_flag(RECIPE, fv=fv)
  flags.DEFINE_string("travel", "data/travel128", "Travel set folder (maskinpaint travel_set).",
                      **d)
  flags.DEFINE_string("out", None, "Folder for every result (created).", required=True, **d)
  flags.DEFINE_string("work", "runs/gpu_run", "Checkpoints (not part of the results).", **d)
  budget, options = gpu_run.Budget(), gpu_run.Options(pathlib.Path(), pathlib.Path(),
                                                      pathlib.Path())
  for name in ("total_s", "probe_s", "train_s", "score_s", "margin_s"):
    flags.DEFINE_float(name, getattr(budget, name), f"Budget: {name} (seconds, see "
                       "gpu_run.Budget).", lower_bound=0.0, **d)
  flags.DEFINE_float("started_at", None, "When the budget began (seconds since the epoch; "
                     "default: when the run starts): launch/gpu_run.sh passes its own start, so "
                     "the imports and installs count too.", **d)
  flags.DEFINE_enum("dtype", options.dtype, ["float32", "bfloat16"], "Training dtype.", **d)
  flags.DEFINE_list("batches", list(map(str, options.batches)), "Global batches probed.", **d)
  flags.DEFINE_list("widths", list(map(str, options.widths)), "Multiples of the recipe's base "
                    "width that may train (gpu_run.choose_width).", **d)
  flags.DEFINE_float("min_epochs", options.min_epochs, "A wider G trains if its estimated "
                     "images in the budget reach this many epochs.", lower_bound=0.0, **d)
  flags.DEFINE_integer("workers", options.workers, "Grain worker processes (0: in-process).",
                       lower_bound=0, **d)
  flags.DEFINE_integer("log_every", options.log_every, "Steps between training logs.",
                       lower_bound=1, **d)
  flags.DEFINE_enum("storage", options.storage, ["float32", "float16"], "Exported weights.", **d)
  flags.DEFINE_float("max_file_mb", options.max_file_bytes / 2**20, "Largest exported file "
                     "(MiB).", lower_bound=0.001, **d)
  flags.DEFINE_integer("score_batch", options.score_batch, "Scoring batch.", lower_bound=1, **d)
  flags.DEFINE_integer("probe_steps", options.probe_steps, "Timed steps per probed batch.",
                       lower_bound=1, **d)
  flags.DEFINE_list("bench_batches", list(map(str, options.bench_batches)), "Benchmark "
                    "batches.", **d)
  flags.DEFINE_list("bench_dtypes", list(options.bench_dtypes), "Benchmark dtypes.", **d)
  flags.DEFINE_integer("bench_steps", options.bench_steps, "Timed JAX steps per batch.",
                       lower_bound=1, **d)
  flags.DEFINE_list("torch_modes", list(options.torch_modes), "PyTorch twin modes.", **d)
  flags.DEFINE_float("torch_compile_min_s", options.torch_compile_min_s, "torch.compile is "
                     "tried only with this many seconds left.", lower_bound=0.0, **d)
  flags.DEFINE_integer("alternations", options.alternations, "JAX / PyTorch step pairs.",
                       lower_bound=1, **d)
  cli.check_choices("torch_modes", ("eager", "compile"), fv)
  cli.check_choices("bench_dtypes", ("float32", "bfloat16"), fv)
  for name in ("batches", "widths", "bench_batches"):
    cli.check(name, lambda v: all(x.isdigit() and int(x) > 0 for x in v),
              "positive integers", fv)


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  ints = lambda v: tuple(int(x) for x in v)
  opts = gpu_run.Options(
      travel=pathlib.Path(f.travel).absolute(), out=pathlib.Path(f.out).absolute(),
      work=pathlib.Path(f.work).absolute(), dtype=f.dtype, batches=ints(f.batches),
      widths=ints(f.widths), min_epochs=f.min_epochs, workers=f.workers, log_every=f.log_every,
      storage=f.storage, max_file_bytes=int(f.max_file_mb * 2**20), score_batch=f.score_batch,
      probe_steps=f.probe_steps, bench_batches=ints(f.bench_batches),
      bench_dtypes=tuple(f.bench_dtypes), bench_steps=f.bench_steps,
      torch_modes=tuple(f.torch_modes), torch_compile_min_s=f.torch_compile_min_s,
      alternations=f.alternations)
  budget = gpu_run.Budget(total_s=f.total_s, probe_s=f.probe_s, train_s=f.train_s,
                          score_s=f.score_s, margin_s=f.margin_s)
  command = shlex.join([sys.executable, "-m", "maskinpaint_jax.tools.gpu_run", *sys.argv[1:]])
  with trainer.StopSignal() as stop:
    record = gpu_run.run(f.config, opts, budget, command, lambda: stop.signum is not None,
                         f.started_at)
  print(f"\nwritten: {opts.out} ({', '.join(sorted(p.name for p in opts.out.iterdir()))})")
  return 1 if record["errors"] else 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
