"""Pretrained weights for the feature-network critic's backbone, given to D before `GAN.init`.

This lives in the run layer because the weights come from the data and the metrics: the
'classifier' backbone is a `ResidualClassifier` jaxgan trains on the run's data set and caches
(`jaxgan.metrics.classifier_cache.cached_backbone`), the 'inception' backbone the published FID
Inception weights (`jaxgan.metrics.inception.load_inception`). The models may import neither
(tests/test_layers.py), so `jaxgan.models.feature_critic.FeatureCritic` only takes the weights as
an attribute, and the builder (`jaxgan.run.build.build_gan`) hands them over here.
"""

from __future__ import annotations

import os
from typing import Any

from jaxgan.models import backbones as backbones_lib
from jaxgan.models.feature_critic import FeatureCritic


def load_backbone_weights(
  name: str,
  dataset: str | None = None,
  *,
  critic: FeatureCritic | None = None,
  cache_dir: str | os.PathLike | None = None,
  data_dir=None,
  source_dir=None,
  inception_path: str | os.PathLike | None = None,
  log_fn=None,
) -> dict[str, Any]:
  """A backbone's pretrained variables, checked against the shapes the critic's init makes.

  Args:
    name: 'classifier' (the cached `ResidualClassifier` of `dataset`, trained on first use as
      the FCD classifier is) or 'inception' (the published FID weights; their `fc` head dropped).
    dataset: the run's data set, for 'classifier' ('mnist', 'fashion_mnist', 'stacked_mnist').
    critic: the `FeatureCritic` the weights are for: only the variables its layers read are
      kept, and their shapes are checked; None: all of the backbone's layers.
    cache_dir: jaxgan's cache (None: the default), for 'classifier'.
    data_dir: prepared data sets, for training the classifier.
    source_dir: the original data files, for training the classifier.
    inception_path: the Inception weights file (None: `inception_weights.find_weights()`).
    log_fn: receives the classifier cache's line; None: `logging.info`.

  Returns:
    Nested dicts of NumPy arrays, the backbone module's variables (`{'params': ...}`, and
    `'batch_stats'` for Inception), for `FeatureCritic(backbone_weights=...)`.

  Raises:
    ValueError: an unknown backbone, 'classifier' without a data set it caches a classifier
      for, or weights whose structure or shapes do not fit the backbone (naming them).
    jaxgan.metrics.inception_weights.MissingWeightsError: no Inception weights found.
  """
  spec = backbones_lib.get(name)
  if name == "classifier":
    from jaxgan.metrics import classifier_cache  # pylint: disable=g-import-not-at-top

    if dataset is None:
      raise ValueError("the 'classifier' backbone is trained on the run's data set: pass dataset")
    clf = classifier_cache.cached_backbone(
      dataset, cache_dir=cache_dir, data_dir=data_dir, source_dir=source_dir, log_fn=log_fn
    )
    if clf.meta.get("arch") != "residual":
      raise ValueError(f"the cached backbone {clf.meta} is not a ResidualClassifier")
    weights = {"params": clf.params}
  else:
    from jaxgan.metrics import inception  # pylint: disable=g-import-not-at-top

    variables = inception.load_inception(inception_path, conv="lax").variables
    params = {k: v for k, v in variables["params"].items() if k != "fc"}
    weights = {"params": params, "batch_stats": variables["batch_stats"]}
  layers = spec.layers if critic is None else critic.layer_names
  size = spec.min_size
  if critic is not None and (critic.resize_to or spec.default_size):
    size = max(size, critic.resize_to or spec.default_size)
  return backbones_lib.select_weights(weights, spec.init_shapes(layers, size), f"{name!r}")


def with_backbone_weights(discriminator: Any, config) -> Any:
  """D with its backbone's pretrained weights when it is a `FeatureCritic` that wants them.

  A `FeatureCritic` built with `pretrained=False` (tests, ablations), or one already holding
  weights, is returned as it is, as is any other discriminator.

  Args:
    discriminator: D from `make_models`.
    config: the run config (`data.name`, `run.data_dir`, `run.source_dir`).

  Returns:
    `discriminator.clone(backbone_weights=...)`, or `discriminator`.
  """
  d = discriminator
  if not isinstance(d, FeatureCritic) or not d.pretrained or d.backbone_weights is not None:
    return d
  weights = load_backbone_weights(
    d.backbone,
    config.data.name,
    critic=d,
    data_dir=config.run.get("data_dir"),
    source_dir=config.run.get("source_dir"),
  )
  return d.clone(backbone_weights=weights)
