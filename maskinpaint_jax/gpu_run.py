"""A GPU machine lent for minutes: train a recipe on a travel set, export and score the
generator, then benchmark the step (JAX float32 / bfloat16, and its PyTorch twin), every phase
inside its own deadline, in one process (`tools/gpu_run.py`, `launch/gpu_run.sh`).

Phases, each ending by an absolute deadline of `Budget` (seconds from the start):

1. probe: the train step of the recipe compiled at every batch of `batches` (the programs
   compiled concurrently, in threads; the first to finish waited for past the probe's deadline)
   and timed on synthetic batches -> img/s per batch; the batch of highest img/s trains. Its
   compiled program is the one training runs.
2. width: the generator's width by images seen. The candidates are the recipe's base width
   times each of `widths`; a wider G's img/s is estimated from the measured one times
   (w0 / w)^2 (a convolution's FLOPs grow with the square of its width). The widest candidate
   whose estimated images in the training budget reach `min_epochs` epochs of the travel set's
   train split trains; the recipe's own width (which continues the recipe's init_generator)
   when no wider one does. A wider G starts from scratch and compiles once more.
3. train: `train_s` from its first step (its deadline checked before every step; the host
   waits for the device at every log step, so it is never more than `log_every` steps ahead),
   on the travel set's train split (`travel_set.TravelSource`,
   masks drawn by Algorithm 1 as the recipe says, flips) through the Grain pipeline of
   `input_pipeline.train_dataset`. SIGTERM (or Ctrl-C) stops it at the end of the step, saves
   an Orbax checkpoint in `work`, and skips the phases after export. A checkpoint is also saved
   at the end.
4. export: G in `out/generator` (checkpoint.save_pretrained, weights in files of at most
   `max_file_bytes`), loadable by `restorer.load_restorer(out/generator)` and
   `checkpoint.load_generator`.
5. score: the travel set's test split (the build's own masks), PSNR (dB), hole PSNR, SSIM (%),
   LPIPS x100 (AlexNet, VGG16) of ours (raw and composite) next to the masked input, OpenCV
   Telea and Navier-Stokes (evaluation.evaluate_dataset), in chunks until its deadline ->
   `out/scores.json`.
6. bench (`step_bench.py`): the rest of the time -> `out/bench.json` (with the top XLA ops of
   one profiled step of the training batch; the trace itself stays in `work`).

`out/run.json` holds the plan, each phase's seconds, the choices and why, and errors; it is
rewritten after every phase, so a run cut short keeps what it had.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any, Callable

from maskinpaint_jax import errors, step_bench, travel_set


@dataclasses.dataclass(frozen=True)
class Budget:
  """Seconds for each phase (the total is what the machine allows, less `margin_s` for
  start-up and the copy back): the probe ends `probe_s` after the start (except that the first
  batch's compilation is waited for: nothing trains without it); training lasts `train_s` from
  its first step, and ends at the latest `score_s` before the end; score and bench share what
  is left after training, score first."""
  total_s: float = 540.0
  probe_s: float = 100.0
  train_s: float = 330.0
  score_s: float = 35.0
  margin_s: float = 15.0


class Deadlines:
  """Absolute times (time.time()) of each phase's end, from `start`; `train_from(t)` the end of
  a training that starts at t."""

  def __init__(self, budget: Budget, start: float | None = None):
    self.start = time.time() if start is None else start
    self.end = self.start + budget.total_s - budget.margin_s
    self.probe = min(self.start + budget.probe_s, self.end)
    self.last_train = self.end - budget.score_s   # no training after it
    self.budget = budget

  def train_from(self, t: float) -> float:
    return min(t + self.budget.train_s, self.last_train)

  def score_from(self, t: float) -> float:
    return min(t + self.budget.score_s, self.end)

  def left(self, until: float) -> float:
    return max(0.0, until - time.time())


@dataclasses.dataclass(frozen=True)
class Options:
  travel: pathlib.Path            # travel set folder (travel.json, train.npz, test.npz)
  out: pathlib.Path               # every result
  work: pathlib.Path              # checkpoints (large; not part of the results)
  dtype: str = "bfloat16"
  batches: tuple[int, ...] = (64, 128, 256)
  widths: tuple[int, ...] = (1, 2, 4)
  min_epochs: float = 20.0
  workers: int = 0                # Grain worker processes (0: in this process)
  log_every: int = 20
  storage: str = "float16"
  max_file_bytes: int = 16 * 2**20
  score_batch: int = 64
  probe_steps: int = 3
  bench_batches: tuple[int, ...] = (64, 128, 256)
  bench_dtypes: tuple[str, ...] = ("float32", "bfloat16")
  bench_steps: int = 5
  torch_modes: tuple[str, ...] = ("eager", "compile")
  torch_compile_min_s: float = 90.0
  alternations: int = 7


class Record:
  """out/run.json, rewritten whenever something is added (a run cut short keeps it)."""

  def __init__(self, path: pathlib.Path, **header):
    self.path, self.data = path, dict(header, phases={}, errors={})
    self.write()

  def phase(self, name: str, seconds: float, result: Any):
    self.data["phases"][name] = dict(seconds=seconds, result=result)
    self.write()

  def error(self, name: str, e: BaseException):
    self.data["errors"][name] = f"{type(e).__name__}: {e}"
    self.write()

  def write(self):
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self.path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")


def say(text: str):
  print(text, flush=True)


# --- width ---------------------------------------------------------------------------------------

def choose_width(base_width: int, img_per_s: float, train_s: float, train_examples: int,
                 multipliers=(1, 2, 4), min_epochs: float = 20.0) -> dict:
  """The generator's base width by images seen in `train_s` seconds (module doc, phase 2):
  the widest `base_width * m` whose estimated images img_per_s * (1 / m)^2 * train_s reach
  min_epochs * train_examples, else `base_width`. Returns {"base_width", "candidates":
  [{"base_width", "img_per_s", "images", "epochs"}], "why"}."""
  need = min_epochs * train_examples
  candidates = []
  for m in sorted(set(multipliers) | {1}):
    rate = img_per_s / m**2
    candidates.append(dict(base_width=base_width * m, img_per_s=rate, images=rate * train_s,
                           epochs=rate * train_s / max(train_examples, 1),
                           estimated=m != 1))
  fitting = [c for c in candidates if c["images"] >= need]
  chosen = max(fitting, key=lambda c: c["base_width"]) if fitting else candidates[0]
  why = (f"the widest whose estimated {chosen['images']:.0f} images in {train_s:.0f} s reach "
         f"{min_epochs:g} epochs of {train_examples} ({need:.0f})" if fitting else
         f"none reaches {min_epochs:g} epochs of {train_examples} in {train_s:.0f} s: the "
         "recipe's own width")
  return dict(base_width=chosen["base_width"], candidates=candidates, why=why)


# --- train ---------------------------------------------------------------------------------------

def travel_iterator(travel: pathlib.Path, config, workers: int):
  """The training batches of the travel set's train split (input_pipeline.train_dataset:
  shuffled every epoch, flipped, face masks drawn anew when config.data.fresh_masks) and the
  split's size."""
  import grain  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  source = travel_set.TravelSource(travel, "train", seed=config.seed)
  ds = input_pipeline.train_dataset([source], global_batch=config.batch_size, seed=config.seed,
                                    random_flip=config.data.random_flip,
                                    fresh_masks=config.data.get("fresh_masks", False))
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=4, prefetch_buffer_size=4))
  if workers > 0:
    parsed = input_pipeline._flags_parsed  # pylint: disable=protected-access
    parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=2),
                        worker_init_fn=parsed)
  return iter(it), len(source)


def train_until(step_fn, state, batches, deadline: float, log_every: int,
                stop: Callable[[], bool], on_log: Callable[[int, dict, float], None]):
  """Runs `step_fn` on `batches` until `deadline` or `stop()`, checked before every step.
  Returns (state, steps, seconds, stopped_by_signal). Metrics are fetched every `log_every`
  steps only (the host is never blocked in between)."""
  import jax  # pylint: disable=g-import-not-at-top
  steps, t0, t_log, last_logged = 0, time.time(), time.time(), 0
  stopped = False
  while time.time() < deadline:
    if stop():
      stopped = True
      break
    state, metrics = step_fn(state, next(batches))
    steps += 1
    if steps % log_every == 0:
      host = jax.device_get(metrics)
      now = time.time()
      on_log(steps, host, (steps - last_logged) / max(now - t_log, 1e-9))
      t_log, last_logged = now, steps
  jax.block_until_ready(state)
  return state, steps, time.time() - t0, stopped


# --- score ---------------------------------------------------------------------------------------

class _Slice:
  """Examples [start, stop) of a source, as a source."""

  def __init__(self, source, start: int, stop: int):
    self.source, self.start, self.stop = source, start, min(stop, len(source))

  def __len__(self):
    return max(0, self.stop - self.start)

  def __getitem__(self, i):
    return self.source[self.start + i]


def score_until(filler, source, deadline: float, chunk: int, config) -> dict:
  """Scores of the generator (`inference.make_filler`'s filler) and the baselines on `source`
  in chunks of `chunk` examples until the deadline (the first chunk whatever the time), with
  the test evaluator's metrics of `config` (`evaluators.names(config, "test")`) that can be
  computed at the images' size, identity aside (dlib: not on the GPU machine):
  {"n", "of", "complete", "metrics", "summary"} (evaluation.summarize: means per method,
  overall and per mask style)."""
  from maskinpaint_jax import evaluation, evaluators  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax.runlog import METHODS  # pylint: disable=g-import-not-at-top
  side = source[0]["image"].shape[0]
  listed = evaluators.usable(
      [n for n in evaluators.names(config, "test") if n != "identity"], side)
  per_image = {m: {k: [] for k in evaluators.KEYS} for m in METHODS}
  mask_types: list[str] = []
  done = 0
  while done < len(source) and (done == 0 or time.time() < deadline):
    part, types, _ = evaluation.evaluate_dataset(
        filler, _Slice(source, done, done + chunk), listed=listed, batch_size=chunk,
        limit=None, num_samples=0)
    for m in METHODS:
      for k, values in part[m].items():
        per_image[m].setdefault(k, []).extend(values)
    mask_types += types
    done += len(types)
  summary = evaluation.summarize(per_image, mask_types) if mask_types else {}
  return dict(n=done, of=len(source), complete=done == len(source), metrics=list(listed),
              lpips="lpips" in listed, summary=summary)


# --- the whole run -------------------------------------------------------------------------------

def _write_json(path: pathlib.Path, data):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _phase(record: Record, name: str, fn):
  """fn()'s result, recorded with its seconds; an exception is recorded and gives None."""
  t0 = time.time()
  say(f"\n== {name}")
  try:
    result = fn()
  except Exception as e:  # pylint: disable=broad-except  (the next phases still run)
    record.error(name, e)
    say(f"{name} failed: {type(e).__name__}: {e}")
    return None
  record.phase(name, time.time() - t0, _public(result))
  return result


def _public(result):
  """What of a phase's result goes into run.json (no programs, states or arrays)."""
  if isinstance(result, dict):
    return {k: v for k, v in result.items() if k not in ("programs", "state", "parts",
                                                           "data_sharding", "config", "g_params")}
  return result


def run(config, opts: Options, budget: Budget = Budget(), command: str = "",
        stop_requested: Callable[[], bool] = lambda: False, start: float | None = None) -> dict:
  """Every phase of the module doc on `config` (a recipe's ConfigDict) until its deadline;
  writes opts.out/{run.json, train_log.jsonl, generator/, scores.json, bench.json}. Returns
  run.json's content. `stop_requested()` (a SIGTERM seen): training stops at the end of its
  step, a checkpoint is saved, G exported, and score and bench are skipped. `start`: when the
  budget began (time.time(); default now), e.g. before the process started.

  Raises:
    errors.NotFoundError: no travel set in opts.travel.
  """
  if not (pathlib.Path(opts.travel) / travel_set.MANIFEST).is_file():
    raise errors.NotFoundError(f"no travel set in {opts.travel} ({travel_set.MANIFEST} "
                               "missing): write one with `maskinpaint travel_set`")
  try:
    return _run(config, opts, budget, command, stop_requested, start)
  finally:
    step_bench.wait_for_compilations()


def _run(config, opts: Options, budget: Budget, command: str, stop_requested, start) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import trainer  # pylint: disable=g-import-not-at-top
  deadlines = Deadlines(budget, start)
  config = config.copy_and_resolve_references()
  config.model.dtype = opts.dtype
  config.data.image_size = int(travel_set.read_manifest(opts.travel)["side"])
  record = Record(opts.out / "run.json", command=command, date=time.strftime("%Y-%m-%d %H:%M"),
                  seconds_before_start=time.time() - deadlines.start,
                  devices=[str(d) for d in jax.devices()], budget=dataclasses.asdict(budget),
                  options={k: str(v) if isinstance(v, pathlib.Path) else v
                           for k, v in dataclasses.asdict(opts).items()})
  mesh = trainer.make_mesh()
  n_dev = jax.device_count()
  batches = sorted({-(-b // n_dev) * n_dev for b in opts.batches})  # divisible over devices

  probe = _phase(record, "probe", lambda: _probe(config, mesh, batches, opts, deadlines))
  if not probe or not probe["best"]:
    record.error("train", RuntimeError("no batch could be measured: nothing trains"))
    return record.data
  trained = _phase(record, "train", lambda: _train(config, mesh, probe, opts, deadlines,
                                                   stop_requested))
  if trained:
    _phase(record, "export", lambda: _export(trained, opts))
  if trained and trained["stopped_by_signal"]:
    record.data["skipped"] = "score and bench: stopped by a signal"
    record.write()
    return record.data
  if trained:
    _phase(record, "score", lambda: _score(opts, deadlines))
  reuse = ({opts.dtype: probe} if trained and not trained["width"]["changed"]
           and tuple(opts.bench_batches) == tuple(batches) else {})
  bench_config = trained["config"] if trained else config
  _phase(record, "bench", lambda: _bench(bench_config, mesh, opts, deadlines, reuse,
                                         probe["best"]["batch"]))
  return record.data


def _probe(config, mesh, batches, opts: Options, deadlines: Deadlines) -> dict:
  from maskinpaint_jax import trainer  # pylint: disable=g-import-not-at-top
  parts = trainer.build(config, mesh)
  _, data_sharding = trainer.mesh_shardings(mesh)
  rows, programs, state = step_bench.measure_batches(
      parts, parts.init(), config.data.image_size, batches, opts.probe_steps, deadlines.probe,
      data_sharding, first_by=deadlines.last_train)
  best = step_bench.best_batch(rows)
  for r in rows:
    say(f"  batch {r['batch']}: " + (f"{r['img_per_s']:.1f} img/s, compiled in "
                                     f"{r['compile_s']:.1f} s" if r.get("img_per_s")
                                     else r.get("error", "not timed")))
  return dict(rows=[dict(r, dtype=config.model.dtype) for r in rows], best=best,
              programs=programs, state=state, parts=parts, data_sharding=data_sharding)


def _train(config, mesh, probe: dict, opts: Options, deadlines: Deadlines, stop_requested):
  from maskinpaint_jax import checkpoint, trainer, train_step  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  config = config.copy_and_resolve_references()
  config.batch_size = probe["best"]["batch"]
  data_iter, examples = travel_iterator(opts.travel, config, opts.workers)
  train_deadline = deadlines.train_from(time.time())
  width = choose_width(config.model.base_width, probe["best"]["img_per_s"],
                       deadlines.left(train_deadline), examples, opts.widths, opts.min_epochs)
  width["changed"] = width["base_width"] != config.model.base_width
  parts, step_fn = probe["parts"], probe["programs"][config.batch_size]
  if width["changed"]:  # a wider G: from scratch, compiled once more (inside the budget)
    config.model.base_width = width["base_width"]
    config.init_generator = ""
    parts = trainer.build(config, mesh)
    step_fn = parts.step
  say(f"  base width {config.model.base_width}: {width['why']}")
  state = parts.init()
  if config.get("init_generator"):
    state = parts.warm_start(state, trainer.initial_generator(config, state.g_params))
  log_path = opts.out / "train_log.jsonl"
  log_path.parent.mkdir(parents=True, exist_ok=True)
  t_start = time.time()

  def on_log(step, metrics, steps_per_s):
    row = dict(step=step, seconds=time.time() - t_start, img_per_s=steps_per_s * config.batch_size,
               **{k: float(v) for k, v in metrics.items()})
    with log_path.open("a") as f:
      f.write(json.dumps(row) + "\n")
    say(f"  step {step}: {row['img_per_s']:.1f} img/s, d {row['d_loss']:.3f} "
        f"g {row['g_loss']:.4f}")

  state, steps, seconds, stopped = train_until(
      step_fn, state, trainer.device_batches(data_iter, mesh), train_deadline, opts.log_every,
      stop_requested, on_log)
  with checkpoint.manager(opts.work / "train", keep=1) as mngr:
    checkpoint.save(mngr, steps, train_step.to_items(state), data_iter, config)
    mngr.wait_until_finished()
  nonfinite = int(jax.device_get(state.nonfinite))
  say(f"  {steps} steps ({steps * config.batch_size} images) in {seconds:.1f} s; checkpoint "
      f"in {checkpoint.checkpoint_dir(opts.work / 'train')}")
  return dict(steps=steps, images=steps * config.batch_size, seconds=seconds,
              img_per_s=steps * config.batch_size / max(seconds, 1e-9), batch=config.batch_size,
              dtype=config.model.dtype, width=width, examples=examples, nonfinite=nonfinite,
              init_generator=config.get("init_generator") or None,
              stopped_by_signal=stopped, checkpoint=str(checkpoint.checkpoint_dir(
                  opts.work / "train")),
              config=config, g_params=jax.device_get(state.g_params))


def _export(trained: dict, opts: Options) -> dict:
  from maskinpaint_jax import checkpoint  # pylint: disable=g-import-not-at-top
  out = checkpoint.save_pretrained(
      opts.out / "generator", trained["config"], trained.pop("g_params"), trained["steps"],
      storage=opts.storage, max_file_bytes=opts.max_file_bytes,
      note=f"gpu_run: {trained['steps']} steps of batch {trained['batch']} in "
           f"{trained['dtype']}, {trained['seconds']:.0f} s, on the travel set {opts.travel}")
  files = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
  return dict(folder=str(out), files=files, largest=max(files.values()))


def _score(opts: Options, deadlines: Deadlines) -> dict:
  from maskinpaint_jax import checkpoint, inference  # pylint: disable=g-import-not-at-top
  config, params, step = checkpoint.load_pretrained(opts.out / "generator")  # as users load it
  filler = inference.make_filler(config.model, params, opts.score_batch)
  scores = score_until(filler, travel_set.TravelSource(opts.travel, "test"),
                       deadlines.score_from(time.time()), opts.score_batch, config)
  scores.update(step=step, split="test", travel=str(opts.travel),
                units=dict(psnr="dB", psnr_hole="dB", ssim="%", lpips="x100 (AlexNet)",
                           lpips_vgg="x100 (VGG16)"))
  _write_json(opts.out / "scores.json", scores)
  every = scores["summary"].get("all", {})
  for method in ("telea", "ours_composite"):
    if method in every:
      m = every[method]
      say(f"  {method}: PSNR {m['psnr']:.2f} dB (hole {m['psnr_hole']:.2f}), SSIM "
          f"{m['ssim']:.2f} %" + (f", LPIPS {m['lpips']:.2f}" if m.get("lpips") is not None
                                  else ""))
  return dict(n=scores["n"], of=scores["of"], complete=scores["complete"])


def _bench(config, mesh, opts: Options, deadlines: Deadlines, reuse: dict, batch: int) -> dict:
  path = opts.out / "bench.json"
  write = lambda r: _write_json(path, dict(r, ratio="jax_over_torch: median over alternated "
                                           "pairs of JAX step seconds / PyTorch step seconds"))
  result = step_bench.run(config, mesh, dtypes=opts.bench_dtypes,
                          batches=opts.bench_batches, steps=opts.bench_steps,
                          torch_modes=opts.torch_modes, pairs=opts.alternations,
                          deadline=deadlines.end, reuse=reuse, compare_batch=batch,
                          torch_compile_min_s=opts.torch_compile_min_s,
                          profile_dir=opts.work / "profile", on_progress=write)
  write(result)
  return dict(jax_rows=len(result["jax"]), torch_rows=len(result["torch"]),
              skipped=result["skipped"])
