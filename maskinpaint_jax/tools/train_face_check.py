r"""Trains the face check (faces/check.py: upright? mask?) and measures it on held-out photos.

  python -m maskinpaint_jax.tools.train_face_check --celeba ../shared/data/celeba \
      --realmask ../shared/data/realmask --nomask ../shared/data/nomask \
      --photos ../shared/data/photos [--num_celeba 1200] [--work runs/face_check] \
      [--out pretrained/face_check] [--write docs/benchmarks.md]

Data: every face the masked-face finder (mesh) finds, cropped around its box as the check sees
it. CelebA photos give an unmasked crop and, with synthetic masks of random styles and colours
(Algorithm 1), MASKED_PER_FACE masked ones; the first 80 % train, the rest validate. With
--num_nonface N, N textures and photo corners that are not faces are added as "no mask" (off
for the shipped check: measured, it kept fewer masked faces). Real photos of people with and
without masks are split in two fixed halves by a hash of the file name: half A trains and
chooses the thresholds, half B is only measured. Every crop is also turned by 90, 180 and 270
degrees for the orientation head. The mask threshold (on the mean of a crop's and its
mirror's answers) is the middle of the widest range that repaints at most --max_false_repaint
of half A's unmasked photos and of the CelebA validation faces while keeping the most of half
A's masked photos.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shlex
import sys
import time

from absl import flags
import jax
import jax.numpy as jnp
import cv2
import numpy as np
import optax

from maskinpaint_jax import cli, images, masks, reporting
from maskinpaint_jax import faces as faces_lib
from maskinpaint_jax.faces import check
from maskinpaint_jax.tools import bench_faces

TITLE = "Face check: upright and mask present"
MASKED_PER_FACE = 2  # synthetic masks (style and colour drawn at random) per CelebA face


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  for name, help_ in (("celeba", "Folder of unmasked CelebA photos."),
                      ("realmask", "Folder of real photos of people wearing masks."),
                      ("nomask", "Folder of real photos of people without masks.")):
    flags.DEFINE_string(name, None, help_, required=True, **d)
  flags.DEFINE_string("photos", None, "Folder of ordinary photos (unmasked), measured only.", **d)
  flags.DEFINE_integer("num_celeba", 1200, "CelebA photos used.", **d)
  flags.DEFINE_integer("num_nonface", 0, "Crops that are not faces added as 'no mask' (0 for "
                       "the shipped check).", **d)
  flags.DEFINE_integer("epochs", 40, "Training epochs.", **d)
  flags.DEFINE_integer("seed", 0, "Seeds the synthetic masks, the order and the init.", **d)
  flags.DEFINE_float("max_false_repaint", 0.01, "Share of unmasked faces of half A and CelebA "
                     "validation allowed above the mask threshold.", **d)
  flags.DEFINE_string("work", "runs/face_check", "Cache of the crops.", **d)
  flags.DEFINE_string("out", str(check.DEFAULT_DIR), "Model folder written.", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the results section to.", **d)
  flags.DEFINE_bool("train", True, "Train; --notrain chooses the thresholds of the weights "
                    "already in --out and measures them again.", **d)


def half_of(name: str) -> str:
  """"A" or "B": a fixed split of a folder's photos by the SHA-1 of the file name."""
  return "AB"[hashlib.sha1(name.encode()).digest()[0] % 2]


def crops_of_folder(folder, finder, label: int, source: str) -> list[dict]:
  """One record per face found in each photo: its box crop, label (1 = mask), photo, half."""
  records = []
  for path in images.list_images(folder):
    try:
      photo = images.load_rgb(path)
    except images.ImageLoadError:
      continue
    found = finder.find_any_size(photo)
    for face in found:
      records.append(dict(crop=check.box_crop(photo, face.box), label=label, source=source,
                          photo=path.name, half=half_of(path.name)))
    if not found:
      records.append(dict(crop=None, label=label, source=source, photo=path.name,
                          half=half_of(path.name)))
  return records


def celeba_crops(folder, finder, limit: int, seed: int) -> list[dict]:
  """Unmasked and synthetically masked crops of the largest face of CelebA photos."""
  records = []
  paths = images.list_images(folder)[:limit]
  for i, path in enumerate(paths):
    photo = images.load_rgb(path)
    found = finder.find_any_size(photo)
    if not found:
      continue
    face = found[0]
    split = "train" if i < 0.8 * len(paths) else "validation"
    rng = masks.example_rng(seed, path.name)
    variants = [photo] + [masks.apply_face_mask(photo, face.landmarks, rng)[0]
                          for _ in range(MASKED_PER_FACE)]
    for label, image in zip([0] + [1] * MASKED_PER_FACE, variants):
      records.append(dict(crop=check.box_crop(image, face.box), label=label, source="celeba",
                          photo=path.name, half=split))
  return records


def nonface_crops(folder, count: int, seed: int) -> list[dict]:
  """Things that are not faces, for the mask head to answer "no": textures and noise (drawn with
  another seed than bench_faces' no-face set, which is only measured) and the corners of CelebA
  photos (background, hair, clothes)."""
  rng = np.random.default_rng(seed)
  out = []
  for name, image in bench_faces.synthetic_no_face(seed + 1000, n_noise=count // 8,
                                                   n_texture=count // 2, shape=(256, 256)):
    side = int(rng.integers(64, 256))
    y, x = (int(rng.integers(0, 257 - side)) for _ in range(2))
    out.append(cv2.resize(image[y:y + side, x:x + side], (check.CROP_SIZE, check.CROP_SIZE),
                          interpolation=cv2.INTER_AREA))
  for path in images.list_images(folder)[-count // 2:]:  # never the photos of celeba_crops
    photo = images.load_rgb(path)
    side = min(photo.shape[:2]) // 3
    corner = photo[:side, :side] if rng.random() < 0.5 else photo[:side, -side:]
    out.append(cv2.resize(corner, (check.CROP_SIZE, check.CROP_SIZE),
                          interpolation=cv2.INTER_AREA))
  return [dict(crop=c, label=0, source="nonface", photo=f"nonface{i}", half="train")
          for i, c in enumerate(out)]


def gather(f, finder) -> list[dict]:
  cache = pathlib.Path(f.work) / "crops.npz"
  if cache.exists():
    records = list(np.load(cache, allow_pickle=True)["records"])
    if f.num_nonface and not any(r["source"] == "nonface" for r in records):
      records += nonface_crops(f.celeba, f.num_nonface, f.seed)
      np.savez(cache, records=np.array(records, dtype=object))
    return records
  t0 = time.time()
  records = celeba_crops(f.celeba, finder, f.num_celeba, f.seed)
  records += crops_of_folder(f.realmask, finder, 1, "realmask")
  records += crops_of_folder(f.nomask, finder, 0, "nomask")
  if f.photos:
    records += crops_of_folder(f.photos, finder, 0, "photos")
  if f.num_nonface:
    records += nonface_crops(f.celeba, f.num_nonface, f.seed)
  cache.parent.mkdir(parents=True, exist_ok=True)
  np.savez(cache, records=np.array(records, dtype=object))
  print(f"{len(records)} crops in {time.time() - t0:.0f} s -> {cache}", flush=True)
  return records


def training_arrays(records, nonface: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                     np.ndarray]:
  """(crops, mask labels, mask weights, is a face): CelebA train, the non-faces and half A of
  the real photos; a real crop weighs 3 (they are few and they are what the check meets). A
  non-face has no orientation to learn."""
  train = [r for r in records if r["crop"] is not None and (
      (r["source"] == "celeba" and r["half"] == "train")
      or (nonface and r["source"] == "nonface")
      or (r["source"] in ("realmask", "nomask") and r["half"] == "A"))]
  return (np.stack([r["crop"] for r in train]), np.array([r["label"] for r in train], np.float32),
          np.array([3.0 if r["source"] in ("realmask", "nomask") else 1.0 for r in train],
                   np.float32),
          np.array([r["source"] != "nonface" for r in train], np.float32))


def jitter(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """The crop as a slightly different detector box would give it: scale 0.9-1.1, shift up to
  6 % of the side, mirrored half the time."""
  size = crop.shape[0]
  s = rng.uniform(0.9, 1.1)
  dx, dy = rng.uniform(-0.06, 0.06, 2) * size
  c = (size - 1) / 2
  flip = -1.0 if rng.random() < 0.5 else 1.0
  matrix = np.array([[s * flip, 0, c - s * flip * c + dx], [0, s, c - s * c + dy]])
  return cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)


def augment(crops: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Box jitter and mirror, then a random turn (the orientation label: mirroring after the turn
  would make 90 and 270 degrees the same picture of a symmetric face), then brightness and
  contrast (dark and backlit photos)."""
  k = rng.integers(0, 4, len(crops))
  out = np.stack([np.rot90(jitter(c, rng), int(t)) for c, t in zip(crops, k)]).astype(np.float32)
  gain = rng.uniform(0.3, 1.4, (len(crops), 1, 1, 1))
  mean = out.mean(axis=(1, 2, 3), keepdims=True)
  out = (out - mean) * rng.uniform(0.7, 1.3, (len(crops), 1, 1, 1)) + mean * gain
  return np.clip(out, 0, 255).astype(np.uint8), k.astype(np.int32)


def train(crops, labels, weights, is_face, epochs: int, seed: int):
  """Adam on orientation cross-entropy + weighted mask cross-entropy. Returns the params."""
  net = check.FaceCheckNet()
  params = net.init(jax.random.key(seed), jnp.zeros((1, 64, 64, 3), jnp.uint8))["params"]
  steps = epochs * (len(crops) // 64)
  tx = optax.adam(optax.cosine_decay_schedule(2e-3, steps))
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, k, y, w, face):
    def loss_fn(p):
      turn, mask = net.apply({"params": p}, x)
      lt = (optax.softmax_cross_entropy_with_integer_labels(turn, k) * face).sum() / jnp.maximum(
          face.sum(), 1.0)
      lm = (optax.sigmoid_binary_cross_entropy(mask, y) * w).sum() / w.sum()
      return lt + lm, (lt, lm)
    (_, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(grads, opt)
    return optax.apply_updates(params, updates), opt, parts

  rng = np.random.default_rng(seed)
  for epoch in range(epochs):
    order = rng.permutation(len(crops))
    for i in range(0, len(order) - 63, 64):
      idx = order[i:i + 64]
      x, k = augment(crops[idx], rng)
      params, opt, (lt, lm) = step(params, opt, x, k, labels[idx], weights[idx], is_face[idx])
    if epoch % 5 == 4 or epoch == epochs - 1:
      print(f"epoch {epoch + 1}: orientation loss {float(lt):.3f}, mask loss {float(lm):.3f}",
            flush=True)
  return params


def predict(checker: check.FaceCheck, crops: np.ndarray):
  outs = [checker.predict(crops[i:i + 256]) for i in range(0, len(crops), 256)]
  return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def photo_max(records, probs, source: str, half: str | None, label: int | None = None
              ) -> tuple[np.ndarray, int]:
  """(the highest mask probability of each photo of `source` / `half` (None: any) with a face
  found, the number of photos); only crops of `label` when given."""
  per, photos = {}, set()
  for i, r in enumerate(records):
    if r["source"] == source and half in (None, r["half"]) and label in (None, r["label"]):
      photos.add(r["photo"])
      if r["crop"] is not None:
        per[r["photo"]] = max(per.get(r["photo"], 0.0), float(probs[i]))
  return np.array(list(per.values())), len(photos)


def choose_mask_threshold(records, probs, max_false: float) -> float:
  """On half A only: among the thresholds that repaint at most `max_false` of the unmasked
  photos (and of the CelebA validation faces), those that keep the most masked photos; the
  middle of the widest such range (the largest margin on both sides)."""
  grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
  masked, unmasked = (photo_max(records, probs, source, "A")[0]
                      for source in ("realmask", "nomask"))
  celeba = probs[[i for i, r in enumerate(records) if r["source"] == "celeba"
                  and r["half"] == "validation" and r["label"] == 0]]
  ok = [t for t in grid if (unmasked >= t).mean() <= max_false and (celeba >= t).mean()
        <= max_false]
  if not ok:
    return 0.5
  kept = {t: (masked >= t).mean() for t in ok}
  best = [t for t in ok if kept[t] == max(kept.values())]
  runs, run = [], [best[0]]
  for t in best[1:]:
    if round(t - run[-1], 2) <= 0.01:
      run.append(t)
    else:
      runs.append(run)
      run = [t]
  runs.append(run)
  widest = max(runs, key=len)
  return float(round((widest[0] + widest[-1]) / 2, 3))


def orientation_accuracy(checker, crops: np.ndarray) -> float:
  """Share of the crops' four turns whose turn the check names."""
  right = 0
  for k in range(4):
    probs, _ = predict(checker, np.stack([np.rot90(c, k) for c in crops]))
    right += int((probs.argmax(1) == k).sum())
  return right / (4 * len(crops))


def mask_probabilities(checker, records) -> np.ndarray:
  """The mask probability of every record's crop (NaN where no face was found)."""
  valid = [i for i, r in enumerate(records) if r["crop"] is not None]
  probs = np.full(len(records), np.nan)
  probs[valid] = predict(checker, np.stack([records[i]["crop"] for i in valid]))[1]
  return probs


def measure(records, checker, probs) -> tuple[str, dict]:
  t = checker.mask_threshold
  rows, numbers = [], {}
  for source, half, what in (("realmask", "A", "kept (mask found)"),
                             ("realmask", "B", "kept (mask found)"),
                             ("nomask", "A", "repainted (false mask)"),
                             ("nomask", "B", "repainted (false mask)"),
                             ("photos", None, "repainted (false mask)"),
                             ("celeba", "validation", "repainted (false mask)")):
    # CelebA: one face per photo, its unmasked crop only.
    best, total = photo_max(records, probs, source, half, 0 if source == "celeba" else None)
    hit, n = int((best >= t).sum()), len(best)
    if not total:
      continue
    label = source + (f" half {half}" if half in ("A", "B") else
                      " (validation)" if half else "")
    rows.append(f"| {label} | {total} | {n} | {what} | {hit} | {100 * hit / max(n, 1):.1f} % |")
    numbers[label] = dict(photos=total, faces_found=n, hits=hit)
  report_b = [r["crop"] for r in records if r["crop"] is not None and r["half"] == "B"]
  acc = orientation_accuracy(checker, np.stack(report_b)) if report_b else float("nan")
  numbers["orientation_accuracy_half_B"] = acc
  body = "\n".join([
      f"Mask threshold {t:.3f} (chosen on half A and CelebA validation), orientation threshold "
      f"{checker.turn_threshold:.2f}. Half A trained the check and chose the thresholds; half B "
      "and photos/ were never used for either. Per photo: a photo counts as kept / repainted "
      "when a face found in it is at or above the threshold; photos without a face found are "
      "not counted (the face finder's own rate: \"Face finders on real masked photos\").", "",
      "| photos | total | with a face found | counted | count | rate |",
      "|---|---:|---:|---|---:|---:|", *rows, "",
      f"Orientation: the check names the turn (0 / 90 / 180 / 270 degrees) of {100 * acc:.1f} % "
      f"of half B's faces turned four ways ({4 * len(report_b)} crops)."])
  return body, numbers


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  finder = faces_lib.make_finder("mesh", min_face_size=0)
  records = gather(f, finder)
  command = "python -m maskinpaint_jax.tools.train_face_check " + shlex.join(sys.argv[1:])
  if f.train:
    crops, labels, weights, is_face = training_arrays(records, f.num_nonface > 0)
    print(f"training on {len(crops)} crops ({int(labels.sum())} masked, "
          f"{int(len(crops) - is_face.sum())} not faces)", flush=True)
    t0 = time.time()
    params = train(crops, labels, weights, is_face, f.epochs, f.seed)
    provenance = dict(command=command, train_crops=int(len(crops)),
                      train_seconds=round(time.time() - t0))
    check.save(f.out, params, 0.5, 0.5, **provenance)  # kept even if what follows fails
  else:  # the trained weights of --out: choose the thresholds and measure again
    params = check.load(f.out).params
    provenance = json.loads((pathlib.Path(f.out) / check.MANIFEST).read_text())
    provenance = {k: provenance[k] for k in ("command", "train_crops", "train_seconds")}
  probs = mask_probabilities(check.FaceCheck(params, 0.5, 0.5), records)
  threshold = choose_mask_threshold(records, probs, f.max_false_repaint)
  checker = check.FaceCheck(params, threshold, 0.5)
  body, numbers = measure(records, checker, probs)
  print(body)
  check.save(f.out, params, threshold, 0.5, results=numbers, **provenance)
  print(f"written: {f.out}")
  if f.write:
    reporting.write_section(f.write, TITLE, body, command)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
