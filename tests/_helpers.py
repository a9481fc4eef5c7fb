"""Helpers shared by several test files."""

import os
from pathlib import Path

import jax
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# The real data sets (../shared/data beside the checkout, or $JAXGAN_SOURCE_DIR).
REAL_DATA = Path(os.environ.get("JAXGAN_SOURCE_DIR") or REPO.parent / "shared" / "data")


def require_real_data(subdir: str) -> Path:
  """The real data folder; skips without it, except in CI, where missing data is a failure."""
  if not (REAL_DATA / subdir).is_dir():
    if os.environ.get("CI"):
      pytest.fail(f"{subdir} not found in {REAL_DATA} (set JAXGAN_SOURCE_DIR)")
    pytest.skip(f"{subdir} not found in {REAL_DATA}")
  return REAL_DATA


def assert_bitwise_equal(a, b):
  """Same tree structure, dtypes, shapes and bytes."""
  la, ta = jax.tree.flatten(a)
  lb, tb = jax.tree.flatten(b)
  assert ta == tb
  for x, y in zip(la, lb, strict=True):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes()


class Tape:
  """Values a jitted (and differentiated) program computes, recorded as it runs.

  A reference computation can then use the random draws a program made (its latents, its fake
  labels, the keys it gave a penalty) rather than draw them again, which would restate how the
  program splits its keys. `record` is called in traced code; only calls traced while the tape is
  active (`with tape:`) record, numbered in the order they were traced, which is program order.
  A compiled program records again each time it runs: `records` holds the values of its runs
  inside the latest `with tape:` block (the last run's, where it ran several times).
  """

  def __init__(self):
    self.active = False
    self._values = {}
    self._count = 0

  def record(self, *values):
    if not self.active:
      return
    i = self._count
    self._count += 1

    def store(*concrete):
      self._values[i] = jax.tree.map(np.asarray, concrete)

    jax.debug.callback(store, *values)

  def __enter__(self):
    self.active = True
    self._values.clear()  # the values of this run of the program; its calls keep their numbers
    return self

  def __exit__(self, *exc):
    jax.effects_barrier()
    self.active = False

  @property
  def records(self) -> list:
    """One tuple of NumPy arrays per recording call, in program order."""
    assert sorted(self._values) == list(range(self._count)), "a recorded call did not run"
    return [self._values[i] for i in range(self._count)]


def recording_generator(generator, tape: Tape):
  """`generator` behind a Flax module that records its latents and labels on `tape`."""
  import flax.linen as nn

  class Recorded(nn.Module):
    inner: nn.Module

    @nn.compact
    def __call__(self, z, train=False, **kwargs):
      tape.record(z, kwargs.get("labels"))
      return self.inner(z, train=train, **kwargs)

  return Recorded(generator)


def recording_penalty(name: str, tape: Tape):
  """The penalty `name` as a function of the penalties' signature that records its key."""
  from jaxgan import penalties

  fn = penalties.get(name)

  def penalty(critic_fn, real, fake, key):
    tape.record(key)
    return fn(critic_fn, real, fake, key)

  return penalty


def tiered(cases, ids, full) -> list:
  """`pytest.param`s of `cases` with their `ids`; those for which `full(case)` holds are marked
  for the full tier (tests/conftest.py), the others run in the fast tier too."""
  return [
    pytest.param(*case, id=i, marks=[pytest.mark.full] if full(case) else [])
    for case, i in zip(cases, ids, strict=True)
  ]
