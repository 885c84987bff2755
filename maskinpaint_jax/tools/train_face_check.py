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
degrees for the orientation head. The orientation head also learns from what the finder finds
in the real photos turned by 90, 180 and 270 degrees: on a face upside down it often boxes the
eyes and forehead alone, a crop that looks like an upright unmasked face and that a turned
upright crop never shows (orientation only; their mask weight is 0). The mask threshold (on the mean of a crop's and its
mirror's answers) is the middle of the widest range that repaints at most --max_false_repaint
of half A's unmasked photos and of the CelebA validation faces while keeping the most of half
A's masked photos.
"""

from __future__ import annotations

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

from maskinpaint_jax import cli, images, masks, photo_sets, reporting
from maskinpaint_jax import faces as faces_lib
from maskinpaint_jax.faces import check

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
  flags.DEFINE_string("out", "maskinpaint_jax/pretrained/face_check", "Model folder written.", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the results section to.", **d)
  flags.DEFINE_bool("train", True, "Train; --notrain chooses the thresholds of the weights "
                    "already in --out and measures them again.", **d)


def readable_photos(folder):
  """(path, uint8 RGB photo) of every photo of `folder` that loads; the others are skipped."""
  for path in images.list_images(folder):
    try:
      yield path, images.load_rgb(path)
    except images.ImageLoadError:
      continue


def crops_of_folder(folder, finder, label: int, source: str) -> list[dict]:
  """One record per face found in each photo: its box crop, label (1 = mask), photo, half."""
  records = []
  for path, photo in readable_photos(folder):
    found = finder.find_any_size(photo)
    for face in found:
      records.append(dict(crop=check.box_crop(photo, face.box), label=label, source=source,
                          photo=path.name, half=photo_sets.half_of(path.name)))
    if not found:
      records.append(dict(crop=None, label=label, source=source, photo=path.name,
                          half=photo_sets.half_of(path.name)))
  return records


TURNS = (1, 2, 3)  # np.rot90's k: the real photos are also seen turned by 90, 180, 270 degrees


def turned_crops_of_folder(folder, finder, label: int, source: str) -> list[dict]:
  """One record per face the finder finds in each photo turned by 90, 180 and 270 degrees
  (counter-clockwise, np.rot90's k in `turn`): the crops inpaint's face check meets on a photo
  saved without its orientation tag, boxes as the finder places them on a turned face."""
  records = []
  for path, photo in readable_photos(folder):
    for k in TURNS:
      turned = np.ascontiguousarray(np.rot90(photo, k))
      for face in finder.find_any_size(turned):
        records.append(dict(crop=check.box_crop(turned, face.box), label=label, source=source,
                            photo=path.name, half=photo_sets.half_of(path.name), turn=k))
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
  for name, image in photo_sets.synthetic_no_face(seed + 1000, n_noise=count // 8,
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
    more = []
    if f.num_nonface and not any(r["source"] == "nonface" for r in records):
      more += nonface_crops(f.celeba, f.num_nonface, f.seed)
    if not any(r.get("turn", 0) for r in records):
      more += turned_crops_of_folder(f.realmask, finder, 1, "realmask")
      more += turned_crops_of_folder(f.nomask, finder, 0, "nomask")
    if more:
      records += more
      np.savez(cache, records=np.array(records, dtype=object))
    return records
  t0 = time.time()
  records = celeba_crops(f.celeba, finder, f.num_celeba, f.seed)
  records += crops_of_folder(f.realmask, finder, 1, "realmask")
  records += crops_of_folder(f.nomask, finder, 0, "nomask")
  records += turned_crops_of_folder(f.realmask, finder, 1, "realmask")
  records += turned_crops_of_folder(f.nomask, finder, 0, "nomask")
  if f.photos:
    records += crops_of_folder(f.photos, finder, 0, "photos")
  if f.num_nonface:
    records += nonface_crops(f.celeba, f.num_nonface, f.seed)
  cache.parent.mkdir(parents=True, exist_ok=True)
  np.savez(cache, records=np.array(records, dtype=object))
  print(f"{len(records)} crops in {time.time() - t0:.0f} s -> {cache}", flush=True)
  return records


def training_arrays(records, nonface: bool) -> tuple[np.ndarray, ...]:
  """(crops, mask labels, mask weights, is a face, turns): CelebA train, the non-faces and half
  A of the real photos, upright and turned; an upright real crop weighs 3 for the mask (they
  are few and they are what the check meets), a crop of a turned photo 0 (a box around a turned
  face's eyes alone may show no mask). A non-face has no orientation to learn. `turns`: the
  crop's own turn (np.rot90's k) before augmentation."""
  train = [r for r in records if r["crop"] is not None and (
      (r["source"] == "celeba" and r["half"] == "train")
      or (nonface and r["source"] == "nonface")
      or (r["source"] in ("realmask", "nomask") and r["half"] == "A"))]
  real = lambda r: r["source"] in ("realmask", "nomask")
  return (np.stack([r["crop"] for r in train]), np.array([r["label"] for r in train], np.float32),
          np.array([0.0 if r.get("turn", 0) else 3.0 if real(r) else 1.0 for r in train],
                   np.float32),
          np.array([r["source"] != "nonface" for r in train], np.float32),
          np.array([r.get("turn", 0) for r in train], np.int32))


def jitter(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
  """(the crop as a slightly different detector box would give it: scale 0.9-1.1, shift up to
  6 % of the side, mirrored half the time; whether it was mirrored)."""
  size = crop.shape[0]
  s = rng.uniform(0.9, 1.1)
  dx, dy = rng.uniform(-0.06, 0.06, 2) * size
  c = (size - 1) / 2
  flip = -1.0 if rng.random() < 0.5 else 1.0
  matrix = np.array([[s * flip, 0, c - s * flip * c + dx], [0, s, c - s * c + dy]])
  return cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE), flip < 0


def augment(crops: np.ndarray, rng: np.random.Generator,
            turns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Box jitter and mirror, then a random turn, then brightness and contrast (dark and backlit
  photos). Returns (crops, orientation labels): a crop already turned by `turns` (np.rot90's
  k; 0 when None) and turned again by t shows a face turned by turns + t, except that a mirror
  image of a face turned by k shows one turned by -k (90 and 270 swap; 0 and 180 stay)."""
  k = rng.integers(0, 4, len(crops))
  turns = np.zeros(len(crops), np.int64) if turns is None else np.asarray(turns)
  out, labels = [], []
  for c, t, base in zip(crops, k, turns):
    moved, mirrored = jitter(c, rng)
    out.append(np.rot90(moved, int(t)))
    labels.append(((-base if mirrored else base) + t) % 4)
  out = np.stack(out).astype(np.float32)
  k = np.array(labels)
  gain = rng.uniform(0.3, 1.4, (len(crops), 1, 1, 1))
  mean = out.mean(axis=(1, 2, 3), keepdims=True)
  out = (out - mean) * rng.uniform(0.7, 1.3, (len(crops), 1, 1, 1)) + mean * gain
  return np.clip(out, 0, 255).astype(np.uint8), k.astype(np.int32)


def train(crops, labels, weights, is_face, turns, epochs: int, seed: int):
  """Adam on orientation cross-entropy + weighted mask cross-entropy. Returns the params.
  `turns`: each crop's own turn (np.rot90's k), added to the augmentation's."""
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
      x, k = augment(crops[idx], rng, turns[idx])
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
  found, the number of photos); only crops of `label` when given; the photos as they are (the
  crops of turned photos train the orientation only)."""
  per, photos = {}, set()
  for i, r in enumerate(records):
    if (r["source"] == source and half in (None, r["half"]) and label in (None, r["label"])
        and not r.get("turn", 0)):
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
  report_b = [r["crop"] for r in records if r["crop"] is not None and r["half"] == "B"
              and not r.get("turn", 0)]
  acc = orientation_accuracy(checker, np.stack(report_b)) if report_b else float("nan")
  numbers["orientation_accuracy_half_B"] = acc
  turned_b = [r for r in records if r.get("turn", 0) and r["half"] == "B"]
  if turned_b:
    probs_b, _ = predict(checker, np.stack([r["crop"] for r in turned_b]))
    found_acc = float((probs_b.argmax(1) == np.array([r["turn"] for r in turned_b])).mean())
  else:
    found_acc = float("nan")
  numbers["orientation_accuracy_found_in_turned_half_B"] = found_acc
  body = "\n".join([
      f"Mask threshold {t:.3f} (chosen on half A and CelebA validation), orientation threshold "
      f"{checker.turn_threshold:.2f}. Half A trained the check and chose the thresholds; half B "
      "and photos/ were never used for either. Per photo: a photo counts as kept / repainted "
      "when a face found in it is at or above the threshold; photos without a face found are "
      "not counted (the face finder's own rate: \"Face finders on real masked photos\").", "",
      "| photos | total | with a face found | counted | count | rate |",
      "|---|---:|---:|---|---:|---:|", *rows, "",
      f"Orientation: the check names the turn (0 / 90 / 180 / 270 degrees) of {100 * acc:.1f} % "
      f"of half B's faces turned four ways ({4 * len(report_b)} crops), and of "
      f"{100 * found_acc:.1f} % of the faces the finder finds in half B's photos turned by 90, "
      f"180 and 270 degrees ({len(turned_b)} crops; its boxes there need not be the upright "
      "face's, turned)."])
  return body, numbers


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  finder = faces_lib.make_finder("mesh", min_face_size=0)
  records = gather(f, finder)
  command = "python -m maskinpaint_jax.tools.train_face_check " + shlex.join(sys.argv[1:])
  if f.train:
    crops, labels, weights, is_face, turns = training_arrays(records, f.num_nonface > 0)
    print(f"training on {len(crops)} crops ({int(labels.sum())} masked, "
          f"{int(len(crops) - is_face.sum())} not faces)", flush=True)
    t0 = time.time()
    params = train(crops, labels, weights, is_face, turns, f.epochs, f.seed)
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
