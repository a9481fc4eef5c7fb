"""GAN losses as pure functions of discriminator scores.

Every loss is a pair `GANLoss(d, g)` of a discriminator loss and a generator loss, both called as
`f(real_scores, fake_scores) -> scalar` (the batch mean). Scores are the discriminator's raw
outputs (logits), shape `(n,)`. Generator losses that do not depend on the real scores ignore them;
the relativistic ones need them. Every log-sigmoid is computed as `jax.nn.log_sigmoid` /
`jax.nn.softplus`, so scores of +-100 give finite losses and gradients.

Notation: D(x) = sigmoid(s) where s is the score; softplus(s) = log(1 + e^s) = -log(1 - D(x)),
softplus(-s) = -log D(x).

Example:
  >>> import jax.numpy as jnp
  >>> from jaxgan import losses
  >>> loss = losses.get("hinge")
  >>> real, fake = jnp.array([2.0, 0.5]), jnp.array([-1.0, 0.3])
  >>> d_loss, g_loss = loss.d(real, fake), loss.g(real, fake)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


class GANLoss(NamedTuple):
  """A discriminator loss `d` and a generator loss `g`, both `f(real_scores, fake_scores)`."""

  d: LossFn
  g: LossFn


def _mean(x: jax.Array) -> jax.Array:
  return jnp.mean(x.astype(jnp.float32))


# --- Goodfellow et al. 2014 -------------------------------------------------------------------


def bce_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Discriminator loss of the original GAN (Goodfellow et al. 2014).

  L_D = -E[log D(x)] - E[log(1 - D(G(z)))] = E[softplus(-s_real)] + E[softplus(s_fake)].
  Shared by the `minimax` and `non_saturating` losses.
  """
  return _mean(jax.nn.softplus(-real_scores)) + _mean(jax.nn.softplus(fake_scores))


def minimax_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Saturating generator loss of the minimax game (Goodfellow et al. 2014, eq. 1).

  L_G = E[log(1 - D(G(z)))] = -E[softplus(s_fake)]. Its gradient vanishes when D confidently
  rejects the fakes, which is why `non_saturating` is used in practice. `real_scores` is ignored.
  """
  del real_scores
  return -_mean(jax.nn.softplus(fake_scores))


def non_saturating_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Non-saturating generator loss (Goodfellow et al. 2014, section 3).

  L_G = -E[log D(G(z))] = E[softplus(-s_fake)]. `real_scores` is ignored.
  """
  del real_scores
  return _mean(jax.nn.softplus(-fake_scores))


# --- Mao et al. 2017 --------------------------------------------------------------------------


def lsgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Least-squares discriminator loss (Mao et al. 2017, eq. 2) on raw scores, a=0, b=1.

  L_D = 1/2 E[(s_real - 1)^2] + 1/2 E[s_fake^2]. Defined on the raw scores, as in the paper, not
  on sigmoid outputs. Twice this value is the seed documents' form without the 1/2 factors.
  """
  return 0.5 * _mean(jnp.square(real_scores - 1.0)) + 0.5 * _mean(jnp.square(fake_scores))


def lsgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Least-squares generator loss (Mao et al. 2017, eq. 2) on raw scores, c=1.

  L_G = 1/2 E[(s_fake - 1)^2]. `real_scores` is ignored.
  """
  del real_scores
  return 0.5 * _mean(jnp.square(fake_scores - 1.0))


# --- Arjovsky et al. 2017 ---------------------------------------------------------------------


def wasserstein_critic_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Wasserstein critic loss (Arjovsky et al. 2017): L_D = E[s_fake] - E[s_real].

  Only meaningful with a Lipschitz constraint on the critic: weight clipping
  (`jaxgan.penalties.clip_weights`) for WGAN, or `jaxgan.penalties.gradient_penalty` for WGAN-GP
  (Gulrajani et al. 2017).
  """
  return _mean(fake_scores) - _mean(real_scores)


def wasserstein_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Wasserstein generator loss (Arjovsky et al. 2017): L_G = -E[s_fake]. `real_scores` is ignored.

  Also the generator loss of the hinge GAN (Lim & Ye 2017; Miyato et al. 2018).
  """
  del real_scores
  return -_mean(fake_scores)


# --- Lim & Ye 2017, Miyato et al. 2018 --------------------------------------------------------


def hinge_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018).

  L_D = E[max(0, 1 - s_real)] + E[max(0, 1 + s_fake)]; the generator uses -E[s_fake].
  """
  return _mean(jax.nn.relu(1.0 - real_scores)) + _mean(jax.nn.relu(1.0 + fake_scores))


# --- Jolicoeur-Martineau 2018: relativistic GANs ----------------------------------------------


def rsgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic standard GAN discriminator loss (Jolicoeur-Martineau 2018, eq. 6).

  L_D = -E[log sigmoid(s_real_i - s_fake_i)] = E[softplus(s_fake_i - s_real_i)], with real and
  fake examples paired by batch index i (both batches must have the same size).
  """
  return _mean(jax.nn.softplus(fake_scores - real_scores))


def rsgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic standard GAN generator loss (Jolicoeur-Martineau 2018, eq. 7).

  L_G = E[softplus(s_real_i - s_fake_i)], real and fake paired by batch index.
  """
  return _mean(jax.nn.softplus(real_scores - fake_scores))


def _relativistic_average(real_scores, fake_scores):
  # Each example is compared with the mean score of the *other* distribution's whole batch. The
  # released RaSGAN/RaLSGAN code compared a batch of fakes with a single real instead
  # (issue #2 of the paper's repository); this is the formula of the paper.
  return real_scores - jnp.mean(fake_scores), fake_scores - jnp.mean(real_scores)


def rasgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average standard GAN discriminator loss (Jolicoeur-Martineau 2018, eq. 11).

  With r = s_real - E[s_fake] and f = s_fake - E[s_real]:
  L_D = -E[log sigmoid(r)] - E[log(1 - sigmoid(f))] = E[softplus(-r)] + E[softplus(f)].
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.softplus(-r)) + _mean(jax.nn.softplus(f))


def rasgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average standard GAN generator loss (Jolicoeur-Martineau 2018, eq. 12).

  L_G = E[softplus(-f)] + E[softplus(r)], with r and f as in the discriminator loss.
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.softplus(-f)) + _mean(jax.nn.softplus(r))


def ralsgan_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average least-squares discriminator loss (Jolicoeur-Martineau 2018, appendix).

  L_D = E[(r - 1)^2] + E[(f + 1)^2], r = s_real - E[s_fake], f = s_fake - E[s_real].
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jnp.square(r - 1.0)) + _mean(jnp.square(f + 1.0))


def ralsgan_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average least-squares generator loss: L_G = E[(f - 1)^2] + E[(r + 1)^2]."""
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jnp.square(f - 1.0)) + _mean(jnp.square(r + 1.0))


def rahinge_discriminator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average hinge discriminator loss (Jolicoeur-Martineau 2018, appendix).

  L_D = E[max(0, 1 - r)] + E[max(0, 1 + f)], r = s_real - E[s_fake], f = s_fake - E[s_real].
  """
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.relu(1.0 - r)) + _mean(jax.nn.relu(1.0 + f))


def rahinge_generator_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Relativistic average hinge generator loss: L_G = E[max(0, 1 - f)] + E[max(0, 1 + r)]."""
  r, f = _relativistic_average(real_scores, fake_scores)
  return _mean(jax.nn.relu(1.0 - f)) + _mean(jax.nn.relu(1.0 + r))


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
  """Returns the GANLoss registered under `loss` (a GANLoss passes through unchanged)."""
  if isinstance(loss, GANLoss):
    return loss
  try:
    return LOSSES[loss]
  except (KeyError, TypeError):
    raise ValueError(
        f"Unknown GAN loss {loss!r}. Valid names: {', '.join(LOSSES)}; "
        "or pass a jaxgan.losses.GANLoss(d, g) of your own.") from None
