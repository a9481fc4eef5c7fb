"""Writes a jaxgan data set's images as a folder of PNG files, one subfolder per class.

The folder a `data.name='folder:PATH'` run reads, made from files whose right answers are known:
issue 27's measurement trains on CIFAR-10 written out at another, non-square size.

    python benchmarks/make_image_folder.py --dataset cifar10_jpeg --split 'train[:6000]' \
        --size 80x72 --out /tmp/cifar_folder --source_dir ../shared/data
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image

from jaxgan import data

CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", default="cifar10_jpeg")
  parser.add_argument("--split", default="train[:6000]")
  parser.add_argument("--size", default="80x72", help="WIDTHxHEIGHT of the written files")
  parser.add_argument("--out", required=True)
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  args = parser.parse_args()
  if os.path.exists(args.out):
    parser.error(f"--out {args.out} exists; choose a new folder")
  width, height = (int(v) for v in args.size.split("x"))
  src = data.load_source(args.dataset, split=args.split, source_dir=args.source_dir)
  batch = src.get_batch(np.arange(len(src)))
  names = CIFAR10_CLASSES if args.dataset.startswith("cifar10") else None
  for i, (image, label) in enumerate(zip(batch["image"], batch["label"], strict=True)):
    folder = os.path.join(args.out, names[label] if names else str(label))
    os.makedirs(folder, exist_ok=True)
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    pil.resize((width, height), Image.Resampling.BICUBIC).save(os.path.join(folder, f"{i:06d}.png"))
  print(f"wrote {len(src)} images of {width}x{height} into {args.out}")


if __name__ == "__main__":
  main()
