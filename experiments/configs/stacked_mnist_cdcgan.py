"""Class-conditional DCGAN on Stacked MNIST: each of the 1000 digit triples is a class.

    python -m jaxgan.main --config=experiments/configs/stacked_mnist_cdcgan.py \
        --workdir=runs/stacked_cdcgan --config.run.source_dir=../shared/data

Conditional BatchNorm in G with BigGAN's shared class embedding (1000 classes: one 128-wide
embedding rather than a gain and bias table per layer), projection D, hinge loss. The metrics:
modes captured and reverse KL of 26,000 samples with uniform labels (PacGAN's protocol,
`jaxgan.metrics.stacked_mnist`), and the accuracy of the requested triple, each channel read by
jaxgan's MNIST classifier. A conditional model should cover all 1000 modes by construction;
`class_acc` says whether it draws the one asked for.
"""

from jaxgan.config import default_config


def get_config():
  c = default_config()
  c.data.name = "stacked_mnist"
  c.data.pad_to = 32
  c.model.name = "dcgan"
  c.model.width = 32
  c.model.num_classes = 1000
  c.model.g_conditioning = "cbn"
  c.model.shared_embedding = 128
  c.model.d_conditioning = "projection"
  c.loss.name = "hinge"
  c.optim.ema_decay = 0.999
  c.run.steps = 10_000
  c.log.every = 100
  c.log.sample_every = 2000
  c.eval.every = 2000
  c.eval.metrics = "modes,class_acc"
  c.eval.num_samples = 26_000
  c.checkpoint.every = 1000
  return c
