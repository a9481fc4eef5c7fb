"""The run config: every field a run reads, its default, and its validation.

This module imports only `ml_collections` and `jaxgan.data.registry` (the data sets by name, no
NumPy), so an experiment config (`experiments/configs/*.py`) can start from `default_config()`
without loading JAX. Fields are grouped into sections, as in score_sde's configs; a field is
addressed as `config.<section>.<field>` in Python and as `--config.<section>.<field>=value` on
the command line.

Sections that define the experiment (`data`, `model`, `loss`, `augment`, `optim`, `seed`)
must be equal when a run is resumed; the others (`run`, `log`, `eval`, `checkpoint`) say how
long, where and how often, and may change between launches (see `RESUMABLE_SECTIONS`). That rule
is structural: a new field is safe on resume exactly when it is put in one of those sections.

  >>> c = default_config()
  >>> c.loss.name, c.data.batch_size
  ('non_saturating', 64)
  >>> validate(c)
"""

from __future__ import annotations

import os

import ml_collections
from ml_collections.config_dict import placeholder

from jaxgan.config import checks as config_checks
from jaxgan.config.checks import read_options as read_options
from jaxgan.config.moves import FLAT_LAYOUT, REMOVED, flat_layout_message
from jaxgan.data import registry as data_registry
from jaxgan.errors import ConfigError

# Sections whose fields may differ between a checkpoint and the run that resumes it.
RESUMABLE_SECTIONS = ("run", "log", "eval", "checkpoint")

# The 2-D mixtures sampled inside the compiled program (jaxgan.data.registry knows every data set).
TOY_DATASETS = data_registry.names("toy")
# Sections whose keys are free-form: model keyword arguments, penalty names to weights, and the
# penalties' keyword arguments.
FREE_FORM = ("model.kwargs", "loss.penalties", "loss.penalty_options")


def check_override(path: str) -> None:
  """Checks a field path against the layout: a command-line override's, or a config's leaf.

  Args:
    path: the dotted field path, e.g. 'run.steps' or 'model.kwargs.conv'.

  Raises:
    ConfigError: (a ValueError) a key of the old flat layout (naming its new place) or a field
      that does not exist (naming the valid fields of its section).

  >>> check_override("run.steps")
  >>> check_override("steps")
  Traceback (most recent call last):
  ...
  jaxgan.errors.ConfigError: Config key 'steps' is of the flat layout that jaxgan no longer reads; it now lives at run.steps (--config.run.steps=...). Every field is in jaxgan/config/__init__.py (default_config).
  """
  if path in REMOVED:
    raise ConfigError(f"config.{path} is gone; use {REMOVED[path]}.")
  names = path.split(".")
  node = default_config()
  for depth, name in enumerate(names):
    if not isinstance(node, ml_collections.ConfigDict) or (
      depth >= 2 and ".".join(names[:2]) in FREE_FORM
    ):
      return  # a value, or inside model.kwargs or loss.penalties (checked where they are used)
    if name not in node:
      if depth == 0 and name in FLAT_LAYOUT:
        raise ConfigError(flat_layout_message(name))
      where = ".".join(names[:depth]) or "the config"
      raise ConfigError(
        f"Unknown config field {path!r}: {where} has no {name!r}; its fields are "
        f"{', '.join(node.keys())} (every field: jaxgan/config/__init__.py)."
      )
    node = node[name]
  if isinstance(node, ml_collections.ConfigDict) and path not in FREE_FORM:
    if path in FLAT_LAYOUT:
      raise ConfigError(flat_layout_message(path))
    raise ConfigError(
      f"config.{path} is a section, not a value; set one of its fields: "
      f"{', '.join(f'{path}.{k}' for k in node.keys())}."
    )


def _schedulable(default):
  """A field that takes a number or a schedule spec string (jaxgan.schedules)."""
  return ml_collections.FieldReference(default, field_type=object)


def schedulable_fields() -> list[str]:
  """The dotted paths of the fields that take a schedule spec (those marked [S] below)."""
  c, out = default_config(), []
  for section in c.keys():
    if isinstance(c[section], ml_collections.ConfigDict):
      for name in c[section].keys():
        ref = c[section].get_ref(name)
        if isinstance(ref, ml_collections.FieldReference) and ref.get_type() is object:
          out.append(f"{section}.{name}")
  return out


def default_config() -> ml_collections.ConfigDict:
  """Returns the default config: a non-saturating DCGAN on MNIST.

  Returns:
    A `ml_collections.ConfigDict` with the sections `data`, `model`, `loss`, `optim`, `run`,
    `log`, `eval`, `checkpoint` and the top-level `seed`. Experiment configs override fields.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  # A name in jaxgan.data.registry, 'tfds:NAME[/CONFIG]' (a TFDS image data set prepared as
  # array_record) or 'folder:PATH' (image files at any depth, classes from first-level
  # subfolders; jaxgan.data).
  c.data.name = "mnist"
  # Bring images to resolution x resolution squares by `crop`: 'resize_crop' (scale the short side,
  # crop the centre), 'center_crop' (unscaled) or 'pad' (scale the long side, pad with black).
  # None: the data set's own size, which must be square.
  c.data.resolution = placeholder(int)
  c.data.crop = "resize_crop"
  c.data.image_key = "image"  # the image feature of a TFDS data set
  c.data.label_key = "label"  # its class feature, read when model.num_classes > 0
  c.data.pad_to = placeholder(int)  # pad images to pad_to x pad_to (border value -1)
  c.data.batch_size = 64  # global examples per discriminator update
  c.data.split = "train"  # the TFDS split trained on, e.g. 'train[:10%]' for a tenth of the data
  # Class-conditional runs (model.num_classes > 0): the labels of generated examples are drawn
  # 'uniform' over the classes or with the data set's class frequencies ('data').
  c.data.fake_labels = "uniform"

  c.model = ml_collections.ConfigDict()
  c.model.name = "dcgan"  # a model family: one of jaxgan.models.MODELS (mlp, resnet, ...)
  c.model.latent_dim = 100
  c.model.width = placeholder(int)  # base channel count; None: the model's default
  c.model.d_norm = placeholder(str)  # 'batch', 'layer', 'spectral', 'none'; None: the model's
  # 'float32' or 'bfloat16' (mixed precision: float32 params, optimizer states, losses and
  # penalty norms; bfloat16 activations and matmuls).
  c.model.compute_dtype = "float32"
  c.model.pack = 1  # D judges packs of this many examples (PacGAN); 1: none
  c.model.minibatch_std = 0  # D's minibatch-stddev group size (ProGAN); 0: none
  c.model.kwargs = ml_collections.ConfigDict()  # model-specific, e.g. g_hidden for 'mlp'
  # Class conditioning: 0 for an unconditional GAN, else the data set's number of classes.
  c.model.num_classes = 0
  # G: 'cbn' (conditional BatchNorm; dcgan, resnet) or 'concat' (mlp); None: the model's default.
  c.model.g_conditioning = placeholder(str)
  # D: 'projection' (Miyato & Koyama 2018), 'acgan' (auxiliary classifier, Odena et al. 2017) or
  # 'concat' (mlp); None: 'projection'.
  c.model.d_conditioning = placeholder(str)
  c.model.shared_embedding = 0  # BigGAN's shared class embedding for G's CBN; 0: per layer

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "non_saturating"  # a name in jaxgan.losses.LOSSES
  # Gradient penalties: a name in jaxgan.penalties.PENALTIES -> its weight, e.g. R3GAN's
  # {"r1": gamma / 2, "r2": gamma / 2}. Weights marked [S] here take a number or a schedule spec
  # (jaxgan.schedules: 'cosine(0.025, 0.0025, 39000)'), in train steps.
  c.loss.penalties = ml_collections.ConfigDict()
  c.loss.penalty = placeholder(
    str
  )  # one more penalty, for the command line: --config.loss.penalty=r1
  c.loss.penalty_weight = _schedulable(10.0)  # [S] the weight of loss.penalty
  # Keyword -> value for every penalty that takes it, e.g. sigma for approx_r1/approx_r2.
  c.loss.penalty_options = ml_collections.ConfigDict()
  c.loss.penalty_every = 1  # lazy regularisation: penalties every k-th D update, weight x k
  c.loss.n_critic = 1  # discriminator updates per generator update
  c.loss.weight_clip = placeholder(float)  # clip D's weights to [-c, c] (original WGAN)
  c.loss.consistency_weight = _schedulable(0.0)  # [S] bCR on real and fake (paper: 10); 0: off
  c.loss.lecam_weight = _schedulable(0.0)  # [S] LeCam regulariser (paper: 0.3); 0: off
  c.loss.lecam_decay = 0.99  # EMA decay of LeCam's anchors
  c.loss.class_weight = 1.0  # ACGAN's class loss weight (model.d_conditioning='acgan')

  # Differentiable augmentation of real and fake images before D (jaxgan.augment).
  c.augment = ml_collections.ConfigDict()
  c.augment.name = placeholder(
    str
  )  # None, or in jaxgan.augment.AUGMENTATIONS: 'diffaugment', 'ada'
  # None: the method's default ('color,translation,cutout' for DiffAugment, 'bgc' for ADA).
  c.augment.policy = placeholder(str)
  # [S] the probability; None: 1 for diffaugment; with ada_target, ADA adapts it from 0.
  c.augment.p = _schedulable(None)
  c.augment.ada_target = placeholder(float)  # adapt p to hold E[sign D(real)] here (ADA: 0.6)
  c.augment.ada_kimg = 500.0  # thousands of images over which ADA's p may move by 1
  c.augment.ada_interval = 4  # train steps between ADA's adjustments of p

  c.optim = ml_collections.ConfigDict()
  c.optim.g_lr = _schedulable(2e-4)  # [S]
  c.optim.d_lr = _schedulable(2e-4)  # [S] in train steps, whatever loss.n_critic
  c.optim.b1 = 0.5
  c.optim.b2 = _schedulable(0.999)  # [S]
  c.optim.ema_decay = 0.999  # EMA of G's parameters; samples and metrics use it
  # [S] or None: the EMA's half-life in images (StyleGAN2-ADA, R3GAN); when set, replaces
  # ema_decay. ema_rampup: None, or bound the half-life by this fraction of the images seen.
  c.optim.ema_half_life = _schedulable(None)
  c.optim.ema_rampup = placeholder(float)

  c.run = ml_collections.ConfigDict()
  c.run.steps = 2000  # total train steps (one step: n_critic D updates and one G update)
  # Train steps per host call. Data sampled inside the program (the toy mixtures) run this many
  # steps in one compiled lax.scan; log, sample, eval and checkpoint intervals must be multiples.
  c.run.steps_per_call = 1
  c.run.data_dir = os.environ.get("JAXGAN_DATA_DIR") or placeholder(str)  # TFDS data_dir
  c.run.source_dir = os.environ.get("JAXGAN_SOURCE_DIR") or placeholder(str)  # offline files
  c.run.loader_workers = 0  # grain worker processes; 0 loads in the main process
  c.run.max_consecutive_skipped = 20  # stop after this many non-finite updates in a row
  # JAX's persistent compilation cache (jaxgan.run.compilation_cache): None for
  # $JAXGAN_CACHE_DIR/xla, else ~/.cache/jaxgan/xla; '' turns it off.
  c.run.compilation_cache_dir = placeholder(str)

  c.log = ml_collections.ConfigDict()
  c.log.every = 50  # steps between metric lines
  c.log.sample_every = 500  # steps between sample grids
  c.log.num_samples = 64  # images in a sample grid

  c.eval = ml_collections.ConfigDict()
  c.eval.every = 500
  c.eval.num_samples = 2500
  # Image metrics (jaxgan.metrics.Evaluator): "" for none, or e.g. "fcd,kid,precision_recall".
  # The toy mixtures always report mode coverage.
  c.eval.metrics = ""
  # "classifier" (jaxgan's own, trained once and cached when classifier_path is unset) or
  # "inception" (weights: inception_weights, else found; see jaxgan.metrics.inception).
  c.eval.extractor = "classifier"
  c.eval.classifier_path = placeholder(str)  # None: jaxgan.metrics.classifier_cache trains one
  c.eval.inception_weights = placeholder(str)
  c.eval.reference_split = "train"
  # Classes the conditional metrics (class_acc, intra_fcd) evaluate: comma-separated indices,
  # '' for all (intra-class distances are refused above 20 classes: name a subset).
  c.eval.classes = ""
  # Reference statistics (None: <workdir>/reference_stats); when set, also the cached classifiers
  # and Stacked MNIST floors (None: $JAXGAN_CACHE_DIR, else ~/.cache/jaxgan).
  c.eval.cache_dir = placeholder(str)

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every = 500
  c.checkpoint.keep = 3
  return c


def toy_config(mixture: str, steps: int):
  """An MLP GAN (3 x 256 ReLU, latent 2) on a 2-D mixture, sampled inside the compiled program.

  Args:
    mixture: 'ring' or 'grid'.
    steps: train steps.

  Returns:
    The run config; the loop reports mode coverage (PacGAN/VEEGAN protocol, 2,500 samples).
  """
  c = default_config()
  c.data.name = f"toy_{mixture}"
  c.data.batch_size = 256
  c.model.name = "mlp"
  c.model.latent_dim = 2
  c.model.kwargs.g_hidden = (256, 256, 256)
  c.model.kwargs.d_hidden = (256, 256, 256)
  c.model.kwargs.output_activation = "none"  # samples are points in the plane, not pixels
  c.optim.ema_decay = 0.99
  c.run.steps = steps
  c.run.steps_per_call = 500  # one compiled lax.scan per 500 steps: the host stays out of the way
  c.log.every = 500
  c.log.sample_every = 5000
  c.eval.every = 1000
  c.eval.num_samples = 2500
  c.checkpoint.every = 5000
  return c


def is_toy(config: ml_collections.ConfigDict) -> bool:
  """True when the run trains on a 2-D mixture sampled inside the compiled program."""
  return data_registry.is_toy(config.data.name)


def _leaf_paths(config: ml_collections.ConfigDict, prefix: str = ""):
  """The dotted paths of a config's values; `model.kwargs` counts as one value (free-form)."""
  for key in config.keys():
    path = prefix + key
    if isinstance(config[key], ml_collections.ConfigDict) and path not in FREE_FORM:
      yield from _leaf_paths(config[key], path + ".")
    else:
      yield path


def check_data(config: ml_collections.ConfigDict) -> None:
  """Checks `config.data`'s name, resolution, crop policy and keys, with the checks of
  `jaxgan.data` (whether a TFDS data set or a folder exists is checked when it is opened, before
  anything is built or written).

  Raises:
    ConfigError: naming the field, the problem and the valid values.
  """
  from jaxgan.data import images  # pylint: disable=g-import-not-at-top (NumPy)

  data = config.data
  data_registry.check_name(data.name, field="config.data.name")
  images.check_resolution(data.get("resolution"))
  images.check_crop(data.get("crop", "resize_crop"))
  if is_toy(config) and data.get("resolution") is not None:
    raise ConfigError(f"config.data.resolution is for images; {data.name!r} is a 2-D mixture.")
  options = read_options(config)
  data_registry.check_keys(data.name, options["image_key"], options["label_key"])


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks the config's structure and values before anything is built.

  The rules are those of the components the fields configure, asked here (`config.checks`):
  the step's options, the models', the augmentations', the data sets' and the metrics'; the
  names (loss, penalty, model) and schedule specs by `jaxgan.run.build.check_names`. Those load
  JAX when this runs; importing the config does not.

  Args:
    config: a config built from `default_config()`.

  Raises:
    ConfigError: (a ValueError) naming the field, the problem and the fix (unknown key, unknown
      data set or name, a count that is not positive, an interval that is not a multiple of
      `run.steps_per_call`, a metric the run cannot compute).
  """
  for path in _leaf_paths(config):
    check_override(path)
  check_data(config)
  positive = {
    "data.batch_size": config.data.batch_size,
    "run.steps": config.run.steps,
    "run.steps_per_call": config.run.steps_per_call,
    "log.every": config.log.every,
    "log.sample_every": config.log.sample_every,
    "eval.every": config.eval.every,
    "checkpoint.every": config.checkpoint.every,
    "checkpoint.keep": config.checkpoint.keep,
  }
  for name, value in positive.items():
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"config.{name} must be a positive integer; got {value!r}.")
  k = config.run.steps_per_call
  if k > 1:
    if not is_toy(config):
      raise ConfigError(
        f"config.run.steps_per_call={k} needs data sampled inside the program "
        f"({', '.join(TOY_DATASETS)}); set it to 1 for {config.data.name!r}."
      )
    intervals = {
      "run.steps": config.run.steps,
      "log.every": config.log.every,
      "log.sample_every": config.log.sample_every,
      "eval.every": config.eval.every,
      "checkpoint.every": config.checkpoint.every,
    }
    bad = {n: v for n, v in intervals.items() if v % k}
    if bad:
      raise ConfigError(
        f"{bad} must be multiples of config.run.steps_per_call={k} (the loop "
        f"sees only every {k}-th step); change them or steps_per_call."
      )
  config_checks.check_model(config)
  config_checks.check_step_options(config)
  config_checks.check_recipes(config, toy=is_toy(config))
  config_checks.check_augment(config)
  config_checks.check_conditioning(config)
  rampup = config.optim.ema_rampup
  if rampup is not None and not rampup > 0:
    raise ConfigError(
      f"config.optim.ema_rampup must be > 0 (StyleGAN2-ADA: 0.05) or None; got {rampup}."
    )
  if config.model.compute_dtype not in ("float32", "bfloat16"):
    raise ConfigError(
      "config.model.compute_dtype must be 'float32' or 'bfloat16'; got "
      f"{config.model.compute_dtype!r}."
    )
  config_checks.check_metrics(config)
  from jaxgan.run.build import check_names  # pylint: disable=g-import-not-at-top (JAX)

  check_names(config)
