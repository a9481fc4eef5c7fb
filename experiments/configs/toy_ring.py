"""MLP GAN on the 2-D ring mixture of the PacGAN/VEEGAN protocol; evaluates mode coverage.

    python -m jaxgan.main --config=experiments/configs/toy_ring.py --workdir=runs/toy_ring \
        --config.loss=hinge

(`python -m jaxgan.toy --mixture=ring` runs the same experiment faster, with the data sampled
inside the compiled program.)
"""

import ml_collections

from jaxgan.loop import default_config


def get_config():
  c = default_config()
  c.dataset = "toy_ring"
  c.model = "mlp"
  c.latent_dim = 2
  c.model_kwargs = ml_collections.ConfigDict(
      dict(g_hidden=(256, 256, 256), d_hidden=(256, 256, 256), output_activation="none"))
  c.loss = "non_saturating"
  c.batch_size = 256
  c.g_lr = c.d_lr = 2e-4
  c.ema_decay = 0.99
  c.steps = 10_000
  c.log_every = 500
  c.eval_every = 1000
  c.sample_every = 1000
  c.checkpoint_every = 2000
  return c
