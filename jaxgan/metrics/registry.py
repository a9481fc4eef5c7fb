"""The metrics an `Evaluator` computes, found by name: one `Metric` record each, made by `register`
next to the metric's definition.

A record carries what the `Evaluator` needs to know of its metric: the names it is asked for by,
what it reads of the generated samples (the feature network's features or logits, or its own
reading of the images), whether it needs the real images' statistics, whether it is computed from
samples of requested classes, the data set it is restricted to, its settings, how it is computed
from the samples and how its protocol is described, and whether its key ranks checkpoints.

Example (a metric of one's own, found by `Evaluator` like the built-in ones):

  >>> import numpy as np
  >>> @register("mean_feature_test", reference=False)
  ... def mean_feature(ev, samples):
  ...   return {"mean_feature_test": float(np.mean(samples.feats))}
  >>> parse("fcd,mean_feature_test")
  ('frechet', 'mean_feature_test')
  >>> del REGISTRY["mean_feature_test"]

Imports nothing of JAX, and nothing of the metrics: every metric module imports this one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

# What a metric may read of each batch of generated samples through the feature network.
READS = ("features", "logits")


class Samples(NamedTuple):
  """What the Evaluator measured on the `n` unconditional samples, for `Metric.compute`.

  Attributes:
    n: the number of samples.
    feats: float32 `(n, d)`, the feature network's features; None when no metric reads them.
    logits: float32 `(n, classes)`; None when no metric reads them.
    own: the metric's own `measure` of each batch, in order (None for a metric without one).
  """

  n: int
  feats: np.ndarray | None
  logits: np.ndarray | None
  own: list | None


@dataclasses.dataclass(frozen=True)
class Metric:
  """One metric and the facts an `Evaluator` needs about it.

  Attributes:
    name: its name in `Evaluator.metrics` (e.g. 'frechet' for fcd and fid).
    compute: `compute(evaluator, samples) -> {key: float}` with `Samples`, the keys without the
      `<extractor>-<samples>-<reference>/` prefix; it reads the evaluator's `reference`,
      `settings` and `fd_name`. None for a conditional metric (`ConditionalMetrics` computes
      those from their own samples).
    aliases: the names it is asked for by; () for its name alone.
    reads: what it reads of each unconditional batch through the feature network, of `READS`.
    measure: `measure(evaluator, images) -> arrays` of each batch (leading axis the batch's
      rows), its own reading of the images (e.g. the digits of Stacked MNIST); None: none.
    reference: whether it needs the real images' statistics (`Evaluator.reference`).
    conditional: whether it is computed from samples of requested classes (class-conditional
      models), by `jaxgan.metrics.conditional.ConditionalMetrics`.
    dataset: the only data set it is defined on; None: any.
    settings: its keyword settings of `Evaluator` and their defaults.
    describe: `describe(settings) -> str`, its part of the protocol; None: nothing to add.
    primary: its key that ranks checkpoints (lower is better; `{fd}` stands for 'fid' or
      'fcd'); None: it ranks none.
    rank: among the metrics asked for with a `primary`, the lowest rank's key ranks checkpoints.
  """

  name: str
  compute: Callable[[Any, Samples], dict[str, float]] | None
  aliases: tuple[str, ...] = ()
  reads: tuple[str, ...] = ("features",)
  measure: Callable[[Any, np.ndarray], Any] | None = None
  reference: bool = True
  conditional: bool = False
  dataset: str | None = None
  settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  describe: Callable[[Mapping[str, Any]], str] | None = None
  primary: str | None = None
  rank: int = 0

  @property
  def names(self) -> tuple[str, ...]:
    """The names it is asked for by."""
    return self.aliases or (self.name,)


REGISTRY: dict[str, Metric] = {}


def register(name: str, **facts) -> Callable[[Callable | None], Callable | None]:
  """A decorator that registers `compute` as the metric `name`, with its facts (see `Metric`).

  Args:
    name: the metric's name.
    **facts: the other fields of `Metric`.

  Returns:
    The decorator, which returns the function unchanged.

  Raises:
    ValueError: a name already registered or asked for by another metric, or a read outside
      `READS`.
  """

  def add(compute):
    metric = Metric(name, compute, **facts)
    taken = {n for m in REGISTRY.values() for n in (m.name, *m.names)}
    clash = sorted(taken & {name, *metric.names})
    if clash:
      raise ValueError(f"Metric names {clash} are registered already.")
    bad = sorted(set(metric.reads) - set(READS))
    if bad:
      raise ValueError(f"Metric {name!r} reads {bad}; a metric reads any of {READS}.")
    REGISTRY[name] = metric
    return compute

  return add


def names() -> tuple[str, ...]:
  """Every name a metric is asked for by, in the order of registration."""
  return tuple(n for m in REGISTRY.values() for n in m.names)


def parse(metrics: str | Sequence[str]) -> tuple[str, ...]:
  """Metric names, checked and deduplicated: aliases as their metric (`fcd`, `fid` as 'frechet').

  Args:
    metrics: names from `names()`, as a sequence or a comma-separated string.

  Returns:
    The metrics' names (keys of `REGISTRY`) in order of first appearance.

  Raises:
    ValueError: an unknown name, or none; the message lists the valid ones.
  """
  if isinstance(metrics, str):
    metrics = [m.strip() for m in metrics.split(",") if m.strip()]
  by_name = {n: m.name for m in REGISTRY.values() for n in m.names}
  bad = [m for m in metrics if m not in by_name]
  if bad or not metrics:
    raise ValueError(f"Unknown metrics {bad or list(metrics)}; valid: {', '.join(by_name)}.")
  return tuple(dict.fromkeys(by_name[m] for m in metrics))


def settings() -> dict[str, Any]:
  """The keyword settings of every registered metric, with their defaults."""
  return {k: v for m in REGISTRY.values() for k, v in m.settings.items()}


def check_dataset(metrics: Sequence[str], dataset: str | None) -> None:
  """Refuses a metric restricted to another data set than `dataset`.

  Args:
    metrics: parsed names.
    dataset: the run's data set; None for in-memory reference images.

  Raises:
    ValueError: naming the metric, the data set it needs and the fix.
  """
  for name in metrics:
    need = REGISTRY[name].dataset
    if need is not None and dataset != need:
      raise ValueError(
        f"Metric {name!r} is computed on {need!r} only; the data set is {dataset!r}. Use "
        f"data.name={need!r}, or other metrics (e.g. eval.metrics='fcd,kid')."
      )
