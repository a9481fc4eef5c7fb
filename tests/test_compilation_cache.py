"""The persistent compilation cache of `python -m jaxgan.main` (jaxgan.run.compilation_cache).

A launch writes the compiled train step into the configured directory; a second launch of the
same config, in a fresh workdir, loads it from there instead of compiling (JAX logs each cache
hit when JAX_LOG_COMPILES is set). The launches are subprocesses: the cache is process-wide.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from jaxgan.config import default_config
from jaxgan.run import compilation_cache

ROOT = Path(__file__).resolve().parents[1]
# The smallest run that compiles the loop's programs: one step of a 16-unit MLP on the toy ring.
TINY = [
  "--config=experiments/configs/toy_ring.py",
  "--config.run.steps=1",
  "--config.run.steps_per_call=1",
  "--config.log.every=1",
  "--config.log.sample_every=1000",
  "--config.eval.every=1000",
  "--config.checkpoint.every=1000",
  "--config.model.kwargs.g_hidden=(16,)",
  "--config.model.kwargs.d_hidden=(16,)",
]
STEP_HIT = "Persistent compilation cache hit for 'jit_call'"


def _run(workdir, extra_env, *flags):
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  env.update(extra_env, JAX_LOG_COMPILES="1")  # JAX then logs every persistent-cache hit
  argv = [sys.executable, "-m", "jaxgan.main", f"--workdir={workdir}", *TINY, *flags]
  proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stderr


def _step_entries(directory: Path):
  return sorted(p.name for p in directory.glob("jit_call-*-cache"))


@pytest.mark.full
def test_a_second_launch_loads_the_train_step_from_the_cache(tmp_path):
  home = tmp_path / "home"  # $JAXGAN_CACHE_DIR: the default directory is home/xla
  first = _run(tmp_path / "run1", {"JAXGAN_CACHE_DIR": str(home)})
  assert STEP_HIT not in first
  entries = _step_entries(home / "xla")
  assert len(entries) == 1, sorted(p.name for p in (home / "xla").iterdir())
  # The same directory named explicitly, a fresh workdir: the step is read, not compiled again.
  second = _run(tmp_path / "run2", {}, f"--config.run.compilation_cache_dir={home / 'xla'}")
  assert STEP_HIT in second
  assert _step_entries(home / "xla") == entries


def test_an_empty_directory_leaves_the_cache_off():
  assert default_config().run.compilation_cache_dir is None
  before = jax.config.jax_compilation_cache_dir
  assert compilation_cache.enable("") is None
  assert jax.config.jax_compilation_cache_dir == before


def test_every_disk_cache_shares_one_root(monkeypatch, tmp_path):
  """JAX's programs, the oneDNN library and the Inception weights all live under one folder."""
  from jaxgan.metrics import inception_weights
  from jaxgan.onednn import _library

  def roots():
    return (
      os.path.dirname(compilation_cache.default_directory()),
      str(_library.cache_dir()),
      inception_weights.cache_dir(),
    )

  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "jaxgan_cache"))
  assert roots() == (str(tmp_path / "jaxgan_cache"),) * 3
  monkeypatch.delenv("JAXGAN_CACHE_DIR")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert roots() == (str(tmp_path / "xdg" / "jaxgan"),) * 3
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert roots() == (os.path.join(os.path.expanduser("~"), ".cache", "jaxgan"),) * 3


def test_a_directory_that_cannot_be_made_is_refused_naming_the_field(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  before = jax.config.jax_compilation_cache_dir
  with pytest.raises(ValueError, match="run.compilation_cache_dir"):
    compilation_cache.enable(str(blocker / "xla"))
  assert jax.config.jax_compilation_cache_dir == before
