"""DCGAN on Stacked MNIST (1000 modes: a digit per channel); reports modes and reverse KL.

    python -m jaxgan.main --config=experiments/configs/stacked_mnist_dcgan.py \
        --workdir=runs/stacked_mnist --config.run.source_dir=../shared/data

The metric (PacGAN's protocol): 26,000 EMA-generator samples, each channel read by jaxgan's MNIST
classifier (trained once and cached when eval.classifier_path is unset); modes captured of
1000 and KL(generated mode histogram || uniform), beside the same numbers for real data.
"""

from jaxgan.config import default_config


def get_config():
  c = default_config()
  c.data.name = "stacked_mnist"
  c.data.pad_to = 32
  c.model.name = "dcgan"
  c.model.width = 32
  c.loss.name = "non_saturating"
  c.optim.ema_decay = 0.999
  c.run.steps = 10_000
  c.log.every = 100
  c.log.sample_every = 2000
  c.eval.every = 2000
  c.eval.metrics = "modes"
  c.eval.num_samples = 26_000
  c.checkpoint.every = 1000
  return c
