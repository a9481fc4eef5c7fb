"""The projected critic and the approximate R1 through a run config: refused before anything runs."""

import pytest

from jaxgan import config as config_lib
from jaxgan.errors import ConfigError


def _projected(**kwargs):
  c = config_lib.default_config()
  c.data.name = "cifar10_jpeg"
  c.model.name = "projected"
  c.model.d_norm = "spectral"
  for k, v in kwargs.items():
    c.model.kwargs[k] = v
  return c


def test_the_inception_backbone_is_never_scored_by_inception_features():
  c = _projected(backbone="inception")
  c.eval.metrics, c.eval.extractor = "fid", "inception"
  with pytest.raises(ConfigError, match=r"Kynkaanniemi et al. 2023.*eval.extractor='classifier'"):
    config_lib.validate(c)
  c.eval.metrics, c.eval.extractor = "fcd", "classifier"  # a network of its own: accepted
  config_lib.validate(c)
  # The classifier backbone is another architecture and seed than the FCD classifier.
  c = _projected(backbone="classifier")
  c.data.name = "mnist"
  c.eval.metrics = "fcd"
  config_lib.validate(c)


def test_layer_names_from_the_command_line_are_checked_by_validate():
  config_lib.validate(_projected(backbone="inception", layers="Mixed_5d,Mixed_6a"))
  with pytest.raises(
    ConfigError, match=r"config.model: .*no feature layers \['Mixed_9x'\].*Mixed_5b"
  ):
    config_lib.validate(_projected(backbone="inception", layers="Mixed_5d,Mixed_9x"))
  with pytest.raises(ConfigError, match="config.model: .*vgg"):
    config_lib.validate(_projected(backbone="vgg"))


def test_penalty_options_are_checked_by_validate():
  c = config_lib.default_config()
  c.data.name, c.model.d_norm = "mnist", "layer"
  c.loss.penalties = {"approx_r1": 2000.0}
  c.loss.penalty_options = {"sigma": 0.05}
  config_lib.validate(c)
  c.loss.penalty_options = {"sigma": 0.0}
  with pytest.raises(ConfigError, match=r"config.loss.penalty_options: .*sigma > 0"):
    config_lib.validate(c)
  c.loss.penalty_options = {"sigmaa": 0.1}
  with pytest.raises(
    ConfigError, match=r"config.loss.penalty_options \['sigmaa'\] are taken by none"
  ):
    config_lib.validate(c)


def test_a_backbone_that_cannot_be_built_for_the_data_is_refused_by_validate():
  # The classifier backbone reads 1 channel: none is trained for CIFAR-10.
  c = _projected(backbone="classifier")
  with pytest.raises(ConfigError, match=r"config.model.kwargs.backbone: .*'inception'"):
    config_lib.validate(c)
  with pytest.raises(ConfigError, match=r"resize_to >= 75"):
    config_lib.validate(_projected(backbone="inception", resize_to=4))
