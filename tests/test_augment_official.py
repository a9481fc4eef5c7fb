"""jaxgan.augment against the official DiffAugment and StyleGAN2-ADA ops, fed the same draws.

`tests/reference/augment_official.npz` holds inputs, every random draw the official ops made
(`torch.rand`, `torch.randn`, `torch.randint`) and their outputs, from mit-han-lab/
data-efficient-gans' `DiffAugment_pytorch.py` and NVlabs/stylegan2-ada-pytorch's
`training/augment.py` (`AugmentPipe`); `benchmarks/make_augment_references.py` writes it (its
docstring lists the contents). Here the draws go through jaxgan's own mapping to parameters
(`diffaugment_lib.params_from_uniform`, `ada_lib.params_from_draws`: ranges, rounding and ADA's
gates at p * multiplier) and jaxgan's ops, and the outputs are compared. Tolerances, measured
maxima in brackets:

- DiffAugment, every op and the policy: 1e-6 [3.6e-7], the same arithmetic; saturation and
  contrast round their means differently in float32. Translation: the official draw t reads
  `in[y + t]`, jaxgan's `translate` takes the shift -t.
- ADA colour, noise, cutout: 1e-6 [5.1e-7], the same 4x4 matrices and masks.
- ADA geometric (every policy with scale, rotate, aniso or xfrac): 1e-5 + 1e-5 |value| [3.9e-6
  alone and in bgc, 7.2e-6 with R3GAN's policy, whose colour transforms after the warp scale its
  rounding]. `filtered_warp` is ADA's execution (reflect padding by ADA's margin, 2x sym6 up,
  bilinear, 2x down), but it computes the sampling coordinates in pixels rather than through
  `affine_grid`'s normalised ones, which round differently; and examples with no transform
  selected are returned unchanged, where ADA filters them (the identity to 1.9e-6 at p = 0).
- ADA blit alone: jaxgan runs a policy of blits alone as exact pixel permutations
  (`transforms.warp`), ADA through its filtered warp. For xint (even shifts on the 2x grid) that
  is the same to 1e-5 [2.8e-6]; ADA's flips and quarter turns pass the mirrored axis through
  sym6 convolved with its mirror image (sym6 is not symmetric: centre tap 0.965), which jaxgan
  does not: [0.23 xflip, 0.41 rotate90, 0.29 blit] on these uniform-noise images (0.05 for a
  flip of the smooth 'grey' batch), checked to lie in (0.01, 0.6]. The same parameters through
  `filtered_warp` match ADA to 1e-5 [3.2e-6]: the blit cases check that too.

To compile a few programs rather than one per case, the ADA cases of one batch run as one
`jax.vmap(ada_lib.apply)`, each case's absent transforms given their identity parameters (exact:
identity matrices compose exactly, a noise sigma and a cutout side of 0 change nothing).
"""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import augment
from jaxgan.augment import ada_lib
from jaxgan.augment import diffaugment_lib as da

REF_PATH = Path(__file__).parent / "reference" / "augment_official.npz"
REF = dict(np.load(REF_PATH))
IMAGES = {k.split("/")[1]: v for k, v in REF.items() if k.startswith("images/")}
KEY = jax.random.key(0)
REGENERATE = "stale reference: python benchmarks/make_augment_references.py"

DA_ATOL = 1e-6
COLOUR_ATOL = 1e-6  # ADA's colour, noise and cutout
GEOMETRIC_ATOL = 1e-5  # ADA's filtered warp; xint alone
GEOMETRIC_RTOL = 1e-5  # colour transforms after the warp scale its rounding
BLIT_FLIP_BOUND = 0.6  # jaxgan's exact flips and quarter turns against ADA's filtered ones


def _cases(prefix: str) -> list[tuple[str, str]]:
  return sorted(
    {tuple(k.split("/")[1:3]) for k in REF if k.startswith(prefix) and k.count("/") >= 3}
  )


DA_CASES = _cases("da/")
ADA_CASES = _cases("ada/")


def test_reference_is_complete():
  assert len(DA_CASES) == 12 and len(ADA_CASES) == 23, REGENERATE
  assert {s for s, _ in ADA_CASES} == set(IMAGES) == {s for s, _ in DA_CASES} == {"rgb", "grey"}
  assert REF_PATH.stat().st_size < 400_000


# --- DiffAugment ---


def _da_params(set_name: str, case: str) -> tuple[tuple[str, ...], list]:
  """The official draws of a case as jaxgan's parameters, through jaxgan's mapping."""
  _, h, w, _ = IMAGES[set_name].shape
  ops = (case.removeprefix("rand_"),) if case.startswith("rand_") else da.parse_policy(case)
  params = []
  for op in ops:
    d = REF[f"da/{set_name}/{case}/{op}"]
    if op == "translation":
      params.append(-d)  # the official op reads in[y + t]: a shift of -t
    elif op == "cutout":
      params.append(d)  # the offsets are the centres
    else:  # torch.rand's U[0, 1) through jaxgan's map to the op's range
      params.append(da.params_from_uniform(op, np.stack([d, 0 * d], axis=1), h, w))
  return ops, params


@functools.cache
def _da_outputs() -> dict:
  """{(set, case): (op by op with da.apply, the same by da.apply_policy or None)}."""
  ops = {sc: _da_params(*sc)[0] for sc in DA_CASES}

  def run(images, values):
    out = {}
    for (s, c), params in values.items():
      x = images[s]
      for op, v in zip(ops[(s, c)], params, strict=True):
        x = da.apply(op, x, v)
      policy = None if c.startswith("rand_") else da.apply_policy(images[s], params, c)
      out[(s, c)] = (x, policy)
    return out

  return jax.jit(run)(IMAGES, {sc: _da_params(*sc)[1] for sc in DA_CASES})


@pytest.mark.parametrize("set_name, case", DA_CASES)
def test_diffaugment_matches_official(set_name, case):
  got, policy = _da_outputs()[(set_name, case)]
  want = REF[f"da/{set_name}/{case}/out"]
  np.testing.assert_allclose(got, want, rtol=0, atol=DA_ATOL, err_msg=f"{set_name} {case}")
  if policy is not None:  # apply_policy runs the policy's ops in the same order
    np.testing.assert_allclose(policy, want, rtol=0, atol=DA_ATOL, err_msg=f"{set_name} {case}")


def test_diffaugment_ranges_and_probability():
  # The integer ranges: jaxgan's lowest and highest draws are the official ones (512 draws each).
  u = np.array([[0.0, 0.0], [np.nextafter(1, 0, dtype=np.float32)] * 2], np.float32)
  for set_name, x in IMAGES.items():
    _, h, w, _ = x.shape
    ranges = REF[f"da/{set_name}/ranges"]  # translation H, W; cutout H, W: [min, max]
    shift = np.asarray(da.params_from_uniform("translation", u, h, w))
    centre = np.asarray(da.params_from_uniform("cutout", u, h, w))
    np.testing.assert_array_equal(-shift[::-1].T, ranges[:2], err_msg=set_name)
    np.testing.assert_array_equal(centre.T, ranges[2:], err_msg=set_name)
  # p = 1, the paper: every op on every example, as the official code (which has no p).
  x = IMAGES["rgb"]
  key = jax.random.key(7)

  def both(x, key):
    params, gate = da.sample_policy(key, *x.shape[:3])
    return augment.diffaugment(x, key, 1.0), da.apply_policy(x, params), gate

  got, want, gate = jax.jit(both)(x, key)
  np.testing.assert_allclose(got, want, rtol=0, atol=DA_ATOL)
  assert np.all(np.asarray(gate) < 1.0)


# --- ADA ---


def _identity(n: int, shape) -> dict:
  zero, one, zero2 = np.zeros(n, np.float32), np.ones(n, np.float32), np.zeros((n, 2), np.float32)
  return {
    **dict.fromkeys(["xflip", "rotate90", "brightness", "lumaflip", "hue", "noise"], zero),
    **dict.fromkeys(["scale", "aniso", "contrast", "saturation"], one),
    **dict.fromkeys(["xint", "rotate", "xfrac", "cutout_centre"], zero2),
    "cutout": zero,
    "noise_field": np.zeros(shape, np.float32),
  }


def _case(set_name: str, case: str):
  prefix = f"ada/{set_name}/{case}"
  draws = {k.split("/")[-1]: v for k, v in REF.items() if k.startswith(prefix + "/draw/")}
  mults = ada_lib.parse_policy(str(REF[prefix + "/policy"]))
  return draws, REF[prefix + "/p"], mults


def _geometric(mults) -> bool:
  return any(t in mults for t in ada_lib.GEOMETRIC)


def _blit(mults) -> bool:
  return any(t in mults for t in ada_lib.BLIT)


@functools.cache
def _ada_outputs() -> dict:
  """{(set, case, 'filtered' or 'exact'): (jaxgan's output, its parameters)} for every case.

  'filtered': ada_lib.apply with ADA's filtered warp: the cases with a geometric transform, and
  the blit cases with the geometric transforms at identity. 'exact': ada_lib.apply as `ada` runs
  the cases without a geometric transform.
  """
  mults = {sc: _case(*sc)[2] for sc in ADA_CASES}
  groups = {}
  for s, c in ADA_CASES:
    if _geometric(mults[(s, c)]) or _blit(mults[(s, c)]):
      groups.setdefault((s, "filtered"), []).append(c)
    if not _geometric(mults[(s, c)]):
      groups.setdefault((s, "exact"), []).append(c)

  def run(images, inputs):
    out = {}
    for (s, path), cases in groups.items():
      x = images[s]
      n, h, w, _ = x.shape
      every = []
      for c in cases:
        draws, p = inputs[(s, c)]
        params = ada_lib.params_from_draws(draws, p, mults[(s, c)], h, w)
        full = {**_identity(n, x.shape), **params}
        if path == "exact":
          full = {k: v for k, v in full.items() if k not in ada_lib.GEOMETRIC}
        every.append(full)
      stacked = jax.tree.map(lambda *a: jnp.stack(a), *every)
      y = jax.vmap(ada_lib.apply, in_axes=(None, 0))(x, stacked)
      for i, c in enumerate(cases):
        out[(s, c, path)] = (y[i], jax.tree.map(lambda a, i=i: a[i], stacked))
    return out

  inputs = {sc: _case(*sc)[:2] for sc in ADA_CASES}
  return jax.jit(run)(IMAGES, inputs)


@pytest.mark.full
@pytest.mark.parametrize("set_name, case", ADA_CASES)
def test_ada_matches_official(set_name, case):
  want = REF[f"ada/{set_name}/{case}/out"]
  mults = _case(set_name, case)[2]
  outputs = _ada_outputs()
  msg = f"{set_name} {case}"
  if _geometric(mults):
    got, _ = outputs[(set_name, case, "filtered")]
    np.testing.assert_allclose(got, want, GEOMETRIC_RTOL, GEOMETRIC_ATOL, err_msg=msg)
    return
  got, _ = outputs[(set_name, case, "exact")]
  if {"xflip", "rotate90"} & set(mults):  # exact flips and quarter turns, where ADA filters
    assert 0.01 < np.abs(got - want).max() <= BLIT_FLIP_BOUND, msg
  else:  # colour, noise, cutout: as ADA; xint: ADA's filter returns even shifts to rounding
    atol = GEOMETRIC_ATOL if _blit(mults) else COLOUR_ATOL
    np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=msg)
  if _blit(mults):  # the same parameters through ADA's filtered warp: as ADA
    filtered, _ = outputs[(set_name, case, "filtered")]
    np.testing.assert_allclose(filtered, want, GEOMETRIC_RTOL, GEOMETRIC_ATOL, err_msg=msg)


# What each transform's parameter is where it is not applied.
IDENTITY_VALUE = {"scale": 1.0, "aniso": 1.0, "contrast": 1.0, "saturation": 1.0}


@pytest.mark.full
def test_ada_gates_match_official():
  # Each transform alone (p = 0.6): the examples the official pipe changed are those
  # where jaxgan's gate, drawn at p * multiplier (rotate: p_rot, twice), selected a value other
  # than the identity; and some examples are changed, some are not.
  outputs = _ada_outputs()
  x = IMAGES["rgb"]
  alone = [(s, c) for s, c in ADA_CASES if len(_case(s, c)[2]) == 1]
  assert len(alone) == 14
  for s, case in alone:
    path = "filtered" if _geometric(_case(s, case)[2]) else "exact"
    _, params = outputs[(s, case, path)]
    value = np.asarray(params[case])
    on = np.any((value != IDENTITY_VALUE.get(case, 0.0)).reshape(len(x), -1), axis=1)
    changed = np.any(np.abs(REF[f"ada/{s}/{case}/out"] - x) > 1e-4, axis=(1, 2, 3))
    np.testing.assert_array_equal(on, changed, err_msg=case)
    assert 0 < on.sum() < len(x), (case, on)


@pytest.mark.full
def test_ada_p0_is_the_identity():
  # ADA at p = 0 still runs its filtered warp (the identity to rounding); jaxgan returns the
  # images exactly.
  x = IMAGES["rgb"]
  assert _case("rgb", "bgc_p0")[1] == 0.0
  got, _ = _ada_outputs()[("rgb", "bgc_p0", "filtered")]
  np.testing.assert_array_equal(got, x)
  np.testing.assert_allclose(REF["ada/rgb/bgc_p0/out"], x, rtol=0, atol=GEOMETRIC_ATOL)


def test_ada_draw_layout_matches_official():
  # jaxgan's `draw` makes the draws the official code makes: the same names and shapes.
  for s, case in ADA_CASES:
    official, _, mults = _case(s, case)
    ours = jax.eval_shape(lambda key, m=mults, s=s: ada_lib.draw(key, IMAGES[s].shape, m), KEY)
    assert set(ours) == set(official), (s, case)
    for name, v in official.items():
      assert ours[name].shape == v.shape, (s, case, name)
