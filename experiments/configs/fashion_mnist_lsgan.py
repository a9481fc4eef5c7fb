"""Least-squares DCGAN on Fashion-MNIST (Mao et al. 2017, a=0, b=1, c=1 on raw scores).

    python -m jaxgan.main --config=experiments/configs/fashion_mnist_lsgan.py \
        --workdir=runs/fashion_mnist_lsgan --config.run.source_dir=../shared/data
"""

from jaxgan.config import default_config


def get_config():
  c = default_config()
  c.data.name = "fashion_mnist"
  c.model.name = "dcgan"
  c.model.width = 32
  c.loss.name = "lsgan"
  c.run.steps = 5000
  return c
