"""Grain pipeline: flips, epochs, host sharding and iterator state, on real (tiny) data."""

import grain
import numpy as np
import pytest

from maskinpaint_jax import input_pipeline as ip


@pytest.fixture(scope="module")
def sources(tiny_data_dir):
  return ip.open_sources(str(tiny_data_dir), "face_mask", 32, "train")


def _ids_in_order(ds, n):
  return [ds[i] for i in range(n)]


def test_flip_is_identical_for_clean_masked_and_hole(sources):
  plain = ip.train_dataset(sources, global_batch=1, seed=3, random_flip=False,
                           shard=grain.sharding.ShardOptions(0, 1))
  flipped = ip.train_dataset(sources, global_batch=1, seed=3, random_flip=True,
                             shard=grain.sharding.ShardOptions(0, 1))
  n_flipped = 0
  for i in range(24):
    a, b = plain[i], flipped[i]
    same = all(np.array_equal(a[k], b[k]) for k in a)
    mirrored = all(np.array_equal(a[k][:, :, ::-1], b[k]) for k in a)
    assert same or mirrored, i
    n_flipped += mirrored and not same
  assert 4 <= n_flipped <= 20
  ex = plain[0]
  assert ex["clean"].dtype == np.uint8 and ex["hole"].shape == (1, 32, 32, 1)
  assert set(np.unique(ex["hole"])) <= {0, 1}


def test_every_epoch_is_a_new_permutation(sources):
  n = len(sources[0])
  ds = ip.train_dataset(sources, global_batch=1, seed=0, random_flip=False,
                        shard=grain.sharding.ShardOptions(0, 1))
  key = lambda ex: ex["clean"].tobytes()
  epoch1 = [key(ds[i]) for i in range(n)]
  epoch2 = [key(ds[i]) for i in range(n, 2 * n)]
  assert len(set(epoch1)) == n and set(epoch1) == set(epoch2)
  assert epoch1 != epoch2


def test_two_hosts_hold_the_halves_of_each_global_batch(sources):
  one = ip.train_dataset(sources, global_batch=8, seed=1,
                         shard=grain.sharding.ShardOptions(0, 1))
  hosts = [ip.train_dataset(sources, global_batch=8, seed=1,
                            shard=grain.sharding.ShardOptions(p, 2)) for p in range(2)]
  for k in range(7):  # crosses an epoch boundary (37 examples)
    joined = {f: np.concatenate([hosts[0][k][f], hosts[1][k][f]]) for f in one[k]}
    for f in one[k]:
      np.testing.assert_array_equal(joined[f], one[k][f])
  with pytest.raises(ValueError, match="not divisible"):
    ip.train_dataset(sources, global_batch=9, seed=1, shard=grain.sharding.ShardOptions(0, 2))


def test_iterator_state_restores_the_exact_position(tiny_data_dir):
  from conftest import tiny_config
  config = tiny_config(tiny_data_dir)
  it, info = ip.make_train_iterator(config, shard=grain.sharding.ShardOptions(0, 1))
  assert info.num_examples == len(ip.open_sources(str(tiny_data_dir), "face_mask", 32,
                                                  "train")[0])
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(2)]
  it2, _ = ip.make_train_iterator(config, shard=grain.sharding.ShardOptions(0, 1))
  it2.set_state(state)
  for want in expected:
    got = next(it2)
    for f in want:
      np.testing.assert_array_equal(got[f], want[f])


def test_mixture_of_datasets_and_fixed_batch(tiny_data_dir):
  mixed = ip.open_sources(str(tiny_data_dir), "face_mask,rect", 32, "train")
  assert len(mixed) == 2
  ds = ip.train_dataset(mixed, global_batch=4, seed=0, shard=grain.sharding.ShardOptions(0, 1))
  assert ds[0]["clean"].shape == (4, 32, 32, 3)
  batch = ip.fixed_batch(str(tiny_data_dir), "face_mask", 32, "test", 5)
  assert batch["clean"].shape[0] == batch["id"].shape[0] <= 5
  again = ip.fixed_batch(str(tiny_data_dir), "face_mask", 32, "test", 5)
  np.testing.assert_array_equal(batch["masked"], again["masked"])
