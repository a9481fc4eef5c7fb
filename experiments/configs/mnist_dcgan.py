"""Non-saturating DCGAN on MNIST (28x28), sized for a CPU: the default main job.

    python -m jaxgan.main --config=experiments/configs/mnist_dcgan.py --workdir=runs/mnist_dcgan \
        --config.run.source_dir=../shared/data
"""

from jaxgan.config import default_config


def get_config():
  c = default_config()
  c.data.name = "mnist"
  c.model.name = "dcgan"
  c.model.width = 32
  c.loss.name = "non_saturating"
  c.optim.ema_decay = 0.99  # a short run: a long EMA would still remember the first steps
  c.run.steps = 3000
  c.log.sample_every = 500
  c.checkpoint.every = 500
  # The quality figure at the end: Frechet distance in the features of jaxgan's MNIST classifier
  # (trained once, about 20 s, and cached), 10,000 samples against the training split.
  c.eval.metrics = "fcd"
  c.eval.num_samples = 10_000
  c.eval.every = c.run.steps
  return c
