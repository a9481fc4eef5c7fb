"""GAN losses as pure functions of discriminator scores.

Every loss is a pair `GANLoss(d, g)` of a discriminator loss and a generator loss, both called as
`f(real_scores, fake_scores) -> scalar`. Scores are the discriminator's raw outputs (logits), one
per example: floating-point arrays of shape `[batch]`. Real and fake scores must have the same
shape (every loss is a mean over all elements, and the relativistic ones pair real and fake
examples by index); a mismatch such as `(n, 1)` against `(n,)`, which would otherwise broadcast
to `(n, n)`, raises a ValueError naming both shapes. Shapes are static, so the check runs once at
trace time and costs nothing under `jax.jit`. Every loss returns a float32 scalar. Generator
losses that do not depend on the real scores ignore them; the relativistic ones need them.

Several heads: a pytree (list, tuple, dict) of score arrays on each side, of one tree structure,
gives the sum over heads (or with `reduce="mean"` the mean) of each head's loss, the formula on
that head alone; a head may score patches, `[batch, h, w]`, averaged over batch and patches as
Projected GAN and StyleGAN-T do. The relativistic-average losses compare each score with the mean
over the batch axis of the other side's head, so a patch head pairs patch positions.

Every log-sigmoid is computed as `jax.nn.log_sigmoid` / `jax.nn.softplus`, so scores of +-100
give finite losses and gradients. Notation: D(x) = sigmoid(s) where s is the score;
softplus(s) = log(1 + e^s) = -log(1 - D(x)), softplus(-s) = -log D(x).

Example:
  >>> import jax.numpy as jnp
  >>> from jaxgan import losses
  >>> loss = losses.get("hinge")
  >>> real, fake = jnp.array([2.0, 0.5]), jnp.array([-1.0, 0.3])
  >>> print(f"{loss.d(real, fake):.2f} {loss.g(real, fake):.2f}")
  0.90 0.35
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgan import heads
from jaxgan.heads import check_scores as check_scores  # re-exported: checks one head's scores

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


class GANLoss(NamedTuple):
  """A discriminator loss and a generator loss, both `f(real_scores, fake_scores) -> scalar`.

  Attributes:
    d: the discriminator (critic) loss, minimised over D's parameters.
    g: the generator loss, minimised over G's parameters.

  Example:
    >>> custom = GANLoss(hinge_discriminator_loss, wasserstein_generator_loss)
    >>> get(custom) is custom
    True
  """

  d: LossFn
  g: LossFn


# Every loss takes the same arguments, returns the same type and raises the same error: written
# once here, and added to each loss's docstring by `_checked`.
_SECTIONS = """
  Args:
    real_scores: D's scores (logits) of real examples, floating-point: one array, `[batch]` or
      `[batch, ...]` (e.g. `[batch, h, w]`, one score per patch), or a pytree (list, tuple, dict)
      of such arrays, one per head, each of its own shape. A loss whose formula does not use them
      uses only their shapes.
    fake_scores: D's scores of generated examples: the same tree structure, head by head the same
      shapes.
    reduce: how the heads' losses combine: 'sum' (the default) or 'mean' over the heads.

  Returns:
    The loss, a float32 scalar: the formula above on each head (the mean over all its elements),
    summed or averaged over the heads; one array is one head.

  Raises:
    ValueError: from `check_scores`, head by head: the shapes differ (the message names both), or
      the scores are not floating-point; real and fake scores of different tree structures (the
      message names both); an unknown `reduce`.
"""


def _checked(fn: LossFn) -> LossFn:
  """Applies a loss of one head to every head (`heads.over_heads`) and documents its arguments."""

  @functools.wraps(fn)
  def loss(real_scores, fake_scores, *, reduce: str = "sum"):
    return heads.over_heads(fn, real_scores, fake_scores, reduce=reduce, name=fn.__name__)

  head, example, tail = fn.__doc__.rstrip().partition("\n  Example:")
  loss.__doc__ = head.rstrip() + "\n" + _SECTIONS + example + tail + "\n  "
  return loss


def _mean(x: jax.Array) -> jax.Array:
  return jnp.mean(x.astype(jnp.float32))


# --- Goodfellow et al. 2014 -------------------------------------------------------------------


@_checked
def bce_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Discriminator loss of the original GAN (Goodfellow et al. 2014, eq. 1).

  L_D = -E[log D(x)] - E[log(1 - D(G(z)))] = E[softplus(-s_real)] + E[softplus(s_fake)].
  Shared by the `minimax` and `non_saturating` losses.

  Example:
    >>> print(f"{bce_discriminator_loss(jnp.zeros(3), jnp.zeros(3)):.4f}")  # 2 log 2
    1.3863
  """
  return _mean(jax.nn.softplus(-real_scores)) + _mean(jax.nn.softplus(fake_scores))


@_checked
def minimax_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Saturating generator loss of the minimax game (Goodfellow et al. 2014, eq. 1).

  L_G = E[log(1 - D(G(z)))] = -E[softplus(s_fake)]. Its gradient vanishes when D confidently
  rejects the fakes, which is why `non_saturating` is used in practice.
  """
  del real_scores
  return -_mean(jax.nn.softplus(fake_scores))


@_checked
def non_saturating_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Non-saturating generator loss (Goodfellow et al. 2014, section 3).

  L_G = -E[log D(G(z))] = E[softplus(-s_fake)].
  """
  del real_scores
  return _mean(jax.nn.softplus(-fake_scores))


# --- Mao et al. 2017 --------------------------------------------------------------------------


@_checked
def lsgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Least-squares discriminator loss (Mao et al. 2017, eq. 2) on raw scores, a=0, b=1.

  L_D = 1/2 E[(s_real - 1)^2] + 1/2 E[s_fake^2]. Defined on the raw scores, as in the paper, not
  on sigmoid outputs. Twice this value is the form without the 1/2 factors.

  Example:
    >>> float(lsgan_discriminator_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 2.0])))
    2.0
  """
  return 0.5 * _mean(jnp.square(real_scores - 1.0)) + 0.5 * _mean(jnp.square(fake_scores))


@_checked
def lsgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Least-squares generator loss (Mao et al. 2017, eq. 2) on raw scores, c=1.

  L_G = 1/2 E[(s_fake - 1)^2].
  """
  del real_scores
  return 0.5 * _mean(jnp.square(fake_scores - 1.0))


# --- Arjovsky et al. 2017 ---------------------------------------------------------------------


@_checked
def wasserstein_critic_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Wasserstein critic loss (Arjovsky et al. 2017, eq. 3): L_D = E[s_fake] - E[s_real].

  Only meaningful with a Lipschitz constraint on the critic: weight clipping
  (`jaxgan.penalties.clip_weights`) for WGAN, or `jaxgan.penalties.gradient_penalty` for WGAN-GP
  (Gulrajani et al. 2017).

  Example:
    >>> float(wasserstein_critic_loss(jnp.array([3.0, 1.0]), jnp.array([0.0, -2.0])))
    -3.0
  """
  return _mean(fake_scores) - _mean(real_scores)


@_checked
def wasserstein_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Wasserstein generator loss (Arjovsky et al. 2017): L_G = -E[s_fake].

  Also the generator loss of the hinge GAN (Lim & Ye 2017; Miyato et al. 2018).
  """
  del real_scores
  return -_mean(fake_scores)


# --- Lim & Ye 2017, Miyato et al. 2018 --------------------------------------------------------


@_checked
def hinge_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16).

  L_D = E[max(0, 1 - s_real)] + E[max(0, 1 + s_fake)]; the generator uses -E[s_fake]
  (`wasserstein_generator_loss`).
  """
  return _mean(jax.nn.relu(1.0 - real_scores)) + _mean(jax.nn.relu(1.0 + fake_scores))


# --- Jolicoeur-Martineau 2018: relativistic GANs ----------------------------------------------


@_checked
def rsgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic standard GAN discriminator loss (Jolicoeur-Martineau 2018, eq. 6).

  L_D = -E[log sigmoid(s_real_i - s_fake_i)] = E[softplus(s_fake_i - s_real_i)], with real and
  fake examples paired by batch index i (hence equal shapes: `(n, 1)` against `(n,)` would pair
  every real with every fake).

  Example:
    >>> print(f"{rsgan_discriminator_loss(jnp.zeros(2), jnp.zeros(2)):.4f}")  # log 2
    0.6931
  """
  return _mean(jax.nn.softplus(fake_scores - real_scores))


@_checked
def rsgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic standard GAN generator loss (Jolicoeur-Martineau 2018, eq. 7).

  L_G = E[softplus(s_real_i - s_fake_i)], real and fake paired by batch index.
  """
  return _mean(jax.nn.softplus(real_scores - fake_scores))


def _relativistic_average(real_scores, fake_scores):
  # Each example is compared with the mean score of the *other* distribution's whole batch (per
  # position for a patch head: the mean over the batch axis). The authors' released RaSGAN/RaLSGAN
  # code compared a batch of fakes with a single real instead; this is the formula of the paper.
  axis = 0 if jnp.ndim(real_scores) else None
  return real_scores - jnp.mean(fake_scores, axis), fake_scores - jnp.mean(real_scores, axis)


@_checked
def rasgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average standard GAN discriminator loss (Jolicoeur-Martineau 2018, eq. 11).

  With r = s_real - E[s_fake] and f = s_fake - E[s_real], E over the batch axis:
  L_D = -E[log sigmoid(r)] - E[log(1 - sigmoid(f))] = E[softplus(-r)] + E[softplus(f)].
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.softplus(-r)) + _mean(jax.nn.softplus(f))


@_checked
def rasgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average standard GAN generator loss (Jolicoeur-Martineau 2018, eq. 12).

  L_G = E[softplus(-f)] + E[softplus(r)], with r and f as in `rasgan_discriminator_loss`.
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.softplus(-f)) + _mean(jax.nn.softplus(r))


@_checked
def ralsgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average least-squares discriminator loss (Jolicoeur-Martineau 2018, appendix).

  L_D = E[(r - 1)^2] + E[(f + 1)^2], r = s_real - E[s_fake], f = s_fake - E[s_real].
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jnp.square(r - 1.0)) + _mean(jnp.square(f + 1.0))


@_checked
def ralsgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average least-squares generator loss (Jolicoeur-Martineau 2018, appendix).

  L_G = E[(f - 1)^2] + E[(r + 1)^2], with r and f as in `ralsgan_discriminator_loss`.
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jnp.square(f - 1.0)) + _mean(jnp.square(r + 1.0))


@_checked
def rahinge_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average hinge discriminator loss (Jolicoeur-Martineau 2018, appendix).

  L_D = E[max(0, 1 - r)] + E[max(0, 1 + f)], r = s_real - E[s_fake], f = s_fake - E[s_real].
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.relu(1.0 - r)) + _mean(jax.nn.relu(1.0 + f))


@_checked
def rahinge_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average hinge generator loss (Jolicoeur-Martineau 2018, appendix).

  L_G = E[max(0, 1 - f)] + E[max(0, 1 + r)], with r and f as in `rahinge_discriminator_loss`.
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.relu(1.0 - f)) + _mean(jax.nn.relu(1.0 + r))


def acgan_class_loss(class_logits: Any, labels: jax.Array, *, reduce: str = "sum") -> jax.Array:
  """The auxiliary classifier's class loss (ACGAN, Odena, Olah and Shlens 2017), -E[log P(c|x)].

  The mean softmax cross-entropy of D's class logits against the labels. In ACGAN both players
  minimise it (D on real and fake examples, G on its fakes, with the fakes' requested labels),
  beside the adversarial losses of this module. Several classifier heads (a pytree of logits,
  one labels array for all) give the sum (or with `reduce="mean"` the mean) of their losses.

  Args:
    class_logits: float `[batch, num_classes]`, D's class logits; or a pytree (list, tuple,
      dict) of such arrays, one per head (each head its own number of classes).
    labels: int `[batch]`, the classes in `[0, num_classes)`, shared by every head.
    reduce: 'sum' (the default) or 'mean' of the heads' losses.

  Returns:
    float32 scalar.

  Raises:
    ValueError: logits that are not `[batch, num_classes]` (the message names the head) or labels
      that are not `[batch]`; concrete labels outside `[0, num_classes)`; an unknown `reduce`.

  Example:
    >>> logits = jnp.array([[2.0, 0.0], [0.0, 0.0]])
    >>> print(f"{acgan_class_loss(logits, jnp.array([0, 1])):.4f}")  # (log(1+e^-2) + log 2) / 2
    0.4100
    >>> print(f"{acgan_class_loss([logits, logits], jnp.array([0, 1]), reduce='mean'):.4f}")
    0.4100
  """
  heads.check_reduce(reduce, "acgan_class_loss")
  if heads.is_single(class_logits):
    return _class_loss(class_logits, labels, "acgan_class_loss")
  named = heads.leaves_with_paths(class_logits)
  if not named:
    raise ValueError("acgan_class_loss: the class logits hold no head.")
  values = [_class_loss(x, labels, f"acgan_class_loss (head {path})") for path, x in named]
  return heads.combine(values, reduce)


def _class_loss(class_logits: jax.Array, labels: jax.Array, name: str) -> jax.Array:
  if class_logits.ndim != 2 or labels.shape != class_logits.shape[:1]:
    raise ValueError(
      f"{name} needs logits [batch, num_classes] and labels [batch]; got "
      f"{class_logits.shape} and {labels.shape}."
    )
  if not isinstance(labels, jax.core.Tracer) and labels.size:
    k = class_logits.shape[-1]
    if int(jnp.min(labels)) < 0 or int(jnp.max(labels)) >= k:
      raise ValueError(f"{name}: labels must lie in [0, {k}) (the logits' classes).")
  logp = jax.nn.log_softmax(class_logits.astype(jnp.float32), axis=-1)
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1))


LOSSES: dict[str, GANLoss] = {
  "minimax": GANLoss(bce_discriminator_loss, minimax_generator_loss),
  "non_saturating": GANLoss(bce_discriminator_loss, non_saturating_generator_loss),
  "lsgan": GANLoss(lsgan_discriminator_loss, lsgan_generator_loss),
  "wgan": GANLoss(wasserstein_critic_loss, wasserstein_generator_loss),
  "hinge": GANLoss(hinge_discriminator_loss, wasserstein_generator_loss),
  "rsgan": GANLoss(rsgan_discriminator_loss, rsgan_generator_loss),
  "rasgan": GANLoss(rasgan_discriminator_loss, rasgan_generator_loss),
  "ralsgan": GANLoss(ralsgan_discriminator_loss, ralsgan_generator_loss),
  "rahinge": GANLoss(rahinge_discriminator_loss, rahinge_generator_loss),
}


def get(loss: str | GANLoss) -> GANLoss:
  """Looks up a loss by name.

  Args:
    loss: a name in `LOSSES`, or a `GANLoss`, which passes through unchanged.

  Returns:
    The `GANLoss`.

  Raises:
    ValueError: for an unknown name; the message lists the valid ones.

  Example:
    >>> get("wgan").d is wasserstein_critic_loss
    True
  """
  if isinstance(loss, GANLoss):
    return loss
  try:
    return LOSSES[loss]
  except (KeyError, TypeError):
    raise ValueError(
      f"Unknown GAN loss {loss!r}. Valid names: {', '.join(LOSSES)}; "
      "or pass a jaxgan.losses.GANLoss(d, g) of your own."
    ) from None
