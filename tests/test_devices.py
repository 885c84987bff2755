"""The test tier sees 8 (fake CPU) devices, as conftest.py arranges before JAX is imported."""

import jax


def test_eight_devices_are_visible():
  assert jax.device_count() == 8
  assert jax.local_device_count() == 8
  assert {d.platform for d in jax.devices()} == {"cpu"}


def test_persistent_compilation_cache_is_configured():
  assert jax.config.jax_compilation_cache_dir

