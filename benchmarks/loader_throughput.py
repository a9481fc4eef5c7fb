"""Throughput of jaxgan's input pipeline alone: MNIST, batch 64, padded to 32x32.

Measures batches/s of ``jaxgan.data.make_loader`` (float32 [-1, 1] NHWC batches, shuffled,
resumable) with nothing else running, for the in-memory source (the default of
``load_source``) and the on-disk TFDS array_record source, with and without grain prefetch
threads. The first run prepares MNIST into the data dir (a few seconds to ~30 s).

    python benchmarks/loader_throughput.py --source_dir ../shared/data
    python benchmarks/loader_throughput.py --data_dir ~/tensorflow_datasets --batches 3000

Quote medians: on a shared machine other jobs slow single runs down.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

try:
  from jaxgan import data
except ImportError:  # run from a checkout without `pip install -e .`
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
  from jaxgan import data


def measure(source, *, batches: int, repeats: int, **kw) -> list[float]:
  rates = []
  for r in range(repeats):
    it = data.make_loader(source, batch_size=64, seed=r, pad_to=32, **kw)
    for _ in range(20):  # warm-up: thread pools, first permutation
      next(it)
    start = time.perf_counter()
    for _ in range(batches):
      batch = next(it)
    rates.append(batches / (time.perf_counter() - start))
    assert batch["image"].shape == (64, 32, 32, 1)
    it.close()
  return rates


def main():
  repo = Path(__file__).resolve().parents[1]
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument(
    "--source_dir",
    default=os.environ.get("JAXGAN_SOURCE_DIR") or str(repo.parent / "shared" / "data"),
  )
  p.add_argument("--data_dir", default=os.environ.get("JAXGAN_DATA_DIR") or "/tmp/jaxgan_tfds")
  p.add_argument("--batches", type=int, default=1000)
  p.add_argument("--repeats", type=int, default=3)
  args = p.parse_args()

  t = time.perf_counter()
  disk = data.load_source(
    "mnist", data_dir=args.data_dir, source_dir=args.source_dir, in_memory=False
  )
  print(
    f"prepare/open: {time.perf_counter() - t:.1f} s ({len(disk)} examples, data_dir={args.data_dir})"
  )
  t = time.perf_counter()
  memory = disk.to_memory()
  print(f"read into memory: {time.perf_counter() - t:.1f} s")

  for label, source, kw in [
    ("in memory, 0 threads", memory, {}),
    ("on disk,   0 threads", disk, {}),
    ("on disk,   2 threads", disk, {"read_threads": 2}),
  ]:
    rates = measure(source, batches=args.batches, repeats=args.repeats, **kw)
    med = statistics.median(rates)
    print(
      f"MNIST b=64 pad 32, {label}: {med:8.1f} batches/s median "
      f"({med * 64:,.0f} images/s; runs: {', '.join(f'{r:.0f}' for r in rates)})"
    )


if __name__ == "__main__":
  main()
