"""A projected discriminator on Stacked MNIST (1000 modes); reports modes and reverse KL.

    python -m jaxgan.main --config=experiments/configs/stacked_mnist_projected.py \
        --workdir=runs/stacked_mnist_projected --config.run.source_dir=../shared/data

stacked_mnist_dcgan's generator against `jaxgan.models.feature_critic`: jaxgan's MNIST residual
backbone (frozen; trained once and cached) reads each channel, the three channels' features are
concatenated at each of its stages, and a spectrally normalised head of width 32 scores each
stage's patches (hinge loss summed over the heads; Adam(2e-4, 0, 0.99)). The digits are read for
the metric by the FCD classifier: another architecture and seed than the backbone.

Its step costs 10.7x (beside other jobs) to 12.3x (idle) stacked_mnist_dcgan's on 2 CPU cores;
its 930 steps are sized to the wall-clock of stacked_mnist_dcgan's 10,000 (docs/results.md,
"Projected discriminator").
"""

from jaxgan.config import default_config


def get_config():
  c = default_config()
  c.data.name = "stacked_mnist"
  c.data.pad_to = 32
  c.model.name = "projected"
  c.model.width = 32
  c.model.d_norm = "spectral"
  c.model.kwargs.backbone = "classifier"
  c.model.kwargs.head_width = 32
  c.loss.name = "hinge"
  c.optim.b1, c.optim.b2 = 0.0, 0.99
  c.optim.ema_decay = 0.999
  c.run.steps = 930
  c.log.every = 100
  c.log.sample_every = 500
  c.eval.every = 500
  c.eval.metrics = "modes"
  c.eval.num_samples = 26_000
  c.checkpoint.every = 500
  return c
