r"""Which generator serves a face of a given size best: every model on the same faces, resampled
to several face-crop sides, as inpaint resamples a photo's face crop to the model's input side
and its output back.

  python -m maskinpaint_jax.tools.bench_sizes --data_dir data/tfds12k_128 --split validation \
      --models pretrained/face_mask_64,pretrained/face_mask_64@128 --sides 64,96,128 \
      [--limit 256] [--write docs/benchmarks.md]

A model is an exported folder or a training workdir; `PATH@SIDE` runs it at another input side
(the U-Net is fully convolutional: a 64 px model given the crop at 128 px).

The faces are a built dataset's face-mask split at its own side (128 px for the paper's size);
each is shrunk (area average) to every --sides side S, where the truth is known. A model of
input side M sees the masked crop resized from S to M (cubic when enlarging, area when
shrinking, the hole any-pixel as `faces.paste.hole_in_crop` has it), and its output is resized
back to S and put in the hole: the composite, scored against the clean crop at S (hole PSNR,
LPIPS-AlexNet x 100), next to OpenCV Telea at S.
"""

from __future__ import annotations

import shlex
import sys
import time

from absl import flags
import cv2
import numpy as np

from maskinpaint_jax import baselines, cli, evaluators, input_pipeline, reporting

TITLE = "Face size: which generator serves which face"


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir of a face-mask build.", required=True,
                      **d)
  flags.DEFINE_integer("size", 128, "The build's side (px).", **d)
  flags.DEFINE_string("split", "validation", "Split scored.", **d)
  flags.DEFINE_list("models", None, "Exported model folders or training workdirs.",
                    required=True, **d)
  flags.DEFINE_list("sides", ["64", "96", "128"], "Face-crop sides scored (px).", **d)
  flags.DEFINE_integer("limit", 256, "Faces scored (the split's first N).", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the section to.", **d)


def resize(images: np.ndarray, side: int) -> np.ndarray:
  """(N, H, W, C) uint8 -> (N, side, side, C): area average when shrinking, cubic when
  enlarging (as paste warps a crop back into a photo), the identity at the same side."""
  if images.shape[1] == side:
    return images
  interp = cv2.INTER_AREA if side < images.shape[1] else cv2.INTER_CUBIC
  out = np.stack([cv2.resize(im, (side, side), interpolation=interp) for im in images])
  return out.reshape(len(images), side, side, -1)


def resize_hole(holes: np.ndarray, side: int) -> np.ndarray:
  """(N, H, W, 1) {0, 1} -> (N, side, side, 1) {0, 1}: a pixel partly in the hole is hole."""
  if holes.shape[1] == side:
    return holes
  area = np.stack([cv2.resize(h[..., 0].astype(np.float32), (side, side),
                              interpolation=cv2.INTER_AREA) for h in holes])
  return (area > 1e-3).astype(np.uint8)[..., None]


def composite_at(filler, model_side: int, masked: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """A model of input side `model_side` restoring faces given at their own side S: the masked
  crops and holes resized to the model's side, its output resized back to S and pasted in the
  hole. masked (N, S, S, 3) uint8, hole (N, S, S, 1) {0, 1} -> (N, S, S, 3) uint8."""
  side = masked.shape[1]
  raw, _ = filler(resize(masked, model_side), resize_hole(hole, model_side))
  return np.where(hole > 0, resize(np.asarray(raw), side), masked).astype(np.uint8)


# The evaluators.METRICS this bench scores (its table has their two columns): hole PSNR (dB)
# and LPIPS-AlexNet (x100).
METRICS = ("psnr_hole", "lpips")


def score(out: np.ndarray, clean: np.ndarray, hole: np.ndarray) -> dict:
  """{psnr_hole, lpips}: the means over faces of uint8 composites `out` (N, S, S, 3) against
  `clean` (N, S, S, 3) uint8, `hole` (N, S, S, 1) {0, 1}."""
  return evaluators.mean_scores(METRICS, out, evaluators.Truth(clean, hole))


def measure(examples: list[dict], fillers: dict, sides: list[int]) -> dict:
  """{side: {method: {psnr_hole, lpips}}}; methods: "telea" and each of `fillers`' names
  ({name: (filler, model side)})."""
  batch = input_pipeline.stack_inputs(examples)
  out = {}
  for side in sides:
    clean, hole = resize(batch["clean"], side), resize_hole(batch["hole"], side)
    masked = np.where(hole > 0, 0, clean).astype(np.uint8)  # the hole's pixels are unknown
    rows = {"telea": score(baselines.telea(masked, hole), clean, hole)}
    for name, (filler, model_side) in fillers.items():
      rows[name] = score(composite_at(filler, model_side, masked, hole), clean, hole)
    out[side] = rows
  return out


def markdown(results: dict, model_sides: dict, n: int, data: str) -> str:
  names = list(model_sides)
  head = " | ".join(f"{m} ({model_sides[m]} px): hole PSNR / LPIPS" for m in names)
  lines = [
      f"{n} face-mask faces of `{data}`, shrunk to each face-crop side S (the truth there is "
      "known). Each model gets the masked crop resized to its own input side and its output "
      "resized back to S (`bench_sizes.composite_at`); composite hole PSNR (dB, higher is "
      "better) and LPIPS-AlexNet x100 (lower is better), OpenCV Telea at S for reference. "
      "*Best*: the lowest LPIPS.", "",
      f"| crop side S | Telea: hole PSNR / LPIPS | {head} | best |",
      "|---:|---|" + "---|" * len(names) + "---|"]
  for side, rows in results.items():
    cells = " | ".join(f"{rows[m]['psnr_hole']:.2f} / {rows[m]['lpips']:.2f}" for m in names)
    best = min(names, key=lambda m: rows[m]["lpips"])
    lines.append(f"| {side} | {rows['telea']['psnr_hole']:.2f} / {rows['telea']['lpips']:.2f} "
                 f"| {cells} | {best} |")
  return "\n".join(lines)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  from maskinpaint_jax import checkpoint, inference  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  (source,) = input_pipeline.open_sources(f.data_dir, "face_mask", f.size, f.split)
  examples = [source[i] for i in range(min(f.limit, len(source)))]
  fillers, model_sides = {}, {}
  for spec in f.models:
    path, _, side = spec.partition("@")
    config, params, step = checkpoint.load_generator(path)
    side = int(side) if side else config.data.image_size
    name = f"{path.rstrip('/').split('/')[-1]} step {step}" + (
        f" run at {side} px" if side != config.data.image_size else "")
    model_sides[name] = side
    fillers[name] = (inference.make_filler(config.model, params, batch_size=16), side)
  results = measure(examples, fillers, [int(s) for s in f.sides])
  body = markdown(results, model_sides, len(examples), f"{f.data_dir}` {f.split}`")
  body += f"\n\n{time.time() - t0:.0f} s in all on this machine."
  print(body)
  if f.write:
    command = "python -m maskinpaint_jax.tools.bench_sizes " + shlex.join(sys.argv[1:])
    reporting.write_section(f.write, f"{TITLE} ({f.split} split)", body, command)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
