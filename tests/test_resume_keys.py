"""Every config field that may differ on resume is changed on a resume, and the run still ends
exactly where an uninterrupted run ends.

The fields of `config.RESUMABLE_SECTIONS` (how long, where, how often) are promised to be free
between launches. A promise that is only listed breaks unnoticed (a resume with another
`run.loader_workers` once failed on the loader's saved state), so each field is changed on a real
resume here, on MNIST through the host loader, and `test_every_resumable_field_is_covered` makes
a new field fail until it is added.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import REAL_DATA

from jaxgan import config as config_lib
from jaxgan.run import loop

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks.soak import read_checkpoint  # noqa: E402  (a checkpoint's leaves, by path)


def _image_changes(tmp: Path, mnist_dir: str, classifier_cache: Path) -> list[dict]:
  """The fields each relaunch of the MNIST run changes (each relaunch trains one more step)."""
  data_link, source_link = tmp / "data_link", tmp / "source_link"
  data_link.symlink_to(mnist_dir)  # the same files under another path
  source_link.symlink_to(REAL_DATA)
  return [
    {
      "run.loader_workers": 1,  # 0 -> 1: grain worker processes
      "run.max_consecutive_skipped": 5,
      "log.every": 2,
      "log.sample_every": 1,
      "log.num_samples": 4,
      "checkpoint.keep": 2,
    },
    {
      "run.loader_workers": 0,  # 1 -> 0
      "run.data_dir": str(data_link),
      "run.source_dir": str(source_link),
      "run.compilation_cache_dir": str(tmp / "xla"),
    },
    {
      # An evaluation where the earlier checkpoints had none: keep-best now reads a metric that
      # older checkpoints lack.
      "eval.metrics": "fcd",
      "eval.every": 1,
      "eval.num_samples": 100,
      "eval.reference_split": "test",
      "eval.cache_dir": str(classifier_cache),
      "checkpoint.every": 2,
      "checkpoint.keep": 1,
    },
    {
      "eval.metrics": "",
      "eval.extractor": "inception",
      "eval.inception_weights": str(tmp / "inception.npz"),
      "eval.classifier_path": str(tmp / "classifier.npz"),
      "eval.classes": "0,1",
      "checkpoint.every": 1,
    },
  ]


def _set(config, changes: dict):
  for name, value in changes.items():
    section, field = name.split(".")
    config[section][field] = value


def _mnist(mnist_dir: str, steps: int):
  config = config_lib.default_config()
  config.data.name = "mnist"
  config.data.pad_to = 32
  config.data.batch_size = 32
  config.model.name = "mlp"
  config.model.width = 16
  config.run.update(steps=steps, data_dir=mnist_dir, source_dir=str(REAL_DATA))
  config.log.update(every=1, sample_every=100)
  config.eval.update(metrics="", every=100)
  config.checkpoint.update(every=1, keep=3)
  return config


def test_every_resumable_field_is_covered(tmp_path):
  changed = set()
  for launch in _image_changes(tmp_path, str(tmp_path), tmp_path):
    changed |= set(launch)
  changed |= {"run.steps", "run.steps_per_call"}  # below: every launch, and the toy run
  default = config_lib.default_config()
  resumable = {f"{s}.{f}" for s in config_lib.RESUMABLE_SECTIONS for f in default[s]}
  assert changed == resumable, "add a change of the new field to _image_changes"


@pytest.mark.full
def test_an_image_run_resumes_exactly_whatever_resumable_fields_change(
  tmp_path, mnist_dir, mnist_classifier
):
  _, classifier_cache, _ = mnist_classifier
  changes = _image_changes(tmp_path, mnist_dir, classifier_cache)
  total = 2 + len(changes)
  workdir = tmp_path / "resumed"
  config = _mnist(mnist_dir, steps=2)
  loop.train_and_evaluate(config, str(workdir))
  for step, launch in enumerate(changes, start=3):
    _set(config, launch)
    config.run.steps = step
    loop.train_and_evaluate(config, str(workdir))
  loop.train_and_evaluate(_mnist(mnist_dir, steps=total), str(tmp_path / "reference"))
  got, got_extra = read_checkpoint(workdir, total)
  want, want_extra = read_checkpoint(tmp_path / "reference", total)
  assert got.keys() == want.keys()
  for path, value in want.items():
    np.testing.assert_array_equal(got[path], value, err_msg=path)
  assert got_extra["loader_state"] == want_extra["loader_state"]


@pytest.mark.full
@pytest.mark.parametrize("first,then", [(10, 5)])
def test_a_toy_run_resumes_with_another_steps_per_call(tmp_path, first, then):
  def toy(steps, k):
    config = config_lib.toy_config("ring", steps=steps)
    config.model.kwargs.update(g_hidden=(16,), d_hidden=(16,))
    config.data.batch_size = 32
    config.run.steps_per_call = k
    config.log.update(every=10, sample_every=40)
    config.eval.update(every=40, num_samples=100)
    config.checkpoint.every = 10
    return config

  loop.train_and_evaluate(toy(20, first), str(tmp_path / "resumed"))
  loop.train_and_evaluate(toy(40, then), str(tmp_path / "resumed"))
  loop.train_and_evaluate(toy(40, first), str(tmp_path / "reference"))
  got, _ = read_checkpoint(tmp_path / "resumed", 40)
  want, _ = read_checkpoint(tmp_path / "reference", 40)
  for path, value in want.items():
    # One scan of 10 steps or two of 5: the same arithmetic, compiled in another program.
    np.testing.assert_allclose(got[path], value, rtol=1e-5, atol=1e-6, err_msg=path)
