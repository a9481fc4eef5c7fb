"""MLP GAN on the grid of 25 Gaussians (PacGAN/VEEGAN protocol); reports mode coverage.

40k steps: the grid study (`experiments/study.py --study=grid`, docs/results.md) found the samples
still tightening around the modes at 20k, and length the one change that lifts the high-quality
fraction past PacGAN4's level without new options.

    python -m jaxgan.main --config=experiments/configs/toy_grid.py --workdir=runs/toy_grid \
        --config.loss.name=hinge
"""

from jaxgan.config import toy_config


def get_config():
  return toy_config("grid", steps=40_000)
