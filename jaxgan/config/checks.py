"""Value checks of the run config's recipe, model and conditioning fields, for `validate`.

Imports nothing but `jaxgan.errors` and `jaxgan.data.registry` at import time (an experiment
config loads `jaxgan.config` without JAX). The rules of the step, the models and the augmentations
are those components' own checks, imported inside `check_step_options`, `check_model` and
`check_augment`; here their argument names become field names. Every message names the field and
the fix (a `ConfigError`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from jaxgan.data import registry as data_registry
from jaxgan.errors import ConfigError, OptionError


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
  "penalty_options": "loss.penalty_options",
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
  "batch_size": "data.batch_size",  # per critic update, as the message says
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
  with _fields(STEP_FIELDS):
    options.merge_penalties(dict(lo.penalties), lo.penalty, lo.penalty_weight)
    # a train step reads batch_size examples per critic update (jaxgan.run.inputs)
    options.check_batch(config.data.batch_size * lo.n_critic, lo.n_critic, config.model.pack)
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


# The config field that sets each argument of the models' checks.
MODEL_FIELDS = {
  name: f"model.{name}"
  for name in (
    "minibatch_std",
    "num_classes",
    "g_conditioning",
    "d_conditioning",
    "shared_embedding",
  )
}


@contextlib.contextmanager
def _fields(fields: Mapping[str, str]):
  """A component's `OptionError` inside, as a `ConfigError` naming each argument by its field."""
  try:
    yield
  except OptionError as e:
    raise ConfigError(e.naming({arg: f"config.{field}" for arg, field in fields.items()})) from None


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
  with _fields(MODEL_FIELDS):
    layers.check_minibatch_std(m.minibatch_std)
    conditioning.check_classes(
      m.num_classes, m.g_conditioning, m.d_conditioning, m.shared_embedding
    )


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
  if k == 0:
    return
  # A data set named from outside ('tfds:', 'folder:') is checked when its labels are read.
  data_registry.check_num_classes(config.data.name, k)


def critic_backbone(config) -> str | None:
  """The frozen network under the config's critic (`model.kwargs.backbone`, else the family's
  default), or None for a family without one."""
  import inspect  # pylint: disable=g-import-not-at-top

  from jaxgan.models import registry  # pylint: disable=g-import-not-at-top

  try:
    family = registry.get(config.model.name)
  except ValueError:
    return None  # an unknown name: build.check_names says so
  default = inspect.signature(family.build).parameters.get("backbone")
  if default is None:
    return None
  return config.model.kwargs.get("backbone", default.default)


def check_metrics(config) -> None:
  """Refuses, before a run writes anything, image metrics its config cannot compute (names, a
  metric's data set, the classes and samples of conditional metrics, `class_acc`'s classifier):
  `jaxgan.metrics.eval_networks.check_request` on the config's values. Computes nothing.

  Raises:
    ConfigError: as `check_request`, whose messages name the `eval` fields.
  """
  if data_registry.is_toy(config.data.name) or not config.eval.metrics:
    return
  from jaxgan.metrics import eval_networks  # pylint: disable=g-import-not-at-top

  e = config.eval
  try:
    eval_networks.check_critic_network(e.extractor, critic_backbone(config))
    eval_networks.check_request(
      e.metrics,
      dataset=config.data.name,
      extractor=e.extractor,
      num_samples=e.num_samples,
      num_classes=config.model.num_classes,
      classes=e.get("classes") or None,
      classifier_path=e.classifier_path,
    )
  except ValueError as err:
    raise ConfigError(str(err)) from None


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
