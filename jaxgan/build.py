"""The one builder: a config to the static `GAN` and its train step.

The training loop, the benchmarks and the studies all build their GAN here, so that a config
means the same network, optimiser and update wherever it is run.
"""

from __future__ import annotations

import ml_collections
import optax

from jaxgan.models import make_models
from jaxgan.state import GAN
from jaxgan.train import TrainStep, make_train_step


def learning_rate(peak: float, decay: str, decay_steps: int) -> optax.ScalarOrSchedule:
  """The learning rate of `config.optim`: constant, or decayed from `peak` to 0.

  Args:
    peak: the initial learning rate.
    decay: 'constant', 'linear' or 'cosine' (Loshchilov & Hutter 2017).
    decay_steps: optimizer updates over which the rate falls to 0 (and stays there).

  Returns:
    A float or an optax schedule.

  Raises:
    ValueError: an unknown `decay`.
  """
  if decay == "constant":
    return peak
  if decay == "linear":
    return optax.linear_schedule(peak, 0.0, decay_steps)
  if decay == "cosine":
    return optax.cosine_decay_schedule(peak, decay_steps)
  raise ValueError(f"Unknown learning-rate decay {decay!r}; use 'constant', 'linear' or 'cosine'.")


def build_gan(config: ml_collections.ConfigDict, image_shape: tuple[int, ...]) -> GAN:
  """Builds G, D and their Adam optimisers from `config.model` and `config.optim`.

  Args:
    config: a run config (`jaxgan.config.default_config()` and overrides).
    image_shape: one example's shape without the batch axis: `(H, W, C)` for images, `(2,)` for
      the toy mixtures.

  Returns:
    The static `GAN` (modules, optimisers, latent shape `(config.model.latent_dim,)`).

  Raises:
    ValueError: unknown model name or keyword, or an image shape the model does not support.
  """
  m, o = config.model, config.optim
  g, d = make_models(
    m.name,
    image_shape=tuple(image_shape),
    latent_dim=m.latent_dim,
    width=m.width,
    d_norm=m.d_norm,
    dtype=m.compute_dtype,
    minibatch_std=m.minibatch_std,
    **m.kwargs.to_dict(),
  )
  # D takes n_critic updates per train step: both rates reach 0 after decay_steps train steps.
  adam = lambda lr, n: optax.adam(
    learning_rate(lr, o.lr_decay, o.decay_steps * n), b1=o.b1, b2=o.b2
  )
  return GAN(
    g,
    d,
    adam(o.g_lr, 1),
    adam(o.d_lr, config.loss.n_critic),
    latent_shape=(m.latent_dim,),
    pack=m.pack,
  )


def build_train_step(config: ml_collections.ConfigDict, gan: GAN) -> TrainStep:
  """Builds `train_step(state, batch, key) -> (state, metrics)` from `config.loss`.

  Args:
    config: a run config.
    gan: the GAN from `build_gan(config, ...)`.

  Returns:
    The pure (not yet jitted) train step of `jaxgan.train.make_train_step`.

  Raises:
    ValueError: unknown loss or penalty name, or an invalid `n_critic` or `ema_decay`.
  """
  lo = config.loss
  return make_train_step(
    gan,
    loss=lo.name,
    penalty=lo.penalty,
    penalty_weight=lo.penalty_weight,
    n_critic=lo.n_critic,
    ema_decay=config.optim.ema_decay,
    weight_clip=lo.weight_clip,
  )
