"""How the train step applies its modules: the critic on real and fake, and the penalties' critic.

Pure functions of a Flax module and its variables, so the train step (`jaxgan.step.train`) stays the
composition of the update. A module's non-parameter collections (BatchNorm statistics,
spectral-norm vectors) are threaded through every call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.step import packing
from jaxgan.step.state import scores_and_logits


def apply_module(module, params, variables, x, train: bool, labels=None):
  """Applies a module, threading its non-parameter collections.

  Args:
    module: a Flax module called as `module.apply(vars, x, train=...)`.
    params: its `params` collection.
    variables: its other collections (a dict, possibly empty).
    x: the input.
    train: training mode (batch statistics, power iterations).
    labels: int32 `[n]` for a class-conditional module; None otherwise (an unconditional
      module takes no labels).

  Returns:
    `(output, variables)`, the collections updated when `train`.
  """
  kw = {} if labels is None else {"labels": labels}
  if not variables:
    return module.apply({"params": params}, x, train=train, **kw), variables
  out, updates = module.apply(
    {"params": params, **variables}, x, train=train, mutable=list(variables), **kw
  )
  return out, {**variables, **updates}


def mean_score(scores) -> jax.Array:
  """D's mean score: the mean over heads of each head's mean, float32 (the logged `d_real`).

  Args:
    scores: `[n]` scores, or a pytree of heads `[n, ...]` (a feature critic's patch maps).

  Returns:
    A float32 scalar.
  """
  heads = jax.tree.leaves(scores)
  return sum(jnp.mean(s.astype(jnp.float32)) for s in heads) / len(heads)


def example_signs(scores) -> jax.Array:
  """sign(D(x)) per example, averaged over heads and each head's patches, float32 `[n]`.

  ADA's r_t = E[sign(D(x_real))] over examples: a critic with several heads (or one score per
  patch) gives each example the mean of its signs, so r_t keeps counting images.
  """
  heads = jax.tree.leaves(jax.lax.stop_gradient(scores))
  per_head = [jnp.sign(s.astype(jnp.float32)).reshape(s.shape[0], -1).mean(1) for s in heads]
  return sum(per_head) / len(per_head)


def discriminate(D, params, d_vars, x, labels):
  """D in training mode: its scores, its class logits (ACGAN) or None, its collections.

  Returns:
    `(scores [n], class_logits [n, num_classes] or None, d_vars)`.
  """
  out, d_vars = apply_module(D, params, d_vars, x, True, labels)
  return (*scores_and_logits(out), d_vars)


def critic_scores(D, params, d_vars, real, fake, y_real, y_fake):
  """D on real and fake: one pass over both for a stateless D on vectors, else two passes.

  A D with state needs two passes, as in PyTorch: BatchNorm gives each its own batch
  statistics and spectral norm does one power iteration per pass. Otherwise the scores are
  the same either way, and speed on the CPU decides: for vectors (MLPs) one pass of twice the
  rows, because small matmuls run well below the machine's peak; for images two, because a
  convolution over twice the images costs no less than two convolutions over half of them.

  Args:
    D: the discriminator module.
    params, d_vars: its parameters and other collections.
    real, fake: D's inputs, `[n, ...]` each.
    y_real, y_fake: their labels, int32 `[n]`, or None for an unconditional D.

  Returns:
    `((s_real, s_fake), (logits_real, logits_fake), d_vars)`: scores `[n]` (or D's pytree of
    heads `[n, ...]`); class logits
    `[n, num_classes]` of an ACGAN discriminator, else None.
  """
  if not d_vars and real.ndim == 2:
    # Interleaved rows (real_0, fake_0, real_1, ...), so that on a data-parallel mesh every
    # device's rows stay on it; a plain concatenation would need an all-gather.
    n = real.shape[0]
    interleave = lambda a, b: jnp.stack([a, b], axis=1).reshape(2 * n, *a.shape[1:])
    both_y = None if y_real is None else interleave(y_real, y_fake)
    scores, logits, _ = discriminate(D, params, d_vars, interleave(real, fake), both_y)
    # Every head (and the class logits) splits back into its real and fake rows.
    pairs = jax.tree.map(lambda s: s.reshape(n, 2, *s.shape[1:]), scores)
    s_real, s_fake = (jax.tree.map(lambda s, i=i: s[:, i], pairs) for i in (0, 1))
    if logits is not None:
      logits = logits.reshape(n, 2, -1)
      logits = (logits[:, 0], logits[:, 1])
    return (s_real, s_fake), logits or (None, None), d_vars
  s_real, l_real, d_vars = discriminate(D, params, d_vars, real, y_real)
  s_fake, l_fake, d_vars = discriminate(D, params, d_vars, fake, y_fake)
  return (s_real, s_fake), (l_real, l_fake), d_vars


def penalty_critic(D, params, d_vars, labels, augment, aug_key: jax.Array, p, pack: int):
  """The critic a gradient penalty differentiates: `x -> scores`, behind D's augmentation.

  The penalties see packed raw inputs; the critic unpacks them, augments them as D's loss does
  (so the penalty is taken through the augmentation onto the raw inputs, as in StyleGAN2-ADA)
  and scores them. A class-conditional critic is closed over labels, so it is differentiated
  with respect to the images only.

  Args:
    D: the discriminator module.
    params, d_vars: its parameters and other collections.
    labels: int32 `[n]`, or None for an unconditional D.
    augment: None, or `f(images, key, p) -> images`.
    aug_key: the augmentation's key: the one D's loss augmented the same points with, so the
      penalty differentiates the function the loss evaluated (the same draw).
    p: the augmentation's probability.
    pack: PacGAN's pack size.

  Returns:
    `critic(x) -> scores [n]`.
  """

  def critic(x):
    if augment is not None:
      x = packing.pack(augment(packing.unpack(x, pack), aug_key, p), pack)
    return discriminate(D, params, d_vars, x, labels)[0]

  return critic
