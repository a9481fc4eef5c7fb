"""The train step with a critic of several heads (a feature critic's shape of output).

Independent references: a critic whose heads are copies of one score must give the one-head
step's numbers scaled as the maths says (the losses sum over heads; R1 differentiates the sum of
all scores; the approximate R1 sums squared differences), from the same parameters and keys.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import GAN, make_train_step
from jaxgan.models import make_models
from jaxgan.step import critic as critic_lib
from jaxgan.step.regularization import Penalties


class Heads(nn.Module):
  """Wraps a one-score critic: one head (`copies=0`), or the score and `copies` patch copies."""

  inner: nn.Module
  copies: int = 0

  def __call__(self, x, train: bool = True):
    s = self.inner(x, train=train)
    if not self.copies:
      return s
    return {"score": s, "patches": jnp.broadcast_to(s[:, None], (s.shape[0], self.copies))}


def _step(copies, penalties):
  g, d = make_models("mlp", image_shape=(2,), g_hidden=(16,), d_hidden=(16,), d_norm="layer")
  gan = GAN(g, Heads(d, copies), optax.adam(1e-3), optax.adam(1e-3), latent_shape=(2,))
  batch = jax.random.normal(jax.random.key(0), (8, 2))
  state = gan.init(jax.random.key(1), batch)
  step = jax.jit(make_train_step(gan, loss="hinge", penalties=penalties))
  return step(state, batch, jax.random.key(2))[1]


def test_copies_of_one_head_scale_the_losses_and_penalties_as_the_maths_says():
  pens = {"r1": 1.0, "approx_r1": 1.0}
  one, five = _step(0, pens), _step(4, pens)  # heads: the score, and 4 patch copies of it
  # The loss sums the heads' means: 2x. R1 takes the gradient of all 5 scores' sum: 25x.
  # The approximate R1 sums the 5 squared differences: 5x. The mean score is the same. (G's loss
  # is taken after D's update, which the heads change.)
  np.testing.assert_allclose(five["d_loss"], 2 * one["d_loss"], rtol=1e-6)
  np.testing.assert_allclose(five["penalty_r1"], 25 * one["penalty_r1"], rtol=1e-5)
  np.testing.assert_allclose(five["penalty_approx_r1"], 5 * one["penalty_approx_r1"], rtol=1e-5)
  np.testing.assert_allclose(five["d_real"], one["d_real"], rtol=1e-6)


def test_example_signs_average_heads_and_patches():
  scores = {"a": jnp.array([1.0, -1.0]), "p": jnp.array([[1.0, 1.0, -1.0, 1.0], [-1.0] * 4])}
  np.testing.assert_allclose(critic_lib.example_signs(scores), [0.75, -1.0])
  assert float(critic_lib.mean_score(scores)) == pytest.approx((0.0 - 0.25) / 2)


def test_lecam_refuses_several_heads():
  g, d = make_models("mlp", image_shape=(2,), g_hidden=(8,), d_hidden=(8,), d_norm="layer")
  gan = GAN(g, Heads(d, 2), optax.adam(1e-3), optax.adam(1e-3), latent_shape=(2,))
  with pytest.raises(ValueError, match="LeCam keeps one pair of anchors"):
    make_train_step(gan, loss="hinge", lecam_weight=0.3)  # before anything is traced
  make_train_step(gan, loss="hinge")
  single = GAN(g, d, optax.adam(1e-3), optax.adam(1e-3), latent_shape=(2,))
  assert gan.critic_has_heads() and not single.critic_has_heads()


def test_a_penalty_option_no_penalty_takes_is_refused_and_sigma_is_bound():
  g, d = make_models("mlp", image_shape=(2,), g_hidden=(8,), d_hidden=(8,), d_norm="layer")
  gan = GAN(g, d, optax.adam(1e-3), optax.adam(1e-3), latent_shape=(2,))
  with pytest.raises(ValueError, match=r"penalty_options \['sigma'\] are taken by none"):
    make_train_step(gan, penalty="r1", penalty_options={"sigma": 0.1})
  with pytest.raises(ValueError, match="sigma > 0"):
    make_train_step(gan, penalty="approx_r1", penalty_options={"sigma": -1.0})
  # The bound sigma reaches the penalty the step computes (`Penalties`, as make_train_step
  # builds it): with the same noise a linear critic's penalty scales as sigma^2 exactly.
  critic = lambda x: x @ jnp.array([3.0, 4.0])
  x, key = jax.random.normal(jax.random.key(0), (64, 2)), jax.random.key(1)
  values = {
    sigma: float(Penalties({"approx_r1": 1.0}, options={"sigma": sigma})(critic, x, x, key, 0)[1])
    for sigma in (0.01, 0.02)
  }
  assert values[0.02] / values[0.01] == pytest.approx(4.0, rel=1e-4)
