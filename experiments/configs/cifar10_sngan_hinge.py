"""SNGAN on CIFAR-10: ResNet G and D, spectral norm in D, hinge loss (Miyato et al. 2018).

The TPU-scale recipe (the paper's: batch 64, n_critic 5, Adam(2e-4, 0, 0.9), 50k G steps):

    python -m jaxgan.main --config=experiments/configs/cifar10_sngan_hinge.py \
        --workdir=runs/cifar10_sngan --config.run.source_dir=../shared/data

A CPU smoke variant (tiny widths, a few steps) of the same code path:

    python -m jaxgan.main --config=experiments/configs/cifar10_sngan_hinge.py:smoke \
        --workdir=runs/cifar10_smoke --config.run.source_dir=../shared/data

Offline, `cifar10_jpeg` reads the JPEG-recompressed copy in ../shared/data; with internet,
`--config.data.name=cifar10` downloads the original release through TFDS.
"""

from jaxgan.config import default_config


def get_config(variant: str = ""):
  c = default_config()
  c.data.name = "cifar10_jpeg"
  c.model.name = "resnet"
  c.model.d_norm = "spectral"
  c.model.latent_dim = 128
  c.loss.name = "hinge"
  c.loss.n_critic = 5
  c.optim.b1, c.optim.b2 = 0.0, 0.9
  c.optim.ema_decay = 0.9999
  c.run.steps = 50_000
  c.log.sample_every = 1000
  c.checkpoint.every = 1000
  if variant == "smoke":
    c.model.width = 16
    c.data.batch_size = 8
    c.run.steps = 20
    c.optim.ema_decay = 0.9
    c.log.every = 5
    c.log.sample_every = 10
    c.checkpoint.every = 10
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; valid: '' (full) or 'smoke'.")
  return c
