"""WGAN-GP DCGAN on MNIST padded to 32x32 (Gulrajani et al. 2017 hyperparameters), LayerNorm critic.

    python -m jaxgan.main --config=experiments/configs/mnist_wgan_gp.py --workdir=runs/mnist_wgan_gp \
        --config.run.source_dir=../shared/data
"""

from jaxgan.config import default_config


def get_config():
  c = default_config()
  c.data.name = "mnist"
  c.data.pad_to = 32
  c.model.name = "dcgan"
  c.model.width = 32
  c.model.d_norm = "layer"  # a gradient penalty needs a critic that does not mix examples
  c.loss.name = "wgan"
  c.loss.penalty = "wgan_gp"
  c.loss.penalty_weight = 10.0
  c.loss.n_critic = 5
  c.optim.g_lr = c.optim.d_lr = 1e-4
  c.optim.b1, c.optim.b2 = 0.5, 0.9
  c.run.steps = 5000
  return c
