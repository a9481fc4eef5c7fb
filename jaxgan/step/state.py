"""The train state: one pytree of arrays, and the static description of a GAN that goes with it.

`GAN` holds what never changes during a run (the two Flax modules, the two optax transformations
and the latent shape); it is closed over by the compiled step, so it is never traced. `GANState`
holds everything that does change, as arrays only, so a checkpoint is just this pytree.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgan.models.feature_critic import FROZEN_COLLECTION
from jaxgan.step import labels as labels_lib
from jaxgan.step import packing

PyTree = Any


@flax.struct.dataclass
class GANState:
  """Everything a GAN run mutates.

  Attributes:
    step: number of completed train steps (one step = n_critic D updates and one G update).
    g_params, d_params: the `params` collections of G and D.
    g_vars, d_vars: every other variable collection (BatchNorm statistics, spectral-norm vectors),
      as a dict keyed by collection name; empty dicts when the module has none.
    ema_params: exponential moving average of `g_params`; samples and metrics use it.
    g_opt_state, d_opt_state: the optax states.
    skipped: number of steps whose update was not applied because it was not finite.
    aug_p: float32 scalar, the probability of the discriminator's augmentation at the last step
      (`jaxgan.augment`); adapted inside the step by ADA, so a resumed run continues with it.
    ada_stats: float32 `[2]`, ADA's running sum of sign(D(x_real)) and its count since p was
      last adjusted.
    lecam_anchors: float32 `[2]`, the LeCam regulariser's EMAs of D's mean real and fake scores.
  """

  step: jax.Array
  g_params: PyTree
  d_params: PyTree
  g_vars: PyTree
  d_vars: PyTree
  ema_params: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  skipped: jax.Array
  aug_p: jax.Array
  ada_stats: jax.Array
  lecam_anchors: jax.Array


def scores_and_logits(output) -> tuple[jax.Array, jax.Array | None]:
  """Splits a discriminator's output into its scores and its class logits (ACGAN) or None.

  Args:
    output: scores `[n]`, a dict or list of heads `[n, ...]` (a multi-head critic, e.g.
      `jaxgan.models.feature_critic`; the losses sum over them), or `(scores, class_logits
      [n, num_classes])` from an auxiliary-classifier discriminator: a tuple always means this.

  Returns:
    `(scores, class_logits)`, the logits None for a discriminator without a classifier.
  """
  if isinstance(output, tuple):
    return output
  return output, None


def _split(variables):
  variables = dict(variables)
  params = variables.pop("params", {})
  return params, variables


def uses_batch_norm(variables: PyTree) -> bool:
  """Whether a module's variables hold BatchNorm statistics (a `mean` and a `var` leaf).

  BatchNorm in training mode mixes the examples of a batch, which makes per-example input
  gradients (and so every gradient penalty) wrong. Spectral-norm vectors (`u`, `sigma`), the
  `params` collection and a feature critic's frozen backbone (`FROZEN_COLLECTION`, run in
  inference mode) do not count.

  Args:
    variables: a Flax variable dict, `{collection: {...}}`, with or without `params`.

  Returns:
    True when a collection other than `params` has leaves named `mean` and `var`.

  Example:
    >>> uses_batch_norm({"batch_stats": {"BatchNorm_0": {"mean": 0.0, "var": 1.0}}})
    True
    >>> uses_batch_norm({"params": {"LayerNorm_0": {"mean": 0.0, "var": 1.0}}})
    False
  """
  paths = [
    tuple(getattr(k, "key", k) for k in path)
    for path, _ in jax.tree_util.tree_flatten_with_path(dict(variables))[0]
  ]
  # A feature critic's frozen backbone runs in inference mode: its statistics mix no examples.
  names = {p[-1] for p in paths if p and p[0] not in ("params", FROZEN_COLLECTION)}
  return {"mean", "var"} <= names


@dataclasses.dataclass(frozen=True)
class GAN:
  """Static description of a GAN: the modules, their optimizers and the latent shape.

  Both modules are called as `module.apply(variables, x, train=...)`; the generator maps latents
  of shape `[batch, *latent_shape]` to float32 samples `[batch, ...]`, the discriminator maps
  samples to one raw float32 score (logit) per example, `[batch]`, or to a dict or list of such
  heads (`[batch, ...]`: one score per patch, as a feature critic's). A class-conditional GAN's
  modules also take `labels=` int32 `[batch]`, and an auxiliary-classifier D (ACGAN) returns
  `(scores, class_logits)` (`scores_and_logits`).

  Attributes:
    generator: the Flax module G.
    discriminator: the Flax module D.
    g_optimizer: the optax transformation of G's parameters.
    d_optimizer: the optax transformation of D's parameters.
    latent_shape: one latent's shape, without the batch axis.
    pack: the discriminator judges packs of this many examples (PacGAN, Lin et al. 2018;
      `jaxgan.step.packing.pack`): it is built for, and initialised on, inputs with `pack` times the
      channels, and scores `[batch // pack]`. 1: no packing.
    num_classes: the number of classes of a class-conditional GAN; 0 for an unconditional one.

  Example:
    >>> import jax, optax
    >>> from jaxgan.models import make_models
    >>> g, d = make_models("mlp", image_shape=(2,), g_hidden=(8,), d_hidden=(8,))
    >>> gan = GAN(g, d, optax.adam(1e-3), optax.adam(1e-3), latent_shape=(4,))
    >>> # Shapes only (jax.eval_shape traces without compiling); call gan.init itself to train.
    >>> state = jax.eval_shape(gan.init, jax.random.key(0), jnp.zeros((16, 2)))
    >>> jax.eval_shape(lambda s: gan.sample(s, jax.random.key(1), 5), state).shape
    (5, 2)
  """

  generator: nn.Module
  discriminator: nn.Module
  g_optimizer: optax.GradientTransformation
  d_optimizer: optax.GradientTransformation
  latent_shape: tuple[int, ...]
  pack: int = 1
  num_classes: int = 0

  def __post_init__(self):
    # Modules that know their class count must agree with the GAN's: a mismatch would clamp or
    # refuse labels silently far from where it was made.
    for side, module in (("generator", self.generator), ("discriminator", self.discriminator)):
      k = getattr(module, "num_classes", None)
      if k is not None and k != self.num_classes:
        raise ValueError(
          f"The {side} has num_classes={k}, the GAN num_classes={self.num_classes}; build it "
          f"as GAN(..., num_classes={k})."
        )

  def _kwargs(self, labels) -> dict:
    """The modules' label keyword: none for an unconditional GAN (its modules take none)."""
    return {"labels": labels} if self.num_classes else {}

  def latents(self, key: jax.Array, n: int) -> jax.Array:
    """Draws standard normal latents z ~ N(0, I).

    Args:
      key: a PRNG key.
      n: the number of latents.

    Returns:
      float32, `[n, *latent_shape]`.
    """
    return jax.random.normal(key, (n, *self.latent_shape), jnp.float32)

  def init(self, key: jax.Array, example_batch: jax.Array) -> GANState:
    """Initialises both modules on an example batch and builds the whole state.

    Args:
      key: a PRNG key; G and D get their own keys split from it.
      example_batch: real examples `[batch, ...]`; only the shape matters to the parameters
        (a conditional GAN is initialised with labels 0).

    Returns:
      The state at step 0: the EMA equal to G's parameters, fresh optimizer states.
    """
    return self._jitted_init(key, example_batch)

  @functools.cached_property
  def _jitted_init(self):
    # One compiled program (op-by-op initialisation compiles every random draw separately), kept
    # with the GAN so that a second init of the same shapes reuses it.
    return jax.jit(self._init)

  def _init(self, key: jax.Array, example_batch: jax.Array) -> GANState:
    g_key, d_key = jax.random.split(key)
    n = example_batch.shape[0]
    z = self.latents(g_key, n)
    kw = self._kwargs(jnp.zeros((n // self.pack,), jnp.int32))
    g_params, g_vars = _split(self.generator.init(g_key, z, train=False, **kw))
    d_params, d_vars = _split(
      self.discriminator.init(d_key, packing.pack(example_batch, self.pack), train=False, **kw)
    )
    return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_params,
      d_params=d_params,
      g_vars=g_vars,
      d_vars=d_vars,
      ema_params=jax.tree.map(jnp.copy, g_params),
      g_opt_state=self.g_optimizer.init(g_params),
      d_opt_state=self.d_optimizer.init(d_params),
      skipped=jnp.zeros((), jnp.int32),
      aug_p=jnp.zeros((), jnp.float32),
      ada_stats=jnp.zeros((2,), jnp.float32),
      lecam_anchors=jnp.zeros((2,), jnp.float32),
    )

  def generate(
    self, state: GANState, z: jax.Array, labels: jax.Array | None = None, *, ema: bool = True
  ) -> jax.Array:
    """Computes G(z) (or G(z, y)) in inference mode (BatchNorm uses its running statistics).

    Args:
      state: the train state.
      z: latents, `[batch, *latent_shape]`.
      labels: a conditional GAN's classes, int `[batch]` in `[0, num_classes)`; None for an
        unconditional GAN.
      ema: use the EMA of G's parameters (the default) rather than the parameters themselves.

    Returns:
      The samples, float32, `[batch, ...]` (the data's example shape).

    Raises:
      ValueError: labels missing on a conditional GAN, given to an unconditional one, of the
        wrong shape or (when concrete) outside `[0, num_classes)`.
    """
    labels_lib.check_labels(labels, self.num_classes, batch=z.shape[0])
    params = state.ema_params if ema else state.g_params
    return self.generator.apply(
      {"params": params, **state.g_vars}, z, train=False, **self._kwargs(labels)
    )

  def sample(
    self,
    state: GANState,
    key: jax.Array,
    n: int,
    labels: jax.Array | None = None,
    *,
    ema: bool = True,
  ) -> jax.Array:
    """Draws `n` samples from the generator: `generate` on fresh latents.

    Args:
      state: the train state.
      key: a PRNG key for the latents (and for the labels a conditional GAN draws itself).
      n: the number of samples.
      labels: the classes to draw, int `[n]`; None: uniform over the classes on a conditional
        GAN, nothing on an unconditional one.
      ema: use the EMA parameters (the default).

    Returns:
      float32, `[n, ...]`.

    Raises:
      ValueError: as `generate`.
    """
    if self.num_classes and labels is None:
      labels = labels_lib.sample_labels(jax.random.fold_in(key, 1), n, self.num_classes)
    return self.generate(state, self.latents(key, n), labels, ema=ema)

  def critic_uses_batch_norm(self) -> bool:
    """Whether D holds BatchNorm statistics (see `uses_batch_norm`), read from D's variables as
    `init` makes them, from shapes alone (`jax.eval_shape`: nothing is computed or compiled).

    Returns:
      True for a BatchNorm discriminator, on which gradient penalties are wrong.
    """
    return uses_batch_norm(self._critic_shapes[1])

  def critic_has_heads(self) -> bool:
    """Whether D scores with several heads (a dict or list of score arrays, `scores_and_logits`),
    from shapes alone, as `critic_uses_batch_norm`."""
    scores, _ = scores_and_logits(self._critic_shapes[0])
    return not isinstance(scores, jax.ShapeDtypeStruct)

  @functools.cached_property
  def _critic_shapes(self) -> tuple[PyTree, PyTree]:
    # Traced once per GAN: both checks of the step's build read it.
    return jax.eval_shape(self._critic_init)

  def _critic_init(self) -> tuple[PyTree, PyTree]:
    # D's output and non-parameter collections as `_init` makes them, on one pack of G's
    # (shaped) output.
    key = jax.random.key(0)
    z = self.latents(key, self.pack)
    kw = self._kwargs(jnp.zeros((self.pack,), jnp.int32))
    fake, _ = self.generator.init_with_output(key, z, train=False, **kw)
    kw = self._kwargs(jnp.zeros((1,), jnp.int32))
    x = packing.pack(fake, self.pack)
    out, variables = self.discriminator.init_with_output(key, x, train=False, **kw)
    return out, _split(variables)[1]
