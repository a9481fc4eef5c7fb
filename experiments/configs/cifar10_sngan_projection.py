"""cGAN-PD on CIFAR-10: SNGAN's ResNets with conditional BatchNorm in G and the projection
discriminator (Miyato and Koyama 2018), hinge loss, in mimicry's protocol (Lee and Town 2020:
100k G steps, batch 64, 5 D updates per G update, Adam(2e-4, 0, 0.9) decayed linearly to 0;
their FID 10.84 against SNGAN's 16.77). An accelerator-scale run:

    python -m jaxgan.main --config=experiments/configs/cifar10_sngan_projection.py \
        --workdir=runs/cifar10_cgan_pd --config.run.source_dir=../shared/data

A CPU smoke variant (tiny widths, a few steps) of the same code path:

    python -m jaxgan.main --config=experiments/configs/cifar10_sngan_projection.py:smoke \
        --workdir=runs/cgan_pd_smoke --config.run.source_dir=../shared/data

The metrics are FID and intra-class FID with the Inception network (`eval.inception_weights`);
the accuracy on requested classes (`class_acc`) needs a CIFAR-10 classifier in
`eval.classifier_path`.
"""

from jaxgan.config import default_config

STEPS = 100_000


def get_config(variant: str = ""):
  c = default_config()
  c.data.name = "cifar10_jpeg"
  c.model.name = "resnet"
  c.model.d_norm = "spectral"
  c.model.latent_dim = 128
  c.model.num_classes = 10
  c.model.g_conditioning = "cbn"
  c.model.d_conditioning = "projection"
  c.loss.name = "hinge"
  c.loss.n_critic = 5
  c.optim.g_lr = c.optim.d_lr = f"linear(2e-4, 0, {STEPS})"
  c.optim.b1, c.optim.b2 = 0.0, 0.9
  c.optim.ema_decay = 0.9999
  c.run.steps = STEPS
  c.log.sample_every = 5000
  c.checkpoint.every = 5000
  c.eval.extractor = "inception"
  c.eval.metrics = "fid,intra_fid"
  c.eval.num_samples = 50_000
  c.eval.every = 10_000
  if variant == "smoke":
    c.model.width = 16
    c.data.batch_size = 8
    c.run.steps = 20
    c.optim.g_lr = c.optim.d_lr = "linear(2e-4, 0, 20)"
    c.optim.ema_decay = 0.9
    c.log.every = 5
    c.log.sample_every = 10
    c.checkpoint.every = 10
    c.eval.metrics = ""
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; valid: '' (full) or 'smoke'.")
  return c
