"""The model families by name: each family's module registers its builder with its facts.

A family is one builder function decorated with `register` in its own module of
`jaxgan.models` (every module of the package is imported with it, so a new file is all a new
family needs). The registration carries what `make_models`, the conditioning checks and the run
must know of it: the image sizes it builds, its conditionings, its default discriminator norm;
its keyword arguments and their defaults are the builder's signature.

  >>> import jaxgan.models
  >>> family = get('dcgan')
  >>> family.sizes, family.g_conditionings, family.d_norm
  ((28, 32, 64, 128), ('cbn',), 'batch')
  >>> family.kwargs
  ('g_width', 'd_width', 'sn_steps', 'minibatch_std', 'conv')
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jaxgan.models import layers

# The builder's arguments that `make_models` gives every family; the others are its own.
COMMON_ARGUMENTS = ('image_shape', 'width', 'd_norm', 'dtype')

_FAMILIES: dict[str, Family] = {}


@dataclasses.dataclass(frozen=True)
class Family:
  """A model family: its builder and the facts checked before it builds.

  Attributes:
    name: the name `make_models` and `config.model.name` take.
    build: `build(image_shape, *, width, d_norm, dtype, **kwargs) -> (generator,
      discriminator)`, unconditional unbound modules; `make_models` has checked the image shape
      (against `sizes`), `d_norm` (one of `layers.NORMS`, the family's default for None) and
      `dtype`, and sets the conditional fields (`num_classes`, `conditioning` and, with 'cbn',
      `shared_embedding`) by `clone` afterwards. Its keyword-only arguments beyond
      `COMMON_ARGUMENTS` are the family's keywords; every family takes `minibatch_std` (the run
      always passes it).
    sizes: the sides of the square `(size, size, channels)` images it builds; None: samples of
      any shape.
    g_conditionings: the generator's conditionings (`jaxgan.models.conditioning`), the default
      first.
    d_conditionings: the discriminator's, the default first.
    d_norm: the discriminator's default normalisation, one of `layers.NORMS`; 'batch' means the
      default critic has BatchNorm, which gradient penalties refuse.
  """

  name: str
  build: Callable[..., tuple[Any, Any]]
  sizes: tuple[int, ...] | None
  g_conditionings: tuple[str, ...]
  d_conditionings: tuple[str, ...]
  d_norm: str

  @property
  def kwargs(self) -> tuple[str, ...]:
    """The keywords `make_models` passes on to `build`, in the builder's order."""
    params = inspect.signature(self.build).parameters.values()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in params if p.kind in kinds and p.name not in COMMON_ARGUMENTS)

  def check_kwargs(self, kwargs: Mapping[str, Any]) -> None:
    """Checks keyword arguments for `build` against the family's own (`kwargs`).

    Raises:
      TypeError: a keyword the family does not take (the message lists those it takes).
    """
    unknown = sorted(set(kwargs) - set(self.kwargs))
    if unknown:
      raise TypeError(
        f'make_models({self.name!r}) got unexpected keyword arguments {unknown}; '
        f'it accepts {list(self.kwargs)}'
      )

  def check_image_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Checks the shape of one sample against the sizes the family builds.

    Args:
      image_shape: one sample's shape without the batch axis.

    Returns:
      `image_shape` as a tuple of Python ints.

    Raises:
      ValueError: an empty shape or a size below 1; for a family with `sizes`, a shape that is
        not `(size, size, channels)` with size in `sizes` (the message lists them and names
        config.data.resolution and config.data.pad_to) and channels >= 1.
    """
    image_shape = tuple(int(s) for s in image_shape)
    if self.sizes is None:
      if not image_shape or min(image_shape) < 1:
        raise ValueError(f'{self.name} needs an image_shape of positive sizes; got {image_shape}')
      return image_shape
    if len(image_shape) != 3 or image_shape[0] != image_shape[1]:
      raise ValueError(
        f'{self.name} needs a square image_shape (size, size, channels) with size in '
        f"{', '.join(map(str, self.sizes))}; got {image_shape}"
      )
    layers.check_image_size(self.name, image_shape[0], self.sizes)
    if image_shape[2] < 1:
      raise ValueError(f'{self.name} supports any channel count >= 1; got {image_shape[2]}')
    return image_shape


def register(
  name: str,
  *,
  sizes: tuple[int, ...] | None,
  g_conditionings: tuple[str, ...],
  d_conditionings: tuple[str, ...],
  d_norm: str,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
  """Registers the decorated builder as the model family `name` (see `Family`).

  Args:
    name: the family's name.
    sizes: the square image sides it builds; None: any sample shape.
    g_conditionings: G's conditionings, the default first.
    d_conditionings: D's conditionings, the default first.
    d_norm: D's default normalisation.

  Returns:
    A decorator that registers the builder and returns it unchanged.

  Raises:
    ValueError: `name` is already registered, or `d_norm` is not one of `layers.NORMS`.
  """
  layers.check_norm(d_norm, name)

  def decorator(build: Callable[..., Any]) -> Callable[..., Any]:
    if name in _FAMILIES:
      raise ValueError(f'model {name!r} is registered twice ({_FAMILIES[name].build.__module__})')
    sides = None if sizes is None else tuple(sizes)
    conditionings = tuple(g_conditionings), tuple(d_conditionings)
    _FAMILIES[name] = Family(name, build, sides, *conditionings, d_norm)
    return build

  return decorator


def names() -> tuple[str, ...]:
  """The registered families' names, sorted."""
  return tuple(sorted(_FAMILIES))


def get(name: str) -> Family:
  """The family registered as `name`.

  Raises:
    ValueError: no family has that name (the message lists them).
  """
  if name not in _FAMILIES:
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(map(repr, names()))}")
  return _FAMILIES[name]


class Facts(Mapping):
  """One fact of every family, by name: a read-only mapping of the live registry.

  >>> import jaxgan.models
  >>> Facts('d_norm')['resnet']
  'spectral'
  """

  def __init__(self, fact: str):
    self._fact = fact

  def __getitem__(self, name: str) -> Any:
    if name not in _FAMILIES:
      raise KeyError(name)
    return getattr(_FAMILIES[name], self._fact)

  def __iter__(self) -> Iterator[str]:
    return iter(names())

  def __len__(self) -> int:
    return len(_FAMILIES)

  def __repr__(self) -> str:
    return repr(dict(self))
