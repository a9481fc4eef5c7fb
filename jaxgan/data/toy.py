"""2-D Gaussian mixtures of the PacGAN/VEEGAN protocol (Lin et al. 2018; Srivastava et al. 2017).

- ``ring``: 8 modes evenly spaced on a circle of radius 1, standard deviation 0.01;
- ``grid``: 25 modes at {-4, -2, 0, 2, 4}^2, standard deviation 0.05.

Sampling is a pure JAX function of a key, so a training loop can draw batches inside its compiled
step. This module imports only JAX and NumPy (not TFDS or grain).

>>> mixture = get("grid")
>>> mixture.modes.shape, mixture.std
((25, 2), 0.05)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Mixture:
  """An equal-weight mixture of isotropic Gaussians in the plane.

  Attributes:
    name: the mixture's name (``"ring"``, ``"grid"``).
    modes: the means, float32 ``(k, 2)``.
    std: the standard deviation of every component, in the units of ``modes``.
  """

  name: str
  modes: np.ndarray
  std: float

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """Draws points: a uniformly chosen mode plus ``N(0, std^2 I)`` noise.

    Traceable: call it inside ``jax.jit`` with ``n`` static.

    Args:
      key: a JAX PRNG key.
      n: the number of points.

    Returns:
      float32 ``(n, 2)``.

    >>> mixture = get("ring")
    >>> jax.eval_shape(lambda key: mixture.sample(key, 4), jax.random.key(0))
    ShapeDtypeStruct(shape=(4, 2), dtype=float32)
    """
    mode_key, noise_key = jax.random.split(key)
    idx = jax.random.randint(mode_key, (n,), 0, len(self.modes))
    noise = self.std * jax.random.normal(noise_key, (n, 2), jnp.float32)
    return jnp.asarray(self.modes, jnp.float32)[idx] + noise


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture:
  """Modes evenly spaced on a circle around the origin, the first at ``(radius, 0)``.

  Args:
    n_modes: the number of modes.
    radius: the circle's radius.
    std: each component's standard deviation.

  Returns:
    A :class:`Mixture` named ``"ring"`` with modes ``(n_modes, 2)``.
  """
  angles = 2 * np.pi * np.arange(n_modes) / n_modes
  modes = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return Mixture("ring", modes.astype(np.float32), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
  """Modes on a square lattice centred on the origin.

  Args:
    side: modes per row and column.
    spacing: the distance between neighbouring modes.
    std: each component's standard deviation.

  Returns:
    A :class:`Mixture` named ``"grid"`` with modes ``(side**2, 2)``, row-major.
  """
  coords = spacing * (np.arange(side) - (side - 1) / 2)
  modes = np.stack(np.meshgrid(coords, coords, indexing="ij"), axis=-1).reshape(-1, 2)
  return Mixture("grid", modes.astype(np.float32), std)


MIXTURES = {"ring": ring, "grid": grid}


def get(name: str) -> Mixture:
  """The mixture of the protocol by name, with the protocol's parameters.

  Args:
    name: ``"ring"`` or ``"grid"``.

  Returns:
    The :class:`Mixture`.

  Raises:
    ValueError: an unknown name; the message lists the valid ones.
  """
  try:
    return MIXTURES[name]()
  except KeyError:
    raise ValueError(f"Unknown toy mixture {name!r}. Valid names: {', '.join(MIXTURES)}.") from None
