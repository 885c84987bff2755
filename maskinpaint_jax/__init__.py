"""maskinpaint-jax: masked-face inpainting GAN (Liu et al.) in JAX/Flax.

Light on purpose: importing the package imports no JAX; modules import what they need.
"""

__version__ = "0.1.0"
