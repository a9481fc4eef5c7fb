"""Writes PyTorch's values of the reference's losses, penalties and models, for tests without torch.

    pip install torch==2.13.0   # in an environment of its own; jaxgan's stays torch-free
    python benchmarks/make_torch_references.py          # writes tests/reference/torch_reference.json

`benchmarks/torch_reference.py` is the PyTorch side of the benchmarks: the same models, losses and
penalties as jaxgan, written independently. This script evaluates it on fixed inputs and stores
the results; `tests/test_benchmarks.py` checks jaxgan against the stored values in every test run
(CI never installs torch), and, where torch is importable, checks that this script still writes
them. Rerun it when a workload, a loss or the reference changes: the test names what differs.

Stored, all float32 unless said:

- `losses`: each loss's D and G value on two sets of scores (moderate, and large enough that a
  naive log(sigmoid) would overflow), the scores themselves, and which G losses read real scores.
- `penalties`: R1 and R2, and WGAN-GP and WGAN-LP at real == fake (where their random
  interpolation is the identity), of a small tanh critic whose weights are stored; and under
  `approx`, the approximate R1 and R2 (`approx_r1`, `approx_r2`) of the same critic at
  sigma = `workloads.APPROX_SIGMA` on fixed noise (stored: `uniform`, since only the formula is
  checked), which jaxgan's draws cannot reproduce.
- `recipes`: the reference's weighted penalties of one critic update (`penalty_loss`) on the
  same tanh critic: W5's R1 + R2 (R3GAN) and W6's lazy R1 at several update indices (the
  weight times 16 on every 16th update, nothing on the others).
- `ada`: the reference's ADA ops (`AugmentPipe`'s matrix builders, `warp` by `F.grid_sample` and
  `apply_colour`) on fixed parameters and images: the 3x3 geometric and 4x4 colour matrices and
  the transformed images, for RGB and for one channel.
- `workloads`: for every workload of `workloads.WORKLOADS` (W1-W8u) and its tiny variant, the config, the sorted sizes of G's and D's
  parameter tensors (a layout-free fingerprint of the architecture) and the output shapes
  (conditional workloads called on the labels 0, 1).
- `forward`: G and D outputs of tiny workloads on weights and inputs drawn by `uniform` below
  (seeded NumPy, stable across NumPy versions), listed by PyTorch's parameter names and shapes;
  conditional ones (W8's G with its shared class embedding and with per-layer embeddings, the
  embeddings and the gains' and biases' weights drawn like every other weight; W8's projection
  term) also on the labels `FORWARD_LABELS`. Keyed by `forward_key`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import workloads as wl  # noqa: E402

DEFAULT_OUT = ROOT / 'tests' / 'reference' / 'torch_reference.json'
# The workloads whose G and D outputs are stored, with config overrides: an MLP, the DCGAN critic
# with LayerNorm (the one WGAN-GP's gradient goes through), the DCGAN generator with BatchNorm,
# and W8's conditional G (BigGAN's shared class embedding, as W8, and per-layer embeddings) and
# projection D. W8's critic without its spectral norm: each framework's power iteration starts
# from its own random vector, so one iteration's sigma differs; the projection term is what is
# checked.
FORWARD = (
  ('W1', 'G', {}),
  ('W1', 'D', {}),
  ('W2', 'G', {}),
  ('W3', 'D', {}),
  ('W8', 'G', {'model.shared_embedding': 0}),
  ('W8', 'D', {'model.d_norm': 'none'}),
  ('W8', 'G', {}),
)
FORWARD_BATCH = 3
FORWARD_LABELS = (7, 0, 3)  # a conditional forward check's classes, one per example


def forward_workload(name: str, overrides: dict[str, Any]) -> wl.Workload:
  """The tiny workload of a `FORWARD` entry, with its config overrides."""
  w = wl.get(name).tiny()
  return w.replace(overrides) if overrides else w


def forward_key(name: str, side: str, overrides: dict[str, Any]) -> str:
  """A `FORWARD` entry's key in the stored `forward` section: the tiny workload's name, the
  side and the overrides, e.g. 'W8-tiny/D model.d_norm=none'.

  >>> forward_key('W8-tiny', 'G', {'model.shared_embedding': 0})
  'W8-tiny/G model.shared_embedding=0'
  """
  return ' '.join([f'{name}/{side}', *(f'{k}={v}' for k, v in overrides.items())])


def uniform(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
  """float32 draws in [-scale, scale) from `np.random.default_rng(seed)`.

  Uniform draws come straight from the generator's bit stream, so they stay the same across NumPy
  versions (its normal draws may not).

  Args:
    seed: the generator's seed.
    shape: the array's shape.
    scale: half the interval's width.

  Returns:
    A float32 array of `shape`.
  """
  return np.random.default_rng(seed).uniform(-scale, scale, shape).astype(np.float32)


def forward_weights(shapes: dict[str, list[int]], seed: int) -> dict[str, np.ndarray]:
  """Weights for a model's forward check, in PyTorch's names and layouts.

  Args:
    shapes: PyTorch parameter name -> shape, in `named_parameters()` order.
    seed: the first parameter's seed; the i-th uses `seed + i`.

  Returns:
    Name -> float32 array: normalisation scales near 1 (`1 + uniform(0.2)`), every other tensor
    `uniform(0.3)`, so activations neither vanish nor saturate over a few layers.
  """
  out = {}
  for i, (name, shape) in enumerate(shapes.items()):
    w = uniform(seed + i, tuple(shape), 0.3 if len(shape) > 1 or 'bias' in name else 0.2)
    out[name] = w if len(shape) > 1 or 'bias' in name else 1.0 + w
  return out


def fingerprint(w: wl.Workload) -> dict[str, dict[str, Any]]:
  """The config sections that define `w`'s networks and update (data, model, loss, augment,
  optim).

  Args:
    w: a workload.

  Returns:
    Those sections as plain dicts, to be stored beside the values computed from them.
  """
  return {k: w.config[k].to_dict() for k in ('data', 'model', 'loss', 'augment', 'optim')}


def _as_list(a) -> list:
  return np.asarray(a, np.float32).tolist()


def _losses(tr) -> dict[str, Any]:
  import torch

  sets = {
    'moderate': (3 * uniform(0, (16,)), uniform(1, (16,))),
    'large': (40 * uniform(2, (16,)), 40 * uniform(3, (16,))),
  }
  out = {'g_needs_real': sorted(tr.G_NEEDS_REAL), 'scores': {}, 'values': {}}
  for set_name, (real, fake) in sets.items():
    out['scores'][set_name] = {'real': _as_list(real), 'fake': _as_list(fake)}
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    out['values'][set_name] = {
      name: {'d': float(d(r, f)), 'g': float(g(r, f))} for name, (d, g) in sorted(tr.LOSSES.items())
    }
  return out


def _critic(w1, w2):
  """The small tanh critic of the penalty checks, `[n, 6] -> [n]`."""
  import torch

  return lambda x: torch.tanh(x @ torch.from_numpy(w1)) @ torch.from_numpy(w2)


def _penalties(tr) -> dict[str, Any]:
  import torch

  w1, w2 = uniform(10, (6, 5)), uniform(11, (5,))
  real, fake = uniform(12, (4, 6), 2.0), uniform(13, (4, 6), 2.0)
  critic = _critic(w1, w2)
  r, f = torch.from_numpy(real), torch.from_numpy(fake)
  value = lambda name, a, b: float(tr.PENALTIES[name](critic, a, b).detach())
  return {
    'critic': {'w1': _as_list(w1), 'w2': _as_list(w2)},
    'real': _as_list(real),
    'fake': _as_list(fake),
    'values': {
      'r1': value('r1', r, f),
      'r2': value('r2', r, f),
      'wgan_gp_at_real': value('wgan_gp', r, r),
      'wgan_lp_at_real': value('wgan_lp', r, r),
    },
    'squared_grad_norms_at_real': _as_list(tr._squared_grad_norms(critic, r).detach()),
    'approx': _approx(tr, critic, real, fake),
  }


def _approx(tr, critic, real, fake) -> dict[str, Any]:
  """The approximate R1 and R2 of the tanh critic at `workloads.APPROX_SIGMA`, on fixed noise."""
  import torch

  noise_real, noise_fake = uniform(14, real.shape, 2.0), uniform(15, fake.shape, 2.0)
  value = lambda x, eps: float(
    tr.approx_squared_differences(critic, torch.from_numpy(x), noise=torch.from_numpy(eps))
  )
  return {
    'sigma': wl.APPROX_SIGMA,
    'noise_real': _as_list(noise_real),
    'noise_fake': _as_list(noise_fake),
    'approx_r1': value(real, noise_real),
    'approx_r2': value(fake, noise_fake),
  }


# The critic updates at which W6's lazy R1 is stored: due (0, 16, 32) and not due (1, 15).
LAZY_UPDATES = (0, 1, 15, 16, 32)


def _recipes(tr, penalties: dict[str, Any]) -> dict[str, Any]:
  import torch

  w1, w2 = (np.asarray(penalties['critic'][k], np.float32) for k in ('w1', 'w2'))
  critic = _critic(w1, w2)
  r = torch.tensor(penalties['real'])
  f = torch.tensor(penalties['fake'])
  w5, w6 = wl.get('W5'), wl.get('W6')

  def total(w, update):
    value = tr.penalty_loss(
      critic, r, f, tr.penalty_weights(w), w.config.loss.penalty_every, update
    )
    return 0.0 if value is None else float(value.detach())

  return {
    'r1_r2': {'weights': tr.penalty_weights(w5), 'total': total(w5, 0)},
    'lazy_r1': {
      'weights': tr.penalty_weights(w6),
      'every': w6.config.loss.penalty_every,
      'totals': {str(u): total(w6, u) for u in LAZY_UPDATES},
    },
  }


def _ada(tr) -> dict[str, Any]:
  import torch

  # Parameters that exercise every builder and the reflection far outside the image (a shift of
  # 20 pixels on a 6x7 image), on a non-square image so that x and y cannot be swapped unseen.
  params = {
    'flip': [1.0, -1.0, 1.0, -1.0],
    'quarter_turns': [0, 1, 2, 3],
    'theta': [0.3, -1.2, 2.5, 0.0],
    'aniso': [1.3, 0.7, 1.0, 2.0],
    'shift': [[0.4, -0.3], [5.5, 1.25], [-9.7, 3.0], [0.0, 20.0]],
    'brightness': [0.1, -0.2, 0.0, 0.3],
    'contrast': [1.2, 0.8, 1.0, 1.5],
    'lumaflip': [1.0, 0.0, 1.0, 0.0],
    'hue': [0.3, -2.0, 1.0, 0.0],
    'saturation': [1.5, 0.5, 1.0, 2.0],
  }
  t = {k: torch.tensor(v) for k, v in params.items()}
  g = (
    tr.scale2d(t['flip'], 1)
    @ tr.rotate90_2d(t['quarter_turns'])
    @ tr.rotate2d(t['theta'])
    @ tr.scale2d(1 / t['aniso'], t['aniso'])
    @ tr.translate2d(t['shift'][:, 0], t['shift'][:, 1])
  )
  b, s = t['brightness'], t['contrast']
  c = (
    tr.saturate3d(t['saturation'])
    @ tr.hue_rotate3d(t['hue'])
    @ tr.luma_flip3d(t['lumaflip'])
    @ tr.scale3d(s, s, s)
    @ tr.translate3d(b, b, b)
  )
  images = uniform(20, (4, 6, 7, 3))
  nchw = lambda a: torch.from_numpy(a.transpose(0, 3, 1, 2).copy())
  nhwc = lambda y: y.numpy().transpose(0, 2, 3, 1)
  return {
    'params': params,
    'images': _as_list(np.ravel(images)),
    'image_shape': list(images.shape),  # every array below is stored flat, C order
    'geometry': _as_list(np.ravel(g)),
    'colour': _as_list(np.ravel(c)),
    'warped': _as_list(np.ravel(nhwc(tr.warp(nchw(images), g)))),
    'filtered': _as_list(np.ravel(nhwc(tr.filtered_warp(nchw(images), g)))),
    'coloured_rgb': _as_list(np.ravel(nhwc(tr.apply_colour(nchw(images), c)))),
    'coloured_grey': _as_list(np.ravel(nhwc(tr.apply_colour(nchw(images[..., :1]), c)))),
  }


def _nhwc(shape) -> list[int]:
  shape = list(shape)
  return shape if len(shape) == 2 else [shape[0], shape[2], shape[3], shape[1]]


def _workloads(tr) -> dict[str, Any]:
  import torch

  out = {}
  for base in wl.WORKLOADS.values():
    for w in (base, base.tiny()):
      torch.manual_seed(0)
      g, d = tr.make_models(w)
      g.eval()
      d.eval()
      y = (torch.arange(2) % tr.num_classes(w),) if tr.num_classes(w) else ()
      with torch.no_grad():
        fake = g(torch.zeros(2, w.config.model.latent_dim), *y)
        scores = d(fake, *y)
      out[w.name] = {
        'image_shape': list(w.image_shape),
        'config': fingerprint(w),
        'g_param_sizes': sorted(p.numel() for p in g.parameters()),
        'd_param_sizes': sorted(p.numel() for p in d.parameters()),
        'g_output_shape': _nhwc(fake.shape),  # in jaxgan's layout
        'd_output_shape': list(scores.shape),
      }
  return out


def _forward(tr) -> dict[str, Any]:
  import torch

  out = {}
  for seed, (name, side, overrides) in enumerate(FORWARD):
    w = forward_workload(name, overrides)
    g, d = tr.make_models(w)
    module = g if side == 'G' else d
    module.train()  # BatchNorm normalises by the batch's statistics, as jaxgan's with train=True
    shapes = {n: list(p.shape) for n, p in module.named_parameters()}
    weights = forward_weights(shapes, 1000 * (seed + 1))
    module.load_state_dict({n: torch.from_numpy(a) for n, a in weights.items()}, strict=False)
    if side == 'G':
      inputs = uniform(seed, (FORWARD_BATCH, w.config.model.latent_dim))
    else:
      inputs = uniform(seed, (FORWARD_BATCH, *w.image_shape))
    x = torch.from_numpy(inputs if inputs.ndim == 2 else inputs.transpose(0, 3, 1, 2).copy())
    labels = (torch.tensor(FORWARD_LABELS),) if tr.num_classes(w) else ()
    with torch.no_grad():
      y = module(x, *labels).numpy()
    if y.ndim == 4:
      y = y.transpose(0, 2, 3, 1)
    out[forward_key(w.name, side, overrides)] = {
      'workload': name,
      'side': side,
      'overrides': overrides,
      'labels': list(FORWARD_LABELS) if labels else None,
      'weight_seed': 1000 * (seed + 1),
      'input_seed': seed,
      'param_shapes': shapes,
      'output_shape': list(y.shape),
      'output': _as_list(y.ravel()),
    }
  return out


def compute() -> dict[str, Any]:
  """Every stored value, computed by `benchmarks/torch_reference.py` (imports torch).

  Returns:
    A JSON-serialisable dict with the sections `losses`, `penalties`, `recipes`, `ada`,
    `workloads` and `forward` (see the module's docstring) and `torch_version`.
  """
  import torch

  from benchmarks import torch_reference as tr

  threads = torch.get_num_threads()
  torch.manual_seed(0)  # WGAN-GP's interpolation draws: the same file on every run
  torch.set_num_threads(1)  # one thread: the same sums in the same order on every machine
  try:
    penalties = _penalties(tr)
    return {
      'torch_version': torch.__version__.split('+')[0],
      'losses': _losses(tr),
      'penalties': penalties,
      'recipes': _recipes(tr, penalties),
      'ada': _ada(tr),
      'workloads': _workloads(tr),
      'forward': _forward(tr),
    }
  finally:
    torch.set_num_threads(threads)


def load(path: Path | str = DEFAULT_OUT) -> dict[str, Any]:
  """The stored reference values (the inverse of `main`'s write).

  Args:
    path: the JSON file.

  Returns:
    The dict `compute()` returned when the file was written.
  """
  return json.loads(Path(path).read_text())


def main(argv: list[str] | None = None) -> Path:
  """Computes the reference values and writes them as JSON.

  Args:
    argv: command-line arguments (`--out PATH`); None for `sys.argv[1:]`.

  Returns:
    The path written.
  """
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--out', default=str(DEFAULT_OUT), help='the JSON file to write')
  args = p.parse_args(argv)
  out = Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  text = json.dumps(compute(), indent=1)
  # Lists of numbers on one line each: a file of a few hundred lines rather than thousands.
  text = re.sub(r'\[([-+0-9.eE,\s]+)\]', lambda m: '[' + ' '.join(m.group(1).split()) + ']', text)
  out.write_text(text + '\n')
  print(f'wrote {out}')
  return out


if __name__ == '__main__':
  main()
