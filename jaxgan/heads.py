"""Scores of one or several discriminator heads: the checks and reductions the losses share.

A discriminator may score an example with one head (an array `[batch]`, or `[batch, h, w]` with
one score per patch) or with several: a pytree (list, tuple, dict) of such arrays, one per head,
as multi-scale, multi-feature-network or projected discriminators do (Projected GAN, StyleGAN-T).
A loss then applies its formula to each head, real head against fake head of the same position in
the tree, and combines the heads' losses by a sum (the default) or a mean.

Everything here reads static tree structures, shapes and dtypes only, so under `jax.jit` the
checks run once, at trace time.

Example:
  >>> import jax.numpy as jnp
  >>> real = {"patches": jnp.ones((2, 4, 4)), "global": jnp.ones(2)}
  >>> fake = {"patches": jnp.zeros((2, 4, 4)), "global": jnp.zeros(2)}
  >>> [path for path, _, _ in paired(real, fake, name="demo")]
  ["['global']", "['patches']"]
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

REDUCTIONS = ("sum", "mean")


def is_single(scores: Any) -> bool:
  """True for one array (or number): the one-head case, False for a container of heads."""
  treedef = jax.tree.structure(scores)  # an empty container is a leaf too, of no array
  return jax.tree_util.treedef_is_leaf(treedef) and treedef.num_leaves == 1


def leaves_with_paths(tree: Any) -> list[tuple[str, Any]]:
  """The leaves of a pytree with their paths as `jax.tree_util.keystr` writes them ('' alone)."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [(jax.tree_util.keystr(path), leaf) for path, leaf in leaves]


def check_scores(real_scores: jax.Array, fake_scores: jax.Array, *, name: str = "loss") -> None:
  """Checks that real and fake scores (of one head) are floating-point arrays of one shape.

  Every loss calls it on each head (`jaxgan.losses.check_scores` is this function); a custom
  `GANLoss` may too. It reads static shapes and dtypes only, so under `jax.jit` it runs once, at
  trace time.

  Args:
    real_scores: D's scores of real examples, `[batch]` (or `[batch, ...]`).
    fake_scores: D's scores of generated examples, same shape.
    name: what the error message calls the caller.

  Raises:
    ValueError: when the shapes differ (the message names both) or a score array is not
      floating-point.

  Example:
    >>> check_scores(jnp.zeros((4, 1)), jnp.zeros(4), name="my_loss")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: my_loss: real scores (4, 1) and fake scores (4,) differ in shape; give one ...
  """
  real_shape, fake_shape = jnp.shape(real_scores), jnp.shape(fake_scores)
  if real_shape != fake_shape:
    raise ValueError(
      f"{name}: real scores {real_shape} and fake scores {fake_shape} differ in shape; give one "
      "score per example, both of shape [batch] (e.g. scores[:, 0] of a (batch, 1) output), or "
      "one head's scores of one shape on both sides (e.g. [batch, h, w] per patch)."
    )
  for which, scores in (("real", real_scores), ("fake", fake_scores)):
    if not jnp.issubdtype(jnp.result_type(scores), jnp.floating):
      raise ValueError(
        f"{name} needs floating-point scores (raw logits); got {which} scores of "
        f"dtype {jnp.result_type(scores)}."
      )


def paired(real: Any, fake: Any, *, name: str) -> list[tuple[str, Any, Any]]:
  """The heads of two pytrees of one structure, paired: `[(path, real_leaf, fake_leaf), ...]`.

  Args:
    real: a pytree of arrays (the scores of real examples, one leaf per head).
    fake: a pytree of the same structure.
    name: what the error message calls the caller.

  Returns:
    One `(path, real leaf, fake leaf)` per head, in the trees' flattening order (dict keys sorted).

  Raises:
    ValueError: when the structures differ (other containers, keys or lengths; the message names
      both), or the trees hold no array at all.
  """
  real_def, fake_def = jax.tree.structure(real), jax.tree.structure(fake)
  if real_def != fake_def:
    raise ValueError(
      f"{name}: real scores have the heads {real_def} and fake scores {fake_def}; give both "
      "sides the same heads (one container type, the same keys or length), e.g. the outputs of "
      "one discriminator called on real and on generated examples."
    )
  pairs = [
    (p, r, f)
    for (p, r), (_, f) in zip(leaves_with_paths(real), leaves_with_paths(fake), strict=True)
  ]
  if not pairs:
    raise ValueError(f"{name}: the scores hold no head (an empty {real_def}).")
  return pairs


def check_reduce(reduce: str, name: str) -> None:
  """Raises a ValueError naming the choices unless `reduce` is one of `REDUCTIONS`."""
  if reduce not in REDUCTIONS:
    raise ValueError(f"{name}: reduce must be one of {REDUCTIONS}; got {reduce!r}.")


def combine(values: Sequence[jax.Array], reduce: str) -> jax.Array:
  """The sum (`reduce='sum'`) or mean (`'mean'`) of the heads' scalar values."""
  total = functools.reduce(operator.add, values)
  return total if reduce == "sum" or len(values) == 1 else total / len(values)


def over_heads(
  fn: Callable[[jax.Array, jax.Array], jax.Array],
  real: Any,
  fake: Any,
  *,
  reduce: str = "sum",
  name: str,
) -> jax.Array:
  """Applies a loss of one head to every head of two pytrees and combines the heads' values.

  One array on each side is the one-head case: `fn(real, fake)` after `check_scores`, nothing
  else (bitwise the loss of one head).

  Args:
    fn: the loss of one head, `f(real_scores, fake_scores) -> scalar`.
    real: an array, or a pytree of arrays (one per head), D's scores of real examples.
    fake: the same structure, head by head the same shapes.
    reduce: 'sum' (default) or 'mean' of the heads' losses.
    name: what error messages call the caller.

  Returns:
    The combined loss, a scalar.

  Raises:
    ValueError: an unknown `reduce`; from `paired`: different structures; from `check_scores`, with
      the head's path in the message: different shapes within a head, non-floating scores.
  """
  check_reduce(reduce, name)
  if is_single(real) and is_single(fake):
    check_scores(real, fake, name=name)
    return fn(real, fake)
  values = []
  for path, r, f in paired(real, fake, name=name):
    check_scores(r, f, name=f"{name} (head {path})")
    values.append(fn(r, f))
  return combine(values, reduce)
