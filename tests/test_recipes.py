"""The modern recipes inside the train step against a plain reference: several penalties (R3GAN's
R1 + R2), lazy regularisation, augmentation, bCR and LeCam; ADA's probability; schedules."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import GAN, augment, losses, make_train_step, penalties
from jaxgan.models import make_models
from jaxgan.step.regularization import Penalties

SHAPE = (4, 4, 3)


def _gan(lr=1e-2, d_lr=None):
  g, d = make_models(
    "mlp", image_shape=SHAPE, g_hidden=(16,), d_hidden=(16, 16), d_norm="none", latent_dim=3
  )
  return GAN(g, d, optax.adam(lr), optax.adam(lr if d_lr is None else d_lr), latent_shape=(3,))


def _batch(n, seed=0):
  return jnp.tanh(jax.random.normal(jax.random.PRNGKey(seed), (n, *SHAPE)))


def _naive_step(
  gan, state, batch, key, *, loss, pens=(), aug=None, p=1.0, cr=0.0, T=None, lecam=0.0
):
  """One critic and one generator update written the plain way (n_critic = 1)."""
  gl = losses.get(loss)
  b = batch.shape[0]
  key = jax.random.fold_in(key, state.step)
  d_key, z_key, g_aug_key = jax.random.split(key, 3)
  d_key, z_key = jax.random.split(d_key, 1)[0], jax.random.split(z_key, 1)[0]
  keys = jax.random.split(d_key, 5)
  A = (lambda x, k: aug(x, k, p)) if aug else (lambda x, k: x)
  D = lambda params, x: gan.discriminator.apply({"params": params}, x, train=True)
  G = lambda params, z: gan.generator.apply({"params": params}, z, train=True)
  z = gan.latents(z_key, b)
  real, fake = batch, G(state.g_params, z)
  real_a, fake_a = A(real, keys[0]), A(fake, keys[1])
  pen_keys = jax.random.split(keys[2], max(len(pens), 1))

  def d_loss(dp):
    sr, sf = D(dp, real_a), D(dp, fake_a)
    total = gl.d(sr, sf)
    # A penalty at reals differentiates D behind the reals' draw, one at fakes the fakes'.
    on_real, on_fake = (lambda x: D(dp, A(x, keys[0]))), (lambda x: D(dp, A(x, keys[1])))
    for (name, w), k in zip(dict(pens).items(), pen_keys, strict=False):
      critic = on_fake if penalties.taken_at(name) == "fakes" else on_real
      total += w * penalties.get(name)(critic, real, fake, k)
    if cr:
      total += cr * jnp.mean((sr - D(dp, T(real_a, keys[3], 1.0))) ** 2)
      total += cr * jnp.mean((sf - D(dp, T(fake_a, keys[4], 1.0))) ** 2)
    if lecam:
      a_r, a_f = jax.lax.stop_gradient(jnp.mean(sr)), jax.lax.stop_gradient(jnp.mean(sf))
      total += lecam * (jnp.mean((sr - a_f) ** 2) + jnp.mean((sf - a_r) ** 2))
    return total

  grads = jax.grad(d_loss)(state.d_params)
  upd, _ = gan.d_optimizer.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, upd)
  fk, rk = jax.random.split(g_aug_key)
  g_grads = jax.grad(lambda gp: gl.g(D(d_params, A(real, rk)), D(d_params, A(G(gp, z), fk))))(
    state.g_params
  )
  upd, _ = gan.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
  return optax.apply_updates(state.g_params, upd), d_params


def _close(got, want):
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=3e-5, atol=3e-6), got, want)


def _check(step_kwargs, naive_kwargs, steps=1):
  gan = _gan()
  batch = _batch(4)
  state = gan.init(jax.random.PRNGKey(0), batch)
  key = jax.random.PRNGKey(7)
  step = jax.jit(make_train_step(gan, ema_decay=0.0, **step_kwargs))
  for _ in range(steps - 1):
    state, _ = step(state, batch, key)
  new, metrics = step(state, batch, key)
  want_g, want_d = jax.jit(lambda s: _naive_step(gan, s, batch, key, **naive_kwargs))(state)
  _close(new.d_params, want_d)
  _close(new.g_params, want_g)
  return new, metrics


def test_r3gan_loss_is_rpgan_plus_half_gamma_r1_plus_r2():
  gamma = 0.4
  pens = {"r1": gamma / 2, "r2": gamma / 2}
  _, metrics = _check(dict(loss="rsgan", penalties=pens), dict(loss="rsgan", pens=pens))
  # The metrics name each penalty and their unweighted sum is `penalty`.
  assert metrics["penalty"] == pytest.approx(metrics["penalty_r1"] + metrics["penalty_r2"])
  # The adversarial part is softplus(-(D(x_r) - D(x_f))) on the pair (RpGAN).
  s_r, s_f = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.0])
  np.testing.assert_allclose(
    losses.get("rsgan").d(s_r, s_f), np.mean(np.log1p(np.exp(-(s_r - s_f)))), rtol=1e-6
  )


def test_lazy_penalty_is_k_times_its_weight_every_kth_update_and_absent_otherwise():
  pens = {"r1": 0.5}
  # Update 0 is due: weight times k = 3; update 1 is not: no penalty at all.
  _check(dict(loss="hinge", penalties=pens, penalty_every=3), dict(loss="hinge", pens={"r1": 1.5}))
  _, metrics = _check(
    dict(loss="hinge", penalties=pens, penalty_every=3), dict(loss="hinge"), steps=2
  )
  assert float(metrics["penalty"]) == 0.0


def test_augmentation_is_applied_before_d_in_both_losses_and_the_penalty():
  aug = augment.get("diffaugment")
  kw = dict(loss="non_saturating", pens={"r1": 1.0}, aug=aug, p=0.5)
  _, metrics = _check(
    dict(loss="non_saturating", penalties={"r1": 1.0}, augment=aug, augment_p=0.5), kw
  )
  assert float(metrics["aug_p"]) == 0.5


class _LinearCritic(nn.Module):
  """D(x) = <w, x>, w ~ N(0, 1): its R1 reveals which rows of w the augmented input met."""

  @nn.compact
  def __call__(self, x, train=True):
    dense = nn.Dense(1, use_bias=False, kernel_init=nn.initializers.normal(1.0))
    return dense(x.reshape(x.shape[0], -1))[:, 0]


class _ConstantGenerator(nn.Module):
  """G(z) = one learned 8x8x1 image for every z, so a test can read the fakes off the state."""

  @nn.compact
  def __call__(self, z, train=True):
    image = self.param("image", nn.initializers.normal(1.0), (8, 8, 1))
    return jnp.broadcast_to(image, (z.shape[0], 8, 8, 1))


def _shift_rows(x, a):
  # The whole batch moved down by a rows (up for a < 0), zeros shifted in: [n, H, W, C].
  rows = jnp.arange(x.shape[1]) - a
  kept = (rows >= 0) & (rows < x.shape[1])
  return jnp.where(kept[None, :, None, None], jnp.roll(x, a, axis=1), 0.0)


@pytest.mark.parametrize("penalty", ["r1", "r2"])
def test_penalty_sees_the_augmentation_draw_of_d_loss(penalty):
  # The setting: a linear critic on 8x8x1 images, 4 reals, the penalty at weight 1 and
  # an augmentation that shifts the whole batch by a in {-1, 0, +1} rows drawn from its key.
  # The shift each pass saw is read back from the step's metrics: the mean score of the
  # penalised side, <w, S_a x>, and the penalty, ||S_a^T w||^2, each pick one a, and they must
  # agree at every step (R1 agreed at 6 of 20 when it re-augmented with a key of its own).
  gan = GAN(_ConstantGenerator(), _LinearCritic(), optax.sgd(1e-2), optax.sgd(1e-2), (2,))
  shift = lambda x, key, p: _shift_rows(x, jax.random.randint(key, (), -1, 2))
  reals = jnp.tanh(jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 1)))
  step = jax.jit(
    make_train_step(gan, loss="non_saturating", penalties={penalty: 1.0}, augment=shift)
  )
  state = gan.init(jax.random.PRNGKey(0), reals)
  shifts = (-1, 0, 1)
  agree, seen = 0, set()
  for _ in range(20):
    w = state.d_params["Dense_0"]["kernel"].reshape(1, 8, 8, 1)
    points, score = reals, "d_real"
    if penalty == "r2":
      points, score = jnp.broadcast_to(state.g_params["image"], (4, 8, 8, 1)), "d_fake"
    state, metrics = step(state, reals, jax.random.PRNGKey(3))
    pens = {a: float(jnp.sum(_shift_rows(w, -a) ** 2)) for a in shifts}  # ||S_a^T w||^2
    means = {a: float(jnp.mean(jnp.sum(_shift_rows(points, a) * w, (1, 2, 3)))) for a in shifts}
    a_pen = min(shifts, key=lambda a: abs(pens[a] - float(metrics["penalty"])))
    a_loss = min(shifts, key=lambda a: abs(means[a] - float(metrics[score])))
    agree += a_pen == a_loss
    seen.add(a_loss)
  assert seen == set(shifts)
  assert agree == 20


def test_consistency_and_lecam_regularisers():
  flip = lambda x, key, p: x[:, :, ::-1]
  new, metrics = _check(
    dict(loss="hinge", consistency_weight=2.0, consistency_transform=flip, lecam_weight=0.3),
    dict(loss="hinge", cr=2.0, T=flip, lecam=0.3),
  )
  assert float(metrics["consistency"]) > 0 and float(metrics["lecam"]) > 0
  # The anchors start at the first update's mean scores.
  np.testing.assert_allclose(new.lecam_anchors, [metrics["d_real"], metrics["d_fake"]], rtol=1e-5)


def test_lazy_penalties_run_in_one_program_without_a_retrace():
  gan = _gan()
  traces = []
  inner = make_train_step(gan, loss="hinge", penalties={"r1": 1.0}, penalty_every=2, n_critic=3)

  def counted(state, batch, key):
    traces.append(1)
    return inner(state, batch, key)

  step = jax.jit(counted)
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  pens = []
  for _ in range(2):  # critic updates 0-5: due at 0, 2 and 4
    state, metrics = step(state, _batch(12), jax.random.PRNGKey(1))
    pens.append(float(metrics["penalty"]))
  assert len(traces) == 1
  # The metric is the mean over the step's 3 updates of 2x the penalty on the due ones.
  assert pens[0] > 0 and pens[1] > 0
  critic = lambda x: x @ jnp.array([3.0, 4.0])
  ones = jnp.ones((2, 2))
  values, total = Penalties({"r1": 1.0}, every=4)(critic, ones, ones, jax.random.key(0), 0)
  assert float(values["r1"]) == 100.0 and float(total) == 100.0  # 4 x 25


def _ada_run(gan, state, p0, steps=16):
  state = state.replace(aug_p=jnp.float32(p0))
  # Flips and brightness leave a small MLP critic able to memorise the 8 images.
  ada = augment.get("ada", "xflip,brightness")
  step = jax.jit(make_train_step(gan, augment=ada, ada_target=0.6, ada_kimg=0.1, ada_interval=2))
  tiny = _batch(8, seed=1)
  ps = []
  for _ in range(steps):
    state, metrics = step(state, tiny, jax.random.PRNGKey(3))
    ps.append(float(state.aug_p))
  return ps, metrics


@pytest.mark.full
def test_ada_p_rises_when_d_overfits_and_falls_when_it_cannot_tell():
  # G frozen, a fast critic memorises 8 real images: r_t = E[sign D(real)] -> 1 > 0.6, p climbs.
  gan = _gan(lr=0.0, d_lr=1e-2)
  state = gan.init(jax.random.PRNGKey(0), _batch(8))
  ps, metrics = _ada_run(gan, state, 0.0)
  assert ps[-1] == 1.0 and all(b >= a for a, b in zip(ps, ps[1:], strict=False)), ps
  assert float(metrics["ada_rt"]) > 0.6
  # p moves only every ada_interval (2) steps, by 8 images * 2 steps / 100 images.
  assert ps[:3] == pytest.approx([0.0, 0.16, 0.16])
  # A frozen critic whose scores are all negative (bias -5): r_t = -1 < 0.6, p falls from 0.8.
  gan = _gan(lr=0.0, d_lr=0.0)
  state = gan.init(jax.random.PRNGKey(0), _batch(8))
  last = sorted(state.d_params)[-1]
  d_params = {**state.d_params, last: {**state.d_params[last], "bias": jnp.full((1,), -5.0)}}
  ps, _ = _ada_run(gan, state.replace(d_params=d_params), 0.8, steps=8)
  assert ps == pytest.approx([0.8, 0.64, 0.64, 0.48, 0.48, 0.32, 0.32, 0.16])


def test_scheduled_ema_decay_and_augmentation_probability_follow_the_step():
  gan = _gan()
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  step = jax.jit(
    make_train_step(
      gan,
      ema_decay=lambda s: jnp.where(s == 0, 0.0, 0.5),
      augment=augment.get("diffaugment"),
      augment_p=lambda s: 0.25 * s,
    )
  )
  s1, m1 = step(state, _batch(4), jax.random.PRNGKey(0))
  _close(s1.ema_params, s1.g_params)  # decay 0 at step 0: the EMA is the parameters
  s2, m2 = step(s1, _batch(4), jax.random.PRNGKey(0))
  _close(s2.ema_params, jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, s1.ema_params, s2.g_params))
  assert (float(m1["aug_p"]), float(m2["aug_p"])) == (0.0, 0.25)


@pytest.mark.parametrize(
  "kwargs,match",
  [
    (dict(penalties={"r3": 1.0}), "Valid names: wgan_gp"),
    (dict(penalties={"r1": -1.0}), "penalty 'r1' must be a number >= 0"),
    (dict(penalty_every=0), "penalty_every"),
    (dict(lecam_weight=-0.1), "lecam_weight must be a number >= 0"),
    (dict(ada_target=0.6), "pass augment too"),
    (dict(augment=augment.get("ada"), ada_target=1.5), r"ada_target must lie in \(0, 1\)"),
    (dict(augment=augment.get("ada"), ada_target=0.6, augment_p=0.5), "leave augment_p unset"),
    (dict(penalty="r1", penalties={"r1": 1.0}), "penalty='r1' is also in penalties; give it once"),
  ],
)
def test_bad_options_are_refused_before_compiling(kwargs, match):
  with pytest.raises(ValueError, match=match):
    make_train_step(_gan(), **kwargs)


def test_several_penalties_on_a_batchnorm_critic_are_refused_by_name():
  g, d = make_models("dcgan", image_shape=(32, 32, 1), width=4, d_norm="batch")
  gan = GAN(g, d, optax.adam(1e-3), optax.adam(1e-3), latent_shape=(100,))
  with pytest.raises(ValueError, match="'r1', 'r2' penalty.*BatchNorm"):
    make_train_step(gan, penalties={"r1": 1.0, "r2": 1.0})
