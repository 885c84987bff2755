r"""Restores the faces in your own photos: finds every face, checks it wears a mask, locates
the mask, redraws the face under it.

  python -m maskinpaint_jax.tools.inpaint PHOTO_OR_DIR [...] -o restored/ [--side_by_side] \
      [--save_hole] [--hole FILE_OR_DIR] [--add_mask surgical|cloth|n95|random] \
      [--workdir runs/x] [--step N] [--seed S] [--face_finder mesh|hog] [--min_face_size 12]

Any size and any format Pillow reads (JPEG, .jfif, PNG, WebP, TIFF, BMP, GIF's first frame;
HEIC with pillow-heif), RGBA or grayscale, EXIF orientation honoured; a photo turned by 90, 180
or 270 degrees without a tag is set upright first. One photo's path is `faces.restore`:
1. Faces: every face is found with 68 landmarks (`--face_finder mesh`, the default: MediaPipe's
   detector checked by its face mesh, which finds masked faces; `hog`: dlib HOG, the paper's,
   which misses most of them). A face too small, cut by the frame or in profile is SKIPPED.
2. Mask or not: a face without a mask is left as it is and reported (NO MASK; not a failure).
3. Hole: the mask is located per face (faces/holes.py: Algorithm 1's geometry from the
   landmarks, refined by the photo's colours with GrabCut); or `--hole` gives it (white = hole,
   the photo's size; `--save_hole`'s output can be edited and given back); or `--add_mask` puts
   a synthetic mask on each face first (Algorithm 1), to try the model on unmasked photos.
4. Restore: each face is cropped as the training data was (faces/align.py), restored by the
   generator (a non-blind model never sees the mask's pixels), colour-matched to the photo
   around the hole, and pasted back inside the hole only, with a feathered edge.
The generator is the shipped one (the package's pretrained/ folder, or --models_dir, or
$MASKINPAINT_MODELS) unless --workdir names a training workdir or an exported model folder. --large_model adds a generator of a larger input side for the faces
whose crop is at least that side in the photo (`paste.pick_generator`; measured by
`tools/bench_sizes`); by default the shipped 128 px model when pretrained/ has one and
--workdir is not given.

Writes <name>_restored.png (<name>_masked.png with --add_mask; <name>_hole.png, one channel
0/255, with --save_hole; <name>_side_by_side.png, input | hole | restored, with --side_by_side)
into -o, keeping the sub-folders of a folder given; two inputs of one folder with the same name
but another extension get it in their names (p_jpg_..., p_png_...). Names that would still
collide are an error naming both inputs, before any work; the same file given twice is done
once. Operating-system files (hidden files such as .DS_Store and ._photo.jpg, Thumbs.db,
desktop.ini) are listed and left out, and an output folder inside an input folder is never read.
Every file is accounted for: the last line counts restored + no mask + no face + unreadable
(+ wrong hole: a hole map not of the photo's size) = total. Each finished photo is listed in
-o's .maskinpaint-done.tsv; --skip_existing leaves those out, so a stopped batch continues.
Exit status: 0 when every photo was restored or has no mask, 1 when a photo was unreadable or
had no usable face or a wrong hole map, or a face was skipped, 2 for a usage error (e.g.
missing models, an output folder that cannot be written).
"""
from __future__ import annotations

import sys

from absl import flags

from maskinpaint_jax import batch, cli, errors, faces
from maskinpaint_jax import masks as mask_lib
from maskinpaint_jax import restorer as restorer_lib
from maskinpaint_jax.faces import restore


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("out", None, "Output folder.", short_name="o", required=True, **d)
  flags.DEFINE_string("workdir", None, "Training workdir or exported model folder (default: "
                      "pretrained/).", **d)
  flags.DEFINE_string("large_model", None, "Exported model folder or workdir of a larger input "
                      "side, for the faces whose crop is at least that side (default: the "
                      "shipped 128 px model when there is one and --workdir is not given; "
                      "'none': never).", **d)
  flags.DEFINE_enum("add_mask", None, [*mask_lib.FACE_MASK_STYLES, "random"], "Put a synthetic "
                    "mask on every face first (the hole is then known).", **d)
  flags.DEFINE_bool("side_by_side", False, "Also write input | hole | restored side by side.",
                    **d)
  flags.DEFINE_bool("save_hole", False, "Also write the hole map that was filled (one channel, "
                    "white = restored; edit it and give it back with --hole).", **d)
  flags.DEFINE_string("hole", None, "Your own hole map (white = hole, the photo's size): one "
                      "file for one photo, or a folder of maps named as the photos (or as "
                      "--save_hole names them).", **d)
  flags.DEFINE_bool("mask_check", True, "Leave faces without a mask untouched (--nomask_check "
                    "restores every human face found; what is not a human face is still left "
                    "alone).", **d)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).", **d)
  flags.DEFINE_integer("seed", 0, "Seeds --add_mask's colours and shading.", **d)
  flags.DEFINE_integer("min_face_size", restore.MIN_FACE_SIZE, "Smaller faces are skipped "
                       "with a message (px); a small face is upscaled to the generator's input "
                       "and looks soft.", **d)
  flags.DEFINE_enum("face_finder", "mesh", list(faces.FINDERS), "mesh: finds masked faces "
                    "(default); hog: dlib HOG, the paper's.", **d)
  flags.DEFINE_bool("skip_existing", False, "Leave out the photos that an earlier run into the "
                    "same -o folder finished (its list .maskinpaint-done.tsv): an interrupted "
                    "batch continues where it stopped.", **d)
  flags.DEFINE_string("models_dir", None, "Folder of the shipped models (default: "
                      "$MASKINPAINT_MODELS, else the installed package's own).", **d)


def options(f) -> batch.Options:
  return batch.Options(out=f.out, hole=f.hole, add_mask=f.add_mask, save_hole=f.save_hole,
                       side_by_side=f.side_by_side, seed=f.seed)


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  if not argv:
    raise errors.UsageError("name at least one photo or folder of photos")
  plan = batch.plan_jobs(argv, f.out)
  batch.check_hole_option(f.hole, plan.jobs)
  batch.check_out_dir(f.out)
  done = batch.read_done(f.out) if f.skip_existing else {}
  todo = [job for job in plan.jobs if str(job.path.absolute()) not in done]
  for path in plan.system_files:
    print(f"skip    {path}: a system file, not a photo")
  restorer = restorer_lib.load_restorer(
      f.workdir, step=f.step, face_finder=f.face_finder, min_face_size=f.min_face_size,
      mask_check=f.mask_check, large_model=f.large_model, models_dir=f.models_dir)
  print(restorer.description)
  if len(todo) < len(plan.jobs):
    print(f"{len(plan.jobs) - len(todo)} photo(s) finished by an earlier run into {f.out} "
          "(--skip_existing): not done again")
  counts = dict.fromkeys(batch.KINDS, 0)
  skipped = 0
  opts = options(f)
  for job in todo:
    kind, lines = batch.run_job(job, restorer, opts)
    counts[kind] += 1
    batch.mark_done(f.out, job, kind)
    for stream, line in lines:
      print(line, file=sys.stderr if stream == "err" else sys.stdout)
      skipped += line.startswith("SKIPPED")
  earlier = len(plan.jobs) - len(todo)
  print(" + ".join(f"{n} {k}" for k, n in counts.items() if n or k != "wrong hole")
        + (f" + {earlier} done before" if earlier else "") + f" = {len(plan.jobs)} file(s), into "
        f"{f.out}" + (f"; {skipped} face(s) skipped" if skipped else "")
        + (f"; {len(plan.system_files)} system file(s) left out" if plan.system_files else ""))
  failed = counts["no face"] or counts["unreadable"] or counts["wrong hole"] or skipped
  return 1 if failed else 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
