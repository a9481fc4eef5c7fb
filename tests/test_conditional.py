"""Class-conditional GANs through the step and the loop: labels with their images, fake labels,
ACGAN's class loss, penalties closed over labels, sampling, resume, and the errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import REAL_DATA, Tape, recording_generator, recording_penalty
from test_loop import _config

from jaxgan import GAN, losses, make_train_step, penalties
from jaxgan import config as config_lib
from jaxgan.models import make_models
from jaxgan.run import loop
from jaxgan.step import labels

SHAPE = (4, 4, 1)
K = 3


def _gan(d_conditioning="projection", opt=None, tape=None):
  g, d = make_models(
    "mlp",
    image_shape=SHAPE,
    g_hidden=(16,),
    d_hidden=(16, 16),
    latent_dim=3,
    num_classes=K,
    d_conditioning=d_conditioning,
  )
  if tape is not None:
    g = recording_generator(g, tape)
  # SGD, not Adam, for comparisons: Adam's first step moves a parameter by about its learning
  # rate whatever its gradient's size, so a gradient that cancels analytically (0 one way, 1e-9
  # the other) would differ by the learning rate.
  opt = opt or optax.sgd(1e-2, momentum=0.5)
  return GAN(g, d, opt, opt, latent_shape=(3,), num_classes=K)


def _batch(n=6, seed=0):
  key = jax.random.PRNGKey(seed)
  images = jnp.tanh(jax.random.normal(key, (n, *SHAPE)))
  return {"image": images, "label": jnp.arange(n, dtype=jnp.int32) % K}


def _naive_step(gan, state, batch, z, y_fake, pen_key, *, loss, pens=(), class_weight=1.0):
  """One critic and one generator update of a conditional GAN written the plain way, with the
  latents `z`, fake labels `y_fake` and penalty key `pen_key` the step drew."""
  gl = losses.get(loss)
  real, y_real = batch["image"], batch["label"]

  def D(params, x, y):
    out = gan.discriminator.apply({"params": params}, x, train=True, labels=y)
    return out if isinstance(out, tuple) else (out, None)

  G = lambda params: gan.generator.apply({"params": params}, z, train=True, labels=y_fake)
  fake = G(state.g_params)

  def d_loss(dp):
    (sr, lr), (sf, lf) = D(dp, real, y_real), D(dp, fake, y_fake)
    total = gl.d(sr, sf)
    if lr is not None:
      total += class_weight * (
        losses.acgan_class_loss(lr, y_real) + losses.acgan_class_loss(lf, y_fake)
      )
    for name, w in dict(pens).items():
      y = y_fake if name == "r2" else y_real  # R2 is taken at the fakes, with their labels
      total += w * penalties.get(name)(lambda x, y=y: D(dp, x, y)[0], real, fake, pen_key)
    return total

  grads = jax.grad(d_loss)(state.d_params)
  upd, _ = gan.d_optimizer.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, upd)

  def g_loss(gp):
    (sr, _), (sf, lf) = D(d_params, real, y_real), D(d_params, G(gp), y_fake)
    total = gl.g(sr, sf)
    if lf is not None:
      total += class_weight * losses.acgan_class_loss(lf, y_fake)
    return total

  g_grads = jax.grad(g_loss)(state.g_params)
  upd, _ = gan.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
  return optax.apply_updates(state.g_params, upd), d_params


@pytest.mark.parametrize(
  "d_conditioning,kwargs",
  [
    ("projection", dict(loss="hinge", pens={"r1": 1.0, "r2": 0.5})),
    ("acgan", dict(loss="non_saturating", class_weight=0.7)),
    ("concat", dict(loss="wgan", pens={"wgan_gp": 10.0}, probs=(0.5, 0.3, 0.2))),
  ],
)
def test_conditional_step_equals_a_plain_update(d_conditioning, kwargs):
  g_tape, pen_tape = Tape(), Tape()
  gan = _gan(d_conditioning, tape=g_tape)
  batch = _batch(n=30)
  state = gan.init(jax.random.PRNGKey(0), batch["image"])
  key = jax.random.PRNGKey(7)
  pens = kwargs.pop("pens", {})
  probs = kwargs.pop("probs", None)
  # wgan_gp draws from its key: the step's key is recorded (R1 and R2 draw nothing, and stay
  # named, so that R2 is known to be taken at the fakes).
  step_pens = {recording_penalty(n, pen_tape) if n == "wgan_gp" else n: w for n, w in pens.items()}
  step = make_train_step(
    gan,
    penalties=step_pens,
    ema_decay=0.0,
    loss=kwargs["loss"],
    class_weight=kwargs.get("class_weight", 1.0),
    fake_label_probs=probs,
  )
  with g_tape, pen_tape:
    new, metrics = jax.jit(step)(state, batch, key)
  ((z, y_fake),) = g_tape.records
  pen_key = pen_tape.records[0][0] if "wgan_gp" in pens else None
  # The fake labels are drawn from the classes with the given probabilities (uniform by default).
  assert y_fake.shape == (30,) and set(np.unique(y_fake)) <= set(range(K))
  counts = np.bincount(y_fake, minlength=K)
  if probs is None:
    assert counts.min() >= 4, counts
  else:
    assert counts[0] > counts[2], counts
  naive = jax.jit(functools.partial(_naive_step, gan, pens=pens, **kwargs))
  g_want, d_want = naive(state, batch, z, y_fake, pen_key)
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=3e-5, atol=3e-6)
  jax.tree.map(close, new.d_params, d_want)
  jax.tree.map(close, new.g_params, g_want)
  assert metrics["skipped"] == 0
  assert ("d_class" in metrics) == ("g_class" in metrics) == (d_conditioning == "acgan")


def test_labels_change_the_update():
  # The same images with other labels give another critic update: the labels reach D.
  gan = _gan()
  batch = _batch()
  state = gan.init(jax.random.PRNGKey(0), batch["image"])
  step = jax.jit(make_train_step(gan, loss="hinge"))
  a, _ = step(state, batch, jax.random.PRNGKey(1))
  b, _ = step(state, {**batch, "label": (batch["label"] + 1) % K}, jax.random.PRNGKey(1))
  flat = lambda s: np.concatenate([np.ravel(x) for x in jax.tree.leaves(s.d_params)])
  assert not np.allclose(flat(a), flat(b))


def test_acgan_class_loss_against_numpy():
  logits = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
  y = np.array([0, 3, 1, 1, 2])
  logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  want = -logp[np.arange(5), y].mean()
  np.testing.assert_allclose(
    losses.acgan_class_loss(jnp.asarray(logits), jnp.asarray(y)), want, 1e-6
  )


def test_fake_labels_follow_the_requested_frequencies():
  key = jax.random.PRNGKey(0)
  uniform = np.bincount(labels.sample_labels(key, 30_000, 3), minlength=3) / 30_000
  np.testing.assert_allclose(uniform, 1 / 3, atol=0.01)
  skewed = np.bincount(labels.sample_labels(key, 30_000, 3, (0.6, 0.3, 0.1)), minlength=3) / 30_000
  np.testing.assert_allclose(skewed, [0.6, 0.3, 0.1], atol=0.01)
  freq = labels.class_frequencies(np.array([0, 0, 0, 1, 2, 2]), 3)
  np.testing.assert_allclose(freq, [0.5, 1 / 6, 1 / 3])


def test_sample_draws_the_requested_classes():
  gan = _gan()
  state = gan.init(jax.random.PRNGKey(0), _batch()["image"])
  key = jax.random.PRNGKey(3)
  z = gan.latents(key, 4)
  for y in ([0, 0, 0, 0], [2, 1, 0, 2]):
    y = jnp.asarray(y, jnp.int32)
    np.testing.assert_array_equal(gan.sample(state, key, 4, y), gan.generate(state, z, y))
  # Omitted labels: uniform classes, drawn from the key.
  assert gan.sample(state, key, 4).shape == (4, *SHAPE)
  a, b = (
    gan.sample(state, key, 4, jnp.zeros(4, jnp.int32)),
    gan.sample(state, key, 4, jnp.ones(4, jnp.int32)),
  )
  assert not np.allclose(a, b)


@pytest.mark.parametrize(
  "call,message",
  [
    (lambda gan, s, k: gan.sample(s, k, 2, jnp.array([0, K])), r"labels must lie in \[0, 3\)"),
    (lambda gan, s, k: gan.sample(s, k, 2, jnp.array([-1, 0])), r"labels must lie in \[0, 3\)"),
    (lambda gan, s, k: gan.sample(s, k, 2, jnp.array([0, 1, 2])), r"shape \[2\]"),
    (lambda gan, s, k: gan.sample(s, k, 2, jnp.array([0.0, 1.0])), "must be integers"),
  ],
)
def test_bad_labels_are_refused(call, message):
  gan = _gan()
  state = gan.init(jax.random.PRNGKey(0), _batch()["image"])
  with pytest.raises(ValueError, match=message):
    call(gan, state, jax.random.PRNGKey(0))


def test_labels_to_an_unconditional_gan_and_none_to_a_conditional_one_are_refused():
  g, d = make_models("mlp", image_shape=SHAPE, g_hidden=(8,), d_hidden=(8,), latent_dim=3)
  plain = GAN(g, d, optax.adam(1e-3), optax.adam(1e-3), latent_shape=(3,))
  state = plain.init(jax.random.PRNGKey(0), _batch()["image"])
  with pytest.raises(ValueError, match="unconditional GAN"):
    plain.sample(state, jax.random.PRNGKey(0), 2, jnp.array([0, 1]))
  gan = _gan()
  state = gan.init(jax.random.PRNGKey(0), _batch()["image"])
  step = make_train_step(gan)
  with pytest.raises(ValueError, match=r"class-conditional \(num_classes=3\): pass batches"):
    jax.eval_shape(step, state, _batch()["image"], jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="cannot judge packs"):
    packed = GAN(gan.generator, gan.discriminator, gan.g_optimizer, gan.d_optimizer, (3,), 2, K)
    make_train_step(packed)
  with pytest.raises(ValueError, match="3 numbers >= 0 summing to 1"):
    make_train_step(gan, fake_label_probs=(0.5, 0.5))


def test_pieces_refuse_what_would_silently_be_wrong():
  with pytest.raises(ValueError, match="3 numbers >= 0 summing to 1"):
    labels.sample_labels(jax.random.PRNGKey(0), 4, 3, probs=(0.25,) * 4)
  with pytest.raises(ValueError, match="summing to 1"):
    labels.sample_labels(jax.random.PRNGKey(0), 4, 3, probs=(0.5, 0.2, 0.1))
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
    losses.acgan_class_loss(jnp.zeros((2, 10)), jnp.array([10, 0]))
  gan = _gan()
  with pytest.raises(ValueError, match=r"generator has num_classes=3.*GAN\(..., num_classes=3\)"):
    GAN(gan.generator, gan.discriminator, gan.g_optimizer, gan.d_optimizer, (3,), num_classes=20)


@pytest.mark.parametrize(
  "override,message",
  [
    ({"eval.metrics": "intra_fcd"}, "Conditional metrics need a conditional model"),
    (
      {"model.num_classes": 10, "eval.metrics": "intra_fcd", "eval.num_samples": 100},
      r"10 per class.*at most 2 classes",
    ),
  ],
)
def test_metrics_a_run_cannot_compute_are_refused_before_any_file(tmp_path, override, message):
  config = config_lib.default_config()
  for k, v in override.items():
    section, _, name = k.rpartition(".")
    config[section][name] = v
  with pytest.raises(ValueError, match=message):
    loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
  "override,message",
  [
    ({"model.num_classes": 7}, r"'mnist' has 10 classes; set --config.model.num_classes=10"),
    ({"model.d_conditioning": "projection"}, "num_classes is 0"),
    (
      {"model.num_classes": 10, "model.pack": 2},
      r"packs \(config.model.pack=2\).*Use config.model.pack=1",
    ),
    ({"model.num_classes": 10, "data.fake_labels": "zipf"}, "'uniform' or 'data'"),
    ({"model.num_classes": 10, "data.name": "toy_ring"}, "has no labels"),
  ],
)
def test_bad_conditional_config_is_refused(override, message):
  config = config_lib.default_config()
  for k, v in override.items():
    section, _, name = k.rpartition(".")
    config[section][name] = v
  with pytest.raises(ValueError, match=message):
    config_lib.validate(config)


@pytest.fixture(scope="module")
def data_dir(mnist_dir):
  return mnist_dir  # MNIST prepared once per session (conftest.py)


def _cdcgan(data_dir, steps):
  # The smoke config with an MLP (concatenated labels, projection D): the loop's label path at a
  # fraction of a convolutional model's compile time.
  config = _config("mnist_cdcgan", "smoke")
  config.model.update(name="mlp", g_conditioning="concat", shared_embedding=0, width=16)
  config.run.update(data_dir=data_dir, source_dir=str(REAL_DATA), steps=steps)
  config.data.fake_labels = "data"
  config.log.update(every=2, sample_every=2, num_samples=20)
  config.checkpoint.every = 2
  config.eval.metrics = ""
  return config


@pytest.mark.full
def test_conditional_run_resumes_exactly_and_draws_one_class_per_row(tmp_path, data_dir):
  from PIL import Image  # pylint: disable=g-import-not-at-top

  whole = loop.train_and_evaluate(_cdcgan(data_dir, 4), str(tmp_path / "whole"))
  loop.train_and_evaluate(_cdcgan(data_dir, 2), str(tmp_path / "split"))
  resumed = loop.train_and_evaluate(_cdcgan(data_dir, 4), str(tmp_path / "split"))
  for name in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
    assert resumed[name] == whole[name], name  # bitwise: labels and position were restored
  # 20 samples of 10 classes: 10 rows of 2, one class per row.
  grid = Image.open(tmp_path / "whole" / "samples" / "step_0000004.png")
  assert grid.size == (2 * 29 + 1, 10 * 29 + 1)


@pytest.mark.full
def test_conditional_mnist_draws_the_requested_digits(tmp_path, data_dir):
  """A CPU-sized mnist_cdcgan (width 16, 1,000 steps) draws the digit it is asked for.

  Measured: a 300-step classifier (96.9% test accuracy) reads 90.5% of 1,000 samples (100 per
  class) as their requested class at step 1,000 (chance: 10%; 46% at step 600, 84% at 800).
  """
  from jaxgan.metrics.classifier import save_classifier, train_classifier

  clf, info = train_classifier(
    "mnist",
    steps=300,
    batch_size=64,
    widths=(16, 32),
    feature_dim=64,
    num_train=20_000,
    num_test=2000,
    data_dir=data_dir,
    source_dir=str(REAL_DATA),
    log=lambda *a: None,
  )
  assert info["test_accuracy"] > 0.95
  save_classifier(tmp_path / "clf.npz", clf)
  config = _config("mnist_cdcgan")
  config.run.update(data_dir=data_dir, source_dir=str(REAL_DATA), steps=1000)
  config.model.width = 16
  config.log.update(every=500, sample_every=1000)
  config.checkpoint.every = 1000
  config.eval.update(
    every=1000, metrics="class_acc", num_samples=1000, classifier_path=str(tmp_path / "clf.npz")
  )
  result = loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert result["mnist_convnet-1k-train/class_acc"] >= 0.85, result
