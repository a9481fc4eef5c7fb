"""What importing the core loads: the losses and penalties need JAX only, the config not even JAX.

Each import runs in a fresh interpreter, since this one has already loaded everything.
"""

import json
import subprocess
import sys

import pytest
from _helpers import REPO

pytestmark = pytest.mark.full

# The runner's world: checkpoints, data pipelines, writers, and the modules that use them.
RUNNER = (
  "orbax",
  "tensorflow_datasets",
  "grain",
  "tensorboardX",
  "tensorflow",
  "jaxgan.run.loop",
  "jaxgan.run.checkpoint",
  "jaxgan.data",
)


def _loaded_after(statement: str) -> set[str]:
  code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return set(json.loads(proc.stdout.splitlines()[-1]))


def _matching(modules: set[str], packages) -> list[str]:
  return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.mark.parametrize("module", ["jaxgan.losses", "jaxgan.penalties"])
def test_core_loads_none_of_the_runner(module):
  loaded = _loaded_after(f"import {module}")
  assert module in loaded and "jax" in loaded  # the import happened, and it did need JAX
  assert not _matching(loaded, RUNNER), _matching(loaded, RUNNER)


def test_config_loads_no_jax():
  loaded = _loaded_after("import jaxgan.config\njaxgan.config.default_config()")
  assert "jaxgan.config" in loaded and "ml_collections" in loaded
  assert not _matching(loaded, ("jax", "jaxlib", "flax", "optax")), _matching(
    loaded, ("jax", "jaxlib", "flax", "optax")
  )


def test_experiment_configs_load_only_the_config():
  # Each file of experiments/configs, loaded and its get_config() called in turn in one fresh
  # interpreter: what it adds to sys.modules must hold no jaxgan module but the config package
  # and what `jaxgan.config` itself imports (the package root, `jaxgan.errors`, the data sets'
  # registry of facts), and no JAX. tests/test_layers.py checks the files' own import lines.
  configs = sorted(str(p) for p in (REPO / "experiments" / "configs").glob("*.py"))
  assert len(configs) > 10
  code = (
    "import importlib.util, json, sys\n"
    "out = {}\n"
    f"for path in {configs!r}:\n"
    "  before = set(sys.modules)\n"
    "  spec = importlib.util.spec_from_file_location('experiment_config', path)\n"
    "  module = importlib.util.module_from_spec(spec)\n"
    "  spec.loader.exec_module(module)\n"
    "  module.get_config()\n"
    "  out[path] = sorted(set(sys.modules) - before)\n"
    "print(json.dumps(out))\n"
  )
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  allowed = {"jaxgan", "jaxgan.errors", "jaxgan.config", "jaxgan.data", "jaxgan.data.registry"}
  for path, added in json.loads(proc.stdout.splitlines()[-1]).items():
    jaxgan = [m for m in _matching(set(added), ("jaxgan",)) if m not in allowed]
    jaxgan = [m for m in jaxgan if not m.startswith("jaxgan.config.")]
    assert not jaxgan, (path, jaxgan)
    jax = _matching(set(added), ("jax", "jaxlib", "flax", "optax"))
    assert not jax, (path, jax)
