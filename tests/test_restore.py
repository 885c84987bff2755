"""One photo's path (faces/restore.py) and inpaint's bookkeeping, on stand-ins for the models
(fast tier): faces without a mask left untouched, turned photos set upright, output names that
never collide, every file accounted for, the user's hole in every form, no seam on dark photos.
The real models on real photos: test_inpaint.py (slow tier)."""

import dataclasses

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from maskinpaint_jax import batch, cli, errors, images, restorer
from maskinpaint_jax.faces import align, finders, paste, restore
from maskinpaint_jax.tools import inpaint

from stand_ins import (LANDMARKS, OBAMA, FakeCheck, FixedFinder, constant_filler, face_from,
                       marked)


def test_a_face_without_a_mask_is_left_untouched():
  photo = marked(images.load_rgb(OBAMA))
  result = restore.restore_photo(photo, FixedFinder(), constant_filler(0), 64,
                                 checker=FakeCheck(mask=False))
  assert not result.changed and np.array_equal(result.restored, photo)
  assert [f.status for f in result.faces] == [restore.NO_MASK]
  assert "no mask found" in result.faces[0].describe(1)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turned_photo_is_restored_upright_on_the_mouth(degrees):
  photo = marked(images.load_rgb(OBAMA))
  restore_ = lambda image: restore.restore_photo(
      image, FixedFinder(), constant_filler(0), 64, add_mask="surgical",
      rng=np.random.default_rng(0), checker=FakeCheck())
  upright = restore_(photo)
  turned = np.ascontiguousarray(np.rot90(photo, degrees // 90))
  result = restore_(turned)
  assert result.rotation == (360 - degrees) % 360
  # The hole, turned back, is where it is on the upright photo: over the mouth, not the eyes.
  back = np.rot90(result.hole, -degrees // 90)
  assert np.array_equal(back, upright.hole) and upright.hole.any()
  mouth = LANDMARKS[48:68].mean(0).round().astype(int)
  eyes = [LANDMARKS[a:a + 6].mean(0).round().astype(int) for a in (36, 42)]
  assert upright.hole[mouth[1], mouth[0]] and not any(upright.hole[y, x] for x, y in eyes)
  # Face boxes are reported in the turned photo's own frame.
  top, right, bottom, left = result.faces[0].box
  assert 0 <= left < right <= turned.shape[1] and 0 <= top < bottom <= turned.shape[0]


def test_a_photo_that_cannot_be_set_upright_is_not_painted():
  photo = images.load_rgb(OBAMA)  # no red corner: the stand-in finder never sees it upright
  with pytest.raises(finders.NoFaceError, match="also turned"):
    restore.restore_photo(np.rot90(photo).copy(), FixedFinder(), constant_filler(0), 64,
                          checker=FakeCheck())


def test_colour_matching_recovers_a_gain_and_offset_on_the_ring():
  rng = np.random.default_rng(0)
  crop = rng.integers(20, 90, (64, 64, 3)).astype(np.uint8)
  raw = np.clip(np.round((crop.astype(np.float64) - 10) / 0.8), 0, 255).astype(np.uint8)
  hole = np.zeros((64, 64), np.uint8)
  hole[30:56, 12:52] = 1
  matched = paste.match_colours(raw, crop, hole)
  assert np.abs(matched.astype(int) - crop.astype(int)).mean() < 1.5


def test_edge_step_of_a_known_step_and_of_no_step():
  hole = np.zeros((80, 100), np.uint8)
  hole[20:60, 30:80] = 1
  flat = np.full((80, 100, 3), 100, np.uint8)
  stepped = flat.copy()
  stepped[hole > 0] = (140, 100, 90)  # the largest channel's jump: 40
  assert paste.edge_step(flat, hole, 3) == 0.0
  assert paste.edge_step(stepped, hole, 3) == pytest.approx(40.0)
  everywhere = np.ones_like(hole)  # no edge inside the photo
  assert np.isnan(paste.edge_step(stepped, everywhere, 3))


def ramp_crop(size=64):
  """A smooth photo-like crop: brightness ramps down the crop, colour across it."""
  y, x = np.mgrid[:size, :size].astype(np.float64)
  return np.clip(np.stack([60 + 2 * y, 50 + 1.5 * y + x, 40 + y], -1), 0, 255).astype(np.uint8)


def test_soften_rim_removes_a_band_drawn_just_inside_the_hole():
  """A generator that continues the photo but draws a light band 2 px deep along the hole's
  edge (as the shipped one does on some real photos): the softened rim takes OpenCV's Telea
  fill at the edge, the generator's own pixels from RIM + 1 px in, and no seam is left."""
  crop = ramp_crop()
  hole = np.zeros((64, 64), np.uint8)
  hole[28:58, 12:52] = 1
  depth = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
  raw = crop.astype(np.int32)
  raw[(hole > 0) & (depth <= 2)] += 60
  raw = np.clip(raw, 0, 255).astype(np.uint8)
  soft = paste.soften_rim(raw, crop, hole, rim=3.0)
  natural = paste.edge_step(crop, hole, 2)
  assert paste.edge_step(np.where(hole[..., None] > 0, raw, crop), hole, 2) > natural + 25
  assert paste.edge_step(np.where(hole[..., None] > 0, soft, crop), hole, 2) < natural + 8
  deep = depth >= 4
  np.testing.assert_array_equal(soft[deep], raw[deep])
  np.testing.assert_array_equal(soft[hole == 0], raw[hole == 0])
  rim = (hole > 0) & (depth <= 1)
  telea = cv2.inpaint(crop, hole, 3, cv2.INPAINT_TELEA)
  np.testing.assert_array_equal(soft[rim], telea[rim])
  np.testing.assert_array_equal(paste.soften_rim(raw, crop, hole, rim=0), raw)


@pytest.mark.parametrize("brightness, fill", [(0.15, 230), (1.0, 0), (1.6, 0)])
def test_no_seam_on_dark_and_bright_photos(brightness, fill):
  """A generator that paints a flat colour far from the photo's (as an untrained one does on a
  15 % dark photo): the pasted face must still meet the photo without a step at the edge."""
  photo = marked(np.clip(images.load_rgb(OBAMA) * brightness, 0, 255).astype(np.uint8))
  hole = np.zeros(photo.shape[:2], np.uint8)
  cx, cy = LANDMARKS[48:68].mean(0).astype(int)
  hole[cy - 60:cy + 60, cx - 90:cx + 90] = 1
  result = restore.restore_photo(photo, FixedFinder(), constant_filler(fill), 64, hole=hole,
                                 checker=FakeCheck())
  unmatched = np.abs(float(fill) - photo[hole > 0].mean())
  assert paste.edge_step(result.restored, hole, 3) < max(12.0, 0.15 * unmatched)


# --- inpaint's bookkeeping ---------------------------------------------------------------------

def test_outputs_keep_what_tells_inputs_apart(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "b").mkdir()
  for rel in ("p.jpg", "p.png", "a/x.jpg", "b/x.jpg", "q.jpg"):
    (tmp_path / rel).write_bytes(b"x")
  jobs = batch.plan_jobs([str(tmp_path), str(tmp_path / "q.jpg")]).jobs  # q given twice
  stems = sorted(str(j.stem) for j in jobs)
  assert stems == ["a/x", "b/x", "p_jpg", "p_png", "q"]


def test_two_inputs_with_one_output_name_are_an_error_naming_both(tmp_path):
  for d in ("a", "b"):
    (tmp_path / d).mkdir()
    (tmp_path / d / "x.jpg").write_bytes(b"x")
  with pytest.raises(errors.UsageError, match=r"a/x.jpg and .*b/x.jpg would both be written"):
    batch.plan_jobs([str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.jpg")])


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path):
  (tmp_path / "out").write_text("")
  with pytest.raises(errors.UsageError, match="cannot create the output folder"):
    batch.check_out_dir(str(tmp_path / "out"))


@pytest.fixture
def stand_in_tools(monkeypatch):
  tools = restorer.Restorer(64, constant_filler(128), FixedFinder(), FakeCheck(), "stand-ins")
  monkeypatch.setattr(restorer, "load_restorer", lambda *a, **k: tools)
  return tools


def test_every_file_is_accounted_for_whatever_its_extension(tmp_path, stand_in_tools, capsys):
  src = tmp_path / "in"
  src.mkdir()
  photo = Image.fromarray(marked(images.load_rgb(OBAMA)))
  photo.save(src / "a.jfif", format="JPEG")
  photo.save(src / "b.webp")
  photo.save(src / "c.tif")
  photo.save(src / "d.bmp")
  frames = [photo.convert("P"), photo.convert("P").transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
  frames[0].save(src / "e.gif", save_all=True, append_images=frames[1:])
  (src / "f.txt").write_text("not a photo")
  (src / "g.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
  Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(src / "h.png")  # no face
  code = cli.call(inpaint, [str(src), "-o", str(tmp_path / "out")])
  log = capsys.readouterr()
  assert code == 1
  assert "5 restored + 0 no mask + 1 no face + 2 unreadable = 8 file(s)" in log.out
  assert "e.gif: 2 frames: the first one restored" in log.out
  assert "f.txt: unreadable: not an image" in log.err
  assert "g.heic: unreadable: " in log.err and "HEIC" in log.err
  for stem in "abcde":
    assert (tmp_path / "out" / f"{stem}_restored.png").exists()


def test_a_photo_without_a_mask_is_reported_and_not_a_failure(tmp_path, stand_in_tools,
                                                              monkeypatch, capsys):
  tools = dataclasses.replace(stand_in_tools, checker=FakeCheck(mask=False))
  monkeypatch.setattr(restorer, "load_restorer", lambda *a, **k: tools)
  Image.fromarray(marked(images.load_rgb(OBAMA))).save(tmp_path / "plain.png")
  code = cli.call(inpaint, [str(tmp_path / "plain.png"), "-o", str(tmp_path / "out")])
  log = capsys.readouterr()
  assert code == 0
  assert "no mask found on its 1 face(s): left as it is" in log.out
  assert "0 restored + 1 no mask + 0 no face + 0 unreadable = 1 file(s)" in log.out
  assert not (tmp_path / "out" / "plain_restored.png").exists()


def hole_image(mode: str, hole: np.ndarray) -> Image.Image:
  white = hole.astype(bool)
  if mode == "1":
    return Image.fromarray(white)
  if mode == "I;16":
    return Image.fromarray((white * 65535).astype(np.uint16))
  if mode == "F":
    return Image.fromarray(white.astype(np.float32))
  if mode == "RGB":
    return Image.fromarray(np.repeat((white * 255).astype(np.uint8)[..., None], 3, -1))
  if mode == "alpha":  # black everywhere, the hole only in the alpha channel
    rgba = np.zeros(hole.shape + (4,), np.uint8)
    rgba[..., 3] = white * 255
    return Image.fromarray(rgba, "RGBA")
  return Image.fromarray((white * 200 + 20).astype(np.uint8))  # 8-bit gray, 220 vs 20


@pytest.mark.parametrize("mode, suffix", [("L", ".png"), ("1", ".png"), ("I;16", ".png"),
                                          ("F", ".tif"), ("RGB", ".jpg"), ("alpha", ".png")])
def test_the_users_hole_in_every_form(tmp_path, mode, suffix):
  hole = np.zeros((50, 80), np.uint8)
  hole[10:30, 20:60] = 1
  hole_image(mode, hole).save(tmp_path / f"h{suffix}")
  got = images.load_hole(tmp_path / f"h{suffix}", (50, 80))
  assert got.dtype == np.uint8 and set(np.unique(got)) <= {0, 1}
  assert (got != hole).mean() < 0.01  # JPEG may blur an edge pixel


def test_a_hole_of_another_size_is_an_error_naming_both_sizes(tmp_path):
  Image.fromarray(np.zeros((40, 60), np.uint8)).save(tmp_path / "h.png")
  with pytest.raises(images.HoleSizeError, match="hole h.png is 60x40 px, the photo 80x50 px"):
    images.load_hole(tmp_path / "h.png", (50, 80))


def test_a_hole_map_of_the_wrong_size_is_reported_as_such_not_as_an_unreadable_photo(
    tmp_path, stand_in_tools, capsys):
  Image.fromarray(marked(images.load_rgb(OBAMA))).save(tmp_path / "p.png")
  Image.fromarray(np.zeros((40, 60), np.uint8)).save(tmp_path / "h.png")
  code = cli.call(inpaint, [str(tmp_path / "p.png"), "-o", str(tmp_path / "o"), "--hole",
                            str(tmp_path / "h.png")])
  log = capsys.readouterr()
  assert code == 1
  assert "p.png: hole h.png is 60x40 px, the photo 910x1137 px" in log.err
  assert "0 unreadable + 1 wrong hole = 1 file(s)" in log.out


def test_the_part_of_a_hole_outside_every_face_is_reported(tmp_path, stand_in_tools, capsys):
  photo = marked(images.load_rgb(OBAMA))
  Image.fromarray(photo).save(tmp_path / "p.png")
  hole = np.zeros(photo.shape[:2], np.uint8)
  cx, cy = LANDMARKS[48:68].mean(0).astype(int)
  hole[cy - 40:cy + 40, cx - 60:cx + 60] = 255     # on the mouth
  hole[1080:1130, 10:60] = 255                      # 2,500 px in a corner, on no face
  Image.fromarray(hole).save(tmp_path / "h.png")
  code = cli.call(inpaint, [str(tmp_path / "p.png"), "-o", str(tmp_path / "o"), "--hole",
                            str(tmp_path / "h.png")])
  log = capsys.readouterr()
  assert code == 0
  assert "2500 px of the given hole lie outside every restored face" in log.out


def test_save_hole_output_given_back_restores_the_same_hole(tmp_path, stand_in_tools, capsys):
  Image.fromarray(marked(images.load_rgb(OBAMA))).save(tmp_path / "p.png")
  out1, out2 = tmp_path / "o1", tmp_path / "o2"
  assert cli.call(inpaint, [str(tmp_path / "p.png"), "-o", str(out1), "--add_mask", "cloth",
                            "--save_hole"]) == 0
  saved = Image.open(out1 / "p_hole.png")
  assert saved.mode == "L" and saved.size == (910, 1137)
  assert set(np.unique(np.asarray(saved))) == {0, 255}
  # Given back (the folder, found by the --save_hole name): that hole, exactly, is restored.
  assert cli.call(inpaint, [str(tmp_path / "p.png"), "-o", str(out2), "--hole", str(out1),
                            "--save_hole"]) == 0
  assert np.array_equal(np.asarray(Image.open(out2 / "p_hole.png")), np.asarray(saved))
  capsys.readouterr()


def test_a_hole_over_half_the_photo_is_a_warning(tmp_path, stand_in_tools, capsys):
  Image.fromarray(marked(images.load_rgb(OBAMA))).save(tmp_path / "p.png")
  inverted = np.ones((1137, 910), np.uint8) * 255
  inverted[500:700, 300:600] = 0
  Image.fromarray(inverted).save(tmp_path / "hole.png")
  cli.call(inpaint, [str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--hole",
                     str(tmp_path / "hole.png")])
  assert "inverted? (white marks the hole)" in capsys.readouterr().out


def test_no_pixel_of_the_mask_reaches_the_output_of_the_default_model():
  """The shipped (non-blind) generator through the whole paste path: two photos that differ
  only inside the hole are restored to the same pixels, to the bit."""
  from maskinpaint_jax import checkpoint, inference
  config, params, _ = checkpoint.load_pretrained()
  filler = inference.make_filler(config.model, params, batch_size=1)
  photo = marked(images.load_rgb(OBAMA))
  hole = np.zeros(photo.shape[:2], np.uint8)
  cx, cy = LANDMARKS[48:68].mean(0).astype(int)
  hole[cy - 70:cy + 60, cx - 100:cx + 100] = 1
  rng = np.random.default_rng(0)
  for mask_colour in ((250, 250, 250), (20, 40, 200)):  # a white and a blue "mask"
    other = photo.copy()
    other[hole > 0] = mask_colour + rng.integers(-5, 6, (int(hole.sum()), 3))
    result = restore.restore_photo(other, FixedFinder(), filler, config.data.image_size,
                                   hole=hole, checker=FakeCheck())
    if mask_colour[0] == 250:
      first = result.restored
  np.testing.assert_array_equal(result.restored, first)
  assert not np.array_equal(result.restored[hole > 0], other[hole > 0])


def test_a_hole_flag_that_cannot_serve_is_refused_before_any_work(tmp_path, stand_in_tools):
  Image.fromarray(marked(images.load_rgb(OBAMA))).save(tmp_path / "p.png")
  Image.fromarray(marked(images.load_rgb(OBAMA))).save(tmp_path / "q.png")
  Image.fromarray(np.zeros((1137, 910), np.uint8)).save(tmp_path / "h.png")
  with pytest.raises(errors.UsageError, match="no such file or folder"):
    cli.call(inpaint, [str(tmp_path / "p.png"), "-o", str(tmp_path / "o"), "--hole",
                       str(tmp_path / "missing")])
  with pytest.raises(errors.UsageError, match="--hole is one file"):
    cli.call(inpaint, [str(tmp_path / "p.png"), str(tmp_path / "q.png"), "-o",
                       str(tmp_path / "o"), "--hole", str(tmp_path / "h.png")])
  assert not (tmp_path / "o").exists()


# --- which generator serves which face ---------------------------------------------------------

def test_pick_generator_takes_the_largest_side_that_the_crop_can_show():
  small, large = paste.Generator(None, 64), paste.Generator(None, 128)
  assert paste.pick_generator([small, large], 100) is small
  assert paste.pick_generator([large, small], 128) is large
  assert paste.pick_generator([small, large], 500) is large
  assert paste.pick_generator([large, small], 40) is small   # smaller than both: the smallest
  assert paste.pick_generator([small], 500) is small


def test_each_face_goes_through_the_generator_its_crop_size_picks():
  """Obama's face (a crop square of about 560 px) and the same photo shrunk 6x (about 93 px):
  the 128 px generator gets the first, the 64 px one the second, each a crop of its own side."""
  calls = []

  def recording(side):
    def fill(crops, holes):
      calls.append((side, crops.shape[1]))
      return constant_filler(120)(crops, holes)
    return paste.Generator(fill, side)

  generators = [recording(64), recording(128)]
  for scale in (1.0, 1 / 6):
    photo = images.load_rgb(OBAMA)
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    landmarks = LANDMARKS * scale
    hole = np.zeros(photo.shape[:2], np.uint8)
    cx, cy = landmarks[48:68].mean(0).astype(int)
    r = max(3, int(40 * scale))
    hole[cy - r:cy + r, cx - 2 * r:cx + 2 * r] = 1
    side = align.crop_square(landmarks, photo.shape)[2]
    out = paste.restore_faces(photo, [face_from(landmarks)], [hole], generators)
    assert (out[hole == 0] == photo[hole == 0]).mean() > 0.97  # only near the hole is touched
    expected = 128 if side >= 128 else 64
    assert calls[-1] == (expected, expected), (side, calls)
  assert [c[0] for c in calls] == [128, 64]


# --- the photo's own colours -------------------------------------------------------------------

def _sepia(grey: np.ndarray) -> np.ndarray:
  """A brown tint that is a function of brightness (as old prints are), JPEG-compressed."""
  g = grey.astype(np.float64)
  rgb = np.stack([g * 1.0 + 20, g * 0.85 + 10, g * 0.6], axis=-1).clip(0, 255).astype(np.uint8)
  ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
  return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def _colourful(size=64):
  rng = np.random.default_rng(3)
  return cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size),
                    interpolation=cv2.INTER_CUBIC)


def test_keep_tint_gives_a_sepia_photos_hole_the_photos_own_tint():
  rng = np.random.default_rng(0)
  grey = cv2.resize(rng.integers(0, 256, (8, 8), dtype=np.uint8), (64, 64),
                    interpolation=cv2.INTER_CUBIC)
  crop = _sepia(grey)
  hole = np.zeros((64, 64), np.uint8)
  hole[32:56, 12:52] = 1
  out = paste.keep_tint(_colourful(), crop, hole)
  # The reference: the sepia transform itself applied to the output's own brightness.
  luma = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[..., 0]
  expected = cv2.cvtColor(_sepia(luma), cv2.COLOR_RGB2YCrCb)[..., 1:].astype(int)
  got = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(int)
  assert np.abs(got - expected)[hole > 0].mean() < 3


def test_keep_tint_leaves_a_colour_photo_as_the_generator_drew_it():
  crop, raw = _colourful(), _colourful()[::-1]
  hole = np.zeros((64, 64), np.uint8)
  hole[32:56, 12:52] = 1
  np.testing.assert_array_equal(paste.keep_tint(raw, crop, hole), raw)


def test_photo_detail_copies_the_band_above_the_holes_fine_detail_into_the_hole_only():
  rng = np.random.default_rng(0)
  grain = rng.normal(0, 6, (200, 200))                      # fine grain over a flat face
  photo = np.repeat(np.clip(120 + grain, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
  hole = np.zeros((200, 200), np.uint8)
  hole[100:180, 40:160] = 1
  scale = 4.0
  out = paste.photo_detail(photo, hole, scale, np.random.default_rng(1))
  assert not out[hole == 0].any()
  # The reference: the same high-pass (grey minus a Gaussian of sigma scale / 2) of the band
  # above the hole; tiles of it keep its RMS.
  grey = photo[..., 0].astype(np.float64)
  high = grey - cv2.GaussianBlur(grey, (0, 0), scale / 2)
  band = high[60:100, 40:160]
  assert np.sqrt(np.mean(out[hole > 0] ** 2)) == pytest.approx(np.sqrt(np.mean(band ** 2)),
                                                                rel=0.1)
  np.testing.assert_array_equal(out, paste.photo_detail(photo, hole, scale,
                                                        np.random.default_rng(1)))


@dataclasses.dataclass
class SureOf(FakeCheck):
  """A face check that is `p` sure that the faces it is shown are upright."""
  p: float = 1.0

  def upright_probability(self, photo, found):
    return self.p if found else 0.0


@pytest.mark.parametrize("p", [0.2, 0.4, 0.6])
def test_the_photo_as_it_is_needs_less_to_count_as_upright_than_a_turn(p):
  photo = marked(images.load_rgb(OBAMA))
  run = lambda image: restore.restore_photo(image, FixedFinder(), None, 64, add_mask="surgical",
                                            checker=SureOf(p=p))
  as_is = run(photo)
  assert as_is.rotation == 0
  assert as_is.changed == (p >= restore.MIN_UPRIGHT_AS_IS)
  turned = run(np.ascontiguousarray(np.rot90(photo)))    # found only once turned back
  assert turned.rotation == 270
  assert turned.changed == (p >= restore.MIN_UPRIGHT)
  if not turned.changed:
    assert "not upright" in turned.faces[0].reason


class AnyWayFinder:
  """Finds the face at LANDMARKS whichever way the photo is turned."""

  def find_any_size(self, photo):
    return [face_from(LANDMARKS)]

  find_unaided = find_any_size


@dataclasses.dataclass
class TwoWays(FakeCheck):
  """`as_is` sure that the faces of the photo with the red corner top left are upright,
  `turned` sure of any turn of it."""
  as_is: float = 0.6
  turned: float = 0.6

  def upright_probability(self, photo, found):
    corner = photo[:4, :4, 0].mean() > 200 and photo[:4, :4, 1].mean() < 50
    return self.as_is if corner else self.turned


@pytest.mark.parametrize("turned_p, rotation", [(0.75, 0), (0.85, 90)])
def test_a_turn_must_look_more_upright_than_the_photo_as_it_is_by_a_margin(turned_p, rotation):
  photo = marked(images.load_rgb(OBAMA))
  assert 0.6 + restore.TURN_MARGIN > 0.75 and 0.6 + restore.TURN_MARGIN < 0.85
  result = restore.restore_photo(photo, AnyWayFinder(), None, 64, add_mask="surgical",
                                 checker=TwoWays(as_is=0.6, turned=turned_p))
  assert result.rotation == rotation
