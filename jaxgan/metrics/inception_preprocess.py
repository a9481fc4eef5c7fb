"""The FID Inception network's input protocols: re-exported from
`jaxgan.models.inception_preprocess`, where they live beside the network."""

from jaxgan.models.inception_preprocess import (  # noqa: F401
  TF1_RANGE,
  _rgb,
  preprocess,
  preprocess_tf1,
  tf1_resize_matrix,
)

__all__ = ["TF1_RANGE", "preprocess", "preprocess_tf1", "tf1_resize_matrix"]
