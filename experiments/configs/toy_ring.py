"""MLP GAN on the ring of 8 Gaussians (PacGAN/VEEGAN protocol); reports mode coverage.

    python -m jaxgan.main --config=experiments/configs/toy_ring.py --workdir=runs/toy_ring \
        --config.loss.name=hinge
"""

from jaxgan.config import toy_config


def get_config():
  return toy_config("ring", steps=10_000)
