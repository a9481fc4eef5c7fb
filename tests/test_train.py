"""The compiled train step: exact semantics against a naive reference, determinism, no retracing,
the NaN guard and the errors it raises."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import Tape, recording_generator, recording_penalty

from jaxgan import GAN, losses, make_train_step, penalties
from jaxgan.models import make_models
from jaxgan.step.regularization import check_penalty_critic
from jaxgan.step.state import uses_batch_norm


def _gan(d_norm="layer", image_shape=(6,), lr=1e-2, tape=None):
  g, d = make_models(
    "mlp",
    image_shape=image_shape,
    g_hidden=(16,),
    d_hidden=(16, 16),
    d_norm=d_norm,
    output_activation="none",
  )
  if tape is not None:
    g = recording_generator(g, tape)
  return GAN(g, d, optax.adam(lr), optax.sgd(lr, momentum=0.5), latent_shape=(3,))


def _batch(n, dim=6, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), (n, dim)) + 1.0


def _naive_step(gan, state, batch, latents, pen_keys, *, loss, penalty, weight, ema_decay):
  """The same update written the plain way: critic update i on batch[i::n_critic] with the fakes
  of `latents[i]` and its penalty's key `pen_keys[i]` (the draws the step made), then G's update
  recomputed on the last latents."""
  gl = losses.get(loss)
  pen_fn = penalties.get(penalty)
  n_critic = len(latents)
  D = lambda p, x: gan.discriminator.apply({"params": p}, x, train=True)
  G = lambda p, z: gan.generator.apply({"params": p}, z, train=True)
  d_params, d_opt = state.d_params, state.d_opt_state
  for i in range(n_critic):
    real = batch[i::n_critic]
    fake = G(state.g_params, latents[i])

    def d_loss(p, real=real, fake=fake, key=pen_keys[i]):
      pen = pen_fn(lambda x: D(p, x), real, fake, key)
      return gl.d(D(p, real), D(p, fake)) + weight * pen

    grads = jax.grad(d_loss)(d_params)
    upd, d_opt = gan.d_optimizer.update(grads, d_opt, d_params)
    d_params = optax.apply_updates(d_params, upd)
  real = batch[n_critic - 1 :: n_critic]
  z = latents[-1]
  g_grads = jax.grad(lambda p: gl.g(D(d_params, real), D(d_params, G(p, z))))(state.g_params)
  upd, g_opt = gan.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, upd)
  ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, state.ema_params, g_params)
  return g_params, d_params, ema


def _distinct(arrays):
  return len({np.asarray(a).tobytes() for a in arrays}) == len(arrays)


# Every penalty once, relativistic and plain losses, and both paths of the critic loop (one
# update, and updates before the one that shares G's forward pass). The fast tier runs the first
# two (several critic updates, a penalty that draws, one taken at the fakes); the full tier all.
@pytest.mark.parametrize(
  "loss,penalty,n_critic",
  [
    ("rsgan", "wgan_gp", 3),
    ("hinge", "r2", 2),
    pytest.param("rahinge", "r1", 1, marks=pytest.mark.full),
    pytest.param("wgan", "wgan_lp", 1, marks=pytest.mark.full),
    pytest.param("non_saturating", "dragan", 3, marks=pytest.mark.full),
  ],
)
def test_step_matches_naive_reference(loss, penalty, n_critic):
  g_tape, pen_tape = Tape(), Tape()
  gan = _gan(tape=g_tape)
  batch = _batch(4 * n_critic)
  state = gan.init(jax.random.PRNGKey(0), batch[:4])
  key = jax.random.PRNGKey(7)
  step = jax.jit(
    make_train_step(
      gan,
      loss=loss,
      penalty=recording_penalty(penalty, pen_tape),
      penalty_weight=2.0,
      n_critic=n_critic,
      ema_decay=0.9,
    )
  )
  with g_tape, pen_tape:
    new_state, metrics = step(state, batch, key)
  latents = [z for z, _ in g_tape.records]  # G's applications: one per critic update
  pen_keys = [k for (k,) in pen_tape.records]
  assert len(latents) == len(pen_keys) == n_critic
  # Each critic update draws its own latents and penalty key.
  assert _distinct(latents) and _distinct(pen_keys)
  naive = jax.jit(
    functools.partial(_naive_step, gan, loss=loss, penalty=penalty, weight=2.0, ema_decay=0.9)
  )
  want_g, want_d, want_ema = naive(state, batch, latents, pen_keys)
  for got, want in (
    (new_state.g_params, want_g),
    (new_state.d_params, want_d),
    (new_state.ema_params, want_ema),
  ):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6), got, want)
  assert int(new_state.step) == 1 and float(metrics["skipped"]) == 0.0
  assert set(metrics) == {
    "d_loss",
    "penalty",
    "g_loss",
    "d_real",
    "d_fake",
    "d_grad_norm",
    "g_grad_norm",
    "skipped",
  }
  assert float(metrics["penalty"]) > 0


def test_draws_depend_on_the_key_and_the_step_only():
  """The same key and step draw the same latents whatever the state's parameters; another key,
  or the next step (a run passes the same key at every step), draws others."""
  tape = Tape()
  gan = _gan(tape=tape)
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  step = jax.jit(make_train_step(gan, loss="hinge", n_critic=2))

  def latents(state, key):
    with tape:
      jax.block_until_ready(step(state, _batch(8), jax.random.PRNGKey(key)))
    return [z for z, _ in tape.records]

  first = latents(state, 1)
  assert len(first) == 2 and _distinct(first)  # two critic updates, each its own latents
  zeroed = state.replace(d_params=jax.tree.map(jnp.zeros_like, state.d_params))
  for a, b in zip(first, latents(zeroed, 1), strict=True):
    np.testing.assert_array_equal(a, b)
  next_step = state.replace(step=jnp.asarray(1, jnp.int32))
  assert _distinct([*first, *latents(state, 2), *latents(next_step, 1)])


def test_compiles_once_and_is_deterministic():
  gan = _gan()
  traces = []
  inner = make_train_step(gan, loss="hinge", penalty="wgan_gp", n_critic=2)

  def counted(state, batch, key):
    traces.append(1)
    return inner(state, batch, key)

  step = jax.jit(counted, donate_argnums=0)

  def run(key, steps=4):
    state = gan.init(jax.random.PRNGKey(0), _batch(8)[:4])
    for i in range(steps):
      state, _ = step(state, _batch(8, seed=i), key)
    return state

  a = run(jax.random.PRNGKey(1))
  b = run(jax.random.PRNGKey(1))
  c = run(jax.random.PRNGKey(2))
  assert len(traces) == 1
  assert int(a.step) == 4
  jax.tree.map(np.testing.assert_array_equal, a.g_params, b.g_params)
  assert not np.allclose(a.g_params["Dense_0"]["kernel"], c.g_params["Dense_0"]["kernel"])


def test_nonfinite_update_is_skipped_and_counted():
  gan = _gan()
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  step = jax.jit(make_train_step(gan, loss="non_saturating"))
  poisoned = _batch(4).at[1, 2].set(jnp.nan)
  new_state, metrics = step(state, poisoned, jax.random.PRNGKey(0))
  assert float(metrics["skipped"]) == 1.0
  assert int(new_state.step) == 1 and int(new_state.skipped) == 1
  jax.tree.map(np.testing.assert_array_equal, new_state.d_params, state.d_params)
  jax.tree.map(np.testing.assert_array_equal, new_state.g_opt_state, state.g_opt_state)
  # Training goes on from the untouched state.
  newer, metrics = step(new_state, _batch(4), jax.random.PRNGKey(0))
  assert float(metrics["skipped"]) == 0.0 and int(newer.skipped) == 1
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(newer))


def test_weight_clipping_and_ema():
  gan = _gan(lr=1.0)
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  step = jax.jit(make_train_step(gan, loss="wgan", weight_clip=0.01, ema_decay=0.75))
  new, _ = step(state, _batch(4), jax.random.PRNGKey(0))
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(new.d_params)) <= 0.01 + 1e-7
  jax.tree.map(
    lambda e, old, p: np.testing.assert_allclose(e, 0.75 * old + 0.25 * p, rtol=1e-5, atol=1e-7),
    new.ema_params,
    state.ema_params,
    new.g_params,
  )


def test_penalty_with_batchnorm_critic_is_refused_where_the_step_is_built():
  gan = _gan(d_norm="batch")
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  with pytest.raises(ValueError, match="BatchNorm.*'layer', 'spectral' or 'none'"):
    make_train_step(gan, loss="wgan", penalty="wgan_gp")  # before anything is compiled
  # Without a penalty a BatchNorm critic is fine, and its statistics are updated.
  step = jax.jit(make_train_step(gan, loss="non_saturating"))
  new, _ = step(state, _batch(4), jax.random.PRNGKey(0))
  assert not np.allclose(jax.tree.leaves(new.d_vars)[0], jax.tree.leaves(state.d_vars)[0])


def _r1_from_scratch(critic_fn, real, fake, key):
  """R1 (Mescheder et al. 2018) written out, not through jaxgan.penalties."""
  del fake, key
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(real)
  return jnp.mean(jnp.sum(jnp.square(grads), axis=1))


def test_penalty_function_gives_the_named_penalty_step():
  gan = _gan()
  batch = _batch(4)
  state = gan.init(jax.random.PRNGKey(0), batch)
  key = jax.random.PRNGKey(3)
  steps = {
    name: jax.jit(make_train_step(gan, loss="hinge", penalty=penalty, penalty_weight=5.0))
    for name, penalty in (("named", "r1"), ("function", _r1_from_scratch))
  }
  (named, named_m), (custom, custom_m) = (steps[k](state, batch, key) for k in steps)
  # The function is called: its penalty is the named one's, and it is not zero.
  np.testing.assert_allclose(custom_m["penalty"], named_m["penalty"], rtol=1e-5)
  assert float(named_m["penalty"]) > 1e-3, named_m
  for got, want in ((custom.d_params, named.d_params), (custom.g_params, named.g_params)):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), got, want)


def test_penalty_function_with_batchnorm_critic_is_refused_by_name():
  gan = _gan(d_norm="batch")
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  with pytest.raises(ValueError, match="'_r1_from_scratch' penalty.*BatchNorm"):
    make_train_step(gan, loss="wgan", penalty=_r1_from_scratch)
  with pytest.raises(ValueError, match="'_r1_from_scratch' penalty.*BatchNorm"):
    check_penalty_critic(gan, [_r1_from_scratch])
  check_penalty_critic(gan, [])  # no penalty: a BatchNorm critic is fine
  # The check reads D's variables from shapes alone; the state's agree.
  assert gan.critic_uses_batch_norm() and uses_batch_norm(state.d_vars)
  assert not _gan().critic_uses_batch_norm()


def test_bad_arguments_are_reported():
  gan = _gan()
  with pytest.raises(ValueError, match="Valid names"):
    make_train_step(gan, loss="wasserstein")
  with pytest.raises(ValueError, match="Valid names"):
    make_train_step(gan, penalty="gp")
  with pytest.raises(ValueError, match="n_critic"):
    make_train_step(gan, n_critic=0)
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  with pytest.raises(ValueError, match="n_critic=3"):
    make_train_step(gan, n_critic=3)(state, _batch(8), jax.random.PRNGKey(0))


def test_sample_uses_ema_params():
  gan = _gan()
  state = gan.init(jax.random.PRNGKey(0), _batch(4))
  state = state.replace(ema_params=jax.tree.map(jnp.zeros_like, state.ema_params))
  assert np.allclose(gan.sample(state, jax.random.PRNGKey(1), 5), 0.0)
  assert not np.allclose(gan.sample(state, jax.random.PRNGKey(1), 5, ema=False), 0.0)


def test_learning_rate_schedule_reaches_zero_after_its_steps_in_train_steps():
  from jaxgan import config as config_lib
  from jaxgan.run.build import build_gan, build_train_step

  c = config_lib.toy_config("ring", steps=1000)
  c.optim.lr_decay = "linear"
  with pytest.raises(ValueError, match="optim.lr_decay is gone.*optim.g_lr='cosine"):
    config_lib.validate(c)
  c = config_lib.toy_config("ring", steps=1000)
  c.optim.g_lr = c.optim.d_lr = "linear(2e-4, 0, 2)"
  c.loss.n_critic, c.data.batch_size = 2, 8
  config_lib.validate(c)
  gan = build_gan(c, (2,))
  step = jax.jit(build_train_step(c, gan))
  state = gan.init(jax.random.key(0), jnp.zeros((8, 2)))
  batch = jax.random.normal(jax.random.key(1), (16, 2))
  states = [state]
  for _ in range(3):
    states.append(step(states[-1], batch, jax.random.key(2))[0])
  moved = lambda a, b: any(
    bool(jnp.any(x != y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  )
  # G and D (2 updates a step) both move in the first two steps and stand still after them.
  assert moved(states[0].g_params, states[1].g_params)
  assert moved(states[1].d_params, states[2].d_params)
  assert not moved(states[2].g_params, states[3].g_params)
  assert not moved(states[2].d_params, states[3].d_params)
