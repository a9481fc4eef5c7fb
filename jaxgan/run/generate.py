"""Draws samples from a run's EMA generator into files: PNGs, one PNG grid, or an `.npz`.

    # 10,000 samples as an .npz of uint8 images (n, h, w, c), for FID tools that read arrays
    python -m jaxgan.generate --workdir runs/mnist --num 10000 --out samples.npz
    # a grid, 64 samples, latents truncated toward their mean (psi 0.7)
    python -m jaxgan.generate --workdir runs/mnist --num 64 --truncation 0.7 --out grid.png
    # one PNG per sample of classes 3 and 7 of a conditional run
    python -m jaxgan.generate --workdir runs/mnist_cdcgan --num 20 --labels 3,7 --out pngs/
    # latent interpolations: 8 rows from one latent to another in 10 steps (spherical)
    python -m jaxgan.generate --workdir runs/mnist --interpolate 8x10 --out lerp.png

Deterministic for a seed and batch size; the latents of sample i do not depend on `--batch_size`
(the images only to float rounding, as the kernels differ by batch size). The newest
intact checkpoint is used unless `--step` names one (`jaxgan.load`). Truncation (`--truncation
psi`, in (0, 1]) scales the latents toward their mean (0): the truncation trick of BigGAN /
StyleGAN in a latent space without a mapping network; `--resample_beyond T` instead redraws every
latent coordinate whose magnitude exceeds T (BigGAN's form). Nothing is written on an error; an
output file is written to a temporary name and renamed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["draw_latents", "generate", "main"]


def draw_latents(key, n: int, shape, *, truncation: float = 1.0, resample_beyond=None):
  """`n` standard normal latents, truncated.

  Args:
    key: a JAX PRNG key; latent i comes from `fold_in(key, i)`, whatever the batching.
    n: how many.
    shape: one latent's shape.
    truncation: psi in (0, 1]: latents are scaled by it (toward the mean latent, 0).
    resample_beyond: None, or T > 0: coordinates with |z| > T are redrawn until within T.

  Returns:
    float32 `(n, *shape)` JAX array.

  Raises:
    ValueError: truncation outside (0, 1], or T <= 0.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  if not 0 < truncation <= 1:
    raise ValueError(f"truncation is psi in (0, 1] (1: none); got {truncation}.")
  if resample_beyond is not None and not resample_beyond > 0:
    raise ValueError(f"resample_beyond is a threshold > 0; got {resample_beyond}.")

  def one(i):
    k = jax.random.fold_in(key, i)
    if resample_beyond is None:
      return jax.random.normal(k, tuple(shape), jnp.float32)
    lo, hi = -resample_beyond, resample_beyond  # the normal truncated to [-T, T], redrawn
    return jax.random.truncated_normal(k, lo, hi, tuple(shape), jnp.float32)

  z = jax.vmap(one)(jnp.arange(n))
  return z * truncation


def _slerp(a, b, t):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  an, bn = a / jnp.linalg.norm(a), b / jnp.linalg.norm(b)
  omega = jnp.arccos(jnp.clip(jnp.sum(an * bn), -1.0, 1.0))
  so = jnp.sin(omega)
  safe = jnp.where(so < 1e-6, 1.0, so)
  out = (jnp.sin((1 - t) * omega) / safe) * a + (jnp.sin(t * omega) / safe) * b
  return jnp.where(so < 1e-6, (1 - t) * a + t * b, out)


def generate(
  workdir: str,
  *,
  num: int = 64,
  seed: int = 0,
  labels: Sequence[int] | None = None,
  truncation: float = 1.0,
  resample_beyond: float | None = None,
  interpolate: tuple[int, int] | None = None,
  step: int | None = None,
  batch_size: int = 256,
  progress: bool = False,
) -> tuple[np.ndarray, int, int | None]:
  """Samples of the EMA generator of a run's checkpoint.

  Args:
    workdir: the run's directory.
    num: how many samples (ignored with `interpolate`).
    seed: the latents' seed.
    labels: a conditional run's classes, used in turn (sample i gets `labels[i % len]`); None:
      uniform over the classes. Refused for an unconditional run.
    truncation: psi in (0, 1] (see `draw_latents`).
    resample_beyond: T > 0 or None (see `draw_latents`).
    interpolate: `(rows, steps)`: each row goes from one latent to another in `steps` steps
      along the great circle (slerp), with one label per row on a conditional run.
    step: the checkpoint; None: the newest intact one.
    batch_size: samples per generator call.
    progress: show a progress bar.

  Returns:
    `(images, step, columns)`: float32 `(n, h, w, c)` in [-1, 1], the checkpoint's step, and the
    grid's columns (`steps` with `interpolate`, else None).

  Raises:
    jaxgan.run.loading.RunNotFoundError: no run, checkpoint or step.
    jaxgan.errors.ConfigError: labels for an unconditional run or outside its classes; a bad
      truncation, threshold, count or interpolation.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from jaxgan import config as config_lib  # pylint: disable=g-import-not-at-top
  from jaxgan.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from jaxgan.run import loading  # pylint: disable=g-import-not-at-top

  if num < 1 or batch_size < 1:
    raise ConfigError(f"--num and --batch_size must be >= 1; got {num} and {batch_size}.")
  gan, state, config = loading.load(workdir, step)
  if config_lib.is_toy(config):
    raise ConfigError(f"{workdir} is a run on 2-D points ({config.data.name}), not images.")
  if labels is not None and not gan.num_classes:
    raise ConfigError(f"{workdir} is an unconditional run: it takes no --labels.")
  if labels is not None and not all(0 <= y < gan.num_classes for y in labels):
    raise ConfigError(f"--labels must be classes in [0, {gan.num_classes}); got {list(labels)}.")
  key = jax.random.PRNGKey(seed)
  try:
    if interpolate is None:
      z = draw_latents(
        key, num, gan.latent_shape, truncation=truncation, resample_beyond=resample_beyond
      )
    else:
      rows, steps = interpolate
      if rows < 1 or steps < 2:
        raise ValueError(
          f"--interpolate is ROWSxSTEPS with rows >= 1, steps >= 2; got {interpolate}."
        )
      ends = draw_latents(
        key, 2 * rows, gan.latent_shape, truncation=truncation, resample_beyond=resample_beyond
      )
      t = jnp.linspace(0.0, 1.0, steps)
      z = jnp.concatenate(
        [
          jax.vmap(_slerp, in_axes=(None, None, 0))(ends[2 * r], ends[2 * r + 1], t)
          for r in range(rows)
        ]
      )
  except ValueError as e:
    raise ConfigError(str(e)) from None
  n = len(z)
  y = None
  if gan.num_classes:
    if interpolate is not None:
      pool = labels or list(range(gan.num_classes))
      y = np.repeat([pool[r % len(pool)] for r in range(interpolate[0])], interpolate[1])
    elif labels is not None:
      y = np.asarray([labels[i % len(labels)] for i in range(n)])
    else:
      y = np.asarray(
        jax.random.randint(jax.random.fold_in(key, 2**31 - 1), (n,), 0, gan.num_classes)
      )
  run = jax.jit(gan.generate)
  out = []
  from jaxgan.run.writers import Progress  # pylint: disable=g-import-not-at-top

  bar = Progress(total=n, initial=0, enabled=progress)
  for s in range(0, n, batch_size):
    zb = z[s : s + batch_size]
    yb = None if y is None else jnp.asarray(y[s : s + batch_size], jnp.int32)
    out.append(np.asarray(run(state, zb, yb)))
    bar.update(len(zb))
  bar.close()
  images = np.concatenate(out)
  return images, int(state.step), (interpolate[1] if interpolate else None)


def _write(out: str, images: np.ndarray, columns: int | None) -> str:
  from jaxgan.run import writers  # pylint: disable=g-import-not-at-top

  if out.endswith(".npz"):
    tmp = out[: -len(".npz")] + ".tmp.npz"
    np.savez_compressed(tmp, images=writers.to_uint8(images))
    os.replace(tmp, out)
    return f"{out}: uint8 images {images.shape}"
  if out.endswith(".png"):
    writers.save_image_grid(out, images, columns=columns)
    return f"{out}: a grid of {len(images)}"
  os.makedirs(out, exist_ok=True)
  for i, image in enumerate(images):
    writers.save_png(os.path.join(out, f"{i:06d}.png"), image)
  return f"{out}/: {len(images)} PNG files"


def main(argv: Sequence[str] | None = None) -> None:
  """Command line: see the module docstring."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", required=True, help="a .npz file, a .png grid, or a directory")
  parser.add_argument("--num", type=int, default=64)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--labels", default=None, help="comma list of classes (conditional runs)")
  parser.add_argument("--truncation", type=float, default=1.0, help="psi in (0, 1]")
  parser.add_argument("--resample_beyond", type=float, default=None, help="threshold T > 0")
  parser.add_argument("--interpolate", default=None, help="ROWSxSTEPS, e.g. 8x10")
  parser.add_argument("--step", type=int, default=None)
  parser.add_argument("--batch_size", type=int, default=256)
  args = parser.parse_args(argv)
  from jaxgan import errors  # pylint: disable=g-import-not-at-top

  suffix = os.path.splitext(args.out.rstrip("/"))[1]
  if suffix and suffix not in (".npz", ".png"):
    parser.error(f"--out {args.out}: write a .npz, a .png grid, or a directory (no extension)")
  try:
    labels = [int(v) for v in args.labels.split(",")] if args.labels else None
    interp = (
      tuple(int(v) for v in args.interpolate.lower().split("x")) if args.interpolate else None
    )
    if interp is not None and len(interp) != 2:
      raise ValueError(args.interpolate)
  except ValueError:
    parser.error("--labels takes integers like 3,7 and --interpolate ROWSxSTEPS like 8x10")
  try:
    images, step, columns = generate(
      args.workdir,
      num=args.num,
      seed=args.seed,
      labels=labels,
      truncation=args.truncation,
      resample_beyond=args.resample_beyond,
      interpolate=interp,
      step=args.step,
      batch_size=args.batch_size,
      progress=True,
    )
  except errors.UserError as e:
    sys.exit(errors.report(e))
  print(f"step {step}: {_write(args.out, images, columns)}")


if __name__ == "__main__":
  main()
