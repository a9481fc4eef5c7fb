"""Value checks of the run config's recipe, model and conditioning fields, for `validate`.

Imports nothing but `jaxgan.errors` and `jaxgan.data.registry` at import time (an experiment
config loads `jaxgan.config` without JAX); the models' own checks, which need JAX, are imported
inside `check_model`. Every message names the field and the fix (a `ConfigError`).
"""

from __future__ import annotations

import re

from jaxgan.data import registry as data_registry
from jaxgan.errors import ConfigError


def check_recipes(config, *, toy: bool) -> None:
  """The regularisers' and augmentation's fields (`loss`, `augment`; jaxgan.regularizers).

  Args:
    config: a run config.
    toy: whether the data set is a 2-D mixture (no images to augment).

  Raises:
    ValueError: naming the field and the fix.
  """
  lo, aug = config.loss, config.augment
  for name, value in (
    ("loss.penalty_every", lo.penalty_every),
    ("augment.ada_interval", aug.ada_interval),
  ):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ConfigError(f"config.{name} must be a positive integer; got {value!r}.")
  if not 0.0 <= lo.lecam_decay < 1.0:
    raise ConfigError(f"config.loss.lecam_decay must lie in [0, 1); got {lo.lecam_decay}.")
  if aug.name is None and (aug.p is not None or aug.ada_target is not None or aug.policy):
    raise ConfigError(
      "config.augment.p, ada_target and policy need an augmentation: set config.augment.name "
      "('diffaugment' or 'ada')."
    )
  if aug.ada_target is not None:
    if not 0.0 < aug.ada_target < 1.0:
      raise ConfigError(
        f"config.augment.ada_target must lie in (0, 1) (ADA: 0.6); got {aug.ada_target}."
      )
    if aug.p is not None:
      raise ConfigError(
        "config.augment.ada_target makes ADA adapt p from 0; leave config.augment.p unset, or "
        "unset ada_target for a fixed or scheduled p."
      )
  elif aug.name == "ada" and aug.p is None:
    raise ConfigError(
      "config.augment.name='ada' needs config.augment.ada_target (adaptive p; the paper: 0.6) or "
      "a fixed or scheduled config.augment.p."
    )
  if aug.name is not None and toy:
    raise ConfigError(
      f"config.augment.name={aug.name!r} transforms images; {config.data.name!r} is points in "
      "the plane. Unset config.augment.name, or train on an image data set."
    )
  if not aug.ada_kimg > 0:
    raise ConfigError(f"config.augment.ada_kimg must be > 0; got {aug.ada_kimg}.")


# The arguments of the models' checks that are config.model's fields, named alike.
_MODEL_FIELDS = re.compile(
  r"(?<![\w.])(minibatch_std|num_classes|g_conditioning|d_conditioning|shared_embedding)\b"
)


def check_model(config) -> None:
  """The model fields every model family checks alike, by the models' own checks.

  `jaxgan.models.layers.check_minibatch_std` and `jaxgan.models.conditioning.check_classes`
  (imported here: they load JAX), with their argument names made field names. The model's name,
  its image sizes and conditionings are checked by `jaxgan.run.build.check_names` and
  `jaxgan.models.make_models`.

  Args:
    config: a run config.

  Raises:
    ConfigError: naming the field and the fix.
  """
  from jaxgan.models import conditioning, layers  # pylint: disable=g-import-not-at-top (JAX)

  m = config.model
  try:
    layers.check_minibatch_std(m.minibatch_std)
    conditioning.check_classes(
      m.num_classes, m.g_conditioning, m.d_conditioning, m.shared_embedding
    )
  except ValueError as e:
    raise ConfigError(_MODEL_FIELDS.sub(r"config.model.\1", str(e)) + ".") from None


def check_augment(config) -> None:
  """The augmentation's name, policy and probability, by `jaxgan.augment.check` (where those
  rules live), with the config's field in the message.

  Loads JAX (the augmentations, and the schedules that give a scheduled p's range), so it is
  imported here, when `validate` runs, not when the config is.

  Args:
    config: a run config.

  Raises:
    ConfigError: naming `config.augment` (or `config.augment.p`) and the rule's message.
  """
  aug = config.augment
  if aug.name is None:
    return
  from jaxgan import augment, schedules  # pylint: disable=g-import-not-at-top (JAX)

  try:
    augment.check(aug.name, aug.policy)
  except ValueError as e:
    raise ConfigError(f"config.augment: {e}") from None
  if aug.p is not None:
    try:  # a schedule of p: the smallest and largest values it takes over the run
      p_range = schedules.value_range(aug.p, config.run.steps, field="config.augment.p")
      augment.check(aug.name, p=p_range)
    except ValueError as e:
      msg = str(e)  # an unreadable spec's message names the field already
      msg = msg if msg.startswith("config.") else f"config.augment.p={aug.p!r}: {msg}"
      raise ConfigError(msg) from None


def check_conditioning(config) -> None:
  """The run's class-conditioning fields: a labelled image data set, its class count, and the
  labels' settings (the model's own class arguments: `check_model`, which runs first).

  Args:
    config: a run config.

  Raises:
    ValueError: naming the field and the fix.
  """
  m = config.model
  k = m.num_classes
  if config.data.fake_labels not in ("uniform", "data"):
    raise ConfigError(
      f"config.data.fake_labels must be 'uniform' or 'data' (the data set's class "
      f"frequencies); got {config.data.fake_labels!r}."
    )
  if config.loss.class_weight < 0:
    raise ConfigError(f"config.loss.class_weight must be >= 0; got {config.loss.class_weight}.")
  if k == 0:
    return
  # A data set named from outside ('tfds:', 'folder:') is checked when its labels are read.
  data_registry.check_num_classes(config.data.name, k)
  if m.pack > 1:
    raise ConfigError(
      f"config.model.pack={m.pack} judges packs of examples, whose labels differ; "
      "class-conditional runs need config.model.pack=1."
    )


def read_options(config) -> dict:
  """How the run reads its data set: the keywords of `jaxgan.data.load_source` beyond the name.

  The label key is None for an unconditional run (no labels read), so an unlabelled data set
  trains unconditionally without a setting. Fields absent from older configs take their defaults.
  """
  d = config.data
  return dict(
    resolution=d.get("resolution"),
    crop=d.get("crop", "resize_crop"),
    image_key=d.get("image_key", "image"),
    label_key=d.get("label_key", "label") if config.model.get("num_classes", 0) else None,
  )
