"""MLP GAN on the grid of 25 Gaussians (PacGAN/VEEGAN protocol); reports mode coverage.

    python -m jaxgan.main --config=experiments/configs/toy_grid.py --workdir=runs/toy_grid \
        --config.loss.name=hinge
"""

from jaxgan.config import toy_config


def get_config():
  return toy_config("grid", steps=20_000)
