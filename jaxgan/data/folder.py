"""A folder of image files as a data set (``data.name='folder:PATH'``), prepared once into array_record.

What StyleGAN's ``dataset_tool.py`` does as a separate step happens on first use: every image under
the folder (`jaxgan.data.images`: png, jpg, webp, bmp, nested at any depth) is decoded, brought to a
``resolution`` square by the crop policy and written by a TFDS builder into
``<data_dir>/jaxgan_folder/<config>/``, then read like jaxgan's other data sets. The config name
holds the folder's path, the resolution, the crop policy and a digest of the folder's manifest
(every file's relative path, size and modification time), so a changed folder is noticed and
prepared again into a new copy; a run resumed on a changed folder is refused by the loader (the
digest is part of its stream). ``folder_manifest.json`` beside the records lists the files, the
classes, what was skipped and what was converted.

Labels: each first-level subfolder is a class (``label``: its index in sorted order); images lying
directly in the folder have label -1, which class-conditional runs refuse.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import re
from typing import Any

import tensorflow_datasets as tfds

from jaxgan.data import images as images_lib
from jaxgan.data import registry
from jaxgan.data.base_builder import JaxganBuilder, _features
from jaxgan.errors import ConfigError, UserError

log = logging.getLogger(__name__)

MANIFEST = "folder_manifest.json"
# An image whose short side is below this fraction of the resolution would be upscaled into a
# blur rather than data: skipped, and named in the log.
MIN_SCALE = 0.25


class FolderError(UserError, FileNotFoundError):
  """A folder that is missing, empty, or holds no usable image; the message says which and why."""


def _scan(folder: str) -> tuple[list[str], str]:
  """The image files (relative paths, sorted) and the digest of their paths, sizes and times."""
  if not os.path.isdir(folder):
    parent = os.path.dirname(os.path.abspath(folder))
    near = ""
    if os.path.isdir(parent):
      names = sorted(d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d)))
      near = f" Folders in {parent}: {', '.join(names[:20]) or 'none'}."
    raise FolderError(
      f"Image folder {folder} (config.data.name='folder:...') does not exist.{near}"
    )
  files = images_lib.list_images(folder)
  if not files:
    raise FolderError(
      f"Image folder {folder} holds no image files ({', '.join(images_lib.EXTENSIONS)}, at any "
      "depth). Point config.data.name='folder:PATH' at the folder holding them."
    )
  h = hashlib.sha256()
  for rel in files:
    st = os.stat(os.path.join(folder, rel))
    h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
  return files, h.hexdigest()


def digest(spec: str) -> str:
  """The manifest digest of ``folder:PATH`` (its files' paths, sizes and times), hex.

  Raises:
    FolderError: a missing or empty folder.
  """
  return _scan(os.path.abspath(os.path.expanduser(spec[len(registry.FOLDER_PREFIX) :])))[1]


def _header(path: str) -> tuple[tuple[int, int], str] | None:
  """(width, height) and mode from the file's header, or None when it cannot be read."""
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top

  try:
    with Image.open(path) as image:
      return image.size, image.mode
  except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
    return None


def _named(paths: list[str], limit: int = 5) -> str:
  more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
  return ", ".join(paths[:limit]) + more


class FolderPlan:
  """What preparing a folder will do: its files, resolution, channels, classes and config name.

  Args:
    folder: the image folder.
    resolution: the side of the square images; None: the images' own size, when they all share
      one square size.
    crop: one of `jaxgan.data.images.CROPS`.

  Raises:
    FolderError: a missing or empty folder.
    jaxgan.errors.ConfigError: ``resolution`` is None and the images do not share one square size
      (the message gives the commonest sizes), or an unknown crop policy.
  """

  def __init__(self, folder: str, resolution: int | None, crop: str):
    images_lib.check_crop(crop)
    self.folder = os.path.abspath(os.path.expanduser(folder))
    self.files, self.digest = _scan(self.folder)
    headers = {rel: _header(os.path.join(self.folder, rel)) for rel in self.files}
    readable = {rel: h for rel, h in headers.items() if h is not None}
    if not readable:
      raise FolderError(
        f"None of the {len(self.files)} image files in {self.folder} can be read (e.g. "
        f"{_named(self.files, 3)}); check that they are images."
      )
    grey = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
    self.channels = 1 if all(m in grey for _, m in readable.values()) else 3
    if resolution is None:
      sizes = collections.Counter(size for size, _ in readable.values())
      (w, h), _ = sizes.most_common(1)[0]
      if len(sizes) > 1 or w != h:
        common = ", ".join(f"{a}x{b} ({n})" for (a, b), n in sizes.most_common(4))
        raise ConfigError(
          f"The images in {self.folder} are not all one square size (commonest: {common}); set "
          "config.data.resolution (e.g. 64) and config.data.crop "
          f"({', '.join(images_lib.CROPS)}) to bring them to one."
        )
      resolution = w
    self.resolution, self.crop = int(resolution), crop
    top = [rel.split("/", 1)[0] for rel in self.files if "/" in rel]
    self.classes = sorted(set(top))
    self.loose = [rel for rel in self.files if "/" not in rel]
    slug = re.sub(r"[^a-z0-9]+", "_", os.path.basename(self.folder).lower()).strip("_") or "root"
    where = hashlib.sha256(self.folder.encode()).hexdigest()[:8]
    self.name = f"{slug[:40]}_{where}_{self.resolution}px_{crop}_{self.digest[:12]}"
    self.family = f"{slug[:40]}_{where}_"

  def label(self, rel: str) -> int:
    """The class index of a file: its first-level subfolder's, or -1 for a loose file."""
    return self.classes.index(rel.split("/", 1)[0]) if "/" in rel else -1


class JaxganFolder(JaxganBuilder, skip_registration=True):
  """The TFDS builder of one image folder at one resolution and crop policy (see the module).

  Records are ``{'image': uint8 (r, r, c), 'label': int64 (-1 outside class folders), 'index':
  int64 (position in the sorted file list of the manifest)}``; one split, ``train``.

  Args:
    plan: the `FolderPlan`.
    **kwargs: ``data_dir``... (see `JaxganBuilder`).
  """

  name = "jaxgan_folder"
  SOURCE_SUBDIR = ""
  CAN_DOWNLOAD = False
  MANUAL_DOWNLOAD_INSTRUCTIONS = ""

  def __init__(self, plan: FolderPlan, **kwargs: Any):
    self.plan = plan
    self.SHAPE = (plan.resolution, plan.resolution, plan.channels)
    self.DESCRIPTION = f"The images of {plan.folder}, {plan.resolution}px, crop {plan.crop}."
    super().__init__(config=tfds.core.BuilderConfig(name=plan.name), verify=False, **kwargs)

  @classmethod
  def source_files(cls):
    return {}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self, description=self.DESCRIPTION, features=_features(self.SHAPE)
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    plan = self.plan
    skipped, converted = {}, collections.defaultdict(list)
    kept = 0
    for i, (rel, pixels, note) in enumerate(images_lib.iter_folder(plan.folder, plan.files)):
      if pixels is None:
        skipped[rel] = note.split(": ", 1)[-1]
        continue
      h, w = pixels.shape[:2]
      if min(h, w) < MIN_SCALE * plan.resolution or (
        plan.crop == "center_crop" and min(h, w) < plan.resolution
      ):
        skipped[rel] = f"{w}x{h} is too small for {plan.resolution}px with crop {plan.crop}"
        continue
      if note:
        converted[note].append(rel)
      if pixels.shape[-1] != plan.channels:
        converted["grey to RGB (the folder mixes grey and colour)"].append(rel)
        pixels = images_lib.to_channels(pixels, plan.channels)
      image = images_lib.fit_square(pixels, plan.resolution, plan.crop)
      kept += 1
      yield i, {"image": image, "label": plan.label(rel), "index": i}
    for reason, rels in converted.items():
      log.warning("%s: converted %d images (%s): %s", plan.folder, len(rels), reason, _named(rels))
    for rel, why in list(skipped.items())[:20]:
      log.warning("%s: skipped %s: %s", plan.folder, rel, why)
    if skipped:
      log.warning("%s: skipped %d of %d files in all", plan.folder, len(skipped), len(plan.files))
    if not kept:
      raise FolderError(
        f"No usable image in {plan.folder}: all {len(plan.files)} files were skipped (e.g. "
        f"{_named(list(skipped), 2)}: {next(iter(skipped.values()))}). Lower "
        "config.data.resolution or use config.data.crop='resize_crop'."
      )
    self._report = {"skipped": skipped, "converted": {k: v for k, v in converted.items()}}


def _write_manifest(builder: JaxganFolder) -> None:
  plan = builder.plan
  report = getattr(builder, "_report", {"skipped": {}, "converted": {}})
  manifest = {
    "folder": plan.folder,
    "digest": plan.digest,
    "resolution": plan.resolution,
    "crop": plan.crop,
    "channels": plan.channels,
    "classes": plan.classes,
    "loose_files": len(plan.loose),
    "files": plan.files,
    **report,
  }
  path = os.path.join(os.fspath(builder.data_dir), MANIFEST)
  with open(path + ".tmp", "w") as f:
    json.dump(manifest, f, indent=1)
  os.replace(path + ".tmp", path)


def _earlier_copy(root: str, plan: FolderPlan) -> str | None:
  """A copy of this folder prepared before it changed (same path, resolution and crop), if any."""
  parent = os.path.join(root, JaxganFolder.name)
  if not os.path.isdir(parent):
    return None
  stem = f"{plan.family}{plan.resolution}px_{plan.crop}_"
  for name in sorted(os.listdir(parent)):
    if name.startswith(stem) and name != plan.name:
      return os.path.join(parent, name)
  return None


def prepare_folder(
  spec: str, *, resolution: int | None, crop: str, data_dir: str | None, labels: bool = False
) -> JaxganFolder:
  """The prepared builder of ``folder:PATH``, preparing it when the folder is new or changed.

  Args:
    spec: ``'folder:PATH'``.
    resolution: see `FolderPlan`.
    crop: see `FolderPlan`.
    data_dir: the TFDS data dir (None: TFDS's default).
    labels: the run reads labels: the folder must have class subfolders holding every image
      (`check_labels`), checked before anything is prepared.

  Returns:
    The builder; ``builder.as_data_source('train')`` reads it, ``builder.plan`` describes it.

  Raises:
    FolderError, jaxgan.errors.ConfigError: see `FolderPlan`; also when no file is usable.
  """
  plan = FolderPlan(spec[len(registry.FOLDER_PREFIX) :], resolution, crop)
  if labels:
    check_labels(plan)
  builder = JaxganFolder(plan, data_dir=data_dir)
  if builder.is_prepared():
    log.info(
      "%s: %d files at %dpx by crop %s, %d channels, classes %s (prepared in %s)",
      plan.folder,
      len(plan.files),
      plan.resolution,
      crop,
      plan.channels,
      ", ".join(plan.classes[:12]) + ("..." if len(plan.classes) > 12 else "") or "none",
      builder.data_dir,
    )
    return builder
  earlier = _earlier_copy(os.fspath(builder.data_dir_root), plan)
  if earlier:
    log.warning(
      "%s changed since it was prepared into %s: preparing it again (that copy is kept; delete it "
      "to free the space).",
      plan.folder,
      earlier,
    )
  log.info(
    "Preparing %d images of %s at %dpx (crop %s, %d channels, %d classes) into %s",
    len(plan.files),
    plan.folder,
    plan.resolution,
    crop,
    plan.channels,
    len(plan.classes),
    builder.data_dir,
  )
  builder.download_and_prepare()
  _write_manifest(builder)
  return builder


def check_labels(plan: FolderPlan) -> None:
  """Refuses class-conditional training on a folder without one class subfolder per image.

  Raises:
    jaxgan.errors.ConfigError: no class subfolders, or images outside them (naming some).
  """
  if not plan.classes:
    raise ConfigError(
      f"{plan.folder} has no class subfolders, so its images have no labels; set "
      "config.model.num_classes=0, or put each class's images in a subfolder of its own."
    )
  if plan.loose:
    raise ConfigError(
      f"{len(plan.loose)} images lie directly in {plan.folder}, outside the class "
      f"subfolders ({', '.join(plan.classes[:10])}), e.g. {_named(plan.loose, 3)}: move them into "
      "a class subfolder, or train unconditionally (config.model.num_classes=0)."
    )
