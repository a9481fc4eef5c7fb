"""R3GAN on CIFAR-10 (Huang et al., NeurIPS 2024): RpGAN + R1 + R2, a plain modern network.

The paper's CIFAR-10 settings (official `train.py`, preset CIFAR10), an accelerator-scale run:

    python -m jaxgan.main --config=experiments/configs/cifar10_r3gan.py \
        --workdir=runs/cifar10_r3gan --config.run.source_dir=../shared/data

- Loss `rsgan` (RpGAN) with R1 and R2 at gamma/2 each, gamma 0.05 -> 0.005;
- Adam, b1 = 0, b2 0.9 -> 0.99, learning rates 2e-4 -> 5e-5;
- the EMA's half-life 0 -> 5M images; ADA's pipeline (R3GAN's policy: blit, geometric, colour at
  half strength, cutout) at a probability 0 -> 0.55, scheduled, not adaptive;
- every schedule a half cosine over 20M images (39,062 steps of 512), then constant.

- class-conditional, as the paper's CIFAR-10 run: G concatenates a learned class embedding to z,
  D scores by projection onto the class embedding (the official networks; `jaxgan.models.r3gan`).

A CPU smoke variant of the same code path (tiny widths, a few steps):

    python -m jaxgan.main --config=experiments/configs/cifar10_r3gan.py:smoke \
        --workdir=runs/cifar10_r3gan_smoke --config.run.source_dir=../shared/data
"""

from jaxgan.config import default_config

# The paper's CIFAR-10 network, the official preset CIFAR10 (jaxgan.models.r3gan.CIFAR10_KWARGS
# and CIFAR10_LATENT_DIM, which tests/test_r3gan.py holds equal to these): four stages of width
# 768, 2 blocks and 96 groups each, expansion 2, a linear output; latents of 64. Written out so that
# loading this file loads no JAX.
CIFAR10_KWARGS = dict(
  widths=(768,) * 4, blocks=(2,) * 4, cardinality=(96,) * 4, expansion=2, output_activation="none"
)
CIFAR10_LATENT_DIM = 64


def _cosine(start: float, end: float, steps: int) -> str:
  return f"cosine({start}, {end}, {steps})"


def get_config(variant: str = ""):
  c = default_config()
  c.data.name = "cifar10_jpeg"
  c.data.batch_size = 512
  c.model.name = "r3gan"
  c.model.d_norm = "none"
  c.model.latent_dim = CIFAR10_LATENT_DIM
  c.model.kwargs = dict(CIFAR10_KWARGS)
  c.model.num_classes = 10
  c.model.g_conditioning, c.model.d_conditioning = "concat", "projection"
  decay = 20_000_000 // c.data.batch_size  # 20M images
  c.loss.name = "rsgan"
  c.loss.penalties = {"r1": _cosine(0.025, 0.0025, decay), "r2": _cosine(0.025, 0.0025, decay)}
  c.optim.b1 = 0.0
  c.optim.b2 = _cosine(0.9, 0.99, decay)
  c.optim.g_lr = c.optim.d_lr = _cosine(2e-4, 5e-5, decay)
  c.optim.ema_half_life = _cosine(0, 5_000_000, decay)
  c.augment.name, c.augment.policy = "ada", "r3gan"
  c.augment.p = _cosine(0, 0.55, decay)
  c.run.steps = decay
  c.log.every = 100
  c.log.sample_every = 2000
  c.checkpoint.every = 2000
  c.eval.every = 10_000
  if variant == "smoke":
    c.model.kwargs = dict(widths=(16, 16, 16, 16), blocks=1, cardinality=1)
    c.data.batch_size = 8
    c.run.steps = 10
    c.log.every, c.log.sample_every, c.checkpoint.every = 5, 10, 10
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; valid: '' (full) or 'smoke'.")
  return c
