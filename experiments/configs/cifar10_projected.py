"""A projected discriminator on CIFAR-10 (Sauer et al. 2021), on the FID Inception network.

Accelerator-scale: the frozen backbone is jaxgan's InceptionV3 with the published FID weights, read
at Mixed_5d (35x35) and Mixed_6e (17x17) of the images resized to 224 (Projected GAN's backbone
resolution), a spectrally normalised head on each; DCGAN's generator; hinge loss summed over the
heads; DiffAugment (colour, translation, cutout) before the backbone, as the paper.

    python -m jaxgan.main --config=experiments/configs/cifar10_projected.py \
        --workdir=runs/cifar10_projected --config.run.source_dir=../shared/data

A CPU smoke variant (tiny widths, 75 px into the backbone, a few steps) of the same code path:

    python -m jaxgan.main --config=experiments/configs/cifar10_projected.py:smoke \
        --workdir=runs/cifar10_projected_smoke --config.run.source_dir=../shared/data

It is scored by FCD in a classifier jaxgan trains on CIFAR-10, never by Inception FID: G is
trained to match Inception's features, which FID reads (Kynkaanniemi et al. 2023;
docs/feature_critic.md); validation refuses eval.extractor='inception' for this critic.
"""

from jaxgan.config import default_config


def get_config(variant: str = ""):
  c = default_config()
  c.data.name = "cifar10_jpeg"
  c.model.name = "projected"
  c.model.width = 64
  c.model.d_norm = "spectral"
  c.model.latent_dim = 128
  c.model.kwargs.backbone = "inception"
  c.model.kwargs.resize_to = 224
  c.model.kwargs.head_width = 64
  c.loss.name = "hinge"
  c.augment.name = "diffaugment"
  c.optim.b1, c.optim.b2 = 0.0, 0.99
  c.optim.ema_decay = 0.999
  c.run.steps = 50_000
  c.log.sample_every = 1000
  c.checkpoint.every = 1000
  c.eval.metrics = "fcd,kid"
  c.eval.extractor = "classifier"
  c.eval.num_samples = 10_000
  c.eval.every = 5000
  if variant == "smoke":
    c.model.width = 8
    c.model.kwargs.resize_to = 75
    c.model.kwargs.head_width = 8
    c.data.batch_size = 4
    c.run.steps = 4
    c.log.every = 2
    c.log.sample_every = 4
    c.checkpoint.every = 4
    c.eval.metrics = ""
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; valid: '' (full) or 'smoke'.")
  return c
