"""The augmentations found by name: one `Augmentation` record each, made by `register` where the
augmentation is defined, and the rules every request for one obeys (`check`).

Imports nothing of JAX, so that the records can be read without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """One augmentation and the facts `jaxgan.augment.get` needs about it.

  Attributes:
    name: the name it is found by (`config.augment.name`).
    fn: `fn(images, key, p[, policy=...]) -> images`, an `AugmentFn` once its policy is bound.
    default_policy: the policy used when none is given; None: it takes no policy.
    parse_policy: `parse_policy(policy)` refuses a policy string that is not in its syntax (a
      ValueError listing the valid entries); None: it takes no policy.
  """

  name: str
  fn: Callable
  default_policy: str | None = None
  parse_policy: Callable[[str], Any] | None = None

  def check_policy(self, policy: str) -> None:
    """Refuses a policy string outside this augmentation's syntax (ValueError)."""
    if self.parse_policy is None:
      raise ValueError(f"{self.name} takes no policy; got {policy!r}. Pass policy=None.")
    self.parse_policy(policy)


REGISTRY: dict[str, Augmentation] = {}


def register(
  name: str, *, default_policy: str | None = None, parse_policy: Callable[[str], Any] | None = None
) -> Callable[[Callable], Callable]:
  """A decorator that registers an augmentation function under `name`, with its facts.

  Args:
    name: the name `get` finds it by.
    default_policy: its policy when none is given; None with `parse_policy` None: no policy.
    parse_policy: checks a policy string (raising ValueError); None: it takes no policy.

  Returns:
    The decorator, which returns the function unchanged.

  Raises:
    ValueError: `name` is registered already.
  """

  def add(fn: Callable) -> Callable:
    if name in REGISTRY:
      raise ValueError(f"An augmentation named {name!r} is registered already.")
    REGISTRY[name] = Augmentation(name, fn, default_policy, parse_policy)
    return fn

  return add


def lookup(name: str) -> Augmentation:
  """The registered augmentation `name`.

  Raises:
    ValueError: an unknown name, listing the valid ones.
  """
  if name not in REGISTRY:
    raise ValueError(f"Unknown augmentation {name!r}; valid: {sorted(REGISTRY)}.")
  return REGISTRY[name]


def check(name: str, policy: str | None = None, p: float | Iterable[float] | None = None) -> None:
  """The rules of an augmentation request, checked before anything is built or compiled.

  Args:
    name: a registered augmentation.
    policy: its policy string; None: its default.
    p: its probability, or the values a schedule of it takes (e.g. its smallest and largest);
      None: not checked here (a traced p cannot be; the augmentation checks a concrete one).

  Raises:
    ValueError: an unknown name, a policy outside the augmentation's syntax, or a p outside
      [0, 1]; each message lists the valid choices.
  """
  aug = lookup(name)
  if policy is not None:
    aug.check_policy(policy)
  values = () if p is None else (p,) if isinstance(p, int | float) else tuple(p)
  for value in values:
    check_probability_value(value)


def check_probability_value(value: float) -> None:
  """Refuses a probability outside [0, 1] (the one rule for every augmentation's p).

  Raises:
    ValueError: `value` is not in [0, 1].
  """
  if not 0.0 <= value <= 1.0:
    raise ValueError(f"The augmentation probability p must lie in [0, 1]; got {value:g}.")


class FactView(Mapping):
  """A read-only `{name: one fact}` view of the registry, current with every registration."""

  def __init__(self, fact: str):
    self._fact = fact

  def __getitem__(self, name: str):
    return getattr(REGISTRY[name], self._fact)

  def __iter__(self) -> Iterator[str]:
    return iter(REGISTRY)

  def __len__(self) -> int:
    return len(REGISTRY)

  def __repr__(self) -> str:
    return repr(dict(self))
