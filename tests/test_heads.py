"""Losses, ACGAN's class loss and bCR over several discriminator heads, against NumPy (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_losses import _log1m_sig, _log_sig, _reference

from jaxgan import losses, regularizers

RELATIVISTIC_AVERAGE = ("rasgan", "ralsgan", "rahinge")


def _head_reference(name, r, f):
  """One head's (d, g) losses in float64; the relativistic average over the batch axis."""
  if name not in RELATIVISTIC_AVERAGE:
    return _reference(name, r, f)  # every other formula is a mean over all elements
  m = np.mean
  rt, ft = r - f.mean(axis=0), f - r.mean(axis=0)  # per patch position for [n, h, w]
  if name == "rasgan":
    return -m(_log_sig(rt)) - m(_log1m_sig(ft)), -m(_log_sig(ft)) - m(_log1m_sig(rt))
  if name == "ralsgan":
    return m((rt - 1) ** 2) + m((ft + 1) ** 2), m((ft - 1) ** 2) + m((rt + 1) ** 2)
  d = m(np.maximum(0, 1 - rt)) + m(np.maximum(0, 1 + ft))
  return d, m(np.maximum(0, 1 - ft)) + m(np.maximum(0, 1 + rt))


def _two_heads(seed=0, n=8):
  rng = np.random.default_rng(seed)
  # The patch head's positions have different means, so pairing positions matters.
  offsets = rng.normal(size=(1, 3, 2)) * 2
  real = {"global": rng.normal(size=n) + 1, "patch": rng.normal(size=(n, 3, 2)) + offsets}
  fake = {"global": rng.normal(size=n) - 1, "patch": rng.normal(size=(n, 3, 2)) - offsets}
  return real, fake


@pytest.mark.parametrize("structure", ["dict", "list"])
@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_multi_head_losses_match_numpy(name, structure):
  real, fake = _two_heads()
  refs = [_head_reference(name, real[k], fake[k]) for k in ("global", "patch")]
  as_tree = (lambda t: t) if structure == "dict" else (lambda t: [t["global"], t["patch"]])
  r32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), as_tree(real))
  f32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), as_tree(fake))
  loss = losses.get(name)
  for i, fn in enumerate((loss.d, loss.g)):
    want = refs[0][i] + refs[1][i]
    got = fn(r32, f32)
    assert got.dtype == jnp.float32 and got.shape == ()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn(r32, f32, reduce="mean"), want / 2, rtol=1e-5, atol=1e-6)
    jitted = jax.jit(lambda r, f, fn=fn: fn(r, f, reduce="mean"))
    np.testing.assert_allclose(jitted(r32, f32), want / 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", RELATIVISTIC_AVERAGE)
def test_relativistic_patch_heads_pair_positions(name):
  # Against the whole-batch-and-patches mean the value differs: positions are paired.
  real, fake = _two_heads(seed=1)
  r, f = real["patch"], fake["patch"]
  got = losses.get(name).d(jnp.asarray(r, jnp.float32), jnp.asarray(f, jnp.float32))
  np.testing.assert_allclose(got, _head_reference(name, r, f)[0], rtol=1e-5)
  flat = _reference(name, r, f)[0]  # r - f.mean() over every element
  assert abs(float(got) - flat) > 1e-2 * abs(flat)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_one_head_is_bitwise_the_single_array(name):
  rng = np.random.default_rng(4)
  r = jnp.asarray(rng.normal(size=16) * 3, jnp.float32)
  f = jnp.asarray(rng.normal(size=16) * 3, jnp.float32)
  loss = losses.get(name)
  for fn in (loss.d, loss.g):
    single = fn(r, f)
    np.testing.assert_array_equal(single, fn.__wrapped__(r, f))  # the formula, nothing around it
    np.testing.assert_array_equal(single, fn([r], [f]))
    np.testing.assert_array_equal(single, fn({"a": r}, {"a": f}, reduce="mean"))
    np.testing.assert_array_equal(single, fn(r, f, reduce="mean"))
  # Today's relativistic average, the mean over every element, written out: the same bits.
  if name == "rasgan":
    rt, ft = r - jnp.mean(f), f - jnp.mean(r)
    today = jnp.mean(jax.nn.softplus(-rt)) + jnp.mean(jax.nn.softplus(ft))
    np.testing.assert_array_equal(loss.d(r, f), today)


def test_mismatched_structures_are_refused_naming_both():
  r, f = jnp.zeros(4), jnp.ones(4)
  cases = [
    ({"a": r, "b": r}, [f, f], ["PyTreeDef({'a': *, 'b': *})", "PyTreeDef([*, *])"]),
    ({"a": r, "b": r}, {"a": f, "c": f}, ["'b'", "'c'"]),
    ([r, r], [f], ["PyTreeDef([*, *])", "PyTreeDef([*])"]),
    ([r], f, ["PyTreeDef([*])", "PyTreeDef(*)"]),
  ]
  for real, fake, names in cases:
    for fn in (losses.hinge_discriminator_loss, jax.jit(losses.rasgan_generator_loss)):
      with pytest.raises(ValueError, match="same heads") as err:
        fn(real, fake)
      assert all(n in str(err.value) for n in names), (names, err.value)
  with pytest.raises(
    ValueError, match=r"head \['b'\]\): real scores \(4,\) and fake scores \(5,\)"
  ):
    losses.lsgan_generator_loss({"a": r, "b": r}, {"a": f, "b": jnp.ones(5)})
  with pytest.raises(ValueError, match=r"reduce must be one of \('sum', 'mean'\); got 'max'"):
    losses.hinge_discriminator_loss([r], [f], reduce="max")


def test_acgan_class_loss_over_heads():
  rng = np.random.default_rng(2)
  labels = rng.integers(0, 3, size=6)
  heads = {"coarse": rng.normal(size=(6, 3)) * 2, "fine": rng.normal(size=(6, 5)) * 2}

  def ce(logits):  # float64 softmax cross-entropy
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])

  want = ce(heads["coarse"]) + ce(heads["fine"])
  h32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), heads)
  y = jnp.asarray(labels)
  np.testing.assert_allclose(losses.acgan_class_loss(h32, y), want, rtol=1e-5)
  np.testing.assert_allclose(losses.acgan_class_loss(h32, y, reduce="mean"), want / 2, rtol=1e-5)
  np.testing.assert_allclose(jax.jit(losses.acgan_class_loss)(h32, y), want, rtol=1e-5)
  single = losses.acgan_class_loss(h32["fine"], y)
  np.testing.assert_array_equal(single, losses.acgan_class_loss([h32["fine"]], y))
  with pytest.raises(ValueError, match=r"head \['bad'\].*\[batch, num_classes\]"):
    losses.acgan_class_loss({"ok": h32["fine"], "bad": jnp.zeros((6, 2, 2))}, y)
  with pytest.raises(ValueError, match=r"head \['coarse'\]\): labels must lie in \[0, 3\)"):
    losses.acgan_class_loss(h32, jnp.asarray(labels.clip(0, 0) + 4))


def test_consistency_regularizer_over_heads():
  real, fake = _two_heads(seed=3)
  want = sum(np.mean((real[k] - fake[k]) ** 2) for k in real)
  tree = lambda t: {k: jnp.asarray(v, jnp.float32) for k, v in t.items()}
  np.testing.assert_allclose(
    regularizers.consistency_regularizer(tree(real), tree(fake)), want, 1e-5
  )
  a, b = jnp.asarray(real["global"]), jnp.asarray(fake["global"])
  np.testing.assert_array_equal(
    regularizers.consistency_regularizer(a, b), regularizers.consistency_regularizer([a], [b])
  )
  with pytest.raises(ValueError, match="same heads"):
    regularizers.consistency_regularizer({"a": a}, [b])
