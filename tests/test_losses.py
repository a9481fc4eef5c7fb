"""Every loss against an independent NumPy (float64) implementation of its paper formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import losses


def _sig(x):
  return 1.0 / (1.0 + np.exp(-x))


def _log_sig(x):  # stable log(sigmoid(x)) in float64
  return -np.logaddexp(0.0, -x)


def _log1m_sig(x):  # log(1 - sigmoid(x))
  return -np.logaddexp(0.0, x)


# Formulas written from the papers, in terms of D = sigmoid(score) where the paper uses D.
def _reference(name, r, f):
  m = np.mean
  if name in ("minimax", "non_saturating"):
    d = -m(_log_sig(r)) - m(_log1m_sig(f))
    g = m(_log1m_sig(f)) if name == "minimax" else -m(_log_sig(f))
  elif name == "lsgan":
    d = 0.5 * m((r - 1) ** 2) + 0.5 * m(f**2)
    g = 0.5 * m((f - 1) ** 2)
  elif name == "wgan":
    d, g = m(f) - m(r), -m(f)
  elif name == "hinge":
    d, g = m(np.maximum(0, 1 - r)) + m(np.maximum(0, 1 + f)), -m(f)
  elif name == "rsgan":
    d, g = -m(_log_sig(r - f)), -m(_log_sig(f - r))
  else:
    rt, ft = r - f.mean(), f - r.mean()
    if name == "rasgan":
      d = -m(_log_sig(rt)) - m(_log1m_sig(ft))
      g = -m(_log_sig(ft)) - m(_log1m_sig(rt))
    elif name == "ralsgan":
      d = m((rt - 1) ** 2) + m((ft + 1) ** 2)
      g = m((ft - 1) ** 2) + m((rt + 1) ** 2)
    elif name == "rahinge":
      d = m(np.maximum(0, 1 - rt)) + m(np.maximum(0, 1 + ft))
      g = m(np.maximum(0, 1 - ft)) + m(np.maximum(0, 1 + rt))
    else:
      raise KeyError(name)
  return d, g


SCORES = {
  "random": lambda rng: (rng.normal(size=32) * 2, rng.normal(size=32) * 2 - 1),
  "extreme": lambda rng: (
    np.array([100.0, -100.0, 50.0, -3.0]),
    np.array([-100.0, 100.0, 0.0, 80.0]),
  ),
  "saturated_d": lambda rng: (np.full(8, 100.0), np.full(8, -100.0)),
}


def test_registry_lists_all_losses():
  assert set(losses.LOSSES) == {
    "minimax",
    "non_saturating",
    "lsgan",
    "wgan",
    "hinge",
    "rsgan",
    "rasgan",
    "ralsgan",
    "rahinge",
  }


@pytest.mark.parametrize("case", list(SCORES))
@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_loss_matches_numpy(name, case):
  r, f = SCORES[case](np.random.default_rng(0))
  want_d, want_g = _reference(name, r, f)
  loss = losses.get(name)
  got_d = jax.jit(loss.d)(jnp.asarray(r, jnp.float32), jnp.asarray(f, jnp.float32))
  got_g = jax.jit(loss.g)(jnp.asarray(r, jnp.float32), jnp.asarray(f, jnp.float32))
  assert got_d.shape == got_g.shape == ()
  np.testing.assert_allclose(got_d, want_d, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_g, want_g, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_extreme_scores_give_finite_gradients(name):
  r = jnp.array([100.0, -100.0, 100.0, -100.0])
  f = jnp.array([-100.0, 100.0, 100.0, -100.0])
  loss = losses.get(name)
  for fn in (loss.d, loss.g):
    grads = jax.grad(fn, argnums=(0, 1))(r, f)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    assert bool(jnp.isfinite(fn(r, f)))


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_gradients_match_finite_differences(name):
  rng = np.random.default_rng(1)
  r, f = rng.normal(size=6), rng.normal(size=6)
  loss = losses.get(name)
  for fn, ref_idx in ((loss.d, 0), (loss.g, 1)):
    grad_f = np.asarray(
      jax.grad(fn, argnums=1)(jnp.asarray(r, jnp.float32), jnp.asarray(f, jnp.float32))
    )
    h = 1e-5
    ref = lambda f, k=ref_idx: _reference(name, r, f)[k]
    fd = np.array([(ref(f + h * e) - ref(f - h * e)) / (2 * h) for e in np.eye(6)])
    np.testing.assert_allclose(grad_f, fd, rtol=1e-3, atol=1e-5)


def test_minimax_generator_saturates_where_non_saturating_does_not():
  # D confidently rejects the fakes: the saturating loss gives (almost) no gradient.
  r, f = jnp.zeros(4), jnp.full(4, -10.0)
  g_minimax = jax.grad(losses.minimax_generator_loss, argnums=1)(r, f)
  g_ns = jax.grad(losses.non_saturating_generator_loss, argnums=1)(r, f)
  assert float(jnp.abs(g_minimax).max()) < 1e-4 < float(jnp.abs(g_ns).min())


def test_lsgan_is_half_the_seed_form():
  r, f = jnp.array([0.3, 1.2]), jnp.array([-0.5, 0.1])
  seed_form = jnp.mean((r - 1) ** 2) + jnp.mean(f**2)
  np.testing.assert_allclose(2 * losses.lsgan_discriminator_loss(r, f), seed_form, rtol=1e-6)


def test_relativistic_average_compares_with_whole_batch_mean():
  # The erroneous released variant compared fakes with one real; ours must use the batch mean, so
  # permuting the real batch must not change the loss.
  r, f = jnp.array([0.1, 2.0, -1.0]), jnp.array([0.5, -0.3, 0.2])
  for name in ("rasgan", "ralsgan", "rahinge"):
    loss = losses.get(name)
    np.testing.assert_allclose(loss.d(r, f), loss.d(r[::-1], f), rtol=1e-6)
    np.testing.assert_allclose(loss.g(r, f), loss.g(r[::-1], f), rtol=1e-6)


def test_unknown_loss_lists_valid_names():
  with pytest.raises(ValueError, match="non_saturating.*rahinge"):
    losses.get("gan")


def test_custom_ganloss_passes_through():
  custom = losses.GANLoss(losses.hinge_discriminator_loss, losses.wasserstein_generator_loss)
  assert losses.get(custom) is custom


@pytest.mark.parametrize("part", ["d", "g"])
@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_scores_of_different_shapes_are_refused(name, part):
  # (n, 1) against (n,) would broadcast to (n, n) and return a number.
  fn = getattr(losses.get(name), part)
  column, flat = jnp.zeros((4, 1)), jnp.zeros(4)
  for real, fake in ((column, flat), (flat, column), (flat, jnp.zeros(5))):
    for call in (fn, jax.jit(fn)):  # shapes are static: the check runs at trace time
      with pytest.raises(ValueError) as err:
        call(real, fake)
      assert f"real scores {real.shape}" in str(err.value), err.value
      assert f"fake scores {fake.shape}" in str(err.value), err.value
      assert fn.__name__ in str(err.value)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_equal_shapes_of_any_rank_give_the_flat_result(name):
  # A (n, 1) pair is the same examples as a (n,) pair: same loss.
  rng = np.random.default_rng(3)
  r, f = jnp.asarray(rng.normal(size=6), jnp.float32), jnp.asarray(rng.normal(size=6), jnp.float32)
  loss = losses.get(name)
  for fn in (loss.d, loss.g):
    np.testing.assert_allclose(fn(r[:, None], f[:, None]), fn(r, f), rtol=1e-6)


def test_integer_scores_are_refused():
  with pytest.raises(ValueError, match="floating-point scores.*int32"):
    losses.hinge_discriminator_loss(jnp.zeros(3), jnp.zeros(3, jnp.int32))
