"""jaxgan.augment against independent NumPy implementations, its identities and its errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import augment
from jaxgan.augment import ada_lib
from jaxgan.augment import diffaugment_lib as da
from jaxgan.augment import transforms as T

KEY = jax.random.key(0)
# Shared by the tests on [6, 8, 8, 3] batches, so that R3GAN's pipeline compiles once.
ADA_R3GAN = jax.jit(augment.get("ada", augment.R3GAN_POLICY))
DIFFAUGMENT = jax.jit(augment.get("diffaugment"))  # compiled once for the [64, 8, 8, 3] batches


def _images(shape=(2, 6, 6, 3), seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


# --- DiffAugment: each op against NumPy with the same explicit parameters. ---


def test_colour_ops_match_numpy():
  x = _images()
  b, s, c = np.array([0.3, -0.4]), np.array([0.0, 1.7]), np.array([0.6, 1.4])
  np.testing.assert_allclose(da.brightness(x, b), x + b[:, None, None, None], atol=1e-6)
  mean_c = x.mean(axis=3, keepdims=True)
  want = (x - mean_c) * s[:, None, None, None] + mean_c
  np.testing.assert_allclose(da.saturation(x, s), want, atol=1e-6)
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  want = (x - mean) * c[:, None, None, None] + mean
  np.testing.assert_allclose(da.contrast(x, c), want, atol=1e-6)


def _np_translate(x, shifts):
  out = np.zeros_like(x)
  n, h, w, _ = x.shape
  for i in range(n):
    dy, dx = shifts[i]
    for y in range(h):
      for xx in range(w):
        if 0 <= y - dy < h and 0 <= xx - dx < w:
          out[i, y, xx] = x[i, y - dy, xx - dx]
  return out


def _np_cutout(x, centres, size):
  out = x.copy()
  for i, (cy, cx) in enumerate(centres):
    y0, x0 = cy - size[0] // 2, cx - size[1] // 2
    out[i, max(y0, 0) : max(y0 + size[0], 0), max(x0, 0) : max(x0 + size[1], 0)] = 0
  return out


def test_translate_and_cutout_match_numpy():
  x = _images((4, 6, 6, 3))
  shifts = np.array([[1, -2], [0, 0], [-6, 1], [3, 5]])
  np.testing.assert_array_equal(da.translate(x, shifts), _np_translate(x, shifts))
  centres = np.array([[0, 0], [3, 2], [6, 6], [5, 1]])
  for size in [(3, 3), (2, 4)]:
    np.testing.assert_array_equal(da.cutout(x, centres, size), _np_cutout(x, centres, size))


def test_diffaugment_draws_lie_in_the_paper_ranges():
  n = 4000
  for name, lo, hi in [("brightness", -0.5, 0.5), ("saturation", 0, 2), ("contrast", 0.5, 1.5)]:
    v = np.asarray(da.draw(name, KEY, n, 32, 32))
    assert v.shape == (n,) and lo <= v.min() < lo + 0.01 and hi - 0.01 < v.max() <= hi, name
  assert da.max_shift(32, 32) == (4, 4) and da.cutout_size(32, 32) == (16, 16)
  shifts = np.asarray(da.draw("translation", KEY, n, 32, 16))
  assert set(shifts[:, 0]) == set(range(-4, 5)) and set(shifts[:, 1]) == set(range(-2, 3))
  assert abs(np.mean(shifts[:, 0] == 4) - 1 / 9) < 0.02  # uniform over the 9 shifts
  centres = np.asarray(da.draw("cutout", KEY, n, 32, 7))  # sides 16 (even) and 4 (even)
  assert set(centres[:, 0]) == set(range(33)) and set(centres[:, 1]) == set(range(8))


def test_ops_apply_their_parameters_per_example():
  x = _images((3, 8, 8, 3))
  params = {
    "brightness": np.array([0.1, -0.2, 0.3]),
    "saturation": np.array([0.5, 1.0, 1.5]),
    "contrast": np.array([0.6, 1.0, 1.2]),
    "translation": np.array([[1, 0], [0, -1], [1, 1]]),
    "cutout": np.array([[0, 0], [4, 4], [8, 2]]),
  }
  direct = {
    "brightness": lambda v: da.brightness(x, v),
    "saturation": lambda v: da.saturation(x, v),
    "contrast": lambda v: da.contrast(x, v),
    "translation": lambda v: da.translate(x, v),
    "cutout": lambda v: da.cutout(x, v, (4, 4)),
  }
  for name, v in params.items():
    np.testing.assert_array_equal(da.apply(name, jnp.asarray(x), v), direct[name](v), name)
  same = np.broadcast_to(x[:1], (64, 8, 8, 3))
  y = np.asarray(DIFFAUGMENT(same, KEY, 1.0))
  assert all(not np.allclose(y[i], y[i + 1]) for i in range(63))


def test_diffaugment_probability():
  x = _images((64, 8, 8, 3))
  np.testing.assert_array_equal(DIFFAUGMENT(x, KEY, 0.0), x)
  changed = np.any(np.asarray(DIFFAUGMENT(x, KEY, 1.0)) != x, axis=(1, 2, 3))
  assert changed.all()
  changed = np.any(np.asarray(DIFFAUGMENT(x, KEY, 0.5)) != x, axis=(1, 2, 3))
  assert 16 < changed.sum() < 48


# --- ADA: the warp, the colour matrices and the draws. ---


def _np_bilinear_reflect(x, g_inv):
  # Independent of the code under test: pad generously with NumPy's reflect mode, then sample.
  n, h, w, c = x.shape
  pad = 2 * max(h, w)
  xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
  out = np.zeros_like(x)
  cx, cy = (w - 1) / 2, (h - 1) / 2
  for i in range(n):
    for yy in range(h):
      for xx in range(w):
        sx, sy, _ = g_inv[i] @ np.array([xx - cx, yy - cy, 1.0])
        sx, sy = sx + cx + pad, sy + cy + pad
        x0, y0 = int(np.floor(sx)), int(np.floor(sy))
        fx, fy = sx - x0, sy - y0
        out[i, yy, xx] = (1 - fy) * ((1 - fx) * xp[i, y0, x0] + fx * xp[i, y0, x0 + 1]) + fy * (
          (1 - fx) * xp[i, y0 + 1, x0] + fx * xp[i, y0 + 1, x0 + 1]
        )
  return out


def test_warp_exact_cases():
  x = _images((2, 6, 6, 3))
  ones = jnp.ones(2)
  np.testing.assert_array_equal(T.warp(x, jnp.broadcast_to(jnp.eye(3), (2, 3, 3))), x)
  np.testing.assert_array_equal(T.warp(x, T.scale2d(-ones, 1.0)), x[:, :, ::-1])
  for k in range(4):
    want = np.rot90(x, k, axes=(1, 2))
    np.testing.assert_array_equal(T.warp(x, T.rotate90_2d(k * ones.astype(int))), want)
  # Whole-pixel translation samples the reflected border, as torch's 'reflect' padding.
  xp = np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="reflect")
  got = T.warp(x, T.translate2d(jnp.array([2.0, -3.0]), jnp.array([-1.0, 3.0])))
  np.testing.assert_array_equal(got[0], xp[0, 3 - 1 : 9 - 1, 3 + 2 : 9 + 2])
  np.testing.assert_array_equal(got[1], xp[1, 3 + 3 : 9 + 3, 3 - 3 : 9 - 3])


def test_warp_general_matrix_matches_numpy():
  x = _images((2, 6, 5, 3))
  g = T.rotate2d(jnp.array([0.5, -2.0])) @ T.scale2d(jnp.array([0.7, 1.3]), jnp.array([1.2, 0.9]))
  g = g @ T.translate2d(jnp.array([0.25, -1.5]), jnp.array([0.4, 0.0]))
  np.testing.assert_allclose(T.warp(x, g), _np_bilinear_reflect(x, np.asarray(g)), atol=1e-5)


def test_colour_matrices_match_numpy():
  x = _images((2, 4, 4, 3))
  mean = x.mean(axis=3, keepdims=True)
  b, c, s = np.array([0.2, -0.3]), np.array([0.5, 2.0]), np.array([0.0, 3.0])
  per = (slice(None), None, None, None)
  cases = [
    (T.translate3d(b, b, b), x + b[per]),
    (T.scale3d(c, c, c), x * c[per]),
    (T.saturate3d(s), mean + (x - mean) * s[per]),
    (T.luma_flip3d(np.array([1.0, 0.0])), np.stack([x[0] - 2 * mean[0], x[1]])),
    # A third of a turn about the grey axis carries r to g, g to b and b to r.
    (T.hue_rotate3d(jnp.full(2, 2 * np.pi / 3)), x[..., [2, 0, 1]]),
  ]
  for m, want in cases:
    np.testing.assert_allclose(T.apply_colour(x, m), want, atol=1e-5)
  # One channel, ADA's rule: the averaged row acts on grey (r = g = b).
  g = _images((2, 4, 4, 1))
  np.testing.assert_allclose(T.apply_colour(g, T.luma_flip3d(np.ones(2))), -g, atol=1e-6)
  np.testing.assert_allclose(
    T.apply_colour(g, T.translate3d(b, b, b) @ T.scale3d(c, c, c)), g * c[per] + b[per], atol=1e-6
  )


def test_box_cutout_matches_numpy():
  x = _images((2, 8, 8, 1))
  want = x.copy()
  want[0, 2:6, 2:6] = 0  # centre 0.5, side 0.5: pixel centres strictly within 0.25 of it
  want[1, 0:3, 5:8] = 0  # centre (0.1, 0.9), side 0.5: clipped at the corner
  got = T.box_cutout(x, jnp.array([[0.5, 0.5], [0.1, 0.9]]), jnp.array([0.5, 0.5]))
  np.testing.assert_array_equal(got, want)


def test_ada_geometry_draws():
  n, p = 4000, 0.6
  policies = [
    (p, {"xflip": 1.0}),
    (1.0, {"rotate90": 1.0, "xint": 1.0}),
    (0.5, {"rotate": 1.0}),
    (1.0, {"scale": 1.0}),
  ]
  # One program for the four draws: compiling is what costs here.
  draws = jax.jit(
    lambda keys: [
      ada_lib.sample_geometry(k, n, 32, 32, q, m) for k, (q, m) in zip(keys, policies, strict=True)
    ]
  )
  g_flip, g_blit, g_rot, g_scale = map(np.asarray, draws(jax.random.split(KEY, 4)))
  flipped = g_flip[:, 0, 0] == -1
  assert np.all(g_flip[flipped] == np.diag([-1.0, 1, 1]))
  assert np.all(g_flip[~flipped] == np.eye(3))
  assert abs(flipped.mean() - p / 2) < 0.03  # applied with p, and then a flip half the time
  assert set(np.unique(g_blit[:, :2, :2])) == {-1.0, 0.0, 1.0}  # exact quarter turns
  shifts = g_blit[:, :2, 2]  # whole pixels, up to round(0.125 * 32)
  assert set(np.unique(shifts)) <= set(range(-4, 5)) and np.abs(shifts).max() == 4
  assert abs(np.mean(g_rot[:, 0, 0] != 1.0) - 0.5) < 0.03  # pre OR post rotation: p_rot's split
  log2_s = -np.log2(g_scale[:, 0, 0])
  assert abs(log2_s.std() - 0.2) < 0.01 and np.all(g_scale[:, 0, 0] == g_scale[:, 1, 1])


def test_ada_colour_draws():
  n = 4000
  c = np.asarray(ada_lib.sample_colour(KEY, n, 3, 1.0, {"brightness": 0.5, "contrast": 1.0}))
  b, s = c[:, 0, 3], c[:, 0, 0]
  assert abs(np.mean(b != 0) - 0.5) < 0.03
  assert abs(b[b != 0].std() / s[b != 0].mean() - 0.2) < 0.03  # b is scaled by the contrast after
  assert abs(np.log2(s).std() - 0.5) < 0.02
  c1 = np.asarray(ada_lib.sample_colour(KEY, 8, 1, 1.0, {"hue": 1.0, "saturation": 1.0}))
  np.testing.assert_array_equal(c1, np.broadcast_to(np.eye(4), (8, 4, 4)))  # skipped on C = 1


@pytest.mark.full
def test_ada_identity_change_and_per_example_draws():
  x = _images((6, 8, 8, 3))
  np.testing.assert_array_equal(ADA_R3GAN(x, KEY, 0.0), x)
  same = np.broadcast_to(x[:1], x.shape)
  y = np.asarray(ADA_R3GAN(same, KEY, 1.0))
  assert all(not np.allclose(y[i], y[j]) for i in range(6) for j in range(i))
  # Blit alone at p = 1: every output is exactly one of the 8 flips and quarter turns of its input.
  y = np.asarray(jax.jit(augment.get("ada", "xflip,rotate90"))(x, KEY, 1.0))
  for xi, yi in zip(x, y, strict=True):
    images = [np.rot90(f, k) for f in (xi, xi[:, ::-1]) for k in range(4)]
    assert any(np.array_equal(yi, im) for im in images)
  g = _images((6, 8, 8, 1))
  fn = jax.jit(augment.get("ada", "bgcc"))
  np.testing.assert_array_equal(fn(g, KEY, 0.0), g)
  assert np.all(np.any(np.asarray(fn(g, KEY, 1.0)) != g, axis=(1, 2, 3)))


def test_policies():
  r3 = ada_lib.parse_policy(augment.R3GAN_POLICY)
  assert len(r3) == 13 and r3["hue"] == 0.5 and r3["cutout"] == 1.0 and r3["xflip"] == 1.0
  assert ada_lib.parse_policy("r3gan") == r3
  assert "cutout" in ada_lib.parse_policy("bgcc") and "cutout" not in ada_lib.parse_policy("bgc")
  assert set(ada_lib.parse_policy("bg")) == set(ada_lib.BLIT + ada_lib.GEOMETRIC)
  assert ada_lib.parse_policy("xflip:0,noise:2") == {"noise": 2.0}
  assert da.parse_policy("color,translation,cutout") == (
    "brightness",
    "saturation",
    "contrast",
    "translation",
    "cutout",
  )


# --- Every pipeline: flip_translate, gradients, jit with a traced p, errors. ---


def test_flip_translate():
  x = _images((64, 8, 8, 3))
  fn = jax.jit(augment.flip_translate)
  np.testing.assert_array_equal(fn(x, KEY, 0.0), x)
  y = np.asarray(fn(x, KEY, 1.0))
  # Each output is the input, flipped or not, shifted by at most 1 pixel with zero fill.
  for i in range(64):
    matches = [
      (f, dy, dx)
      for f in (False, True)
      for dy in (-1, 0, 1)
      for dx in (-1, 0, 1)
      if np.array_equal(y[i], _np_translate((x[i, :, ::-1] if f else x[i])[None], [(dy, dx)])[0])
    ]
    assert len(matches) == 1
  # Unchanged only when unflipped and unshifted: 1/2 * 1/9 of the examples on average.
  assert np.sum(np.any(y != x, axis=(1, 2, 3))) > 48


@pytest.mark.parametrize(
  "name, policy",
  [
    ("diffaugment", None),
    pytest.param("ada", augment.R3GAN_POLICY, marks=pytest.mark.full),  # ADA's whole pipeline
    ("flip_translate", None),
  ],
)
def test_gradients_flow_and_jit_with_traced_p(name, policy):
  fn = augment.get(name, policy)
  x = jnp.asarray(_images((6, 8, 8, 3)))
  w = jnp.asarray(_images((6, 8, 8, 3), seed=1))
  step = jax.jit(jax.value_and_grad(lambda x, p: jnp.sum(fn(x, KEY, p) * w)))
  _, grad = step(x, jnp.float32(1.0))
  assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
  _, grad0 = step(x, jnp.float32(0.0))
  np.testing.assert_array_equal(grad0, w)  # p = 0: the identity, whose gradient is w
  jitted = ADA_R3GAN if name == "ada" else jax.jit(fn)
  np.testing.assert_array_equal(jitted(x, KEY, jnp.float32(0.0)), x)
  assert np.all(np.any(np.asarray(jitted(x, KEY, jnp.float32(1.0))) != x, axis=(1, 2, 3)))


def test_bad_input():
  with pytest.raises(ValueError, match=r"needs images \[n, H, W, C\].*\(6, 6, 3\)"):
    augment.diffaugment(jnp.zeros((6, 6, 3)), KEY)
  with pytest.raises(ValueError, match=r"\[n, H, W, C\].*\(2, 6, 6, 2\)"):
    augment.ada(jnp.zeros((2, 6, 6, 2)), KEY, 0.5)
  with pytest.raises(ValueError, match="floating-point"):
    augment.flip_translate(jnp.zeros((2, 6, 6, 3), jnp.uint8), KEY)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    augment.ada(jnp.zeros((2, 6, 6, 3)), KEY, 1.5)
  with pytest.raises(ValueError, match="valid: \\['ada', 'diffaugment', 'flip_translate'\\]"):
    augment.get("augmix")
  with pytest.raises(ValueError, match="valid entries.*color"):
    augment.get("diffaugment", "color,rotate")
  with pytest.raises(ValueError, match="Unknown ADA transform 'blur'.*bgc.*xflip"):
    augment.get("ada", "xflip,blur")
  with pytest.raises(ValueError, match="appears twice"):
    augment.get("ada", "xflip,xflip:0.5")
  with pytest.raises(ValueError, match=">= 0"):
    augment.get("ada", "xflip:-1")
  with pytest.raises(ValueError, match="no policy"):
    augment.get("flip_translate", "bgc")


def test_registry_carries_each_augmentations_facts():
  assert dict(augment.DEFAULT_POLICIES) == {
    "ada": "bgc",
    "diffaugment": "color,translation,cutout",
    "flip_translate": None,
  }
  assert augment.AUGMENTATIONS["ada"] is augment.ada
  # A new augmentation: one definition and its registration; `get` and `check` find it.
  from jaxgan.augment import _registry

  @augment.register("negate_test")  # no policy
  def negate(images, key, p):
    return -images

  try:
    assert augment.AUGMENTATIONS["negate_test"] is negate
    assert float(augment.get("negate_test")(jnp.ones((1, 2, 2, 1)), KEY, 1.0)[0, 0, 0, 0]) == -1
    with pytest.raises(ValueError, match="negate_test takes no policy"):
      augment.check("negate_test", "all")
    with pytest.raises(ValueError, match="registered already"):
      augment.register("negate_test")(negate)
  finally:
    del _registry.REGISTRY["negate_test"]


@pytest.mark.parametrize(
  "fields, message",
  [
    (dict(name="mixup"), r"config\.augment: Unknown augmentation 'mixup'; valid: \['ada'"),
    (dict(name="diffaugment", policy="color,rotate"), r"config\.augment: .*valid entries"),
    (dict(name="flip_translate", policy="bgc"), r"config\.augment: flip_translate takes no"),
    (dict(name="diffaugment", p=1.5), r"config\.augment\.p=1\.5: .*\[0, 1\]; got 1\.5"),
    (dict(name="diffaugment", p="linear(0, 2, 10)"), r"config\.augment\.p=.*\[0, 1\]; got 2"),
  ],
)
def test_config_validate_calls_the_augmentation_rules(fields, message):
  """config.validate refuses what `augment.check` refuses, naming the config's field."""
  from jaxgan import config as config_lib

  config = config_lib.default_config()
  config.augment.update(fields)
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(config)
