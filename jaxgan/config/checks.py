"""Value checks of the run config's recipe and conditioning fields, for `jaxgan.config.validate`.

Imports nothing but `jaxgan.errors` (an experiment config loads `jaxgan.config` without JAX); the
train step's options are checked by the step's own rules (`check_step_options`, which imports
`jaxgan.step.options` when called: no JAX either). Every message names the field and the fix (a
`ConfigError`).
"""

from __future__ import annotations

from jaxgan.errors import ConfigError

# The classes of each labelled data set (config.model.num_classes of a conditional run).
CLASS_COUNTS = {
  "mnist": 10,
  "fashion_mnist": 10,
  "cifar10": 10,
  "cifar10_jpeg": 10,
  "stacked_mnist": 1000,
}


def check_recipes(config, *, toy: bool) -> None:
  """The augmentation's fields that only a config has (its name, policy and the toy data).

  Args:
    config: a run config.
    toy: whether the data set is a 2-D mixture (no images to augment).

  Raises:
    ValueError: naming the field and the fix.
  """
  aug = config.augment
  if aug.name is None and (aug.p is not None or aug.policy):
    raise ConfigError(
      "config.augment.p and policy need an augmentation: set config.augment.name "
      "('diffaugment' or 'ada')."
    )
  if aug.name == "ada" and aug.p is None and aug.ada_target is None:
    raise ConfigError(
      "config.augment.name='ada' needs config.augment.ada_target (adaptive p; the paper: 0.6) or "
      "a fixed or scheduled config.augment.p."
    )
  if aug.name is not None and toy:
    raise ConfigError(
      f"config.augment.name={aug.name!r} transforms images; {config.data.name!r} is points in "
      "the plane. Unset config.augment.name, or train on an image data set."
    )


# The config field that sets each option of the train step (jaxgan.step.options).
STEP_FIELDS = {
  "penalty": "loss.penalty",
  "penalties": "loss.penalties",
  "penalty_every": "loss.penalty_every",
  "n_critic": "loss.n_critic",
  "lecam_decay": "loss.lecam_decay",
  "class_weight": "loss.class_weight",
  "ema_decay": "optim.ema_decay",
  "augment": "augment.name",
  "augment_p": "augment.p",
  "ada_target": "augment.ada_target",
  "ada_kimg": "augment.ada_kimg",
  "ada_interval": "augment.ada_interval",
  "num_classes": "model.num_classes",
  "pack": "model.pack",
}


def check_step_options(config) -> None:
  """The train step's options as the config sets them, by the step's own checks.

  `jaxgan.step.options` imports no JAX. Weights and other schedulable fields are checked when
  their specs are parsed (`jaxgan.run.build.check_names`).

  Args:
    config: a run config.

  Raises:
    ValueError: (a `ConfigError`) the step's message, with each option named by its field.
  """
  from jaxgan.step import options  # pylint: disable=g-import-not-at-top

  lo, aug = config.loss, config.augment
  try:
    options.merge_penalties(dict(lo.penalties), lo.penalty, lo.penalty_weight)
    options.check_options(
      penalty_every=lo.penalty_every,
      n_critic=lo.n_critic,
      ema_decay=config.optim.ema_decay,
      augment=aug.name,
      augment_p=aug.p,
      ada_target=aug.ada_target,
      ada_kimg=aug.ada_kimg,
      ada_interval=aug.ada_interval,
      lecam_decay=lo.lecam_decay,
      num_classes=config.model.num_classes,
      pack=config.model.pack,
      class_weight=lo.class_weight,
    )
  except options.OptionError as e:
    names = {option: f"config.{field}" for option, field in STEP_FIELDS.items()}
    raise ConfigError(e.naming(names)) from None


def check_conditioning(config, *, toy: bool) -> None:
  """The class-conditioning fields: a labelled image data set, and no option without classes.

  Args:
    config: a run config.
    toy: whether the data set is a 2-D mixture (no labels).

  Raises:
    ValueError: naming the field and the fix.
  """
  m = config.model
  k = m.num_classes
  if not isinstance(k, int) or isinstance(k, bool) or k < 0:
    raise ConfigError(
      f"config.model.num_classes must be an integer >= 0 (0: unconditional); got {k!r}."
    )
  if config.data.fake_labels not in ("uniform", "data"):
    raise ConfigError(
      f"config.data.fake_labels must be 'uniform' or 'data' (the data set's class "
      f"frequencies); got {config.data.fake_labels!r}."
    )
  if not isinstance(m.shared_embedding, int) or m.shared_embedding < 0:
    raise ConfigError(
      f"config.model.shared_embedding must be an integer >= 0; got {m.shared_embedding!r}."
    )
  if k == 0:
    given = [
      f"model.{name}" for name in ("g_conditioning", "d_conditioning") if m[name] is not None
    ] + (["model.shared_embedding"] if m.shared_embedding else [])
    if given:
      raise ConfigError(
        f"config.{given[0]} conditions on class labels, but config.model.num_classes is 0 "
        "(unconditional); set --config.model.num_classes to the data set's class count."
      )
    return
  if toy:
    raise ConfigError(
      f"config.model.num_classes={k}: {config.data.name!r} has no labels (a 2-D mixture); set "
      "config.model.num_classes=0, or train on a labelled image data set (mnist, cifar10...)."
    )
  # Data sets named from outside ('tfds:', 'folder:') are checked when their labels are read.
  if config.data.name in CLASS_COUNTS and k != CLASS_COUNTS[config.data.name]:
    raise ConfigError(
      f"config.model.num_classes={k}, but {config.data.name!r} has "
      f"{CLASS_COUNTS[config.data.name]} classes; set "
      f"--config.model.num_classes={CLASS_COUNTS[config.data.name]} (or 0 for an "
      "unconditional GAN)."
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
