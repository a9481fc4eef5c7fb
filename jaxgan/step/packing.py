"""Packing (PacGAN, Lin et al. 2018): the discriminator judges m samples at once.

A packed critic sees m examples of one kind (all real or all fake) stacked along the channel
axis and returns one score for the pack. A collapsed generator's packs are m near-copies, which
are easy to tell from m independent real examples, so packing penalises mode collapse; the
critic is otherwise unchanged (its input has m times the channels). Penalties are computed on
the packed inputs, so the R1 and WGAN-GP norms are those of the packed critic's gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def pack(x: jax.Array, m: int) -> jax.Array:
  """Stacks each run of m consecutive examples along the last (channel or feature) axis.

  Args:
    x: `[n, ..., c]` examples, n a multiple of m.
    m: the pack size (PacGAN's degree); 1 returns `x` unchanged.

  Returns:
    `[n // m, ..., m * c]`: pack i holds examples `i*m, ..., i*m + m - 1`, in that order,
    channels of example j at `[j*c, (j+1)*c)`.

  Raises:
    ValueError: `m` is not a positive integer, or n is not a multiple of m.

  >>> pack(jnp.arange(8.0).reshape(4, 2), 2)
  Array([[0., 1., 2., 3.],
         [4., 5., 6., 7.]], dtype=float32)
  """
  if not isinstance(m, int) or m < 1:
    raise ValueError(f"The pack size must be a positive integer; got {m!r}.")
  if m == 1:
    return x
  n = x.shape[0]
  if n % m:
    raise ValueError(
      f"Packing needs a batch that is a multiple of the pack size: {n} examples do not split "
      f"into packs of {m}; make the batch size (per critic update) a multiple of {m}."
    )
  x = x.reshape(n // m, m, *x.shape[1:])
  x = jnp.moveaxis(x, 1, -2)  # [n/m, ..., m, c]
  return x.reshape(*x.shape[:-2], m * x.shape[-1])


def unpack(x: jax.Array, m: int) -> jax.Array:
  """The inverse of `pack`: packs of m examples back to the examples.

  Args:
    x: `[n // m, ..., m * c]` packs.
    m: the pack size; 1 returns `x` unchanged.

  Returns:
    `[n, ..., c]`, with `unpack(pack(x, m), m) == x`.

  Raises:
    ValueError: the last axis is not a multiple of m.

  >>> x = jnp.arange(12.0).reshape(6, 2)
  >>> bool(jnp.all(unpack(pack(x, 3), 3) == x))
  True
  """
  if m == 1:
    return x
  if x.shape[-1] % m:
    raise ValueError(f"unpack: the last axis ({x.shape[-1]}) is not a multiple of m={m}.")
  c = x.shape[-1] // m
  x = x.reshape(*x.shape[:-1], m, c)
  x = jnp.moveaxis(x, -2, 1)  # [n/m, m, ..., c]
  return x.reshape(x.shape[0] * m, *x.shape[2:])
