"""The data sets jaxgan knows by name: one table of their facts, and the checks that use them.

Each row of `DATA_SETS` is a data set's registration: its name (``config.data.name``), its kind
(``'image'``: records read on the host; ``'toy'``: 2-D points sampled inside the compiled step),
one example's shape, its class count, the definition that makes it (a TFDS builder class or a
mixture factory, as ``'module:attribute'``, imported only when the data set is built) and where
its files come from. Adding a data set is one row here plus its definition, when it needs a new
one. Data sets named from outside jaxgan are ``'tfds:NAME[/CONFIG][:VERSION]'``
(:mod:`jaxgan.data.tfds_named`) and ``'folder:PATH'`` (:mod:`jaxgan.data.folder`).

This module imports nothing but the standard library and `jaxgan.errors`, so the run config
(`jaxgan.config`, read without JAX) asks it which names exist, which are toys and how many classes
each has; the checks below serve both the config and the code that builds the data.

>>> get("mnist").shape, get("mnist").num_classes
((28, 28, 1), 10)
>>> names("toy")
('toy_grid', 'toy_ring')
>>> check_name("tfds:celeb_a")
>>> check_name("imagenet")
Traceback (most recent call last):
...
jaxgan.errors.ConfigError: Unknown data set 'imagenet'; valid names: cifar10, cifar10_jpeg, fashion_mnist, mnist, stacked_mnist, toy_grid, toy_ring, or 'tfds:NAME[/CONFIG]' (a TFDS image data set), 'folder:PATH' (a folder of images).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from jaxgan.errors import ConfigError

# What a data set is: records of images (and labels) read on the host, or 2-D points sampled
# inside the compiled step from fold_in(key, step).
KINDS = ("image", "toy")
# Names of data sets defined outside jaxgan: the prefix, then the TFDS name or the folder's path.
TFDS_PREFIX = "tfds:"
FOLDER_PREFIX = "folder:"
_EXTERNAL = (
  f"'{TFDS_PREFIX}NAME[/CONFIG]' (a TFDS image data set), "
  f"'{FOLDER_PREFIX}PATH' (a folder of images)"
)


@dataclasses.dataclass(frozen=True)
class DataSet:
  """A data set jaxgan knows by name, and its facts.

  Attributes:
    name: the name a config gives (``config.data.name``).
    kind: ``'image'`` or ``'toy'`` (see `KINDS`).
    shape: one example's shape: ``(h, w, c)`` uint8 images, or ``(2,)`` float32 points.
    num_classes: the classes of its labels, in ``[0, num_classes)``; 0 for a set without labels.
    definition: ``'module:attribute'`` of what makes it: a `jaxgan.data.base_builder.JaxganBuilder`
      subclass (images) or a function returning a `jaxgan.data.toy.Mixture` (toys).
    source: where its files come from, in words.
    options: keyword arguments of ``definition`` (e.g. a mixture's parameters).
  """

  name: str
  kind: str
  shape: tuple[int, ...]
  num_classes: int
  definition: str
  source: str
  options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def load(self) -> Any:
    """The definition (a builder class or a mixture factory), imported on first use."""
    module, _, attribute = self.definition.partition(":")
    return getattr(importlib.import_module(module), attribute)

  def make(self, **kwargs: Any) -> Any:
    """The definition called with `options` and ``kwargs``: a builder, or a `Mixture`."""
    return self.load()(**self.options, **kwargs)


# The registrations, one row per data set. `definition` and `source` say how each is made.
_TABLE = (
  DataSet(
    "mnist",
    kind="image",
    shape=(28, 28, 1),
    num_classes=10,
    definition="jaxgan.data.builders:JaxganMnist",
    source="IDX .gz files (local, or the storage.googleapis.com mirror)",
  ),
  DataSet(
    "fashion_mnist",
    kind="image",
    shape=(28, 28, 1),
    num_classes=10,
    definition="jaxgan.data.builders:JaxganFashionMnist",
    source="IDX .gz files (local, or the Zalando S3 release)",
  ),
  DataSet(
    "stacked_mnist",
    kind="image",
    shape=(28, 28, 3),
    num_classes=1000,
    definition="jaxgan.data.builders:JaxganStackedMnist",
    source="MNIST's files: three digits per example, drawn with a fixed seed (jaxgan.data.stacked)",
  ),
  DataSet(
    "cifar10",
    kind="image",
    shape=(32, 32, 3),
    num_classes=10,
    definition="jaxgan.data.builders:JaxganCifar10",
    source="the lossless binary release cifar-10-binary.tar.gz (local, or downloaded)",
  ),
  DataSet(
    "cifar10_jpeg",
    kind="image",
    shape=(32, 32, 3),
    num_classes=10,
    definition="jaxgan.data.builders:JaxganCifar10Jpeg",
    source="local JPEG-recompressed npz files only (lossy: FID on it is not comparable with "
    "published CIFAR-10 numbers)",
  ),
  DataSet(
    "toy_ring",
    kind="toy",
    shape=(2,),
    num_classes=0,
    definition="jaxgan.data.toy:ring",
    source="8 Gaussians on a circle (PacGAN/VEEGAN protocol), sampled inside the step",
  ),
  DataSet(
    "toy_grid",
    kind="toy",
    shape=(2,),
    num_classes=0,
    definition="jaxgan.data.toy:grid",
    source="25 Gaussians on a 5x5 grid (PacGAN/VEEGAN protocol), sampled inside the step",
  ),
)
DATA_SETS: dict[str, DataSet] = {d.name: d for d in _TABLE}


def names(kind: str | None = None) -> tuple[str, ...]:
  """The registered names, sorted; only those of ``kind`` (``'image'``, ``'toy'``) when given."""
  return tuple(sorted(n for n, d in DATA_SETS.items() if kind in (None, d.kind)))


def is_toy(name: str) -> bool:
  """True for a 2-D mixture sampled inside the compiled step (no images, no labels)."""
  d = DATA_SETS.get(name) if isinstance(name, str) else None
  return d is not None and d.kind == "toy"


def is_external(name: str) -> bool:
  """True for ``'tfds:NAME'`` or ``'folder:PATH'`` with something after the prefix."""
  return (
    isinstance(name, str)
    and name.startswith((TFDS_PREFIX, FOLDER_PREFIX))
    and bool(name.split(":", 1)[1].strip())
  )


def get(name: str, kinds: tuple[str, ...] = KINDS, *, field: str | None = None) -> DataSet:
  """The registration of a data set of one of ``kinds``.

  Args:
    name: a registered name, e.g. ``'mnist'``.
    kinds: the kinds accepted (`KINDS`).
    field: the config field that gave ``name``, for the message (None: the name alone).

  Raises:
    jaxgan.errors.ConfigError: any other name; the message lists the valid ones.
  """
  d = DATA_SETS.get(name) if isinstance(name, str) else None
  if d is None or d.kind not in kinds:
    valid = sorted(n for kind in kinds for n in names(kind))
    what = f"{field}={name!r}" if field else repr(name)
    raise ConfigError(f"Unknown data set {what}; valid names: {', '.join(valid)}, or {_EXTERNAL}.")
  return d


def check_name(name: str, *, kinds: tuple[str, ...] = KINDS, field: str | None = None) -> None:
  """Checks a data set name: registered (of one of ``kinds``), or named from outside jaxgan.

  Whether a TFDS data set or a folder exists is checked when it is opened.

  Args:
    name: the name, e.g. ``'mnist'``, ``'tfds:celeb_a'``, ``'folder:/photos'``.
    kinds: the kinds accepted; ``'tfds:'`` and ``'folder:'`` names are images.
    field: the config field that gave ``name``, for the message (None: the name alone).

  Raises:
    jaxgan.errors.ConfigError: naming the valid names.
  """
  if not (is_external(name) and "image" in kinds):
    get(name, kinds, field=field)


def check_keys(name: str, image_key: str, label_key: str | None) -> None:
  """Checks the image and label keys of a data set whose records jaxgan writes.

  jaxgan's own image data sets and folders have the records ``'image'`` and ``'label'``; a
  ``'tfds:'`` data set's keys are its features, checked when it is opened
  (`jaxgan.data.tfds_named.check_features`); a toy has no records.

  Args:
    name: the data set (``config.data.name``).
    image_key: the image feature (``config.data.image_key``).
    label_key: the label feature, or None when no labels are read (``config.data.label_key``).

  Raises:
    jaxgan.errors.ConfigError: naming the fields and the valid keys.
  """
  if name.startswith(TFDS_PREFIX) or is_toy(name):
    return
  if image_key != "image" or label_key not in (None, "label"):
    what = (
      "A folder's records are 'image' and 'label' (its class subfolder)"
      if name.startswith(FOLDER_PREFIX)
      else f"{name!r} has the features 'image' and 'label'"
    )
    raise ConfigError(f"{what}; got config.data.image_key={image_key!r}, label_key={label_key!r}.")


def check_num_classes(
  name: str,
  num_classes: int,
  label_range: tuple[int, int] | None = None,
  split: str | None = None,
) -> None:
  """Checks a class-conditional run's class count against its data set's classes.

  A registered data set's count is known before anything is read; a data set named from outside
  (``'tfds:'``, ``'folder:'``) is checked when its labels are read (``label_range``).

  Args:
    name: the data set (``config.data.name``).
    num_classes: the classes the run conditions on (``config.model.num_classes``); 0 (an
      unconditional run) is not checked.
    label_range: the lowest and highest label of the split read, or None before reading.
    split: the split those labels come from (``config.data.split``), for the message.

  Raises:
    jaxgan.errors.ConfigError: a registered data set without labels or with another class count;
      labels read that ``num_classes`` classes cannot hold, or (a data set named from outside)
      that do not fill them.
  """
  if not num_classes:
    return
  known = DATA_SETS.get(name)
  if known is not None and not known.num_classes:
    raise ConfigError(
      f"config.model.num_classes={num_classes}: {name!r} has no labels"
      + (" (a 2-D mixture)" if known.kind == "toy" else "")
      + "; set config.model.num_classes=0, or train on a labelled image data set (mnist, "
      "cifar10...)."
    )
  if known is not None and num_classes != known.num_classes:
    raise ConfigError(
      f"config.model.num_classes={num_classes}, but {name!r} has {known.num_classes} classes; "
      f"set --config.model.num_classes={known.num_classes} (or 0 for an unconditional GAN)."
    )
  if label_range is None:
    return
  low, high = label_range
  if high + 1 > num_classes or (high + 1 < num_classes and known is None):
    raise ConfigError(
      f"config.model.num_classes={num_classes}, but the labels of {name!r} ({split}) run from "
      f"{low} to {high}: set --config.model.num_classes={high + 1} (or 0 for an unconditional "
      "GAN)."
    )
