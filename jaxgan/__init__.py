"""jaxgan: generative adversarial networks in JAX.

`jaxgan.losses` and `jaxgan.penalties` are pure functions usable with any model library;
`jaxgan.state.GAN` and `jaxgan.train.make_train_step` compose them with Flax modules into one
compiled update.
"""

from jaxgan import losses, penalties
from jaxgan.state import GAN, GANState
from jaxgan.train import make_train_step

__all__ = ["losses", "penalties", "GAN", "GANState", "make_train_step"]
__version__ = "0.1.0"
