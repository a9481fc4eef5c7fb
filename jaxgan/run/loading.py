"""A finished (or running) run as objects: `load(workdir) -> (gan, state, config)`.

    gan, state, config = jaxgan.load("runs/mnist")           # the newest intact checkpoint
    images = gan.sample(state, jax.random.key(0), 64)        # float32 (64, 28, 28, 1), EMA G

Read-only: nothing in the workdir is written, locked or moved, so a run that is still training
can be loaded beside it. The config is the one the run saved (`config.json`); the image shape
comes from the run's data set (its first example, after `data.pad_to`), as in training.
"""

from __future__ import annotations

import json
import logging
import os

import jax
import jax.numpy as jnp
import ml_collections

from jaxgan import config as config_lib
from jaxgan.errors import UserError

log = logging.getLogger(__name__)


class RunNotFoundError(UserError, ValueError):
  """A workdir without a run's config or without an intact checkpoint."""


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run saved in `workdir/config.json`.

  Args:
    workdir: the run's directory.

  Returns:
    The run config, as the run resolved it; fields it predates hold their defaults.

  Raises:
    RunNotFoundError: no `config.json` (not a jaxgan workdir, or a run that never started).
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise RunNotFoundError(
      f"{workdir} holds no config.json: not the workdir of a jaxgan run (or one that never "
      "started). Pass the --workdir a run trained in."
    )
  with open(path) as f:
    saved = json.load(f)

  def merged(defaults: dict, values: dict) -> dict:
    out = dict(defaults)
    for k, v in values.items():
      out[k] = merged(defaults[k], v) if isinstance(defaults.get(k), dict) else v
    return out

  # Fields added to jaxgan after the run take their defaults, the behaviour from before them.
  return ml_collections.ConfigDict(merged(config_lib.default_config().to_dict(), saved))


def image_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """One example's shape for the run's data set: `(h, w, c)`, or `(2,)` for a toy mixture."""
  if config_lib.is_toy(config):
    return (2,)
  from jaxgan import data  # pylint: disable=g-import-not-at-top (TFDS)
  from jaxgan.run import inputs  # pylint: disable=g-import-not-at-top (TFDS)

  source = data.load_source(
    config.data.name,
    split=config.data.split,
    data_dir=config.run.data_dir,
    source_dir=config.run.source_dir,
    in_memory=False,  # one example is read, not the split
    **config_lib.read_options(config),
  )
  return inputs.example_shape(source, config.data.get("pad_to"))


def _saved_shape(loader_state: dict | None) -> tuple[int, ...] | None:
  """The example shape a checkpoint's loader state records (the images, then `pad_to`), if any.

  So that a run loads where its data is not (another machine, a moved folder).
  """
  from jaxgan.run.inputs import padded_shape  # pylint: disable=g-import-not-at-top

  stream = (loader_state or {}).get("config") or {}
  shape = stream.get("image_shape")
  return padded_shape(shape, stream.get("pad_to")) if shape else None


def load(workdir: str, step: int | None = None):
  """The GAN, its state at a checkpoint and the config of the run in `workdir`.

  Args:
    workdir: the run's directory (holding `config.json` and `checkpoints/`).
    step: the checkpoint's step; None: the newest one whose files match their manifest
      (a corrupt newer one is skipped, with a warning, and left in place).

  Returns:
    `(gan, state, config)`: the `jaxgan.GAN`, its `GANState` on the default device (EMA
    generator parameters in `state.g_ema_params`; `gan.sample(state, key, n)` draws from it),
    and the run config.

  Raises:
    RunNotFoundError: no config, no checkpoint, a `step` that is not saved (naming those that
      are), or no intact checkpoint.
  """
  from jaxgan.run.build import build_gan  # pylint: disable=g-import-not-at-top
  from jaxgan.run.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top (orbax)

  config = read_config(workdir)
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    raise RunNotFoundError(f"{workdir} holds no checkpoint yet: nothing to load.")
  ckpt = Checkpointer(directory, config=config.to_dict(), save_every=0, async_save=False)
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise RunNotFoundError(f"{workdir} holds no checkpoint yet: nothing to load.")
    if step is not None and step not in steps:
      raise RunNotFoundError(
        f"{workdir} has no checkpoint at step {step}; it has steps {', '.join(map(str, steps))}."
      )
    try:
      shape = _saved_shape(ckpt.loader_state(steps[-1] if step is None else step))
    except Exception:  # noqa: BLE001 - an unreadable record: the shape comes from the data
      shape = None
    shape = shape or image_shape(config)  # a toy run, or a checkpoint without a loader state
    gan = build_gan(config, shape, load_backbone=False)  # a feature critic's: in the checkpoint
    template = jax.eval_shape(
      gan.init, jax.random.key(0), jnp.zeros((config.data.batch_size, *shape), jnp.float32)
    )
    for candidate in [step] if step is not None else reversed(steps):
      verdict = ckpt.verify(candidate)
      if verdict.status == "corrupt":
        if step is not None:
          raise RunNotFoundError(f"{workdir}: checkpoint step {step} is corrupt: {verdict.reason}")
        log.warning("Skipping checkpoint step %d: %s.", candidate, verdict.reason)
        continue
      state, _, _ = ckpt.restore(candidate, template)
      return gan, state, config
    raise RunNotFoundError(f"{workdir}: no intact checkpoint among steps {steps}.")
  finally:
    ckpt.close()
