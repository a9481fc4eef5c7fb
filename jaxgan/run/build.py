"""The one builder: a config to the static `GAN` and its train step.

The training loop, the benchmarks and the studies all build their GAN here, so that a config
means the same network, optimiser and update wherever it is run.
"""

from __future__ import annotations

import ml_collections
import optax

from jaxgan import augment as augment_lib
from jaxgan import schedules
from jaxgan.errors import ConfigError, OptionError
from jaxgan.models import check_name as check_model_name
from jaxgan.models import make_models
from jaxgan.run.backbones import with_backbone_weights
from jaxgan.step.regularization import bind_options
from jaxgan.step.state import GAN
from jaxgan.step.train import TrainStep, make_train_step


def schedule(config: ml_collections.ConfigDict, field: str):
  """A schedulable config field (a number or a spec) as a schedule of the train step.

  Args:
    config: a run config.
    field: the field's dotted path, e.g. 'optim.g_lr'.

  Returns:
    The number itself (a float), or a jittable `step -> float32` (`jaxgan.schedules.parse`).

  Raises:
    ValueError: an unreadable spec, or a value below 0 within `config.run.steps`, naming the
      field.
  """
  spec = config
  for name in field.split("."):
    spec = spec[name]
  parsed = schedules.parse(spec, field=f"config.{field}")
  if isinstance(spec, (int, float)) and not isinstance(spec, bool):
    parsed = float(spec)
  low, _ = schedules.value_range(spec, config.run.steps, field=field)
  if low < 0:
    raise ValueError(f"config.{field}={spec!r} goes below 0 ({low:g}); it must stay >= 0.")
  return parsed


def _adam(config, lr_field: str, updates_per_step: int) -> optax.GradientTransformation:
  """Adam whose learning rate and b2 follow their schedules in train steps.

  optax evaluates a schedule at the optimizer's update count; a critic with n_critic updates per
  train step has its count divided back into train steps. A scheduled b2 needs
  `optax.inject_hyperparams`; with a constant b2 this is plain `optax.adam`, whose arithmetic
  (and so a run's result) does not change when a learning-rate schedule is added or removed
  elsewhere in the config.
  """
  o = config.optim
  in_steps = lambda s: s if not callable(s) else lambda count: s(count // updates_per_step)
  lr, b2 = in_steps(schedule(config, lr_field)), in_steps(schedule(config, "optim.b2"))
  if callable(b2):
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=o.b1, b2=b2)
  return optax.adam(learning_rate=lr, b1=o.b1, b2=b2)


def _known_shape(config) -> tuple[int, ...] | None:
  """One example's shape when the config alone fixes it (a registered data set), else None."""
  from jaxgan.data import registry  # pylint: disable=g-import-not-at-top

  try:
    shape = registry.get(config.data.name).shape
  except ValueError:
    return None  # a folder or a TFDS set: its shape is known once it is read
  side = config.data.get("pad_to") or config.data.get("resolution")
  return shape if side is None or len(shape) != 3 else (side, side, shape[2])


def check_names(config: ml_collections.ConfigDict) -> None:
  """Looks up every component the config names in the registry that owns it, before anything
  is built: the loss (`jaxgan.losses.get`), the penalties (`jaxgan.penalties.get`), the model
  (`jaxgan.models.check_name`), and every schedule spec (`schedule`); the augmentation is
  checked by `jaxgan.config.validate`, by its registry.

  Args:
    config: a run config.

  Raises:
    ConfigError: naming the field and the registry's message (which lists the valid names).
  """
  from jaxgan import losses, penalties  # pylint: disable=g-import-not-at-top

  lo = config.loss
  lookups = [
    ("model.name", lambda: check_model_name(config.model.name)),
    ("loss.name", lambda: losses.get(lo.name)),
  ]
  side = config.data.get("pad_to") or config.data.get("resolution")
  if side is not None:  # the image size the config fixes, checked before any data is read
    field = "data.pad_to" if config.data.get("pad_to") else "data.resolution"
    lookups.append((field, lambda: check_model_name(config.model.name, side)))
  shape = _known_shape(config)
  if shape is not None:  # the modules themselves, so that their keywords' checks run now
    lookups.append(("model", lambda: build_models(config, shape)))
  from jaxgan.config.checks import critic_backbone  # pylint: disable=g-import-not-at-top

  if critic_backbone(config) == "classifier" and config.model.kwargs.get("pretrained", True):
    from jaxgan.metrics import classifier_cache  # pylint: disable=g-import-not-at-top

    check = lambda: classifier_cache.check_backbone_dataset(config.data.name)
    lookups.append(("model.kwargs.backbone", check))
  named = [*lo.penalties.keys(), *([lo.penalty] if lo.penalty is not None else [])]
  for name in named:
    lookups.append((f"loss.penalty={name!r}", lambda name=name: penalties.get(name)))
  options = lo.penalty_options.to_dict()
  lookups.append(("loss.penalty_options", lambda: bind_options(named, options)))
  from jaxgan.config import schedulable_fields  # pylint: disable=g-import-not-at-top

  fields = [f for f in schedulable_fields() if config[f.split(".")[0]][f.split(".")[1]] is not None]
  fields += [f"loss.penalties.{name}" for name in lo.penalties.keys()]
  for field in fields:  # every schedule spec parsed and its range checked, as the step will
    lookups.append((field, lambda field=field: schedule(config, field)))
  from jaxgan.config.checks import STEP_FIELDS  # pylint: disable=g-import-not-at-top

  for field, lookup in lookups:
    try:
      lookup()
    except OptionError as e:  # the step's own rule, its arguments named by their fields
      raise ConfigError(e.naming({k: f"config.{v}" for k, v in STEP_FIELDS.items()})) from None
    except (ValueError, TypeError) as e:
      msg = str(e) if str(e).startswith("config.") else f"config.{field}: {e}"
      raise ConfigError(msg) from None


def build_gan(
  config: ml_collections.ConfigDict, image_shape: tuple[int, ...], *, load_backbone: bool = True
) -> GAN:
  """Builds G, D and their Adam optimisers from `config.model` and `config.optim`.

  Args:
    config: a run config (`jaxgan.config.default_config()` and overrides).
    image_shape: one example's shape without the batch axis: `(H, W, C)` for images, `(2,)` for
      the toy mixtures.
    load_backbone: give a feature critic its pretrained backbone (`jaxgan.run.backbones`);
      False when a checkpoint will supply it (`jaxgan.run.loading.load`).

  Returns:
    The static `GAN` (modules, optimisers, latent shape `(config.model.latent_dim,)`).

  Raises:
    ValueError: unknown model name or keyword, or an image shape the model does not support.
  """
  m = config.model
  g, d = build_models(config, image_shape)
  if load_backbone:
    d = with_backbone_weights(d, config)  # a feature-network critic's pretrained backbone
  return GAN(
    g,
    d,
    _adam(config, "optim.g_lr", 1),
    _adam(config, "optim.d_lr", config.loss.n_critic),
    latent_shape=(m.latent_dim,),
    pack=m.pack,
    num_classes=m.num_classes,
  )


def build_models(config: ml_collections.ConfigDict, image_shape: tuple[int, ...]):
  """The unbound modules `(G, D)` of `config.model` (`jaxgan.models.make_models`): cheap, no
  parameters and no weights; every check the families make of their keywords runs here.

  Raises:
    ValueError: as `build_gan`.
  """
  m = config.model
  return make_models(
    m.name,
    image_shape=tuple(image_shape),
    latent_dim=m.latent_dim,
    width=m.width,
    d_norm=m.d_norm,
    dtype=m.compute_dtype,
    minibatch_std=m.minibatch_std,
    num_classes=m.num_classes,
    g_conditioning=m.g_conditioning,
    d_conditioning=m.d_conditioning,
    shared_embedding=m.shared_embedding,
    **m.kwargs.to_dict(),
  )


def build_train_step(
  config: ml_collections.ConfigDict, gan: GAN, class_frequencies=None
) -> TrainStep:
  """Builds `train_step(state, batch, key) -> (state, metrics)` from `config.loss`.

  Args:
    config: a run config.
    gan: the GAN from `build_gan(config, ...)`.
    class_frequencies: the data set's class frequencies, float `[num_classes]`; needed when a
      conditional run draws its fake labels like the data's (`config.data.fake_labels='data'`).

  Returns:
    The pure (not yet jitted) train step of `jaxgan.step.train.make_train_step`.

  Raises:
    ValueError: unknown loss or penalty name, an option the step refuses
      (`jaxgan.step.options`), or a gradient penalty on a BatchNorm critic, before anything is
      compiled; `data.fake_labels='data'` without `class_frequencies`.
  """
  lo, o, aug = config.loss, config.optim, config.augment
  penalties = {name: schedule(config, f"loss.penalties.{name}") for name in lo.penalties}
  ema = o.ema_decay
  if o.ema_half_life is not None:
    half_life = schedule(config, "optim.ema_half_life")
    ema = schedules.ema_decay_from_half_life(half_life, config.data.batch_size, o.ema_rampup)
  augment, augment_p = None, None
  if aug.name is not None:
    augment = augment_lib.get(aug.name, aug.policy)  # its rules: config.validate, check_augment
    if aug.p is not None:
      augment_p = schedule(config, "augment.p")  # in [0, 1]: config.validate checks it
  fake_label_probs = None
  if gan.num_classes and config.data.fake_labels == "data":
    if class_frequencies is None:
      raise ValueError(
        "config.data.fake_labels='data' draws fake labels with the data set's class "
        "frequencies: pass class_frequencies (the loop reads them from the data)."
      )
    fake_label_probs = class_frequencies
  return make_train_step(
    gan,
    loss=lo.name,
    penalties=penalties,
    penalty=lo.penalty,
    penalty_weight=schedule(config, "loss.penalty_weight"),
    penalty_every=lo.penalty_every,
    penalty_options=lo.penalty_options.to_dict(),
    n_critic=lo.n_critic,
    ema_decay=ema,
    weight_clip=lo.weight_clip,
    augment=augment,
    augment_p=augment_p,
    ada_target=aug.ada_target,
    ada_kimg=aug.ada_kimg,
    ada_interval=aug.ada_interval,
    consistency_weight=schedule(config, "loss.consistency_weight"),
    lecam_weight=schedule(config, "loss.lecam_weight"),
    lecam_decay=lo.lecam_decay,
    fake_label_probs=fake_label_probs,
    class_weight=lo.class_weight,
  )
