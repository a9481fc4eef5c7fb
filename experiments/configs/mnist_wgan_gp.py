"""WGAN-GP DCGAN on MNIST padded to 32x32 (Gulrajani et al. 2017 hyperparameters), LayerNorm critic.

    python -m jaxgan.main --config=experiments/configs/mnist_wgan_gp.py --workdir=runs/mnist_wgan_gp \
        --config.source_dir=../shared/data
"""

from jaxgan.loop import default_config


def get_config():
  c = default_config()
  c.dataset = "mnist"
  c.pad_to = 32
  c.model = "dcgan"
  c.width = 32
  c.d_norm = "layer"  # a gradient penalty needs a critic that does not mix examples
  c.loss = "wgan"
  c.penalty = "wgan_gp"
  c.penalty_weight = 10.0
  c.n_critic = 5
  c.g_lr = c.d_lr = 1e-4
  c.b1, c.b2 = 0.5, 0.9
  c.batch_size = 64
  c.steps = 5000
  return c
