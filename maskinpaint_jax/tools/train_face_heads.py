r"""Trains the face check's human-face and mask heads (face_check_heads.py) and measures them.

  python -m maskinpaint_jax.tools.train_face_heads --shared ../shared/data \
      --not_human DIR [--work runs/face_heads] [--out maskinpaint_jax/pretrained/face_check] \
      [--write docs/benchmarks.md]

--shared holds realmask/, realmask_more/ (people with masks), nomask/, nomask_more/ (without);
--not_human holds one folder per kind of thing that is not a human face (animal/, statue/,
doll/, drawing/, mask_only/, ...); --no_face_dir adds photos without any face. Every folder is
split by file name (photo_sets.split_of: halves A / B, or one photo in five of a *_more folder
held out): the train part fits the heads and chooses the thresholds from out-of-fold
probabilities; the test part is only measured. --out must hold a face check (its orientation
net is kept); the heads and thresholds are added to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import pickle
import shlex
import sys
import time

from absl import flags
import numpy as np

from maskinpaint_jax import cli, photo_sets, reporting
from maskinpaint_jax import faces as faces_lib
from maskinpaint_jax import face_check_heads as check_heads
from maskinpaint_jax.faces import check, features

TITLE = "Face check heads: human face and mask"
REAL = (("realmask", check_heads.MASKED), ("realmask_more", check_heads.MASKED),
        ("nomask", check_heads.UNMASKED), ("nomask_more", check_heads.UNMASKED))


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("shared", None, "Folder with realmask/, realmask_more/, nomask/, "
                      "nomask_more/.", required=True, **d)
  flags.DEFINE_string("not_human", None, "Folder of one sub-folder per kind of non-human face.",
                      required=True, **d)
  flags.DEFINE_string("no_face_dir", str(photo_sets.DEFAULT_NO_FACE_DIR), "Photos without a "
                      "face (kind 'no face'; scikit-image's are added).", **d)
  flags.DEFINE_string("work", "runs/face_heads", "Cache of the examples and features.", **d)
  flags.DEFINE_string("out", "maskinpaint_jax/pretrained/face_check", "Face check folder the "
                      "heads are added to.", **d)
  flags.DEFINE_float("l2", 0.01, "L2 weight of the logistic regressions.", **d)
  flags.DEFINE_float("max_lost_human", 0.01, "Share of real faces (train part, out-of-fold) "
                     "the human-face threshold may lose.", **d)
  flags.DEFINE_float("max_false_mask", 0.005, "Share of unmasked photos (train part, "
                     "out-of-fold) the mask threshold may let through.", **d)
  flags.DEFINE_float("max_false_vouch", 0.01, "Share of non-human photos (train part, "
                     "out-of-fold) in which the finder may take a face on the heads' word, and "
                     "in which a face found in a turn of the photo may pass as human.", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the results section to.", **d)


def _cached(path: pathlib.Path, make):
  if path.exists():
    return pickle.loads(path.read_bytes())
  value = make()
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(pickle.dumps(value))
  return value


def gather(f) -> list[check_heads.Example]:
  """Every folder's examples (cached in --work: delete it to look again): the photos as they
  are, and the photos without a human face also turned by 90, 180 and 270 degrees."""
  finder = faces_lib.make_finder("mesh", min_face_size=0)
  work, t0 = pathlib.Path(f.work), time.time()
  non_human = [(p, p.name) for p in sorted(pathlib.Path(f.not_human).iterdir()) if p.is_dir()]

  def of_folders(folders, turns):
    examples = []
    for folder, kind in folders:
      found, n = check_heads.examples_of_folder(folder, finder, kind, turns=turns)
      print(f"{folder} turned {turns}: {n} photos, {len(found)} candidates "
            f"({time.time() - t0:.0f} s)", flush=True)
      examples += found
    return examples

  def no_face(turns):  # the no-face set ("no face"), split by name too
    examples = []
    for name, photo in photo_sets.no_face_images(f.no_face_dir):
      split = "train" if photo_sets.half_of(name) == "A" else "test"
      for k in turns:
        examples += check_heads.examples_of_photo(np.ascontiguousarray(np.rot90(photo, k)),
                                                  finder, f"no_face/{name}", "no face", split,
                                                  turn=k)
    return examples

  real = [(pathlib.Path(f.shared) / name, kind) for name, kind in REAL]
  examples = _cached(work / "examples.pkl",
                     lambda: of_folders(real + non_human, (0,)) + no_face((0,)))
  return examples + _cached(work / "turned.pkl",
                            lambda: of_folders(non_human, TURNS) + no_face(TURNS))


TURNS = (1, 2, 3)  # np.rot90's k


def photo_counts(f) -> dict[tuple[str, str], int]:
  """(kind, split) -> photos in it, with or without a candidate."""
  counts = {}
  add = lambda kind, split: counts.__setitem__((kind, split), counts.get((kind, split), 0) + 1)
  from maskinpaint_jax import images  # pylint: disable=g-import-not-at-top
  for name, kind in REAL:
    folder = pathlib.Path(f.shared) / name
    for p in images.list_images(folder):
      add(kind, photo_sets.split_of(folder, p.name))
  for folder in sorted(p for p in pathlib.Path(f.not_human).iterdir() if p.is_dir()):
    for p in images.list_images(folder):
      add(folder.name, photo_sets.split_of(folder, p.name))
  for name, _ in photo_sets.no_face_images(f.no_face_dir):
    add("no face", "train" if photo_sets.half_of(name) == "A" else "test")
  return counts


def turned_crops(examples, idx) -> list[check_heads.Example]:
  """The examples `idx`, each with its crop turned by 90, 180 and 270 degrees (all of one
  turn, then the next)."""
  return [dataclasses.replace(examples[i], crop=np.ascontiguousarray(np.rot90(examples[i].crop,
                                                                           k)), turn=k)
          for k in TURNS for i in idx]


def fit_upright_head(examples, feats, work: pathlib.Path, l2: float) -> features.LinearHead:
  """The upright head: each training face as it is (1) against its crop turned by 90, 180 and
  270 degrees (0), classes balanced. (Each feature vector averages a crop and its mirror
  image, so a quarter turn and three quarters look alike: the head says upright or not, not
  which turn.)"""
  idx = check_heads.upright_training(examples)
  turned = turned_crops(examples, idx)
  x = np.concatenate([feats[idx], features_of(turned, work)])
  y = np.r_[np.ones(len(idx)), np.zeros(len(turned))].astype(np.float32)
  return features.fit_linear_head(x, y, check_heads.balanced_weights(y), l2=l2)


def choose(examples, feats, f) -> tuple[dict, dict]:
  """(heads fitted on the train part, thresholds chosen out-of-fold on it)."""
  work = pathlib.Path(f.work)
  groups = lambda idx: np.array([check_heads.fold_of(examples[i].photo) for i in idx])
  idx, y, w = check_heads.human_training(examples)
  oof = check_heads.out_of_fold(feats[idx], y, w, groups(idx), f.l2)
  human_t = check_heads.highest_threshold(oof[y == 1], f.max_lost_human)
  # Vouching: the finder takes a face the mesh only sees the shape of; per non-human photo of
  # the train part, its most human-looking such candidate that the mesh would not take alone
  # (out-of-fold: every non-human candidate of the train part trained the head).
  oof_of = dict(zip(idx.tolist(), oof))
  negative_photos = {e.photo: 0.0 for e in examples if e.split == "train" and not e.human}
  for i, e in enumerate(examples):
    if e.split == "train" and not e.human and e.geometric and not e.accepted:
      negative_photos[e.photo] = max(negative_photos[e.photo], oof_of[i])
  vouch_t = max(human_t, check_heads.lowest_threshold(
      np.array(list(negative_photos.values())), f.max_false_vouch))
  human = features.fit_linear_head(feats[idx], y, w, l2=f.l2)
  # Faces found only in a turned photo (inpaint turns a photo when no face looks upright as it
  # is): per non-human photo, its most human-looking face found turned.
  full = human.probability(feats)
  turned_photos = dict.fromkeys(negative_photos, 0.0)
  for i, e in enumerate(examples):
    p = oof_of.get(i, full[i])
    if e.split == "train" and not e.human and e.turn and (
        e.accepted or (e.geometric and p >= vouch_t)):
      turned_photos[e.photo] = max(turned_photos[e.photo], p)
  turned_t = max(human_t, check_heads.lowest_threshold(
      np.array(list(turned_photos.values())), f.max_false_vouch))

  idx, y, w = check_heads.mask_training(examples)
  oof = check_heads.out_of_fold(feats[idx], y, w, groups(idx), f.l2)
  mask_t = check_heads.lowest_threshold(oof[y == 0], f.max_false_mask)
  mask = features.fit_linear_head(feats[idx], y, w, l2=f.l2)
  kept = float((oof[y == 1] >= mask_t).mean())
  upright = fit_upright_head(examples, feats, work, f.l2)
  return (dict(human=human, mask=mask, upright=upright),
          dict(human_threshold=human_t, vouch_threshold=vouch_t, turned_threshold=turned_t,
               mask_threshold=mask_t,
               train_masked_kept_out_of_fold=round(kept, 4)))


def measure(examples, feats, heads, thresholds, counts) -> tuple[str, dict]:
  """Per kind and part, per photo: photos, with a face the finder accepts (alone, or vouched
  for), judged human, judged human and masked (what inpaint would repaint)."""
  human_p = heads["human"].probability(feats)
  mask_p = heads["mask"].probability(feats)
  rows, numbers = [], {}
  kinds = sorted({e.kind for e in examples}, key=lambda k: (k not in (
      check_heads.MASKED, check_heads.UNMASKED), k))
  for split in ("train", "test"):
    for kind in kinds:
      found, human, repaint = set(), set(), set()
      for e, hp, mp in zip(examples, human_p, mask_p):
        if e.kind != kind or e.split != split:
          continue
        if e.accepted or (e.geometric and hp >= thresholds["vouch_threshold"]):
          found.add(e.photo)
          if hp >= thresholds["turned_threshold" if e.turn else "human_threshold"]:
            human.add(e.photo)
            if mp >= thresholds["mask_threshold"]:
              repaint.add(e.photo)
      n = counts.get((kind, split), 0)
      if not n:
        continue
      wanted = "restored" if kind == check_heads.MASKED else "left alone"
      good = len(repaint) if kind == check_heads.MASKED else n - len(repaint)
      tag = "in-sample" if split == "train" else "held-out"
      rows.append(f"| {kind} | {split} ({tag}) | {n} | {len(found)} | {len(human)} | "
                  f"{len(repaint)} | {wanted}: {100 * good / n:.1f} % |")
      numbers[f"{kind} {split}"] = dict(photos=n, found=len(found), human=len(human),
                                        repaint=len(repaint))
  groups = breakdown(examples, human_p, mask_p, thresholds)
  body = "\n".join([
      f"Thresholds (chosen on the train part, out-of-fold): human face "
      f"{thresholds['human_threshold']:.2f} ({thresholds['turned_threshold']:.2f} for a face "
      "found only in the photo turned by 90, 180 or 270 degrees), vouching for a face the mesh "
      f"only sees the shape of {thresholds['vouch_threshold']:.2f}, mask "
      f"{thresholds['mask_threshold']:.2f}. Non-human photos count in every turn. Per "
      "photo: *found* = a face the finder accepts (min_face_size 0; with the heads' vouching), "
      "*human* = one of them judged a human face, *masked* = one judged human and masked (what "
      "inpaint repaints before its size, frame and profile rules: the whole path is in \"Real "
      "photos, animals and drawings\"). Train rows are in-sample (they fitted the heads and chose "
      "the thresholds); test rows are held out.", "",
      "| kind | part | photos | found | human | masked | wanted |",
      "|---|---|---:|---:|---:|---:|---:|", *rows, "",
      "By mask style and skin tone (`face_check_heads.mask_style`, `skin_tone`: the median "
      "colour where the mask sits, and the individual typology angle of the skin between the "
      "eyes, of each photo's largest face found; estimated from pixels under each photo's own "
      "light). Masked photos: kept = judged human and masked; unmasked photos: repainted.", "",
      "| part | group | masked photos found | kept | unmasked photos found | repainted |",
      "|---|---|---:|---:|---:|---:|", *groups])
  numbers["groups"] = groups
  return body, numbers


def breakdown(examples, human_p, mask_p, thresholds) -> list[str]:
  """Table rows of the masked photos kept and the unmasked ones repainted, per part and per
  mask style (masked photos) or skin tone (both)."""
  largest = {}
  for i, e in enumerate(examples):
    if e.human and (e.accepted or (e.geometric and human_p[i] >= thresholds["vouch_threshold"])):
      if e.photo not in largest or e.size > examples[largest[e.photo]].size:
        largest[e.photo] = i
  rows = []
  for split, tag in (("test", "held-out"), ("train", "in-sample")):
    for name, classify, labels in (
        ("mask", check_heads.mask_style, check_heads.MASK_STYLES),
        ("skin", check_heads.skin_tone, check_heads.SKIN_TONES)):
      for label in labels:
        count = {check_heads.MASKED: [0, 0], check_heads.UNMASKED: [0, 0]}
        for i in largest.values():
          e = examples[i]
          if e.split != split or classify(e.crop) != label:
            continue
          hit = human_p[i] >= thresholds["human_threshold"] and (
              mask_p[i] >= thresholds["mask_threshold"])
          count[e.kind][0] += 1
          count[e.kind][1] += int(hit)
        (mn, mk), (un, ur) = count[check_heads.MASKED], count[check_heads.UNMASKED]
        pct = lambda a, b: f"{a} ({100 * a / b:.1f} %)" if b else "-"
        unmasked = (f"{un} | {pct(ur, un)}" if name == "skin" else " | ")
        rows.append(f"| {split} ({tag}) | {name}: {label} | {mn} | {pct(mk, mn)} | {unmasked} |")
  return rows


def measure_upright(examples, feats, head, work: pathlib.Path) -> tuple[str, dict]:
  """The upright head alone on the accepted faces of real photos of the test part: the share
  of them it calls upright (p >= 0.5) as they are, and of their crops turned by 90, 180 and
  270 degrees it calls turned."""
  idx = [i for i, e in enumerate(examples) if e.split == "test" and e.human and e.accepted]
  turned = turned_crops(examples, idx)
  as_is = float((head.probability(feats[idx]) >= 0.5).mean())
  rotated = float((head.probability(features_of(turned, work)) < 0.5).mean())
  body = (f"Upright head (held-out faces, {len(idx)}): called upright as they are "
          f"{100 * as_is:.1f} %; their crops turned by 90, 180 and 270 degrees called turned "
          f"{100 * rotated:.1f} %. inpaint's upright answer is the mean of this head's and the "
          "orientation net's (`FaceCheck.upright_probability`).")
  return body, dict(faces=len(idx), upright_as_is=round(as_is, 4),
                    turned_called_turned=round(rotated, 4))


def features_of(examples, work: pathlib.Path) -> np.ndarray:
  """The examples' `ImageNetFeatures`, cached in `work` under the SHA-1 of their crops."""
  digest = hashlib.sha1()
  for e in examples:
    digest.update(e.crop.tobytes())
  cache = work / f"features-{digest.hexdigest()[:16]}.npy"
  if cache.exists():
    return np.load(cache)
  feats = features.ImageNetFeatures().features(np.stack([e.crop for e in examples]))
  np.save(cache, feats)
  return feats


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  examples = gather(f)
  feats = features_of(examples, pathlib.Path(f.work))
  heads, thresholds = choose(examples, feats, f)
  body, numbers = measure(examples, feats, heads, thresholds, photo_counts(f))
  upright_body, numbers["upright"] = measure_upright(examples, feats, heads["upright"],
                                                     pathlib.Path(f.work))
  body += "\n\n" + upright_body
  print(body)
  command = "python -m maskinpaint_jax.tools.train_face_heads " + shlex.join(sys.argv[1:])
  check.save_heads(f.out, heads, human_threshold=thresholds["human_threshold"],
                   mask_threshold=thresholds["mask_threshold"],
                   vouch_threshold=thresholds["vouch_threshold"],
                   turned_threshold=thresholds["turned_threshold"], command=command,
                   train_masked_kept_out_of_fold=thresholds["train_masked_kept_out_of_fold"],
                   results=numbers)
  print(f"written: {f.out}")
  if f.write:
    reporting.write_section(f.write, TITLE, body, command)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
