"""Value checks of the run config's recipe and conditioning fields, for `jaxgan.config.validate`.

Imports nothing but `jaxgan.errors` (an experiment config loads `jaxgan.config` without JAX);
every message names the field and the fix (a `ConfigError`).
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
  if config.loss.class_weight < 0:
    raise ConfigError(f"config.loss.class_weight must be >= 0; got {config.loss.class_weight}.")
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
