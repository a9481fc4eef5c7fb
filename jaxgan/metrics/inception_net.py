"""The FID InceptionV3 network: re-exported from `jaxgan.models.inception_net`, where it lives.

The network is an architecture (the feature-network critic uses it as a backbone too), so its
definition moved to the models layer; every name the FID code and its tests import from here
keeps working.
"""

# Every public name, and the private helpers some callers reached for.
from jaxgan.models.inception_net import (  # noqa: F401
  MIXED_BLOCKS,
  NUM_CLASSES,
  TF1_RANGE,
  BasicConv2d,
  FIDInceptionA,
  FIDInceptionC,
  FIDInceptionE,
  FoldedConv,
  FoldedPointwise,
  InceptionB,
  InceptionD,
  InceptionV3,
  _avg_pool_same,
  _convolve,
  _max_pool_s2,
  _pair,
  fold_batch_norm,
  preprocess,
  preprocess_tf1,
  tf1_resize_matrix,
)
