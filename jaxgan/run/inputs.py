"""Where a run's real examples come from: a host loader, or a sampler inside the compiled program.

Image data sets are read on the host by `jaxgan.data` (TFDS/grain) and fed to the step as a
sharded global batch; the loader's position is saved with every checkpoint. The 2-D mixtures are
sampled inside the compiled program from `fold_in(key, step)`, so `run.steps_per_call` train
steps run as one `lax.scan` with no host round trip, and resuming needs no saved position.
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from jaxgan import config as config_lib
from jaxgan.data import toy as toy_data
from jaxgan.step import sharding


class HostInput:
  """Batches of real images read on the host; each process reads its own block of every batch.

  Attributes:
    image_shape: one example's shape `(H, W, C)`, after padding to `data.pad_to`.
    mixture: None (only the toy inputs have one).
    class_frequencies: for a class-conditional run (`model.num_classes > 0`), float64
      `[num_classes]`, the split's class frequencies; None otherwise.
  """

  in_program = False
  mixture = None

  def __init__(self, config: ml_collections.ConfigDict, mesh: Mesh):
    # TFDS and grain are heavy imports: only image runs pay for them.
    from jaxgan import data  # pylint: disable=g-import-not-at-top

    global_batch = config.data.batch_size * config.loss.n_critic
    self.mesh = mesh
    block, blocks = sharding.process_block(mesh)
    source = data.load_source(
      config.data.name,
      split=config.data.split,
      data_dir=config.run.data_dir,
      source_dir=config.run.source_dir,
      **config_lib.read_options(config),
    )
    self.loader = data.make_loader(
      source,
      batch_size=sharding.local_batch_size(global_batch, mesh),
      seed=config.seed,
      pad_to=config.data.pad_to,
      shard_index=block,
      shard_count=blocks,
      worker_count=config.run.loader_workers,
    )
    self.num_classes = config.model.num_classes
    self.class_frequencies = None
    if self.num_classes:
      self.class_frequencies = _class_frequencies(source, config)
    self.image_shape = example_shape(source, config.data.pad_to)

  def next_batch(self) -> jax.Array | dict[str, jax.Array]:
    """The next global batch, sharded over 'data'.

    Returns:
      float32 `(batch_size * n_critic, H, W, C)` images; for a class-conditional run
      `{'image': those, 'label': int32 (batch_size * n_critic,)}`, each label with its image.
    """
    batch = next(self.loader)
    if not self.num_classes:
      return sharding.global_batch(batch["image"], self.mesh)
    return {name: sharding.global_batch(batch[name], self.mesh) for name in ("image", "label")}

  def get_state(self) -> dict[str, Any] | None:
    """The loader's position, a JSON-able dict saved with each checkpoint."""
    return self.loader.get_state()

  def set_state(self, state: dict[str, Any] | None) -> None:
    """Moves the loader to a position from `get_state` (None: stay at the start)."""
    if state is not None:
      self.loader.set_state(state)

  def close(self) -> None:
    """Stops the loader's worker processes."""
    self.loader.close()


def example_shape(source, pad_to: int | None) -> tuple[int, int, int]:
  """One example's `(h, w, c)` as the models see it: the source's first image, padded to
  `pad_to` (`data.pad_to`) when set."""
  return padded_shape(np.asarray(source[0]["image"]).shape, pad_to)


def padded_shape(shape, pad_to: int | None) -> tuple[int, int, int]:
  """`(h, w, c)` of an image of `shape` (`(h, w)` or `(h, w, c)`) after padding to `pad_to`."""
  h, w = shape[:2]
  c = shape[2] if len(shape) == 3 else 1
  return (pad_to, pad_to, c) if pad_to else (h, w, c)


def _class_frequencies(source, config) -> np.ndarray:
  """The split's class frequencies; refuses labels that the configured classes cannot hold."""
  from jaxgan.step import labels as labels_lib  # pylint: disable=g-import-not-at-top

  arrays = getattr(source, "arrays", None)
  if arrays is None or "label" not in arrays:
    from jaxgan.errors import ConfigError  # pylint: disable=g-import-not-at-top

    raise ConfigError(
      f"config.model.num_classes={config.model.num_classes} needs labels, but the source of "
      f"{config.data.name!r} has none; set config.model.num_classes=0."
    )
  from jaxgan.errors import ConfigError  # pylint: disable=g-import-not-at-top

  k, labels = config.model.num_classes, arrays["label"]
  top = int(labels.max(initial=-1)) + 1
  if top > k or (top < k and config.data.name not in config_lib.CLASS_COUNTS):
    raise ConfigError(
      f"config.model.num_classes={k}, but the labels of {config.data.name!r} "
      f"({config.data.split}) run from {int(labels.min(initial=0))} to {top - 1}: set "
      f"--config.model.num_classes={top} (or 0 for an unconditional GAN)."
    )
  try:
    return labels_lib.class_frequencies(labels, k)
  except ValueError as e:
    raise ConfigError(f"The labels of {config.data.name!r} ({config.data.split}): {e}") from None


class ProgramInput:
  """A 2-D Gaussian mixture sampled inside the compiled step.

  Attributes:
    image_shape: `(2,)`.
    mixture: the `jaxgan.data.toy.Mixture` (modes and std, for mode coverage and plots).
  """

  in_program = True

  def __init__(self, config: ml_collections.ConfigDict):
    self.mixture = toy_data.get(config.data.name.removeprefix("toy_"))
    self.class_frequencies = None
    self.image_shape = (2,)
    self.global_batch = config.data.batch_size * config.loss.n_critic

  def sample(self, key: jax.Array, step: jax.Array) -> jax.Array:
    """The batch of train step `step`, float32 `(batch_size * n_critic, 2)`; a pure function."""
    return self.mixture.sample(jax.random.fold_in(key, step), self.global_batch)

  def get_state(self) -> None:
    """None: the batch of step t is a function of t, so there is no position to save."""
    return None

  def set_state(self, state: Any) -> None:
    """Ignores `state` (see `get_state`)."""
    del state

  def close(self) -> None:
    """Nothing to release."""


def make_input(config: ml_collections.ConfigDict, mesh: Mesh) -> HostInput | ProgramInput:
  """The input of a run: `ProgramInput` for the toy mixtures, `HostInput` for image data.

  Raises:
    FileNotFoundError, ValueError: from `jaxgan.data` when image data are missing or corrupt.
  """
  if config_lib.is_toy(config):
    return ProgramInput(config)
  return HostInput(config, mesh)


def compile_call(train_step, inp: HostInput | ProgramInput, mesh: Mesh, steps_per_call: int):
  """Jits one host call of the loop: `steps_per_call` train steps.

  Args:
    train_step: `train_step(state, batch, key) -> (state, metrics)` (`jaxgan.run.build`).
    inp: the run's input.
    mesh: the device mesh; the state is replicated, batches are sharded on 'data'.
    steps_per_call: train steps per call (1 for host inputs).

  Returns:
    `advance(state, key) -> (state, metrics)`, which takes a host input's next batch itself;
    every metric has a leading axis of length `steps_per_call`, one value per train step.
  """
  if inp.in_program:
    data_tag = 1  # a key stream of its own, apart from the step's noise

    def call(state, key):
      def body(state, _):
        batch = sharding.shard_batch(inp.sample(jax.random.fold_in(key, data_tag), state.step))
        return train_step(state, batch, key)

      return jax.lax.scan(body, state, length=steps_per_call)

    return sharding.jit_train_step(call, mesh, with_batch=False)

  def call(state, batch, key):
    state, metrics = train_step(state, batch, key)
    return state, jax.tree.map(lambda m: m[None], metrics)

  jitted = sharding.jit_train_step(call, mesh)
  return lambda state, key: jitted(state, inp.next_batch(), key)
