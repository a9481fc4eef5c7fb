"""MLP GAN on the grid of 25 Gaussians (PacGAN/VEEGAN protocol); reports mode coverage.

PacGAN's packing of 2 and 40k steps: the grid study (`experiments/study.py --study=grid`,
docs/results.md) found the samples still tightening around the modes at 20k steps, and packing
the change that keeps every mode in every seed once they have tightened.

    python -m jaxgan.main --config=experiments/configs/toy_grid.py --workdir=runs/toy_grid \
        --config.loss.name=hinge
"""

from jaxgan.config import toy_config


def get_config():
  c = toy_config("grid", steps=40_000)
  c.model.pack = 2
  return c
