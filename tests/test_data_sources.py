"""Data sets beyond jaxgan's own: image files (modes, crop policies), `folder:PATH`, `tfds:NAME`.

TFDS data sets are tested offline through `tfds.testing.mock_data` (random records with the real
features), as flax's examples do; no download can run here.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxgan import config as config_lib
from jaxgan import data
from jaxgan.data import folder as folder_lib
from jaxgan.data import images
from jaxgan.errors import ConfigError, UserError


def _rgb(h, w, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---- image files ------------------------------------------------------------------------------


def test_read_image_modes(tmp_path):
  rgba = np.zeros((4, 5, 4), np.uint8)
  rgba[..., :3], rgba[..., 3] = 200, 128  # half-transparent grey-white over black
  Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
  px, note = images.read_image(tmp_path / "a.png")
  assert px.shape == (4, 5, 3) and "alpha" in note
  np.testing.assert_allclose(px, 200 * 128 / 255, atol=1)  # composited over black
  sixteen = np.full((3, 3), 0xABCD, np.uint16)
  Image.fromarray(sixteen).save(tmp_path / "b.png")
  px, note = images.read_image(tmp_path / "b.png")
  assert px.shape == (3, 3, 1) and (px == 0xAB).all() and "8-bit" in note  # scaled, not clipped
  Image.fromarray(np.full((2, 2), 7, np.uint8), "L").save(tmp_path / "c.jpg", quality=100)
  px, note = images.read_image(tmp_path / "c.jpg")
  assert px.shape == (2, 2, 1) and note is None and abs(int(px[0, 0, 0]) - 7) <= 1
  (tmp_path / "d.png").write_bytes(b"not an image")
  with pytest.raises(images.ImageReadError, match="d.png"):
    images.read_image(tmp_path / "d.png")


def test_list_images_sorted_nested_and_filtered(tmp_path):
  for rel in ("b/2.PNG", "a/1.jpg", "z.webp", ".hidden/x.png", "a/.x.png", "notes.txt"):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_bytes(b"")
  assert images.list_images(tmp_path) == ["a/1.jpg", "b/2.PNG", "z.webp"]


def test_fit_square_policies_against_numpy():
  img = _rgb(10, 16)
  # center_crop is slicing.
  np.testing.assert_array_equal(images.fit_square(img, 8, "center_crop"), img[1:9, 4:12])
  with pytest.raises(ValueError, match="center_crop"):
    images.fit_square(img, 12, "center_crop")
  # pad keeps the scaled image centred on black: a constant image shows where it lies.
  flat = np.full((10, 20, 3), 90, np.uint8)
  out = images.fit_square(flat, 10, "pad")  # scaled to 5 x 10, rows 2..6 hold it
  assert out.shape == (10, 10, 3)
  assert (out[:2] == 0).all() and (out[7:] == 0).all() and (out[2:7] == 90).all()
  # resize_crop: the short side to the resolution, then the centre; constant stays constant.
  out = images.fit_square(flat, 6, "resize_crop")
  assert out.shape == (6, 6, 3) and (out == 90).all()
  # An image already at the resolution is returned untouched by every policy.
  sq = _rgb(8, 8)
  for crop in images.CROPS:
    assert images.fit_square(sq, 8, crop) is sq
  with pytest.raises(ConfigError, match="resize_crop, center_crop, pad"):
    images.fit_square(sq, 8, "stretch")


# ---- folder:PATH ------------------------------------------------------------------------------


def _folder(root, classes=("cat", "dog"), per_class=4, size=(20, 24), loose=0):
  for c, name in enumerate(classes):
    (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(per_class):
      Image.fromarray(_rgb(*size, seed=10 * c + i)).save(root / name / f"{i}.png")
  for i in range(loose):
    Image.fromarray(_rgb(*size, seed=99 + i)).save(root / f"loose{i}.png")
  return root


def _load(spec, tmp_path, **kw):
  return data.load_source(spec, data_dir=str(tmp_path / "tfds"), **kw)


def test_folder_labels_from_subfolders_and_policy(tmp_path):
  root = _folder(tmp_path / "imgs")
  src = _load(f"folder:{root}", tmp_path, resolution=16, crop="center_crop")
  assert len(src) == 8 and src.arrays["image"].shape == (8, 16, 16, 3)
  order = np.argsort(src.arrays["index"])
  np.testing.assert_array_equal(src.arrays["label"][order], [0] * 4 + [1] * 4)
  # Record 'index' i is file i of the sorted listing; its pixels are that file's centre crop.
  i = int(src.arrays["index"][0])
  rel = images.list_images(root)[i]
  want = np.asarray(Image.open(root / rel))[2:18, 4:20]
  np.testing.assert_array_equal(src.arrays["image"][0], want)
  unlabelled = _load(f"folder:{root}", tmp_path, resolution=16, crop="center_crop", label_key=None)
  assert "label" not in unlabelled.arrays


def test_folder_mixed_modes_bad_and_tiny_files_are_named(tmp_path, caplog):
  root = _folder(tmp_path / "imgs", per_class=2)
  rgba = np.dstack([_rgb(20, 24), np.full((20, 24), 255, np.uint8)])
  Image.fromarray(rgba, "RGBA").save(root / "cat" / "rgba.png")
  Image.fromarray(np.full((20, 24), 40000, np.uint16)).save(root / "dog" / "deep.png")
  Image.fromarray(_rgb(3, 3)).save(root / "dog" / "tiny.png")
  (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
  with caplog.at_level(logging.WARNING, logger="jaxgan.data.folder"):
    src = _load(f"folder:{root}", tmp_path, resolution=16)
  assert len(src) == 6  # 4 good + RGBA + 16-bit; tiny and broken skipped
  log = caplog.text
  assert "skipped dog/tiny.png" in log and "too small" in log
  assert "skipped dog/broken.jpg" in log
  assert "alpha over black" in log and "cat/rgba.png" in log
  assert "grey to RGB" in log and "dog/deep.png" in log


def test_folder_change_is_noticed_and_refused_on_resume(tmp_path, caplog):
  root = _folder(tmp_path / "imgs")
  src = _load(f"folder:{root}", tmp_path, resolution=16)
  it = data.make_loader(src, batch_size=4, seed=0)
  next(it)
  state = it.get_state()
  Image.fromarray(_rgb(20, 24, seed=7)).save(root / "cat" / "new.png")
  with caplog.at_level(logging.WARNING, logger="jaxgan.data.folder"):
    changed = _load(f"folder:{root}", tmp_path, resolution=16)
  assert len(changed) == 9 and "changed since it was prepared" in caplog.text
  assert changed.identity != src.identity
  it2 = data.make_loader(changed, batch_size=4, seed=0)
  with pytest.raises(ConfigError, match="image folder changed"):
    it2.set_state(state)


def test_folder_bad_input(tmp_path):
  with pytest.raises(folder_lib.FolderError, match="does not exist.*Folders in"):
    _load(f"folder:{tmp_path / 'nope'}", tmp_path)
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "readme.txt").write_text("no images")
  with pytest.raises(folder_lib.FolderError, match="holds no image files"):
    _load(f"folder:{tmp_path / 'empty'}", tmp_path)
  root = _folder(tmp_path / "sizes")
  Image.fromarray(_rgb(30, 30)).save(root / "cat" / "big.png")
  with pytest.raises(ConfigError, match="not all one square size.*data.resolution"):
    _load(f"folder:{root}", tmp_path)
  flat = tmp_path / "flat"
  flat.mkdir()
  Image.fromarray(_rgb(16, 16)).save(flat / "a.png")
  with pytest.raises(ConfigError, match="no class subfolders"):
    _load(f"folder:{flat}", tmp_path)  # label_key='label': labels asked
  mixed = _folder(tmp_path / "mixed", loose=1)
  with pytest.raises(ConfigError, match="lie directly in"):
    _load(f"folder:{mixed}", tmp_path, resolution=16)
  assert not (tmp_path / "tfds").exists()  # every refusal comes before anything is prepared
  assert issubclass(folder_lib.FolderError, UserError)


# ---- tfds:NAME --------------------------------------------------------------------------------


def test_tfds_by_name_offline(tmp_path):
  with tfds.testing.mock_data(num_examples=6):
    src = _load("tfds:mnist", tmp_path)
    assert src.arrays["image"].shape == (6, 28, 28, 1) and src.arrays["label"].shape == (6,)
    celeb = _load("tfds:celeb_a", tmp_path, resolution=32, crop="pad", label_key=None)
    assert celeb.arrays["image"].shape == (6, 32, 32, 3) and "label" not in celeb.arrays
    # 178 x 218 padded: the left and right columns are black.
    assert (celeb.arrays["image"][:, :, :2] == 0).all()
    it = data.make_loader(celeb, batch_size=2, seed=0)
    assert next(it)["image"].shape == (2, 32, 32, 3)


def test_tfds_bad_input(tmp_path):
  with tfds.testing.mock_data(num_examples=2):
    with pytest.raises(ConfigError, match="close names: mnist"):
      _load("tfds:mnistt", tmp_path)
    with pytest.raises(ConfigError, match=r"no feature 'img'.*image \(Image\), label"):
      _load("tfds:mnist", tmp_path, image_key="img")
    with pytest.raises(ConfigError, match="no feature 'label'.*identity"):
      _load("tfds:celeb_a", tmp_path, resolution=32)
    with pytest.raises(ConfigError, match="178x218, not one square size"):
      _load("tfds:celeb_a", tmp_path, label_key=None)


def test_config_checks_data_names_and_policy():
  c = config_lib.default_config()
  for name in ("tfds:celeb_a", "folder:/data/x", "cifar10"):
    c.data.name = name
    config_lib.validate(c)
  for name, match in (
    ("tfds:", "Unknown data set"),
    ("celeba", "tfds:NAME"),
    ("folder: ", "folder"),
  ):
    c.data.name = name
    with pytest.raises(ConfigError, match=match):
      config_lib.validate(c)
  c.data.name, c.data.crop = "mnist", "squash"
  with pytest.raises(ConfigError, match="crop policy"):
    config_lib.validate(c)
  c.data.crop, c.data.resolution = "pad", 0
  with pytest.raises(ConfigError, match="resolution"):
    config_lib.validate(c)
  c.data.resolution, c.model.num_classes = 64, 0
  assert config_lib.read_options(c)["label_key"] is None  # unconditional: no labels read
  c.model.num_classes = 10
  assert config_lib.read_options(c) == dict(
    resolution=64, crop="pad", image_key="image", label_key="label"
  )


@pytest.mark.full
@pytest.mark.skipif(not os.environ.get("JAXGAN_SOURCE_DIR"), reason="needs the real MNIST files")
def test_builtin_data_set_at_another_resolution(tmp_path):
  src = data.load_source(
    "mnist", split="test[:64]", source_dir=os.environ["JAXGAN_SOURCE_DIR"], resolution=48
  )
  assert src.arrays["image"].shape == (64, 48, 48, 1)


@pytest.mark.full
def test_folder_run_trains_resumes_and_loads(tmp_path):
  """A class-conditional run on a folder of non-square images: trained, resumed, loaded back."""
  import jax

  import jaxgan
  from jaxgan.run import loop

  root = _folder(tmp_path / "imgs", per_class=8, size=(36, 40))
  c = config_lib.default_config()
  c.data.update(name=f"folder:{root}", resolution=32, batch_size=8)
  c.model.update(name="dcgan", width=8, num_classes=2)
  c.run.update(data_dir=str(tmp_path / "tfds"), steps=2)
  c.log.update(every=1, sample_every=2, num_samples=4)
  c.checkpoint.every, c.eval.metrics = 1, ""
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(c, workdir)
  c.run.steps = 4
  result = loop.train_and_evaluate(c, workdir)  # resumes at 2, with the loader's position
  assert np.isfinite(result["d_loss"])
  root.rename(tmp_path / "moved")  # a run loads where its data is not: the shape is saved
  gan, state, config = jaxgan.load(workdir)
  assert int(state.step) == 4 and config.data.resolution == 32
  images = gan.sample(state, jax.random.PRNGKey(0), 3, np.array([0, 1, 1]))
  assert images.shape == (3, 32, 32, 3)


def test_folder_class_count_must_match_its_subfolders(tmp_path):
  from jaxgan.run import inputs
  from jaxgan.step import sharding

  root = _folder(tmp_path / "imgs", per_class=4, size=(16, 16))
  c = config_lib.default_config()
  c.data.update(name=f"folder:{root}", batch_size=4)
  c.run.data_dir = str(tmp_path / "tfds")
  for k in (1, 3):
    c.model.num_classes = k
    with pytest.raises(
      ConfigError, match="labels of .* run from 0 to 1: set --config.model.num_classes=2"
    ):
      inputs.HostInput(c, sharding.make_mesh())


def test_tfds_not_prepared_says_how_to_prepare(tmp_path):
  from jaxgan.data import tfds_named

  with pytest.raises(tfds_named.TfdsDataError, match="tfds build mnist --file_format=array_record"):
    data.load_source("tfds:mnist", data_dir=str(tmp_path), download=False, label_key=None)
  assert not any(tmp_path.iterdir())  # nothing written
