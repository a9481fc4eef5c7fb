"""Class-conditional DCGAN on MNIST: conditional BatchNorm in G, projection D, hinge loss.

G's BatchNorms take a per-class gain and bias (de Vries et al. 2017; the gain starts at 1),
computed from one shared 128-wide class embedding as in BigGAN (Brock et al. 2019); D is the
DCGAN discriminator with spectral norm and the projection term <embed(y), phi(x)> (Miyato and
Koyama 2018), trained with the hinge loss, as in their cGAN. The shared embedding starts
class-specific, so G conditions within the run's 3,000 steps; per-layer gain tables start at
zero and, under Adam's per-parameter steps, learn far slower (docs/conditional.md). Sample grids show one class
per row; the metrics are the accuracy of jaxgan's MNIST classifier on samples of each requested
class, and the Frechet classifier distance overall and within each class:

    python -m jaxgan.main --config=experiments/configs/mnist_cdcgan.py --workdir=runs/cdcgan \
        --config.run.source_dir=../shared/data
"""

from jaxgan.config import default_config


def get_config(variant: str = ""):
  c = default_config()
  c.data.name = "mnist"
  c.model.name = "dcgan"
  c.model.width = 32
  c.model.d_norm = "spectral"
  c.model.num_classes = 10
  c.model.g_conditioning = "cbn"
  c.model.shared_embedding = 128
  c.model.d_conditioning = "projection"
  c.loss.name = "hinge"
  c.optim.g_lr = c.optim.d_lr = 4e-4
  c.optim.ema_decay = 0.99  # a short run: a long EMA would still remember the first steps
  c.run.steps = 3000
  c.log.sample_every = 500
  c.checkpoint.every = 500
  c.eval.metrics = "fcd,class_acc,intra_fcd"
  c.eval.num_samples = 10_000
  c.eval.every = c.run.steps
  if variant == "smoke":
    c.model.width = 8
    c.data.batch_size = 16
    c.run.steps = 10
    c.log.every = 5
    c.log.sample_every = 10
    c.checkpoint.every = 10
    c.eval.num_samples = 500
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; valid: '' (full) or 'smoke'.")
  return c
