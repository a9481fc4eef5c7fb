"""Penalties on pytree inputs and multi-head critics against float64 central differences; APT's
approximate R1/R2 against R1; the with-options getter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import penalties

N = 5
RNG = np.random.default_rng(0)
W_IMG, W_FEAT = RNG.normal(size=(4, 6)) / 2, RNG.normal(size=(6, 6)) / 3
V, U = RNG.normal(size=6), RNG.normal(size=(1, 2, 3))


def critic(x, xp=jnp):
  """Nonlinear, two heads (one score, one per 'patch'), an integer timestep used unchanged. With
  xp=np it is the same function in float64 NumPy, for the finite differences."""
  w_img, w_feat, v, u = (xp.asarray(a) for a in (W_IMG, W_FEAT, V, U))
  img, feat = x["img"], x["feat"].reshape(x["feat"].shape[0], -1)
  h = xp.tanh(img @ w_img + feat @ w_feat + 0.1 * x["t"][:, None])
  patch = xp.tanh(1.3 * x["feat"] + u) + 0.3 * x["feat"] ** 2
  return {"global": h @ v + 0.5 * xp.sum(img**2, axis=1), "patch": patch}


def _inputs(seed, shift=0.0):
  r = np.random.default_rng(seed)
  return {
    "img": r.normal(size=(N, 4)) + shift,
    "feat": r.normal(size=(N, 2, 3)) - shift,
    "t": r.integers(0, 10, size=N).astype(np.int32),
  }


def _f32(x):
  return {k: jnp.asarray(v, jnp.float32 if k != "t" else jnp.int32) for k, v in x.items()}


def _total(x):  # per-example sum over heads and their elements, in float64 NumPy
  s = critic(x, np)
  return s["global"] + np.sum(s["patch"], axis=(1, 2))


def _fd_sq_norms(x, keys=("img", "feat"), h=1e-5, total=_total):
  """Per-example squared gradient norms over `keys`, central differences in float64 NumPy. The
  critic does not mix examples, so moving element j of every example at once gives every partial."""
  x = {
    k: np.asarray(v, np.float64 if np.issubdtype(np.asarray(v).dtype, np.floating) else None)
    for k, v in x.items()
  }
  out = np.zeros(N)
  for key in keys:
    flat = x[key].reshape(N, -1)
    for j in range(flat.shape[1]):
      e = np.zeros_like(flat)
      e[:, j] = h
      plus = {**x, key: (flat + e).reshape(x[key].shape)}
      minus = {**x, key: (flat - e).reshape(x[key].shape)}
      out += ((total(plus) - total(minus)) / (2 * h)) ** 2
  return out


def _recording():
  """The critic, recording the (concrete) inputs it is called with: the points a penalty drew."""
  points = []
  return lambda x: (jax.debug.callback(points.append, x), critic(x))[1], points


WRT = {"img": True, "feat": True, "t": False}


def test_r1_r2_on_a_dict_input_with_an_excluded_integer_leaf():
  real, fake = _f32(_inputs(1)), _f32(_inputs(2, shift=0.5))
  want_r1, want_r2 = np.mean(_fd_sq_norms(real)), np.mean(_fd_sq_norms(fake))
  np.testing.assert_allclose(penalties.r1_penalty(critic, real, wrt=WRT), want_r1, rtol=1e-4)
  np.testing.assert_allclose(penalties.r2_penalty(critic, fake, wrt=WRT), want_r2, rtol=1e-4)
  key = jax.random.key(0)
  r2 = penalties.with_options("r2", wrt=WRT)
  np.testing.assert_allclose(
    jax.jit(r2.fn, static_argnums=0)(critic, real, fake, key), want_r2, 1e-4
  )
  # Only the image: a prefix-free selection, and the norm over that leaf alone.
  img_only = {"img": True, "feat": False, "t": False}
  np.testing.assert_allclose(
    penalties.r1_penalty(critic, real, wrt=img_only), np.mean(_fd_sq_norms(real, ("img",))), 1e-4
  )
  grads = penalties.input_gradients(critic, real, wrt=img_only)
  assert grads["feat"] is None and grads["t"] is None and grads["img"].dtype == jnp.float32


def test_an_integer_leaf_selected_is_refused():
  with pytest.raises(ValueError, match=r"x\['t'\] has dtype int32.*wrt=.*cast it to float"):
    penalties.r1_penalty(critic, _f32(_inputs(1)))
  with pytest.raises(ValueError, match=r"wrt must be None or a pytree of Python bools"):
    penalties.r1_penalty(critic, _f32(_inputs(1)), wrt={"img": True})


def test_a_head_without_the_batch_axis_first_is_refused():
  bad = lambda x: {"ok": x[:, 0], "bad": jnp.sum(x, axis=0)}
  with pytest.raises(ValueError, match=r"head \['bad'\] has shape \(3,\).*\[4, \.\.\.\]"):
    penalties.r1_penalty(bad, jnp.ones((4, 3)))
  # One array of several scores per example stays refused; as a head it is summed per example.
  patches = lambda x: x[:, :2] * jnp.array([3.0, 4.0])
  with pytest.raises(ValueError, match=r"one score per example.*a tuple \(scores,\)"):
    penalties.r1_penalty(patches, jnp.ones((4, 3)))
  np.testing.assert_allclose(penalties.r1_penalty(lambda x: (patches(x),), jnp.ones((4, 3))), 25.0)


def test_gradient_penalty_interpolates_selected_leaves_with_one_eps_per_example():
  real, fake = _f32(_inputs(3)), _f32(_inputs(4, shift=1.0))
  recorded, points = _recording()
  got = penalties.gradient_penalty(recorded, real, fake, jax.random.key(5), wrt=WRT)
  x_hat = jax.tree.map(np.asarray, points[0])
  np.testing.assert_array_equal(x_hat["t"], real["t"])  # taken from real, untouched
  ts = []
  for k in ("img", "feat"):
    r, f = np.asarray(real[k], np.float64), np.asarray(fake[k], np.float64)
    ts.append(((x_hat[k] - f) / (r - f)).reshape(N, -1))
  t = np.concatenate(ts, axis=1)
  np.testing.assert_allclose(t, t[:, :1] * np.ones_like(t), atol=1e-4)  # one eps, both leaves
  assert np.ptp(t[:, 0]) > 0.1
  norms = np.sqrt(_fd_sq_norms(x_hat))
  assert np.ptp(norms) > 0.05  # nonlinear: the points matter
  np.testing.assert_allclose(got, np.mean((norms - 1) ** 2), rtol=1e-4)


def test_dragan_perturbs_selected_leaves_only():
  real = _f32(_inputs(6))
  recorded, points = _recording()
  got = penalties.dragan_penalty(recorded, real, jax.random.key(7), scale=1.0, wrt=WRT)
  x_hat = jax.tree.map(np.asarray, points[0])
  np.testing.assert_array_equal(x_hat["t"], real["t"])
  for k in ("img", "feat"):
    r = np.asarray(real[k], np.float64)
    moved = (x_hat[k] - r) / np.std(r)  # (1 - alpha_i) u_ij in [0, 1]
    assert np.all((moved > -1e-5) & (moved < 1 + 1e-5)) and moved.max() > 0.1
  norms = np.sqrt(_fd_sq_norms(x_hat))
  np.testing.assert_allclose(got, np.mean((norms - 1) ** 2), rtol=1e-4)


def test_an_image_timestep_pair():
  w = RNG.normal(size=3)
  pair_critic = lambda x, xp=jnp: xp.tanh(x[0] @ w) * (1.0 + x[1]) + x[1] ** 2
  r = np.random.default_rng(8)
  img, t = r.normal(size=(N, 3)), r.uniform(size=N)
  x = (jnp.asarray(img, jnp.float32), jnp.asarray(t, jnp.float32))
  as_dict = lambda d: pair_critic((d["img"], d["t"]), np)
  fd = lambda keys: np.mean(_fd_sq_norms({"img": img, "t": t}, keys, total=as_dict))
  np.testing.assert_allclose(
    penalties.r1_penalty(pair_critic, x, wrt=(True, False)), fd(["img"]), 1e-4
  )
  np.testing.assert_allclose(penalties.r1_penalty(pair_critic, x), fd(["img", "t"]), rtol=1e-4)


def test_single_arrays_give_todays_bits():
  w = jnp.asarray(RNG.normal(size=(6, 1)), jnp.float32)
  crit = lambda x: jnp.tanh(x.reshape(x.shape[0], -1) @ w)[:, 0] + jnp.sum(x**2, axis=(1, 2))
  real = jax.random.normal(jax.random.key(1), (4, 2, 3))
  fake = jax.random.normal(jax.random.key(2), (4, 2, 3))
  key = jax.random.key(3)
  # Today's code, written out.
  grad = lambda x: jax.grad(lambda v: jnp.sum(crit(v).astype(jnp.float32)))(x.astype(jnp.float32))
  sq = lambda x: jnp.sum(jnp.square(grad(x)), axis=(1, 2))
  np.testing.assert_array_equal(penalties.r1_penalty(crit, real), jnp.mean(sq(real)))
  eps = jax.random.uniform(key, (4, 1, 1), jnp.float32)
  x_hat = eps * real + (1.0 - eps) * fake
  today_gp = jnp.mean(jnp.square(jnp.sqrt(sq(x_hat) + 1e-12) - 1.0))
  np.testing.assert_array_equal(penalties.gradient_penalty(crit, real, fake, key), today_gp)
  noise_key, alpha_key = jax.random.split(key)
  perturbed = real + 0.5 * jnp.std(real) * jax.random.uniform(noise_key, real.shape)
  alpha = jax.random.uniform(alpha_key, (4, 1, 1), jnp.float32)
  x_d = alpha * real + (1.0 - alpha) * perturbed
  today_dragan = jnp.mean(jnp.square(jnp.sqrt(sq(x_d) + 1e-12) - 1.0))
  np.testing.assert_array_equal(penalties.dragan_penalty(crit, real, key), today_dragan)


# --- APT's approximate R1 ---------------------------------------------------------------------


def test_approx_r1_of_a_linear_critic_is_sigma_squared_r1():
  # 20,000 copies of one example: per copy sigma^2 (g . eps)^2 = sigma^2 |g|^2 chi^2_1, whose
  # relative standard error over n copies is sqrt(2 / n) = 1%; the tolerance is 4 of them.
  n, sigma = 20_000, 0.1
  w1, w2 = jnp.array([3.0, 4.0, 0.0]), jnp.array([[1.0, 0.0], [2.0, 1.0], [0.0, 2.0]])
  lin = lambda x: {"a": x @ w1, "b": x @ w2}
  # Several scores: the limit sums each score's squared gradient norm, 25 + 10 (the Jacobian's
  # squared Frobenius norm), where R1 of their sum would be |w1 + w2 @ 1|^2.
  want = 35.0
  x = jnp.tile(jnp.array([[0.3, -1.0, 2.0]]), (n, 1))
  got = penalties.approx_r1(lin, x, jax.random.key(0), sigma)
  assert abs(float(got) / sigma**2 - want) < 4 * np.sqrt(2 / n) * want, float(got) / sigma**2
  one = penalties.approx_r1(lambda x: x @ w1, x, jax.random.key(1), sigma)
  r1 = float(penalties.r1_penalty(lambda x: x @ w1, x))
  np.testing.assert_allclose(r1, 25.0, rtol=1e-6)
  assert abs(float(one) / sigma**2 - r1) < 4 * np.sqrt(2 / n) * r1, float(one) / sigma**2


def test_approx_r1_over_sigma_squared_tends_to_r1_for_a_smooth_critic():
  # With the same noise eps, approx / sigma^2 tends to the linearisation mean_i |J_i eps_i|^2 (J:
  # the exact Jacobian of every score; for one score per example E|J eps|^2 = R1), with an error
  # O(sigma): checked in float64 at sigma = 0.1 and 1e-3.
  real = _inputs(9)
  with jax.enable_x64(True):
    x = {k: jnp.asarray(v) for k, v in real.items()}  # float64 leaves stay float64
    key = jax.random.key(1)
    errors = []
    for sigma in (1e-1, 1e-3):
      rec, points = _recording()
      got = float(penalties.approx_r1(rec, x, key, sigma, wrt=WRT))
      eps = {k: (jnp.asarray(points[1][k]) - x[k]) / sigma for k in ("img", "feat")}
      of = lambda img, feat: critic({"img": img, "feat": feat, "t": x["t"]})
      _, jeps = jax.jvp(of, (x["img"], x["feat"]), (eps["img"], eps["feat"]))
      lin = np.mean(sum(np.sum(np.asarray(v).reshape(N, -1) ** 2, 1) for v in jeps.values()))
      errors.append(abs(got / sigma**2 - lin) / lin)
  assert errors[1] < 1e-2 and errors[1] < errors[0] / 10, errors


def test_approx_r1_gradient_wrt_critic_parameters_matches_finite_differences():
  x = jax.random.normal(jax.random.key(0), (6, 3))
  w0 = jax.random.normal(jax.random.key(1), (3, 4))
  key = jax.random.key(2)
  with jax.enable_x64(True):
    x64, w64 = jnp.asarray(x, jnp.float64), jnp.asarray(w0, jnp.float64)
    loss = lambda w: penalties.approx_r1(lambda v: jnp.sum(jnp.tanh(v @ w), 1), x64, key, 0.3)
    grad = np.asarray(jax.grad(loss)(w64))
    h = 1e-6
    fd = np.zeros_like(grad)
    for idx in np.ndindex(*grad.shape):
      e = np.zeros(grad.shape)
      e[idx] = h
      fd[idx] = (float(loss(w64 + e)) - float(loss(w64 - e))) / (2 * h)
  assert np.abs(grad).max() > 1e-3
  np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)


def test_approx_r1_refuses_sigma_le_0_and_is_registered():
  with pytest.raises(ValueError, match=r"sigma > 0; got 0.*Pass a positive sigma"):
    penalties.approx_r1(lambda x: x[:, 0], jnp.ones((2, 2)), jax.random.key(0), 0.0)
  assert penalties.taken_at("approx_r1") == "reals" and penalties.taken_at("approx_r2") == "fakes"
  crit = lambda x: jnp.tanh(x @ jnp.array([1.0, -2.0]))
  real, fake, key = jnp.ones((8, 2)), -jnp.ones((8, 2)) * 0.5, jax.random.key(3)
  default = penalties.approx_r1(crit, real, key, penalties.APPROX_SIGMA)
  np.testing.assert_array_equal(penalties.get("approx_r1")(crit, real, fake, key), default)
  wider = penalties.with_options("approx_r2", sigma=0.2)
  assert wider.name == "approx_r2" and penalties.taken_at(wider) == "fakes"
  np.testing.assert_array_equal(
    wider(crit, real, fake, key), penalties.approx_r2(crit, fake, key, 0.2)
  )
  gp = penalties.with_options("wgan_gp", target=0.5)
  np.testing.assert_array_equal(
    gp(crit, real, fake, key), penalties.gradient_penalty(crit, real, fake, key, target=0.5)
  )
  with pytest.raises(
    ValueError, match=r"'dragan' accepts the keywords \['scale', 'target', 'wrt'\]"
  ):
    penalties.with_options("dragan", sigma=0.1)
  with pytest.raises(ValueError, match="Unknown penalty 'approx_r3'"):
    penalties.with_options("approx_r3")
