"""2-D Gaussian mixtures of the PacGAN/VEEGAN protocol (Lin et al. 2018; Srivastava et al. 2017).

- ring: 8 modes evenly spaced on a circle of radius 1, standard deviation 0.01;
- grid: 25 modes at {-4, -2, 0, 2, 4}^2, standard deviation 0.05.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Mixture:
  """An equal-weight mixture of isotropic Gaussians in the plane."""

  name: str
  modes: np.ndarray  # (k, 2)
  std: float

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """n points: a uniformly chosen mode plus N(0, std^2 I) noise; shape (n, 2), float32."""
    mode_key, noise_key = jax.random.split(key)
    idx = jax.random.randint(mode_key, (n,), 0, len(self.modes))
    noise = self.std * jax.random.normal(noise_key, (n, 2))
    return jnp.asarray(self.modes, jnp.float32)[idx] + noise


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture:
  angles = 2 * np.pi * np.arange(n_modes) / n_modes
  modes = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return Mixture("ring", modes.astype(np.float32), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
  coords = spacing * (np.arange(side) - (side - 1) / 2)
  modes = np.stack(np.meshgrid(coords, coords, indexing="ij"), axis=-1).reshape(-1, 2)
  return Mixture("grid", modes.astype(np.float32), std)


MIXTURES = {"ring": ring, "grid": grid}


def get(name: str) -> Mixture:
  try:
    return MIXTURES[name]()
  except KeyError:
    raise ValueError(f"Unknown toy mixture {name!r}. Valid names: {', '.join(MIXTURES)}.") from None
