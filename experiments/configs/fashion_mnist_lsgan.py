"""Least-squares DCGAN on Fashion-MNIST (Mao et al. 2017, a=0, b=1, c=1 on raw scores).

    python -m jaxgan.main --config=experiments/configs/fashion_mnist_lsgan.py \
        --workdir=runs/fashion_mnist_lsgan --config.source_dir=../shared/data
"""

from jaxgan.loop import default_config


def get_config():
  c = default_config()
  c.dataset = "fashion_mnist"
  c.model = "dcgan"
  c.width = 32
  c.loss = "lsgan"
  c.g_lr = c.d_lr = 2e-4
  c.batch_size = 64
  c.steps = 5000
  return c
