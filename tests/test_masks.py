"""Algorithm 1 geometry against faces of known geometry, and the hole-map contract."""

import numpy as np
import pytest

from maskinpaint_jax import images, masks
from maskinpaint_jax.faces import align, finders

# A canonical upright face (x right, y down), only the points Algorithm 1 reads are meaningful.
P29, P8, P33, P1, P16 = (0.0, -10.0), (0.0, 50.0), (0.0, 10.0), (-40.0, 0.0), (40.0, 0.0)


def synthetic_face(scale=1.0, angle_deg=0.0, shift=(128.0, 128.0), p1=P1, p16=P16):
  canon = np.zeros((68, 2))
  for i, p in ((29, P29), (8, P8), (33, P33), (1, p1), (16, p16)):
    canon[i] = p
  a = np.deg2rad(angle_deg)
  rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
  return canon @ rot.T * scale + np.array(shift)


@pytest.mark.parametrize("scale,angle,shift", [
    (1.0, 0.0, (128, 128)), (1.7, 0.0, (100, 140)), (0.6, 20.0, (128, 128)),
    (1.2, -35.0, (140, 110)), (1.0, 90.0, (128, 128))])
def test_geometry_follows_scale_shift_and_rotation(scale, angle, shift):
  g = masks.mask_geometry(synthetic_face(scale, angle, shift))
  np.testing.assert_allclose(g.height, 1.2 * 60 * scale, rtol=1e-9)
  np.testing.assert_allclose(g.width_right, 1.2 * np.hypot(40, 10) * scale, rtol=1e-9)
  np.testing.assert_allclose(g.width_left, 1.2 * np.hypot(40, 10) * scale, rtol=1e-9)
  a = np.deg2rad(angle)
  expected_anchor = np.array(shift) + scale * np.array(
      [-np.sin(a) * 20.0, np.cos(a) * 20.0])  # canonical anchor (0, 20), rotated
  np.testing.assert_allclose(g.anchor, expected_anchor, atol=1e-9)
  np.testing.assert_allclose(g.angle, a, atol=1e-9)


def test_asymmetric_face_gets_asymmetric_halves():
  g = masks.mask_geometry(synthetic_face(p1=(-60.0, 0.0), p16=(20.0, 0.0)))
  np.testing.assert_allclose(g.width_right, 1.2 * np.hypot(60, 10))
  np.testing.assert_allclose(g.width_left, 1.2 * np.hypot(20, 10))


def _placed_hole(landmarks, shape=(256, 256)):
  """Places a fully opaque rectangular template: the hole is then the mask's exact footprint."""
  g = masks.mask_geometry(landmarks)
  template = np.ones((masks.TEMPLATE_HEIGHT, masks.TEMPLATE_WIDTH, 4), np.float32)
  fitted, w_r, h = masks.fit_template(template, g)
  rgba = masks.place(fitted, w_r, h, g, shape)
  return g, rgba[..., 3] >= 0.5


@pytest.mark.parametrize("scale,angle,p1,p16", [
    (1.0, 0.0, P1, P16), (1.3, 25.0, P1, P16), (0.9, -40.0, P1, P16),
    (1.0, 15.0, (-55.0, 0.0), (25.0, 0.0))])
def test_placed_mask_has_the_right_size_position_and_angle(scale, angle, p1, p16):
  g, hole = _placed_hole(synthetic_face(scale, angle, (128, 128), p1, p16))
  ys, xs = np.nonzero(hole)
  pts = np.stack([xs, ys], 1).astype(np.float64) - g.anchor
  across, down = pts @ g.right_axis, pts @ g.down_axis
  # Extents along the mask's own axes: [-W_R, W_L] across, [-H/2, H/2] down (pixel-quantised).
  assert abs(across.min() + g.width_right) < 1.5 and abs(across.max() - g.width_left) < 1.5
  assert abs(down.min() + g.height / 2) < 1.5 and abs(down.max() - g.height / 2) < 1.5
  # Area of the rectangle and its centroid: the seam passes through the anchor.
  np.testing.assert_allclose(hole.sum(), g.height * (g.width_right + g.width_left), rtol=0.04)
  centroid = np.array([xs.mean(), ys.mean()])
  expected = g.anchor + g.right_axis * (g.width_left - g.width_right) / 2
  np.testing.assert_allclose(centroid, expected, atol=0.75)
  # Orientation from second moments (the long side is the mask's width).
  cov = np.cov(np.stack([xs, ys]))
  principal = np.linalg.eigh(cov)[1][:, -1]
  measured = np.degrees(np.arctan2(principal[1], principal[0])) % 180
  assert min(abs(measured - angle % 180), 180 - abs(measured - angle % 180)) < 1.0


@pytest.mark.parametrize("style", masks.FACE_MASK_STYLES)
def test_hole_map_is_exactly_the_changed_pixels(style, celeba_paths):
  finder = finders.HogFaceFinder()
  img = images.load_rgb(celeba_paths[3])
  face = finder.find_one(img)
  m = align.crop_matrix(face.landmarks, 128, img.shape)
  clean = align.warp_crop(img, m, 128)
  lm = align.transform_points(m, face.landmarks)
  masked, hole, got_style = masks.apply_face_mask(clean, lm, masks.example_rng(0, "x"), style)
  assert got_style == style and hole.dtype == np.uint8 and set(np.unique(hole)) <= {0, 1}
  outside = hole == 0
  np.testing.assert_array_equal(masked[outside], clean[outside])
  changed = np.any(masked != clean, axis=-1)
  assert changed[hole == 1].mean() > 0.9
  # The mask covers nose bottom, mouth and chin and leaves the eyes free.
  inside = lambda i: hole[int(round(lm[i, 1])), int(round(lm[i, 0]))] == 1
  assert inside(33) and all(inside(i) for i in range(48, 68))
  assert inside(8) or inside(7) or inside(9)
  assert not any(inside(i) for i in range(36, 48))
  assert 0.08 < hole.mean() < 0.45


def test_masks_are_reproducible_from_seed_and_id(celeba_paths):
  clean = np.full((128, 128, 3), 128, np.uint8)
  lm = synthetic_face(1.0, 10.0, (64, 60))
  run = lambda seed, i: masks.apply_face_mask(clean, lm, masks.example_rng(seed, i))
  a, b = run(0, "182638"), run(0, "182638")
  np.testing.assert_array_equal(a[0], b[0])
  assert a[2] == b[2]
  others = [run(s, i) for s in (0, 1) for i in ("1", "2", "3", "4")]
  assert any(not np.array_equal(a[0], o[0]) for o in others)
  # The style is uniform over the three: 300 ids give each 100 +- 8 (binomial, p = 1/3); five
  # standard deviations either side fail a correct renderer with probability below 1e-6.
  styles = [masks.FACE_MASK_STYLES[int(masks.example_rng(0, str(i)).integers(3))]
            for i in range(300)]
  for style in masks.FACE_MASK_STYLES:
    assert abs(styles.count(style) - 100) <= 5 * np.sqrt(300 * (1 / 3) * (2 / 3)), style


@pytest.mark.parametrize("style", masks.FACE_MASK_STYLES)
def test_templates_are_valid_rgba(style):
  t = masks.draw_template(style, np.random.default_rng(3))
  assert t.shape == (masks.TEMPLATE_HEIGHT, masks.TEMPLATE_WIDTH, 4) and t.dtype == np.float32
  assert t.min() >= 0.0 and t.max() <= 1.0
  assert 0.55 < (t[..., 3] > 0.5).mean() < 0.97
  with pytest.raises(ValueError):
    masks.draw_template("balaclava", np.random.default_rng(0))


@pytest.mark.parametrize("h,w", [(128, 128), (64, 64), (65, 90)])
def test_rect_is_centred_half_width_half_height(h, w):
  clean = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
  masked, hole = masks.apply_rect(clean)
  ys, xs = np.nonzero(hole)
  assert hole.sum() == (h // 2) * (w // 2)
  assert abs((ys.min() + ys.max()) / 2 - (h - 1) / 2) <= 0.5
  assert abs((xs.min() + xs.max()) / 2 - (w - 1) / 2) <= 0.5
  np.testing.assert_array_equal(masked[hole == 0], clean[hole == 0])
  assert (masked[hole == 1] == 255).all()


def test_mask_colours_follow_the_measured_palette():
  weights, means, _ = masks.measured_palette()
  np.testing.assert_allclose(weights.sum(), 1.0)
  rng = np.random.default_rng(0)
  drawn = np.array([masks._real_color(rng) * 255 for _ in range(3000)])
  nearest = np.argmin(((drawn[:, None] - means[None]) ** 2).sum(-1), axis=1)
  freq = np.bincount(nearest, minlength=len(weights)) / len(drawn)
  # The groups overlap a little (they are k-means cells of real colours), hence the tolerance.
  assert np.abs(freq - weights).max() < 0.06, (freq, weights)
  # Real masks are mostly plain white, grey and black: at least half are near-neutral.
  assert (drawn.std(axis=1) < 20).mean() > 0.5


def _body(name):
  return masks.shape_alpha(name) > 0.5


def test_surgical_masks_have_ear_loops_outside_the_body():
  rng = np.random.default_rng(1)
  x0 = int(masks.SHAPES["surgical"].x0 * masks.TEMPLATE_WIDTH) - 2
  n = 200
  with_loops = [(masks.draw_template("surgical", rng)[:, :x0, 3] > 0.3).sum() for _ in range(n)]
  # 80 % have loops: binomial mean 160, sd 5.7; +-5 sd excludes 50 % and 100 %.
  assert abs(sum(k > 20 for k in with_loops) - 0.8 * n) <= 5 * np.sqrt(n * 0.8 * 0.2)


def test_n95_family_has_both_shapes_and_valves(monkeypatch):
  drawn = []  # every valve the renderer decides to draw
  valve = masks._valve  # pylint: disable=protected-access
  monkeypatch.setattr(masks, "_valve", lambda *a: drawn.append(1) or valve(*a))
  rng = np.random.default_rng(2)
  outlines, valves = set(), 0
  n = 200
  for _ in range(n):
    t = masks.draw_template("n95", rng)
    alpha = t[..., 3] > 0.5
    outlines.add(min(("n95_cup", "kn95"), key=lambda n: (alpha ^ _body(n)).sum()))
    # A valve is a round patch near (0.3 or 0.7, 0.6) darker than the mask around it.
    y, xs = int(0.6 * masks.TEMPLATE_HEIGHT), (int(0.3 * masks.TEMPLATE_WIDTH),
                                               int(0.7 * masks.TEMPLATE_WIDTH))
    around = t[y, int(0.5 * masks.TEMPLATE_WIDTH), :3].mean()
    valves += any(abs(t[y, x, :3].mean() - around) > 0.15 for x in xs)
  assert outlines == {"n95_cup", "kn95"}
  # 35 % get a valve: binomial mean 70, sd 6.7; +-5 sd excludes 15 % and 60 %. The pixel test
  # above also fires on KN95's seam, so it only shows that drawn valves are visible.
  assert abs(len(drawn) - 0.35 * n) <= 5 * np.sqrt(n * 0.35 * 0.65)
  assert valves >= len(drawn) * 0.9


def test_cloth_masks_include_plain_and_printed():
  rng = np.random.default_rng(3)
  colour_counts = []
  for _ in range(30):
    t = masks.draw_template("cloth", rng)
    body = t[..., 3] > 0.9
    q = np.round(t[body, :3] * 8).astype(int)
    colour_counts.append(len(np.unique(q[:, 0] * 100 + q[:, 1] * 10 + q[:, 2])))
  assert min(colour_counts) <= 6 and max(colour_counts) > 10
