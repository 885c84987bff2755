"""bench_photos' counts, on made-up decisions whose answers are known."""

import numpy as np

from maskinpaint_jax.faces import restore
from maskinpaint_jax.tools import bench_photos


class _BrightIsAFace:
  """A stand-in detector: 'finds a face' in an image brighter than mid-grey."""

  def detect(self, image):
    return [(0, 1, 1, 0)] if image.mean() > 127 else []


def _result(restored_value, status, hole=None):
  img = np.full((4, 4, 3), restored_value, np.uint8)
  face = restore.FaceReport(1, (0, 4, 4, 0), 4, status, "")
  hole = np.zeros((4, 4), np.uint8) if hole is None else hole
  return restore.Restoration(img, img, hole, [face])


def test_seam_steps_see_a_pasted_patch_and_not_the_photo_around_it():
  """A 200 px photo with a smooth ramp and a face whose hole was filled 50 levels too bright:
  the step at the hole's edge is about 50, the photo's own step a few bands out about the
  ramp's."""
  y = np.arange(200, dtype=np.float64)[:, None, None]
  photo = np.broadcast_to(60 + 0.2 * y, (200, 200, 3)).copy()
  hole = np.zeros((200, 200), np.uint8)
  hole[90:160, 50:150] = 1
  photo[hole > 0] += 50
  result = restore.Restoration(photo.astype(np.uint8), photo.astype(np.uint8), hole,
                               [restore.FaceReport(1, (40, 170, 190, 30), 150, restore.RESTORED)])
  edge, own = bench_photos.seam_steps(result)
  assert 48 < edge < 53      # the 50-level jump, plus the ramp across the 3 px bands
  assert own < 3             # 0.2 levels a pixel over a few pixels


def test_hog_counts_only_restored_photos_before_and_after():
  dark, bright = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
  photos = [("a", dark), ("b", dark), ("c", bright), ("d", bright), ("e", dark)]
  results = [_result(255, restore.RESTORED),   # dark -> bright: seen after only
             _result(0, restore.RESTORED),     # dark -> dark: never seen
             _result(255, restore.RESTORED),   # bright -> bright: seen before and after
             _result(255, restore.NO_MASK),    # not restored: not counted
             None]                             # no face: not counted
  got = bench_photos.hog_counts(photos, results, _BrightIsAFace())
  assert {k: got[k] for k in ("restored", "before", "after")} == dict(restored=3, before=1,
                                                                       after=2)
  reference = bench_photos.hog_reference(photos, results, _BrightIsAFace())
  assert reference == dict(restored=1, before=None, after=1)  # d: left alone, bright
  table = bench_photos.hog_markdown([("x", got), ("ref", reference)], "m")
  assert "| x | 3 | 1 | 2 | 66.7 % |" in table
  assert "| ref | 1 |  | 1 | 100.0 % |  |  |" in table


def test_a_turned_photo_repainted_the_wrong_way_up_is_counted_apart():
  right, wrong, unmasked = (_result(0, restore.RESTORED), _result(0, restore.RESTORED),
                            _result(0, restore.NO_MASK))
  right.rotation, wrong.rotation = 180, 0   # the photo was turned by 180: 180 sets it upright
  got = bench_photos.tally([right, wrong, unmasked, None], want_turn=180)
  assert got == dict(photos=4, restored=1, wrong_way=1, no_mask=1, no_face=1, skipped_faces=0)
  table = bench_photos.markdown([("turned", "held-out", "restored upright", got)], 1.0)
  assert "| turned | held-out | restored upright | 4 | 1 | 1 | 1 | 1 | 0 | 25.0 % |" in table


def test_the_totals_sum_the_held_out_rows_of_each_kind_only():
  t = lambda restored, photos: dict(photos=photos, restored=restored, wrong_way=0, no_mask=0,
                                    no_face=0, skipped_faces=0)
  rows = [("realmask half A", "in-sample", "restored (kept)", t(9, 10)),
          ("realmask half B", "held-out", "restored (kept)", t(8, 10)),
          ("realmask_more test", "held-out", "restored (kept)", t(19, 20)),
          ("realmask half B turned 90 degrees", "held-out", "restored upright", t(1, 10)),
          ("nomask half B", "held-out", "left alone", t(1, 50)),
          ("photos/", "held-out", "left alone", t(0, 6)),
          ("not human: animal train", "in-sample", "left alone", t(5, 40)),
          ("not human: animal test", "held-out", "left alone", t(1, 40)),
          ("not human: statue test", "held-out", "left alone", t(0, 10))]
  totals = {label: (part, t) for label, part, _, t in bench_photos.total_rows(rows)}
  assert totals["**all masked photos**"] == ("held-out", t(27, 30))
  assert totals["**all unmasked photos of people**"] == ("held-out", t(1, 56))
  assert totals["**all non-human photos**"] == ("held-out", t(1, 50))
