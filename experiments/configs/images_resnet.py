"""Your own images: a ResNet GAN (BigGAN-style stages, spectral norm in D, hinge loss) at 64 px.

Point it at a folder of image files (png, jpg, webp, bmp; any sizes, nested; each first-level
subfolder a class) or at any TFDS image data set prepared as array_record:

    python -m jaxgan.main --config=experiments/configs/images_resnet.py --workdir=runs/mine \
        --config.data.name=folder:/path/to/images [--config.model.num_classes=K]
    python -m jaxgan.main --config=experiments/configs/images_resnet.py --workdir=runs/celeba \
        --config.data.name=tfds:celeb_a --config.data.resolution=128

Images are brought to `data.resolution` squares by `data.crop` ('resize_crop': the short side
scaled, the centre kept; 'center_crop'; 'pad'); the log says what was skipped or converted.
Recipe: SNGAN's hinge loss and spectral norm (Miyato et al. 2018) with BigGAN's stage widths and
two-time-scale Adam (Brock et al. 2019: D 4x G's rate, b1 0, b2 0.999), Inception FID every 5,000
steps. `:cpu` shrinks the widths and the batch so that a laptop CPU sees progress in minutes.
"""

from jaxgan.config import default_config


def get_config(variant: str = ""):
  c = default_config()
  c.data.name = "folder:images"  # set it: --config.data.name=folder:PATH or tfds:NAME
  c.data.resolution = 64
  c.data.crop = "resize_crop"
  c.model.name = "resnet"
  c.model.d_norm = "spectral"
  c.model.latent_dim = 128
  c.loss.name = "hinge"
  c.loss.n_critic = 2
  c.optim.g_lr, c.optim.d_lr = 1e-4, 4e-4
  c.optim.b1, c.optim.b2 = 0.0, 0.999
  c.optim.ema_decay = 0.9999
  c.run.steps = 100_000
  c.log.every = 100
  c.log.sample_every = 1000
  c.checkpoint.every = 1000
  c.eval.extractor = "inception"
  c.eval.metrics = "fid"
  c.eval.every = 5000
  c.eval.num_samples = 10_000
  if variant == "cpu":
    c.model.width = 16
    c.data.batch_size = 32
    c.loss.n_critic = 1
    c.optim.ema_decay = 0.999
    c.run.steps = 2000
    c.log.every = 50
    c.log.sample_every = 500
    c.checkpoint.every = 250
    c.eval.metrics = ""  # Inception FID afterwards: python -m jaxgan.evaluate
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; valid: '' (full) or 'cpu'.")
  return c
