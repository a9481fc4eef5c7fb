"""Non-saturating DCGAN on MNIST (28x28), sized for a CPU: the default main job.

    python -m jaxgan.main --config=experiments/configs/mnist_dcgan.py --workdir=runs/mnist_dcgan \
        --config.source_dir=../shared/data
"""

from jaxgan.loop import default_config


def get_config():
  c = default_config()
  c.dataset = "mnist"
  c.model = "dcgan"
  c.width = 32
  c.loss = "non_saturating"
  c.batch_size = 64
  c.ema_decay = 0.99  # a short run: a long EMA would still remember the first steps
  c.steps = 3000  # about 2.3 minutes on 2 idle CPU cores (25 steps/s)
  c.sample_every = 500
  c.checkpoint_every = 500
  return c
