"""Per-example input gradients of a critic, on any input pytree and any number of score heads.

The gradient penalties of `jaxgan.penalties` are built on `input_gradients` (re-exported there with
`squared_gradient_norms` and `gradient_norms`). The critic is a closure `critic_fn: x -> scores`:

* its input `x` is one array `[batch, ...]` or a pytree of them (features at several layers,
  latents, an (image, timestep) pair), every differentiated leaf `[n, ...]` with one n. `wrt`
  picks the leaves differentiated: None (all), or a pytree of Python bools with x's structure (or
  a prefix of it); the other leaves are passed to the critic unchanged and may be of any dtype;
* its output is one array with one score per example, `[n]` or `[n, 1]`, or a pytree of heads,
  each `[n]`, `[n, 1]` or `[n, ...]` (e.g. one score per patch). The quantity differentiated is the
  sum over heads and over each head's non-batch elements of the per-example scores (as ADD and
  StyleGAN-T take R1 of patch discriminators: the gradient of `logits.sum()`). A single array with
  several scores per example is refused: return it as a head, `(scores,)`, to have it summed.

Each example has its own gradient only when the critic does not mix examples (no BatchNorm in
training mode). Gradients and norms are float32 whatever the critic's compute dtype. Shapes,
dtypes and tree structures are static: every check runs once, at trace time.

Example:
  >>> import jax.numpy as jnp
  >>> critic = lambda x: x["image"] @ jnp.array([3.0, 4.0]) + 0.0 * x["step"]
  >>> x = {"image": jnp.ones((2, 2)), "step": jnp.array([1, 2])}
  >>> squared_gradient_norms(critic, x, wrt={"image": True, "step": False})
  Array([25., 25.], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import heads

CriticFn = Callable[[Any], Any]

# Inside the square root: the norm's gradient is NaN at exactly zero gradient otherwise.
EPS = 1e-12
_KEEP = object()


@dataclasses.dataclass(frozen=True)
class Selection:
  """An input pytree's leaves, which of them are differentiated, and the batch size n.

  Attributes:
    treedef: the input's tree structure.
    paths: each leaf's path (`jax.tree_util.keystr`; '' for a single array).
    leaves: the input's leaves, as given.
    mask: for each leaf, whether it is selected (differentiated, perturbed, interpolated).
    n: the selected leaves' common leading size.
  """

  treedef: Any
  paths: tuple[str, ...]
  leaves: tuple[Any, ...]
  mask: tuple[bool, ...]
  n: int

  def chosen(self, leaves=None) -> list[Any]:
    """The selected leaves of `leaves` (default: this input's), in flattening order."""
    leaves = self.leaves if leaves is None else leaves
    return [leaf for leaf, m in zip(leaves, self.mask, strict=True) if m]

  def rebuild(self, new: list[Any], other: Any = _KEEP) -> Any:
    """This input with its selected leaves replaced by `new`; the others kept (or `other`)."""
    it = iter(new)
    leaves = [
      next(it) if m else (leaf if other is _KEEP else other)
      for leaf, m in zip(self.leaves, self.mask, strict=True)
    ]
    return jax.tree.unflatten(self.treedef, leaves)

  def shapes(self) -> Any:
    return jax.tree.map(lambda leaf: tuple(jnp.shape(leaf)), self.treedef.unflatten(self.leaves))


def select(x: Any, wrt: Any, what: str) -> Selection:
  """Reads an input pytree and a `wrt` selection, with the checks every penalty makes.

  Args:
    x: an array `[n, ...]` or a pytree of arrays.
    wrt: None (every leaf), or a pytree of Python bools with x's structure or a prefix of it.
    what: what error messages call the caller.

  Returns:
    The `Selection`.

  Raises:
    ValueError: `wrt` not a pytree of bools that is a prefix of x's structure; no leaf selected; a
      selected leaf without a batch axis, of another leading size than the others, or not
      floating-point (the message names the leaf's path and dtype, and the fix).
  """
  named, treedef = jax.tree_util.tree_flatten_with_path(x)
  paths = tuple(jax.tree_util.keystr(p) for p, _ in named)
  leaves = tuple(leaf for _, leaf in named)
  if wrt is None:
    mask = (True,) * len(leaves)
  else:
    bad = ValueError(
      f"{what}: wrt must be None or a pytree of Python bools with the input's structure "
      f"{treedef} (or a prefix of it); got {wrt!r}."
    )
    if not all(isinstance(w, bool | np.bool_) for w in jax.tree.leaves(wrt)):
      raise bad
    try:
      full = jax.tree.map(lambda w, sub: jax.tree.map(lambda _: bool(w), sub), wrt, x)
    except (ValueError, TypeError):
      raise bad from None
    mask = tuple(jax.tree.leaves(full))
    if len(mask) != len(leaves):
      raise bad
  if not any(mask):
    raise ValueError(f"{what}: wrt selects no leaf of the input {treedef}; select at least one.")
  n = None
  for path, leaf, m in zip(paths, leaves, mask, strict=True):
    if not m:
      continue
    at = f" at x{path}" if path else ""
    if jnp.ndim(leaf) < 1:
      raise ValueError(
        f"{what} needs a batch of shape [batch, ...]{at}; got shape {jnp.shape(leaf)}."
      )
    if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
      raise ValueError(
        f"{what}: the input{at} has dtype {jnp.result_type(leaf)}, and only floating-point "
        "leaves can be differentiated; exclude it with wrt= (False at that leaf) or cast it to "
        "float."
      )
    if n is None:
      n = jnp.shape(leaf)[0]
    elif jnp.shape(leaf)[0] != n:
      raise ValueError(
        f"{what}: every selected leaf needs one batch size; the input{at} has shape "
        f"{jnp.shape(leaf)}, another leaf batch size {n}."
      )
  return Selection(treedef, paths, leaves, mask, n)


def critic_heads(scores: Any, n: int, inputs: Any) -> list[jax.Array]:
  """The critic's score heads as float32 arrays, checked to have the batch axis first.

  Args:
    scores: the critic's output: `[n]` or `[n, 1]`, or a pytree of heads, each `[n, ...]`.
    n: the batch size.
    inputs: the input's shapes, for the error message.

  Returns:
    The heads, each cast to float32, in flattening order.

  Raises:
    ValueError: a single array that is not one score per example; a head (named by its path)
      whose leading axis is not n; no head at all.
  """
  if heads.is_single(scores):
    if jnp.shape(scores) not in ((n,), (n, 1)):
      raise ValueError(
        f"The critic must return one score per example, shape ({n},); it returned shape "
        f"{jnp.shape(scores)} for inputs of shape {inputs}. For scores per patch or several "
        "heads, return a pytree of heads (e.g. a tuple (scores,)): each head [batch, ...] is "
        "then summed per example."
      )
    return [scores.astype(jnp.float32)]
  named = heads.leaves_with_paths(scores)
  if not named:
    raise ValueError(f"The critic returned no score head for inputs of shape {inputs}.")
  for path, head in named:
    if jnp.ndim(head) < 1 or jnp.shape(head)[0] != n:
      raise ValueError(
        f"The critic's head {path} has shape {jnp.shape(head)}; every head needs the batch axis "
        f"first, [{n}, ...], for inputs of shape {inputs}."
      )
  return [head.astype(jnp.float32) for _, head in named]


def _add(values: list[jax.Array]) -> jax.Array:
  return functools.reduce(operator.add, values)


def per_example(values: jax.Array, leaf: jax.Array) -> jax.Array:
  """Per-example values `[n]` reshaped to broadcast over a leaf `[n, ...]`."""
  return values.reshape(values.shape + (1,) * (jnp.ndim(leaf) - 1))


def split_per_leaf(key: jax.Array, count: int) -> list[jax.Array]:
  """One key per selected leaf: the key itself for one leaf (a single array's draws unchanged)."""
  return [key] if count == 1 else list(jax.random.split(key, count))


def select_pair(real: Any, fake: Any, what: str, wrt: Any) -> tuple[Selection, list[Any]]:
  """`select` on `real`, and fake's selected leaves, checked to match real's structure and shapes."""
  sel = select(real, wrt, what)
  if jax.tree.structure(real) != jax.tree.structure(fake):
    raise ValueError(
      f"{what} needs real and fake of one tree structure; got real {jax.tree.structure(real)} "
      f"and fake {jax.tree.structure(fake)}."
    )
  fakes = sel.chosen(jax.tree.leaves(fake))
  for path, r, f in zip(sel.chosen(sel.paths), sel.chosen(), fakes, strict=True):
    if jnp.shape(r) != jnp.shape(f):
      raise ValueError(
        f"{what} needs real and fake of the same shape; got real {jnp.shape(r)} and fake "
        f"{jnp.shape(f)}" + (f" at {path}." if path else ".")
      )
  return sel, fakes


def per_example_uniform(key: jax.Array, x: jax.Array) -> jax.Array:
  """One U[0, 1] draw per example of `x` `[n, ...]`, float32 `[n, 1, ...]` to broadcast over it."""
  return per_example(jax.random.uniform(key, (jnp.shape(x)[0],), jnp.float32), x)


def input_gradients(critic_fn: CriticFn, x: Any, *, wrt: Any = None) -> Any:
  """The gradient of each example's score with respect to that example.

  Args:
    critic_fn: maps a batch to scores: one per example, `[batch]` (or `[batch, 1]`), or a pytree
      of heads, each `[batch, ...]` (their sum per example is differentiated).
    x: the inputs, `[batch, ...]`, or a pytree of such arrays.
    wrt: None (every leaf of `x`), or a pytree of bools with x's structure (or a prefix of it):
      the leaves differentiated; the others are passed to the critic unchanged.

  Returns:
    d critic(x)_i / d x_i for every example i: float32, x's structure and shapes, with None at the
    leaves not selected (a single array for a single-array x).

  Raises:
    ValueError: as `select` (no batch axis, a non-floating leaf selected, a bad `wrt`) and
      `critic_heads` (a critic not returning one score per example, or a head without the batch
      axis first).

  Example:
    >>> input_gradients(lambda x: 0.5 * jnp.sum(x**2, axis=1), jnp.array([[1.0, -2.0]]))
    Array([[ 1., -2.]], dtype=float32)
  """
  sel = select(x, wrt, "input_gradients")

  def total_score(chosen):
    scores = critic_fn(sel.rebuild(chosen))
    return _add([jnp.sum(head) for head in critic_heads(scores, sel.n, sel.shapes())])

  grads = jax.grad(total_score)([leaf.astype(jnp.float32) for leaf in sel.chosen()])
  return sel.rebuild(grads, other=None)


def squared_gradient_norms(critic_fn: CriticFn, x: Any, *, wrt: Any = None) -> jax.Array:
  """||d critic / d x_i||^2 for each example i, over all non-batch axes of the selected leaves.

  Args:
    critic_fn: maps `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads.
    x: the inputs, `[batch, ...]`, or a pytree of such arrays.
    wrt: the leaves differentiated, as in `input_gradients`.

  Returns:
    float32, `[batch]`: the squared norms summed over the selected leaves.

  Raises:
    ValueError: as `input_gradients`.
  """
  grads = jax.tree.leaves(input_gradients(critic_fn, x, wrt=wrt))
  return _add([jnp.sum(jnp.square(g), axis=tuple(range(1, g.ndim))) for g in grads])


def gradient_norms(critic_fn: CriticFn, x: Any, *, wrt: Any = None) -> jax.Array:
  """||d critic / d x_i|| for each example i, finite and with a finite gradient at zero.

  Computed as sqrt(||g||^2 + 1e-12): the plain norm has a NaN gradient at g = 0.

  Args:
    critic_fn: maps `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads.
    x: the inputs, `[batch, ...]`, or a pytree of such arrays.
    wrt: the leaves differentiated, as in `input_gradients`.

  Returns:
    float32, `[batch]`.

  Raises:
    ValueError: as `input_gradients`.

  Example:
    >>> gradient_norms(lambda x: x @ jnp.array([3.0, 4.0]), jnp.ones((2, 2)))
    Array([5., 5.], dtype=float32)
  """
  return jnp.sqrt(squared_gradient_norms(critic_fn, x, wrt=wrt) + EPS)
