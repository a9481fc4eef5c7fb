"""Session-wide test setup: the two test tiers, a persistent compilation cache, and real MNIST
with its classifier prepared once for every test file that needs them.

Two tiers, chosen by one marker, `full` (registered in pyproject.toml):

* the fast tier, the default (`pytest -n 2 --dist loadfile`): synthetic data in this process,
  for the edit-test loop. Tests marked `full` are deselected.
* the full tier (`pytest -n 2 --dist loadfile --full`, what `.ci/run` runs): every test. The
  tests marked `full` are those that read real data or the real Inception weights; start
  subprocesses or several processes; run `train_and_evaluate` (quality runs, resumes, faults,
  the study); compile the bigger networks and pipelines whole (the ResNet and R3GAN, networks
  at 64 px and up, the README's DCGAN step, bfloat16 and minibatch-std DCGAN critics, ADA, the
  benchmark workloads); or compare with another implementation (PyTorch, the official ADA, the
  other convolution backend). Parametrized tests mark such cases alone
  (`pytest.param(..., marks=pytest.mark.full)`, `_helpers.tiered`): the MLP and DCGAN cases
  stay fast, as do two of the naive-step reference's five cases and five of fast_conv's 14.

Mark a whole file with `pytestmark = pytest.mark.full`, or one test with `@pytest.mark.full`.
A test that asks for the real-data fixtures below without the marker is a collection error.
"""

import os
import shutil
import tempfile

import jax
import pytest
from _helpers import REAL_DATA, require_real_data

# Every train_and_evaluate call builds its train step afresh, so a run and its resumption, or one
# config run by several tests, compile the same program again; JAX's persistent cache is keyed by
# the program, so the second compile becomes a read. It must be set before the first compile,
# hence here at import. A fresh folder per session: no test may depend on an earlier session.
# Programs under half a second to compile are not written: reading them back costs about as much.
_XLA_CACHE = tempfile.mkdtemp(prefix="jaxgan-tests-xla-")
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
# Subprocesses (relaunched `python -m jaxgan.main` runs, workers) read JAX's flags from these
# variables; `jaxgan.run.compilation_cache.enable(None)` keeps the directory, so a launch in a test
# uses this session's cache rather than the user's ~/.cache/jaxgan/xla.
os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"


# The fixtures that read the real data sets: only a test marked `full` may use them.
_REAL_DATA_FIXTURES = ("mnist_dir", "mnist_classifier")


def pytest_addoption(parser):
  parser.addoption(
    "--full",
    action="store_true",
    help="run the full tier: also the tests marked `full` (real data, subprocesses, training "
    "runs, whole networks, other implementations)",
  )


def pytest_collection_modifyitems(config, items):
  """Deselects the tests marked `full` unless `--full` is given; a test that uses real data
  without the marker stops the session."""
  for item in items:
    uses = [f for f in _REAL_DATA_FIXTURES if f in getattr(item, "fixturenames", ())]
    if uses and item.get_closest_marker("full") is None:
      raise pytest.UsageError(f"{item.nodeid} uses {uses[0]} (real data) but is not marked full")
  if config.getoption("--full"):
    return
  fast = [item for item in items if item.get_closest_marker("full") is None]
  deselected = [item for item in items if item.get_closest_marker("full") is not None]
  if deselected:
    config.hook.pytest_deselected(items=deselected)
    items[:] = fast


def pytest_sessionfinish(session, exitstatus):
  """Removes this session's compilation cache."""
  del session, exitstatus
  shutil.rmtree(_XLA_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
  """A TFDS data_dir holding all of real MNIST, prepared once per session.

  Test files may prepare more data sets into it (each into its own sub-folder); none may alter
  MNIST's files. Skips without the real data (fails in CI).

  Returns:
    The data_dir's path, a str.
  """
  require_real_data("mnist")
  from jaxgan import data

  path = str(tmp_path_factory.mktemp("tfds_mnist"))
  data.prepare("mnist", data_dir=path, source_dir=REAL_DATA)
  return path


@pytest.fixture(scope="session")
def mnist_classifier(tmp_path_factory, mnist_dir):
  """The cached MNIST classifier of `jaxgan.metrics.classifier_cache`, trained once per session.

  It is asked for as Stacked MNIST's (whose channels are MNIST digits), with the default
  `classifier_cache.SETTINGS`: the strongest classifier any test needs (>= 98.5% on MNIST's
  test set), so tests that only need a good MNIST classifier share it.

  Returns:
    `(classifier, cache_dir, lines)`: the `ClassifierExtractor`, the jaxgan cache folder its file
    lives in (a `pathlib.Path`), and the lines `cached_classifier` logged while making it.
  """
  from jaxgan.metrics import classifier_cache

  cache_dir = tmp_path_factory.mktemp("cache")
  lines = []
  clf = classifier_cache.cached_classifier(
    "stacked_mnist",
    cache_dir=cache_dir,
    data_dir=mnist_dir,
    source_dir=REAL_DATA,
    log_fn=lines.append,
  )
  return clf, cache_dir, lines
