"""Writes the official DiffAugment and StyleGAN2-ADA augmentations' outputs for recorded draws.

    python benchmarks/make_augment_references.py   # writes tests/reference/augment_official.npz
    python benchmarks/make_augment_references.py --official /tmp/jaxgan-official-augment

Needs torch (CPU is enough: StyleGAN2-ADA's custom ops fall back to their reference code) and
SciPy, not JAX nor jaxgan. The official code is imported from `--official`, never copied into
this repository; where that folder lacks it, it is extracted there from the local mirrors
(`--mirrors`, folders `<owner>+<name>/repo`, bare git):

- mit-han-lab/data-efficient-gans `DiffAugment_pytorch.py` -> `<official>/data-efficient-gans/`;
- NVlabs/stylegan2-ada-pytorch `training/`, `torch_utils/`, `dnnlib/` ->
  `<official>/stylegan2-ada-pytorch/` (`training/augment.py`'s `AugmentPipe`).

"The same random draws": every `torch.rand`, `torch.randn` and `torch.randint` call the official
ops make is recorded (the functions are wrapped, results unchanged) and stored with the inputs and
the official outputs; `tests/test_augment_official.py` feeds those draws to jaxgan's ops (through
`diffaugment_lib.params_from_uniform` and `ada_lib.params_from_draws`, so the mapping of draws to
parameters and ADA's gating are tested too) and compares. Stored, NHWC float32 unless said:

- `images/<set>`: `rgb` (6, 10, 12, 3), uniform noise in [-1, 1] (the hardest case for a
  resampler; DiffAugment cutout sides 5 and 6); `grey` (3, 18, 14, 1), smoothed noise (sides 9
  and 7). Both rectangular, so that height and width cannot be swapped unnoticed.
- `da/<set>/<case>/<op>`: the draws of one DiffAugment op: `torch.rand` `[n]` for brightness,
  saturation and contrast; `torch.randint` `[n, 2]` int32 (the H then the W draw) for translation
  (t: the official op reads `in[y + t]`) and cutout (the offsets); `da/<set>/<case>/out`: the
  output. Cases: each op alone ('rand_<op>') and the paper's policy 'color,translation,cutout'.
- `da/<set>/ranges` int32 `[4, 2]`: the smallest and largest translation (H, W) and cutout offset
  (H, W) the official ops drew in 512 draws (their integer ranges).
- `ada/<set>/<case>/draw/<name>`: `AugmentPipe`'s draws, named and laid out as
  `jaxgan.augment.ada_lib.draw` names them; `.../out`: the output; `.../p` and `.../policy`: the
  probability and the transforms with their multipliers ('xflip:1.0,...'). Cases (`ADA_CASES`):
  each transform alone, and groups (blit, geom, bg, color, bgc, bgc at p = 0, R3GAN's
  multipliers) on 'rgb'; 'geom' and 'bgc' on 'grey'. Each case draws after
  `torch.manual_seed(its index)`.
- `meta/commits`: the mirrors' commits (when extracted here); `meta/torch`: torch's version.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "reference" / "augment_official.npz"
DIFFAUGMENT_REPO, DIFFAUGMENT_FILE = "mit-han-lab/data-efficient-gans", "DiffAugment_pytorch.py"
ADA_REPO, ADA_PATHS = "NVlabs/stylegan2-ada-pytorch", ("training", "torch_utils", "dnnlib")

SETS = ("rgb", "grey")
DIFFAUGMENT_OPS = ("brightness", "saturation", "contrast", "translation", "cutout")
DIFFAUGMENT_POLICY = "color,translation,cutout"

BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
COLOUR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
# (case, AugmentPipe's keyword arguments, p, image sets): each transform alone and the groups on
# 'rgb', the geometric policies on 'grey'. p < 1, so that some examples are gated off.
ALONE = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", *COLOUR)
ADA_CASES = [
  *[(name, {name: 1}, 0.6, ("rgb",)) for name in ALONE],
  ("noise", {"noise": 1}, 0.6, ("rgb",)),
  ("cutout", {"cutout": 1}, 0.6, ("rgb",)),
  ("blit", BLIT, 0.8, ("rgb",)),
  ("geom", GEOM, 0.8, SETS),
  ("bg", {**BLIT, **GEOM}, 0.8, ("rgb",)),
  ("color", COLOUR, 0.8, ("rgb",)),
  ("bgc", {**BLIT, **GEOM, **COLOUR}, 0.6, SETS),
  ("bgc_p0", {**BLIT, **GEOM, **COLOUR}, 0.0, ("rgb",)),
  # R3GAN's policy: multipliers other than 1.
  ("r3gan", {**BLIT, **GEOM, **dict.fromkeys(COLOUR, 0.5), "cutout": 1}, 0.9, ("rgb",)),
]


def images() -> dict[str, np.ndarray]:
  """The fixed input batches, NHWC float32 in [-1, 1]."""
  rng = np.random.default_rng(20200610)
  rgb = rng.uniform(-1, 1, (6, 10, 12, 3))
  grey = rng.uniform(-1, 1, (3, 18, 14, 1))
  for axis in (1, 2):  # smooth a little: a [1, 2, 1] blur, twice, with wrap-around
    for _ in range(2):
      grey = (np.roll(grey, 1, axis) + 2 * grey + np.roll(grey, -1, axis)) / 4
  grey = grey / np.abs(grey).max()
  return {"rgb": rgb.astype(np.float32), "grey": grey.astype(np.float32)}


def _git(mirror: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
  return subprocess.run(["git", "-C", str(mirror), *args], check=True, **kwargs)


def ensure_official(official: Path, mirrors: Path) -> dict[str, str]:
  """Extracts the official files into `official` where missing; returns {repo: commit}."""
  commits = {}
  for repo, folder, check in [
    (DIFFAUGMENT_REPO, "data-efficient-gans", DIFFAUGMENT_FILE),
    (ADA_REPO, "stylegan2-ada-pytorch", "training/augment.py"),
  ]:
    dest = official / folder
    stamp = dest / "COMMIT"
    if not (dest / check).exists():
      mirror = mirrors / repo.replace("/", "+") / "repo"
      if not mirror.exists():
        raise SystemExit(f"{dest / check} is missing and there is no mirror at {mirror}.")
      dest.mkdir(parents=True, exist_ok=True)
      if repo == DIFFAUGMENT_REPO:
        text = _git(mirror, "show", f"HEAD:{DIFFAUGMENT_FILE}", capture_output=True).stdout
        (dest / DIFFAUGMENT_FILE).write_bytes(text)
      else:
        archive = _git(mirror, "archive", "HEAD", *ADA_PATHS, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
      commit = _git(mirror, "rev-parse", "HEAD", capture_output=True, text=True).stdout.strip()
      stamp.write_text(commit + "\n")
    commits[repo] = stamp.read_text().strip() if stamp.exists() else "unknown"
  return commits


class Recorder:
  """Wraps torch.rand, torch.randn and torch.randint, keeping (function, result) per call."""

  NAMES = ("rand", "randn", "randint")

  def __init__(self, torch):
    self.torch, self.calls = torch, []

  def __enter__(self):
    self.originals = {name: getattr(self.torch, name) for name in self.NAMES}
    for name, fn in self.originals.items():
      setattr(self.torch, name, self._wrap(name, fn))
    return self

  def _wrap(self, name, fn):
    def wrapped(*args, **kwargs):
      out = fn(*args, **kwargs)
      self.calls.append((name, out.detach().clone().numpy()))
      return out

    return wrapped

  def __exit__(self, *exc):
    for name, fn in self.originals.items():
      setattr(self.torch, name, fn)


def ada_draw_order(kwargs: dict, channels: int) -> list[tuple[str, str]]:
  """(name, torch function) of each draw `AugmentPipe.forward` makes, in its order."""
  order = []
  for name in ("xflip", "rotate90", "xint"):
    if kwargs.get(name, 0) > 0:
      order += [(name, "rand"), (name + "_gate", "rand")]
  if kwargs.get("scale", 0) > 0:
    order += [("scale", "randn"), ("scale_gate", "rand")]
  if kwargs.get("rotate", 0) > 0:
    order += [("rotate_pre", "rand"), ("rotate_pre_gate", "rand")]
  if kwargs.get("aniso", 0) > 0:
    order += [("aniso", "randn"), ("aniso_gate", "rand")]
  if kwargs.get("rotate", 0) > 0:
    order += [("rotate_post", "rand"), ("rotate_post_gate", "rand")]
  if kwargs.get("xfrac", 0) > 0:
    order += [("xfrac", "randn"), ("xfrac_gate", "rand")]
  for name, fn in [("brightness", "randn"), ("contrast", "randn"), ("lumaflip", "rand")]:
    if kwargs.get(name, 0) > 0:
      order += [(name, fn), (name + "_gate", "rand")]
  for name, fn in [("hue", "rand"), ("saturation", "randn")]:
    if kwargs.get(name, 0) > 0 and channels > 1:
      order += [(name, fn), (name + "_gate", "rand")]
  if kwargs.get("noise", 0) > 0:
    order += [("noise", "randn"), ("noise_gate", "rand"), ("noise_field", "randn")]
  if kwargs.get("cutout", 0) > 0:
    order += [("cutout_gate", "rand"), ("cutout_centre", "rand")]
  return order


def ada_draws(calls: list, kwargs: dict, channels: int) -> dict[str, np.ndarray]:
  """The recorded calls, named and laid out as `jaxgan.augment.ada_lib.draw`'s dict."""
  order = ada_draw_order(kwargs, channels)
  got = [fn for fn, _ in calls]
  if got != [fn for _, fn in order]:
    raise RuntimeError(f"AugmentPipe drew {got}; expected {order}: has the official code changed?")
  raw = {name: value for (name, _), (_, value) in zip(order, calls, strict=True)}
  out = {}
  for name, value in raw.items():
    n = value.shape[0]
    if name == "noise_field":
      out[name] = value.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    elif name in ("xint", "xfrac", "cutout_centre"):
      out[name] = value.reshape(n, 2)  # (x, y)
    elif not name.startswith("rotate_"):
      out[name] = value.reshape(n)
  if "rotate_pre" in raw:
    for suffix in ("", "_gate"):
      pair = [raw[f"rotate_{when}{suffix}"].reshape(-1) for when in ("pre", "post")]
      out["rotate" + suffix] = np.stack(pair, axis=1)
  return {k: v.astype(np.float32) for k, v in out.items()}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--official",
    type=Path,
    default=Path("/tmp/jaxgan-official-augment"),
    help="a folder holding the official DiffAugment_pytorch.py and StyleGAN2-ADA's training/ and "
    "torch_utils/ (extracted from --mirrors when missing)",
  )
  parser.add_argument(
    "--mirrors",
    type=Path,
    default=Path("/work/.mirror"),
    help="a folder of git copies named mit-han-lab+data-efficient-gans/repo and "
    "NVlabs+stylegan2-ada-pytorch/repo",
  )
  parser.add_argument("--out", type=Path, default=OUT, help="the reference file to write")
  args = parser.parse_args()
  commits = ensure_official(args.official, args.mirrors)
  sys.path[:0] = [
    str(args.official / "data-efficient-gans"),
    str(args.official / "stylegan2-ada-pytorch"),
  ]
  warnings.filterwarnings("ignore", "torch.meshgrid")  # in DiffAugment_pytorch.py
  # Imported here: torch is needed by this script only, the official modules from --official.
  import DiffAugment_pytorch as official_da
  import torch
  from training import augment as official_ada

  torch.manual_seed(0)
  data = images()
  out: dict[str, np.ndarray] = {f"images/{k}": v for k, v in data.items()}

  def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

  def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)

  # DiffAugment: each op alone, and the paper's policy.
  for set_name, x in data.items():
    cases = [(f"rand_{op}", (op,)) for op in DIFFAUGMENT_OPS]
    cases.append((DIFFAUGMENT_POLICY, DIFFAUGMENT_OPS))
    for case, ops in cases:
      with Recorder(torch) as rec:
        if case == DIFFAUGMENT_POLICY:
          y = official_da.DiffAugment(nchw(x), policy=case)
        else:
          y = getattr(official_da, case)(nchw(x))
      calls = list(rec.calls)
      for op in ops:
        if op in ("translation", "cutout"):
          (f0, v0), (f1, v1) = calls.pop(0), calls.pop(0)
          assert f0 == f1 == "randint", (case, op, f0, f1)
          draw = np.concatenate([v0.reshape(-1, 1), v1.reshape(-1, 1)], axis=1).astype(np.int32)
        else:
          fn, v = calls.pop(0)
          assert fn == "rand", (case, op, fn)
          draw = v.reshape(-1).astype(np.float32)
        out[f"da/{set_name}/{case}/{op}"] = draw
      assert not calls, (case, calls)
      out[f"da/{set_name}/{case}/out"] = nhwc(y)
    # The integer ranges: 512 draws on a batch of this size.
    many = nchw(np.zeros((512,) + x.shape[1:3] + (1,), np.float32))
    ranges = []
    for op in ("translation", "cutout"):
      with Recorder(torch) as rec:
        getattr(official_da, f"rand_{op}")(many)
      ranges += [[int(v.min()), int(v.max())] for _, v in rec.calls]
    out[f"da/{set_name}/ranges"] = np.array(ranges, np.int32)

  # ADA: AugmentPipe with recorded draws.
  for seed, (case, kwargs, p, sets) in enumerate(ADA_CASES):
    torch.manual_seed(seed)
    pipe = official_ada.AugmentPipe(**kwargs)
    pipe.p.copy_(torch.as_tensor(p))
    policy = ",".join(f"{k}:{float(v)}" for k, v in kwargs.items())
    for set_name in sets:
      x = data[set_name]
      with Recorder(torch) as rec:
        y = pipe(nchw(x))
      prefix = f"ada/{set_name}/{case}"
      for name, value in ada_draws(rec.calls, kwargs, x.shape[-1]).items():
        out[f"{prefix}/draw/{name}"] = value
      out[f"{prefix}/out"] = nhwc(y)
      out[f"{prefix}/p"] = np.float32(p)
      out[f"{prefix}/policy"] = np.array(policy)

  out["meta/commits"] = np.array([f"{repo}@{commit}" for repo, commit in commits.items()])
  out["meta/torch"] = np.array(torch.__version__)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(args.out, **out)
  size = args.out.stat().st_size
  print(f"wrote {args.out} ({len(out)} arrays, {size / 1024:.0f} KiB); official code: {commits}")


if __name__ == "__main__":
  main()
