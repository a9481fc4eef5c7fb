"""jaxgan: generative adversarial networks in JAX.

`jaxgan.losses` and `jaxgan.penalties` are pure functions usable with any model library;
`jaxgan.GAN` and `jaxgan.make_train_step` compose them with Flax modules into one compiled
update; `jaxgan.train_and_evaluate` runs a whole experiment from a config, and `jaxgan.load`
gives a run's GAN, state and config back (`python -m jaxgan.evaluate` scores one).

Submodules load on first use, so `import jaxgan.config` (what experiment configs do) loads no JAX,
and `import jaxgan.losses` loads none of the runner's dependencies (orbax, TFDS, grain).
"""

import importlib

__all__ = [
  "losses",
  "penalties",
  "GAN",
  "GANState",
  "make_train_step",
  "train_and_evaluate",
  "load",
]
__version__ = "0.2.0"

_LAZY = {
  "losses": ("jaxgan.losses", None),
  "penalties": ("jaxgan.penalties", None),
  "GAN": ("jaxgan.step.state", "GAN"),
  "GANState": ("jaxgan.step.state", "GANState"),
  "make_train_step": ("jaxgan.step.train", "make_train_step"),
  "train_and_evaluate": ("jaxgan.run.loop", "train_and_evaluate"),
  "load": ("jaxgan.run.loading", "load"),
}


def __getattr__(name):
  if name not in _LAZY:
    raise AttributeError(f"module 'jaxgan' has no attribute {name!r}")
  module, attr = _LAZY[name]
  value = importlib.import_module(module)
  return value if attr is None else getattr(value, attr)


def __dir__():
  return sorted(list(globals()) + list(_LAZY))
