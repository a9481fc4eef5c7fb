"""Penalties against finite differences and closed forms, per-example checks, and edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import penalties


def _critic(params):
  w1, w2 = params

  def critic(x):  # a small nonlinear critic on inputs of any shape (n, ...)
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ w1)
    return (h @ w2)[:, 0]

  return critic


def _params(dim, key=0):
  k1, k2 = jax.random.split(jax.random.PRNGKey(key))
  return (jax.random.normal(k1, (dim, 16)) / np.sqrt(dim), jax.random.normal(k2, (16, 1)))


def _fd_grad_norms(critic, x, h=1e-3):
  """Per-example gradient norms by central differences in float64 NumPy."""
  x = np.asarray(x, np.float64)
  critic = jax.jit(critic)  # compiled once for the 2 * x.size calls below
  flat = x.reshape(x.shape[0], -1)
  norms = []
  for i in range(x.shape[0]):
    g = []
    for j in range(flat.shape[1]):
      e = np.zeros_like(flat)
      e[i, j] = h
      plus = np.asarray(critic(jnp.asarray((flat + e).reshape(x.shape), jnp.float32)), np.float64)
      minus = np.asarray(critic(jnp.asarray((flat - e).reshape(x.shape), jnp.float32)), np.float64)
      g.append((plus[i] - minus[i]) / (2 * h))
    norms.append(np.linalg.norm(g))
  return np.array(norms)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 3, 2)])
def test_gradient_penalty_matches_finite_differences(shape):
  dim = int(np.prod(shape[1:]))
  critic = _critic(_params(dim))
  kr, kf, ke = jax.random.split(jax.random.PRNGKey(1), 3)
  real, fake = jax.random.normal(kr, shape), jax.random.normal(kf, shape) + 1.0
  got = penalties.gradient_penalty(critic, real, fake, ke)
  # Rebuild the interpolates with the same per-example coefficients.
  eps = jax.random.uniform(ke, (shape[0],) + (1,) * (len(shape) - 1))
  x_hat = eps * real + (1 - eps) * fake
  norms = _fd_grad_norms(critic, x_hat)
  np.testing.assert_allclose(got, np.mean((norms - 1) ** 2), rtol=2e-3)
  one_sided = penalties.gradient_penalty(critic, real, fake, ke, one_sided=True, target=0.5)
  np.testing.assert_allclose(one_sided, np.mean(np.maximum(norms - 0.5, 0) ** 2), rtol=2e-3)


def test_gradient_norms_of_linear_critic_are_exact():
  w = jnp.array([3.0, 4.0])
  critic = lambda x: x @ w
  x = jnp.ones((7, 2))
  np.testing.assert_allclose(penalties.gradient_norms(critic, x), 5.0, rtol=1e-6)
  np.testing.assert_allclose(penalties.r1_penalty(critic, x), 25.0, rtol=1e-6)
  np.testing.assert_allclose(penalties.r2_penalty(critic, x), 25.0, rtol=1e-6)
  np.testing.assert_allclose(
    penalties.gradient_penalty(critic, x, -x, jax.random.PRNGKey(0)), 16.0, rtol=1e-5
  )
  np.testing.assert_allclose(
    penalties.dragan_penalty(critic, x, jax.random.PRNGKey(0)), 16.0, rtol=1e-5
  )


def test_interpolation_coefficient_is_per_example():
  # A critic whose gradient at x is x itself: ||grad|| = ||x_hat||. If eps were drawn per element,
  # each interpolate would not lie on the segment between its real and fake example.
  critic = lambda x: 0.5 * jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
  real = jnp.ones((64, 4, 4, 1))
  fake = jnp.zeros((64, 4, 4, 1))
  key = jax.random.PRNGKey(3)
  eps = jax.random.uniform(key, (64, 1, 1, 1))
  want = jnp.mean((jnp.sqrt(16.0) * eps[:, 0, 0, 0] - 1) ** 2)
  np.testing.assert_allclose(penalties.gradient_penalty(critic, real, fake, key), want, rtol=1e-5)


def test_each_example_has_its_own_term():
  critic = _critic(_params(3))
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 3))
  base = penalties.squared_gradient_norms(critic, x)
  changed = penalties.squared_gradient_norms(critic, x.at[2].add(1.5))
  diff = np.asarray(changed != base)
  assert diff[2] and not diff[np.arange(6) != 2].any()


@pytest.mark.parametrize("name", list(penalties.PENALTIES))
def test_zero_gradient_is_finite(name):
  params = jnp.array([0.0, 0.0])
  critic_of = lambda p: lambda x: x @ p
  x = jnp.ones((4, 2))
  fn = penalties.get(name)
  value, grad = jax.value_and_grad(lambda p: fn(critic_of(p), x, -x, jax.random.PRNGKey(0)))(params)
  assert bool(jnp.isfinite(value)) and bool(jnp.all(jnp.isfinite(grad)))


def test_penalty_gradient_wrt_params_matches_finite_differences():
  params = _params(3)
  x = jax.random.normal(jax.random.PRNGKey(2), (4, 3))
  key = jax.random.PRNGKey(5)
  loss = lambda w2: penalties.gradient_penalty(_critic((params[0], w2)), x, x * 0.3, key)
  grad = jax.grad(loss)(params[1])
  h = 1e-2
  for j in range(3):
    e = jnp.zeros_like(params[1]).at[j, 0].set(h)
    fd = (loss(params[1] + e) - loss(params[1] - e)) / (2 * h)
    np.testing.assert_allclose(grad[j, 0], fd, rtol=2e-2, atol=1e-4)


def test_penalty_stays_float32_for_bfloat16_critic():
  w = jnp.array([3.0, 4.0], jnp.bfloat16)
  critic = lambda x: x.astype(jnp.bfloat16) @ w
  x = jnp.ones((4, 2), jnp.bfloat16)
  value = penalties.gradient_penalty(critic, x, -x, jax.random.PRNGKey(0))
  assert value.dtype == jnp.float32
  np.testing.assert_allclose(value, 16.0, rtol=1e-2)


def test_clip_weights():
  params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array(-0.02)}}
  clipped = penalties.clip_weights(params, 0.01)
  np.testing.assert_allclose(clipped["a"], [-0.01, 0.005, 0.01])
  np.testing.assert_allclose(clipped["b"]["c"], -0.01)


def test_unknown_penalty_lists_valid_names():
  with pytest.raises(ValueError, match="wgan_gp.*dragan.*f\\(critic_fn, real, fake, key\\)"):
    penalties.get("gp")


def test_a_penalty_function_passes_through():
  def mine(critic_fn, real, fake, key):
    return jnp.zeros(())

  assert penalties.get(mine) is mine
  assert penalties.get("wgan_gp") is penalties.gradient_penalty


def test_shape_mismatch_is_reported():
  with pytest.raises(ValueError, match=r"real \(2, 3\) and fake \(3, 3\)"):
    penalties.gradient_penalty(
      lambda x: x.sum(1), jnp.ones((2, 3)), jnp.ones((3, 3)), jax.random.PRNGKey(0)
    )


@pytest.mark.parametrize("name", list(penalties.PENALTIES))
def test_critic_with_several_scores_per_example_is_refused(name):
  # Summing (n, 2) outputs would differentiate the sum of both heads without a word.
  critic = lambda x: jnp.stack([x.sum(1), -x.sum(1)], axis=1)
  with pytest.raises(ValueError, match=r"one score per example.*\(4, 2\)"):
    penalties.get(name)(critic, jnp.ones((4, 3)), jnp.zeros((4, 3)), jax.random.PRNGKey(0))
  # A (n, 1) column is one score per example, as a (n,) vector is.
  column = lambda x: x @ jnp.array([[3.0], [4.0], [0.0]])
  flat = lambda x: column(x)[:, 0]
  args = (jnp.ones((4, 3)), -jnp.ones((4, 3)), jax.random.PRNGKey(0))
  np.testing.assert_allclose(penalties.get(name)(column, *args), penalties.get(name)(flat, *args))


def test_an_input_without_batch_axis_is_refused():
  with pytest.raises(ValueError, match=r"\[batch, \.\.\.\].*shape \(\)"):
    penalties.r1_penalty(lambda x: x, jnp.ones(()))


@pytest.mark.parametrize("name", list(penalties.PENALTIES))
def test_where_a_penalty_is_taken_is_what_it_differentiates(name):
  # The registered fact, against what the value depends on: a penalty taken at the reals does
  # not move with the fakes, one at the fakes not with the reals, one between them with both.
  critic = _critic(_params(3))
  real, fake = (jax.random.normal(jax.random.PRNGKey(s), (6, 3)) for s in (1, 2))
  key = jax.random.PRNGKey(0)
  value = lambda r, f: float(penalties.get(name)(critic, r, f, key))
  moves = (
    value(real + 1.0, fake) != value(real, fake),
    value(real, fake + 1.0) != value(real, fake),
  )
  want = {"reals": (True, False), "fakes": (False, True), "between": (True, True)}
  assert moves == want[penalties.taken_at(name)], (name, moves)


def test_a_registered_penalty_carries_its_fact():
  facts = {n: p.at for n, p in penalties.PENALTIES.items()}
  known = {"wgan_gp": "between", "wgan_lp": "between", "r1": "reals", "r2": "fakes"}
  assert known.items() <= facts.items() and facts["dragan"] == "reals", facts
  mine = lambda critic_fn, real, fake, key: jnp.zeros(())
  assert penalties.taken_at(mine) == "reals"  # a function of your own: the reals' labels
  assert penalties.taken_at(penalties.Penalty("mine", mine, "fakes")) == "fakes"
  with pytest.raises(ValueError, match="at must be one of"):
    penalties.Penalty("mine", mine, "fake")
  with pytest.raises(ValueError, match="'r1' is registered twice"):
    penalties.register("r1", at="reals")(mine)
  with pytest.raises(ValueError, match="Unknown penalty 'r3'"):
    penalties.taken_at("r3")
