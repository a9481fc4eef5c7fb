"""A projected discriminator on MNIST (Sauer et al. 2021): heads on a frozen feature network.

    python -m jaxgan.main --config=experiments/configs/mnist_projected.py \
        --workdir=runs/mnist_projected --config.run.source_dir=../shared/data

G is mnist_dcgan's (DCGAN, width 32). D is `jaxgan.models.feature_critic`: a residual classifier
that jaxgan trains once on MNIST and caches (about 2 min on 2 CPU cores, 98.9% test accuracy),
frozen, with a small spectrally normalised head of width 32 on each of its three stages, each
head scoring patches; the hinge loss sums over the heads, and Adam(2e-4, 0, 0.99) as the paper.
The backbone is another architecture and seed than the classifier that scores the run (FCD), so
G is not judged by the network it was trained against (docs/feature_critic.md).

The step costs 3.7x (beside other jobs) to 4.45x (idle) mnist_dcgan's on 2 CPU cores, so 800
steps take the wall-clock of mnist_dcgan's 3,000: the comparison of docs/results.md ("Projected discriminator").
"""

from jaxgan.config import default_config


def get_config():
  c = default_config()
  c.data.name = "mnist"
  c.model.name = "projected"
  c.model.width = 32
  c.model.d_norm = "spectral"
  c.model.kwargs.backbone = "classifier"
  c.model.kwargs.head_width = 32
  c.loss.name = "hinge"
  c.optim.b1, c.optim.b2 = 0.0, 0.99
  c.optim.ema_decay = 0.99
  c.run.steps = 800
  c.log.sample_every = 200
  c.checkpoint.every = 200
  c.eval.metrics = "fcd"
  c.eval.num_samples = 10_000
  c.eval.every = c.run.steps
  return c
