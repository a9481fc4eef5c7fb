"""Differentiable, per-example image augmentations for the discriminator's inputs.

Every augmentation is an `AugmentFn`, `f(images, key, p) -> images`: pure and jittable, on
float NHWC batches `[n, H, W, C]` in [-1, 1] with C = 1 or 3, one random draw per example, the
same shape and dtype out, and differentiable with respect to the images, so that D's gradient
reaches G through the augmented fakes. `p` is a float32 scalar in [0, 1] and may be traced (ADA
adapts it inside the compiled step); p = 0 returns the images exactly.

- `diffaugment`: DiffAugment (Zhao et al. 2020): colour, translation, cutout; each example is
  augmented with probability p (p = 1 is the paper).
- `ada`: ADA's pipeline (Karras et al. 2020): blit, geometric, colour and cutout transforms, each
  with probability p * multiplier; `R3GAN_POLICY` (preset 'r3gan') is R3GAN's (Huang et al. 2024).
- `flip_translate`: bCR's transform (Zhao et al. 2021): horizontal flip and translation.

Fed the same random draws, `diffaugment` and `ada` reproduce the official code's outputs
(DiffAugment_pytorch.py, StyleGAN2-ADA's AugmentPipe; tests/test_augment_official.py), except
where ada_lib's docstring says otherwise (ADA's blits alone are exact here).

`get(name, policy)` returns the `AugmentFn` with its policy bound and checked before compiling;
`check(name, policy, p)` checks a request without building it. Each augmentation is registered
where it is defined (`@register(name, default_policy=..., parse_policy=...)`), so a new one is its
module, imported below, and its test.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jaxgan import augment
  >>> aug = augment.get("diffaugment")  # the paper's 'color,translation,cutout'
  >>> x = jnp.full((2, 8, 8, 3), 0.5)
  >>> step = jax.jit(jax.grad(lambda x, key, p: jnp.sum(aug(x, key, p))))  # p traced
  >>> bool(jnp.all(step(x, jax.random.key(0), 0.0) == 1.0))  # p = 0: the identity
  True
"""

from __future__ import annotations

import functools

from jaxgan.augment import transforms
from jaxgan.augment._common import AugmentFn, check_images
from jaxgan.augment._registry import REGISTRY, FactView, check, register
from jaxgan.augment.ada_lib import R3GAN_POLICY, ada
from jaxgan.augment.diffaugment_lib import diffaugment
from jaxgan.augment.flip_translate_lib import flip, flip_translate

__all__ = [
  "AUGMENTATIONS",
  "DEFAULT_POLICIES",
  "AugmentFn",
  "R3GAN_POLICY",
  "ada",
  "check",
  "check_images",
  "diffaugment",
  "flip",
  "flip_translate",
  "get",
  "register",
  "transforms",
]

# {name: function} and {name: the policy `get` uses when given none (None: takes no policy)}:
# views of the registry, current with every registration.
AUGMENTATIONS = FactView("fn")
DEFAULT_POLICIES = FactView("default_policy")


def get(name: str, policy: str | None = None) -> AugmentFn:
  """Returns the augmentation `name` as an `AugmentFn` with its policy bound.

  Args:
    name: a registered name (`AUGMENTATIONS`): 'diffaugment', 'ada' or 'flip_translate'.
    policy: the policy string (see `diffaugment` and `ada`); None gives the method's default
      ('color,translation,cutout' for DiffAugment, 'bgc' for ADA). flip_translate takes none.

  Returns:
    `f(images, key, p) -> images`.

  Raises:
    ValueError: for an unknown name or an invalid policy (`check`, before compiling), each
      listing the valid choices.

  Example:
    >>> aug = get("ada", "r3gan")  # the policy is checked here, before anything compiles
    >>> get("ada", "xflip,blur")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: Unknown ADA transform 'blur' in policy 'xflip,blur'; valid: presets [...] or ...
  """
  check(name, policy)
  aug = REGISTRY[name]
  if policy is None:
    policy = aug.default_policy
  return aug.fn if policy is None else functools.partial(aug.fn, policy=policy)
