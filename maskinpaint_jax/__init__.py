"""maskinpaint-jax: masked-face inpainting GAN (Liu et al.) in JAX/Flax.

  import maskinpaint_jax
  restorer = maskinpaint_jax.load_restorer()    # restorer.load_restorer: the shipped models
  result = restorer.restore("photo.jpg")        # result.restored, result.hole, result.faces

Light on purpose: importing the package imports no JAX; modules import what they need, and
`load_restorer` / `Restorer` are looked up in `maskinpaint_jax.restorer` on first use.
"""

__version__ = "0.1.0"
__all__ = ["load_restorer", "Restorer", "__version__"]


def __getattr__(name):
  if name in ("load_restorer", "Restorer"):
    from maskinpaint_jax import restorer  # pylint: disable=g-import-not-at-top
    return getattr(restorer, name)
  raise AttributeError(f"module 'maskinpaint_jax' has no attribute {name!r}")
