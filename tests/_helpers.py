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
