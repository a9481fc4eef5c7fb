"""Mode coverage of every loss in jaxgan.losses.LOSSES (and WGAN-GP) on the ring and the grid.

    python experiments/toy_losses.py --steps=10000 --out=runs/toy_losses.md

One seed per cell, the PacGAN/VEEGAN protocol (2,500 samples from the EMA generator; a sample is
high quality within 3 sigma of its nearest mode). Prints a Markdown table and writes it to --out.
"""

import argparse
import dataclasses
import os

from jaxgan import losses
from jaxgan.toy import ToyConfig, train_toy

# WGAN-GP on these narrow mixtures: lambda = 1 and Adam(b2=0.9) (see tests/test_toy_training.py).
WGAN_GP = dict(loss="wgan", penalty="wgan_gp", penalty_weight=1.0, n_critic=5, b2=0.9)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=10_000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="runs/toy_losses.md")
  args = parser.parse_args()
  runs = [(name, dict(loss=name)) for name in losses.LOSSES] + [("wgan_gp", WGAN_GP)]
  rows = ["| loss | ring modes (of 8) | ring high-quality | grid modes (of 25) | grid high-quality |",
          "|---|---|---|---|---|"]
  for label, kwargs in runs:
    cells = []
    for mixture in ("ring", "grid"):
      config = dataclasses.replace(ToyConfig(), mixture=mixture, steps=args.steps, seed=args.seed,
                                   steps_per_call=1000, **kwargs)
      result, _, _ = train_toy(config)
      cells += [f"{result['modes_captured']:.0f}", f"{100 * result['high_quality']:.1f}%"]
      print(label, mixture, result, flush=True)
    rows.append(f"| {label} | " + " | ".join(cells) + " |")
  table = "\n".join(rows)
  print(table)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as f:
    f.write(f"Command: python experiments/toy_losses.py --steps={args.steps} --seed={args.seed}\n\n")
    f.write(table + "\n")


if __name__ == "__main__":
  main()
