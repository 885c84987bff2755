"""Grain pipeline: flips, epochs, host sharding, worker processes and iterator state, on mock
data made in memory (conftest.mock_source): no build, no face finding."""

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import mock_source
from maskinpaint_jax import checkpoint, masks
from maskinpaint_jax import input_pipeline as ip


@pytest.fixture(scope="module")
def sources():
  return [mock_source(None, "face_mask_32", "train")]  # 40 examples


def test_flip_is_identical_for_clean_masked_and_hole(sources):
  plain = ip.train_dataset(sources, global_batch=1, seed=3, random_flip=False,
                           shard=grain.sharding.ShardOptions(0, 1))
  flipped = ip.train_dataset(sources, global_batch=1, seed=3, random_flip=True,
                             shard=grain.sharding.ShardOptions(0, 1))
  n_flipped, n = 0, 200
  for i in range(n):
    a, b = plain[i], flipped[i]
    same = all(np.array_equal(a[k], b[k]) for k in a)
    mirrored = all(np.array_equal(a[k][:, :, ::-1], b[k]) for k in a)
    assert same or mirrored, i
    n_flipped += mirrored and not same
  # A fair coin: binomial mean 100, sd 7.1; +-5 sd fails a fair coin with probability < 1e-6
  # and excludes a coin of 0.3 or 0.7.
  assert abs(n_flipped - n / 2) <= 5 * np.sqrt(n / 4)
  ex = plain[0]
  assert ex["clean"].dtype == np.uint8 and ex["hole"].shape == (1, 32, 32, 1)
  assert set(np.unique(ex["hole"])) == {0, 1}


def test_model_inputs_are_the_stored_images_and_a_binary_hole(sources):
  ex = sources[0][0]
  got = ip.to_model_inputs(ex)
  np.testing.assert_array_equal(got["clean"], ex["image"])
  np.testing.assert_array_equal(got["masked"], ex["masked"])
  np.testing.assert_array_equal(got["hole"], ex["mask"] // 255)


def test_every_epoch_is_a_new_permutation(sources):
  n = len(sources[0])
  ds = ip.train_dataset(sources, global_batch=1, seed=0, random_flip=False,
                        shard=grain.sharding.ShardOptions(0, 1))
  key = lambda ex: ex["clean"].tobytes()
  epoch1 = [key(ds[i]) for i in range(n)]
  epoch2 = [key(ds[i]) for i in range(n, 2 * n)]
  stored = {np.asarray(ex["image"]).tobytes() for ex in sources[0]}
  assert len(set(epoch1)) == n and set(epoch1) == set(epoch2) == stored
  assert epoch1 != epoch2


def test_two_hosts_hold_the_halves_of_each_global_batch(sources):
  one = ip.train_dataset(sources, global_batch=8, seed=1,
                         shard=grain.sharding.ShardOptions(0, 1))
  hosts = [ip.train_dataset(sources, global_batch=8, seed=1,
                            shard=grain.sharding.ShardOptions(p, 2)) for p in range(2)]
  for k in range(7):  # crosses an epoch boundary (40 examples)
    joined = {f: np.concatenate([hosts[0][k][f], hosts[1][k][f]]) for f in one[k]}
    for f in one[k]:
      np.testing.assert_array_equal(joined[f], one[k][f])
  with pytest.raises(ValueError, match=r"not divisible by the 2 processes.*batch_size=10 \(or 8\)"):
    ip.train_dataset(sources, global_batch=9, seed=1, shard=grain.sharding.ShardOptions(0, 2))


def _next(it, n):
  return [next(it) for _ in range(n)]


def _assert_batches_equal(got, want):
  assert len(got) == len(want)
  for g, w in zip(got, want):
    assert g.keys() == w.keys()
    for f in w:
      np.testing.assert_array_equal(g[f], w[f], err_msg=f)


@pytest.mark.parametrize("fresh_masks", [False, True])
def test_iterator_state_restores_the_exact_position(mock_data, fresh_masks):
  """Also with masks drawn anew each epoch: the same position gives the same masks."""
  config = mock_data
  config.data.fresh_masks = fresh_masks
  it, info = ip.make_train_iterator(config, shard=grain.sharding.ShardOptions(0, 1))
  assert info.num_examples == 80 and info.names == ("face_mask_32", "rect_32")
  _next(it, 9)  # the next two batches of 8 cross into the second epoch
  state = it.get_state()
  expected = _next(it, 2)
  it2, _ = ip.make_train_iterator(config, shard=grain.sharding.ShardOptions(0, 1))
  it2.set_state(state)
  _assert_batches_equal(_next(it2, 2), expected)


def test_worker_processes_keep_the_order_and_resume_from_a_checkpoint(mock_data, tmp_path):
  """The default config's setting: batches made by worker processes. They come in the global
  order (the MapDataset's batches k = 0, 1, ...), and the iterator state that the trainer saves
  with every checkpoint brings a new set of workers back to the same position."""
  config = mock_data
  config.data.num_workers = 2
  shard = grain.sharding.ShardOptions(0, 1)
  sources = ip.open_sources("mock", config.data.train_datasets, 32, "train")
  reference = ip.train_dataset(sources, global_batch=8, seed=config.seed, shard=shard)
  it, _ = ip.make_train_iterator(config, shard=shard)
  _assert_batches_equal(_next(it, 3), [reference[k] for k in range(3)])
  with ocp.CheckpointManager(checkpoint.checkpoint_dir(tmp_path)) as mngr:
    items = {name: {"x": np.zeros(1)} for name in checkpoint.TRAIN_ITEMS}
    checkpoint.save(mngr, 3, items, it, config)
    mngr.wait_until_finished()
    del it
    resumed, _ = ip.make_train_iterator(config, shard=shard)
    checkpoint.load_train_items(mngr, 3, items, resumed)
  _assert_batches_equal(_next(resumed, 3), [reference[k] for k in range(3, 6)])


def test_mixture_of_datasets_and_fixed_batch(mock_data):
  mixed = ip.open_sources("mock", "face_mask,rect", 32, "train")
  assert [len(s) for s in mixed] == [40, 40]
  ds = ip.train_dataset(mixed, global_batch=4, seed=0, shard=grain.sharding.ShardOptions(0, 1))
  assert ds[0]["clean"].shape == (4, 32, 32, 3)
  # The first examples in stored order, shared between the datasets: 5 = 2 face_mask + 3 rect.
  batch = ip.fixed_batch("mock", "face_mask,rect", 32, "test", 5)
  assert list(batch["id"]) == ["face_mask_32/test/0", "face_mask_32/test/1", "rect_32/test/0",
                               "rect_32/test/1", "rect_32/test/2"]
  test_rect = mock_source(None, "rect_32", "test")
  np.testing.assert_array_equal(batch["masked"][2:], np.stack([e["masked"] for e in test_rect[:3]]))
  assert list(batch["mask_type"][2:]) == [3, 3, 3]  # "rect"


def _fresh(sources, seed=3):
  return ip.train_dataset(sources, global_batch=1, seed=seed, fresh_masks=True,
                          shard=grain.sharding.ShardOptions(0, 1))


def _unflipped(ex, stored_clean):
  """The element (batch of 1) as drawn before the flip: mirrored back if it was flipped."""
  if np.array_equal(ex["clean"][0], stored_clean):
    return {k: v[0] for k, v in ex.items()}
  return {k: v[0, :, ::-1] for k, v in ex.items()}


def _stored_example(stored, ex):
  """The stored example whose clean image the drawn element shows (flipped or not)."""
  clean = ex["clean"][0]
  return stored.get(clean.tobytes()) or stored[np.ascontiguousarray(clean[:, ::-1]).tobytes()]


def test_fresh_masks_are_algorithm_1_masks_on_the_stored_crop(sources):
  """Each face-mask example gets a mask drawn on its own clean crop: the photo is unchanged
  outside the new hole, the hole is a face mask's shape (not the stored box) over the lower
  face (below the eyes of the stored landmarks), and every style is drawn."""
  stored = {np.asarray(ex["image"]).tobytes(): ex for ex in sources[0]}
  ds = _fresh(sources)
  for i in range(len(sources[0])):
    src = _stored_example(stored, ds[i])
    got = _unflipped(ds[i], src["image"])
    hole = got["hole"][..., 0].astype(bool)
    np.testing.assert_array_equal(got["masked"][~hole], src["image"][~hole])
    assert not np.array_equal(hole, src["mask"][..., 0] > 127)
    eyes_y = src["landmarks"][36:48, 1].max()
    assert np.nonzero(hole.any(axis=1))[0].min() > eyes_y
    assert hole.mean() > 0.1
  drawn = {ip.redraw_face_mask(ex, np.random.default_rng(i))["mask_type"]
           for i, ex in enumerate(sources[0])}
  assert drawn == {masks.MASK_TYPES.index(s) for s in masks.FACE_MASK_STYLES}


def test_fresh_masks_are_fixed_per_position_and_new_every_epoch(sources):
  n = len(sources[0])
  a, b = _fresh(sources), _fresh(sources)
  for i in (0, 7, n + 3):  # the same seed and position: the same mask, bit for bit
    _assert_batches_equal([a[i]], [b[i]])
  drawn = {}  # per photo, the masked image (either way round) of each epoch
  for epoch in range(2):
    for i in range(epoch * n, (epoch + 1) * n):
      ex = a[i]
      key = min(ex["clean"][0].tobytes(), ex["clean"][0][:, ::-1].tobytes())
      masked = ex["masked"][0]
      drawn.setdefault(key, []).append({masked.tobytes(), masked[:, ::-1].tobytes()})
  assert len(drawn) == n
  repeated = sum(bool(m1 & m2) for m1, m2 in drawn.values())
  assert repeated == 0, f"{repeated} of {n} photos got the same masked image in both epochs"
  other_seed = _fresh(sources, seed=4)
  assert any(not np.array_equal(a[i]["masked"], other_seed[i]["masked"]) for i in range(n))


def test_rectangles_keep_their_stored_hole_with_fresh_masks():
  rect = [mock_source(None, "rect_32", "train")]
  ds = _fresh(rect)
  stored = {np.asarray(ex["image"]).tobytes(): ex for ex in rect[0]}
  for i in range(len(rect[0])):
    src = _stored_example(stored, ds[i])
    got = _unflipped(ds[i], src["image"])
    np.testing.assert_array_equal(got["masked"], src["masked"])
    np.testing.assert_array_equal(got["hole"][..., 0], src["mask"][..., 0] // 255)


def test_fresh_masks_need_the_flip_generator(sources):
  with pytest.raises(ValueError, match="random_flip"):
    ip.train_dataset(sources, global_batch=1, seed=0, random_flip=False, fresh_masks=True,
                     shard=grain.sharding.ShardOptions(0, 1))
