"""SNGAN on CIFAR-10: ResNet G and D, spectral norm in D, hinge loss (Miyato et al. 2018).

The TPU-scale recipe (the paper's: batch 64, n_critic 5, Adam(2e-4, 0, 0.9), 50k G steps):

    python -m jaxgan.main --config=experiments/configs/cifar10_sngan_hinge.py \
        --workdir=runs/cifar10_sngan --config.source_dir=../shared/data

A CPU smoke variant (tiny widths, a few steps) of the same code path:

    python -m jaxgan.main --config=experiments/configs/cifar10_sngan_hinge.py:smoke \
        --workdir=runs/cifar10_smoke --config.source_dir=../shared/data

Offline, `cifar10_jpeg` reads the JPEG-recompressed copy in ../shared/data; with internet,
`--config.dataset=cifar10` downloads the original release through TFDS.
"""

from jaxgan.loop import default_config


def get_config(variant: str = ""):
  c = default_config()
  c.dataset = "cifar10_jpeg"
  c.model = "resnet"
  c.d_norm = "spectral"
  c.loss = "hinge"
  c.n_critic = 5
  c.g_lr = c.d_lr = 2e-4
  c.b1, c.b2 = 0.0, 0.9
  c.ema_decay = 0.9999
  c.batch_size = 64
  c.latent_dim = 128
  c.steps = 50_000
  c.sample_every = 1000
  c.checkpoint_every = 1000
  if variant == "smoke":
    c.width = 16
    c.batch_size = 8
    c.steps = 20
    c.ema_decay = 0.9
    c.log_every = 5
    c.sample_every = 10
    c.checkpoint_every = 10
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; valid: '' (full) or 'smoke'.")
  return c
