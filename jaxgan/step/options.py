"""The train step's options and their rules, each checked here once.

`make_train_step` calls `merge_penalties` and `check_options` before it builds anything; a run
config's `jaxgan.config.validate` calls the same two on the config's values, and writes each
option the message names as the config field that sets it (`OptionError.naming`). This module
imports neither JAX nor anything of jaxgan, so the config can use it and still load no JAX.

  >>> check_options(n_critic=0)
  Traceback (most recent call last):
  ...
  jaxgan.errors.OptionError: n_critic must be a positive integer; got 0.
  >>> try:
  ...   check_options(n_critic=0)
  ... except OptionError as e:
  ...   print(e.naming({"n_critic": "config.loss.n_critic"}))
  config.loss.n_critic must be a positive integer; got 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jaxgan.errors import OptionError, quote


def merge_penalties(
  penalties: Mapping[Any, Any] | None, penalty: Any = None, penalty_weight: Any = 10.0
) -> dict:
  """The step's penalties: `penalties` and the shorthand `penalty` with its weight, as one dict.

  Args:
    penalties: a mapping from a penalty (a name or a function) to its weight, or None.
    penalty: one more penalty, or None.
    penalty_weight: its weight.

  Returns:
    A new dict from each penalty to its weight.

  Raises:
    OptionError: `penalty` is also a key of `penalties`.
  """
  weights = dict(penalties or {})
  if penalty is not None:
    if penalty in weights:
      name = penalty if isinstance(penalty, str) else getattr(penalty, "__name__", penalty)
      raise OptionError(f"$penalty={quote(name)} is also in $penalties; give it once.")
    weights[penalty] = penalty_weight
  return weights


def _check_positive_int(option: str, value: Any) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise OptionError(f"${option} must be a positive integer; got {quote(value)}.")


def check_batch(batch_size: int, n_critic: int = 1, pack: int = 1) -> None:
  """A batch that splits into `n_critic` equal slices, each into packs of `pack` examples.

  Args:
    batch_size: the examples of one train step (the global batch).
    n_critic: critic updates per step, each on its own slice of the batch.
    pack: PacGAN's pack size.

  Raises:
    OptionError: `n_critic` or `pack` not a positive integer, or a batch that does not split.
  """
  _check_positive_int("n_critic", n_critic)
  _check_positive_int("pack", pack)
  if batch_size % n_critic:
    raise OptionError(
      f"The batch of {batch_size} examples ($batch_size) does not split into "
      f"$n_critic={n_critic} equal slices; use a multiple of {n_critic}."
    )
  if (batch_size // n_critic) % pack:
    raise OptionError(
      f"Each critic update sees {batch_size // n_critic} examples, which do not split into "
      f"packs of $pack={pack}; make $batch_size per critic update a multiple of {pack}."
    )


def _check_weight(what: str, weight: Any) -> None:
  ok = callable(weight) or (
    isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0
  )
  if not ok:
    raise OptionError(f"{what} must be a number >= 0 or a schedule; got {quote(weight)}.")


def _check_decay(option: str, decay: Any, *, schedulable: bool) -> None:
  if not (schedulable and callable(decay)) and not 0.0 <= decay < 1.0:
    raise OptionError(f"${option} must lie in [0, 1); got {quote(decay)}.")


def check_ada(augment: Any, augment_p: Any, ada_target: float | None, ada_kimg: float) -> None:
  """ADA's options (Karras et al. 2020): a target needs an augmentation and no fixed p.

  Args:
    augment: the augmentation, or None.
    augment_p: a fixed or scheduled probability, or None.
    ada_target: the r_t = E[sign(D(x_real))] ADA holds, or None (no ADA).
    ada_kimg: thousands of images over which ADA's p may move by 1.

  Raises:
    OptionError: `ada_target` without an augmentation, outside (0, 1), or with `augment_p`;
      `ada_kimg` not > 0.
  """
  if ada_target is not None:
    if augment is None:
      raise OptionError("$ada_target adapts the probability of an augmentation: pass $augment too.")
    if not 0.0 < ada_target < 1.0:
      raise OptionError(f"$ada_target must lie in (0, 1) (ADA: 0.6); got {quote(ada_target)}.")
    if augment_p is not None:
      raise OptionError(
        "$ada_target makes ADA adapt p from 0: leave $augment_p unset, or unset $ada_target for "
        "a fixed or scheduled p."
      )
  if not ada_kimg > 0:
    raise OptionError(f"$ada_kimg must be > 0; got {quote(ada_kimg)}.")


def check_probs(probs: Sequence[float], num_classes: int) -> None:
  """Class probabilities: `num_classes` numbers >= 0 summing to 1 (to within 1e-4).

  Args:
    probs: float `[num_classes]`, e.g. the data set's class frequencies.
    num_classes: the class count.

  Raises:
    OptionError: probabilities of another length, negative, or not summing to 1.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top (only for conditional runs)

  p = np.asarray(probs, np.float64)
  if p.shape != (num_classes,) or (p < 0).any() or abs(p.sum() - 1.0) > 1e-4:
    raise OptionError(
      f"Fake label probabilities must be {num_classes} numbers >= 0 summing to 1 (one per "
      f"class); got shape {p.shape}, sum {p.sum():.6g}."
    )


def check_conditioning(num_classes: int, pack: int, fake_label_probs=None) -> None:
  """A class-conditional step's options: no packing, valid fake label probabilities.

  Args:
    num_classes: the GAN's class count (0: unconditional).
    pack: the GAN's PacGAN pack size.
    fake_label_probs: None (uniform), or float `[num_classes]`, the fakes' class probabilities.

  Raises:
    OptionError: packs of a conditional GAN (a pack's examples have different labels), or
      probabilities that `check_probs` refuses.
  """
  if num_classes and pack > 1:
    raise OptionError(
      f"A class-conditional GAN ($num_classes={num_classes}) cannot judge packs "
      f"($pack={pack}): a pack's examples have different labels. Use $pack=1."
    )
  if fake_label_probs is not None:
    check_probs(fake_label_probs, num_classes)


def check_options(
  *,
  penalties: Mapping[Any, Any] | None = None,
  penalty_every: int = 1,
  n_critic: int = 1,
  ema_decay: Any = 0.999,
  augment: Any = None,
  augment_p: Any = None,
  ada_target: float | None = None,
  ada_kimg: float = 500.0,
  ada_interval: int = 4,
  consistency_weight: Any = 0.0,
  lecam_weight: Any = 0.0,
  lecam_decay: float = 0.99,
  num_classes: int = 0,
  pack: int = 1,
  fake_label_probs: Sequence[float] | None = None,
  class_weight: float = 1.0,
) -> None:
  """Checks the options of `make_train_step` (its arguments, with its defaults), every rule once.

  Args:
    penalties: the merged penalties (`merge_penalties`), each weight a number >= 0 or a schedule
      (names are looked up where they are registered, `jaxgan.penalties.get`).
    penalty_every, n_critic, ada_interval: positive integers.
    ema_decay: in [0, 1), or a schedule.
    augment, augment_p, ada_target, ada_kimg: as `check_ada`.
    consistency_weight, lecam_weight, class_weight: numbers >= 0 (the first two: or schedules).
    lecam_decay: in [0, 1).
    num_classes, pack, fake_label_probs: as `check_conditioning`.

  Raises:
    OptionError: the first option out of its rule, named in the message.
  """
  for p, w in (penalties or {}).items():
    name = p if isinstance(p, str) else getattr(p, "name", getattr(p, "__name__", p))
    _check_weight(f"The weight of penalty {quote(name)}", w)
  _check_positive_int("penalty_every", penalty_every)
  _check_weight("$consistency_weight", consistency_weight)
  _check_weight("$lecam_weight", lecam_weight)
  _check_positive_int("n_critic", n_critic)
  _check_positive_int("pack", pack)
  _check_positive_int("ada_interval", ada_interval)
  _check_decay("ema_decay", ema_decay, schedulable=True)
  _check_decay("lecam_decay", lecam_decay, schedulable=False)
  check_ada(augment, augment_p, ada_target, ada_kimg)
  check_conditioning(num_classes, pack, fake_label_probs)
  _check_weight("$class_weight", class_weight)
