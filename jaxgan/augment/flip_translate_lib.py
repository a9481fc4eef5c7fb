"""bCR's transform (Zhao et al. 2021, "Improved Consistency Regularization for GANs"): a random
horizontal flip, then DiffAugment's translation, per example.

Example:
  >>> import jax.numpy as jnp
  >>> x = jnp.arange(4.0).reshape(1, 1, 4, 1)
  >>> flip(x, jnp.array([True]))[0, 0, :, 0]
  Array([3., 2., 1., 0.], dtype=float32)
"""

from __future__ import annotations

import jax

from jaxgan.augment._common import check_images, check_probability, where_examples
from jaxgan.augment._registry import register
from jaxgan.augment.diffaugment_lib import draw, translate


def flip(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Mirrors example i horizontally (along W) where `mask[i]`.

  Args:
    x: images `[n, H, W, C]`.
    mask: bool `[n]`.

  Returns:
    `[n, H, W, C]`, the dtype of `x`.
  """
  return where_examples(mask, x[:, :, ::-1], x)


@register("flip_translate")  # no policy
def flip_translate(images: jax.Array, key: jax.Array, p=1.0) -> jax.Array:
  """bCR's transform (Zhao et al. 2021): a random horizontal flip, then a random translation.

  As the official DiffAugment code's CR option ('flip,translation'): a flip with probability 1/2,
  then DiffAugment's translation (whole pixels, up to 1/8 of the size per axis, zero fill).

  Args:
    images: `[n, H, W, C]` float images in [-1, 1], C = 1 or 3.
    key: a JAX PRNG key; every example gets its own draw.
    p: probability, float scalar in [0, 1] (may be traced), that an example is transformed at
      all; p = 0 is exactly the identity.

  Returns:
    `[n, H, W, C]`, the dtype of `images`.

  Raises:
    ValueError: for images that are not `[n, H, W, C]` with C in (1, 3), or a concrete p outside
      [0, 1].

  Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.zeros((2, 8, 8, 1))
    >>> jax.jit(flip_translate)(x, jax.random.key(0)).shape
    (2, 8, 8, 1)
  """
  check_images(images, "flip_translate")
  p = check_probability(p)
  n, h, w, _ = images.shape
  k_shift, k_rest = jax.random.split(key)
  u = jax.random.uniform(k_rest, (n, 2))
  out = flip(images, u[:, 0] < 0.5)
  out = translate(out, draw("translation", k_shift, n, h, w))
  return where_examples(u[:, 1] < p, out, images)
