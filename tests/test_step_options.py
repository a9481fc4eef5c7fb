"""Each rule of the train step's options, checked once (`jaxgan.step.options`): the step's message
names its argument, a config's names the field that sets it, and both come from the one check."""

import optax
import pytest

from jaxgan import GAN, augment, make_train_step
from jaxgan import config as config_lib
from jaxgan.errors import ConfigError
from jaxgan.models import make_models
from jaxgan.step import options


def _gan(num_classes=0, pack=1):
  g, d = make_models(
    "mlp", image_shape=(4, 4, 3), g_hidden=(8,), d_hidden=(8,), num_classes=num_classes
  )
  return GAN(g, d, optax.adam(1e-3), optax.adam(1e-3), (3,), pack=pack, num_classes=num_classes)


_ADA = augment.get("ada")

# (make_train_step's keywords, the step's message, config overrides, the config's message)
RULES = [
  (
    dict(n_critic=0),
    "n_critic must be a positive integer; got 0.",
    {"loss.n_critic": 0},
    "config.loss.n_critic must be a positive integer; got 0.",
  ),
  (
    dict(penalty_every=0),
    "penalty_every must be a positive integer; got 0.",
    {"loss.penalty_every": 0},
    "config.loss.penalty_every must be a positive integer; got 0.",
  ),
  (
    dict(ada_interval=0),
    "ada_interval must be a positive integer; got 0.",
    {"augment.ada_interval": 0},
    "config.augment.ada_interval must be a positive integer; got 0.",
  ),
  (
    dict(ema_decay=1.0),
    "ema_decay must lie in [0, 1); got 1.0.",
    {"optim.ema_decay": 1.0},
    "config.optim.ema_decay must lie in [0, 1); got 1.0.",
  ),
  (
    dict(lecam_decay=1.0),
    "lecam_decay must lie in [0, 1); got 1.0.",
    {"loss.lecam_decay": 1.0},
    "config.loss.lecam_decay must lie in [0, 1); got 1.0.",
  ),
  (
    dict(class_weight=-1.0),
    "class_weight must be a number >= 0 or a schedule; got -1.0.",
    {"loss.class_weight": -1.0},
    "config.loss.class_weight must be a number >= 0 or a schedule; got -1.0.",
  ),
  (
    dict(augment=_ADA, ada_target=1.5),
    "ada_target must lie in (0, 1) (ADA: 0.6); got 1.5.",
    {"augment.name": "ada", "augment.ada_target": 1.5},
    "config.augment.ada_target must lie in (0, 1) (ADA: 0.6); got 1.5.",
  ),
  (
    dict(ada_target=0.6),
    "ada_target adapts the probability of an augmentation: pass augment too.",
    {"augment.ada_target": 0.6},
    "config.augment.ada_target adapts the probability of an augmentation: pass "
    "config.augment.name too.",
  ),
  (
    dict(augment=_ADA, ada_target=0.6, augment_p=0.5),
    "ada_target makes ADA adapt p from 0: leave augment_p unset, or unset ada_target for a "
    "fixed or scheduled p.",
    {"augment.name": "ada", "augment.ada_target": 0.6, "augment.p": 0.5},
    "config.augment.ada_target makes ADA adapt p from 0: leave config.augment.p unset, or unset "
    "config.augment.ada_target for a fixed or scheduled p.",
  ),
  (
    dict(ada_kimg=0.0),
    "ada_kimg must be > 0; got 0.0.",
    {"augment.ada_kimg": 0.0},
    "config.augment.ada_kimg must be > 0; got 0.0.",
  ),
  (
    dict(penalty="r1", penalties={"r1": 1.0}),
    "penalty='r1' is also in penalties; give it once.",
    {"loss.penalty": "r1", "loss.penalties": {"r1": 1.0}},
    "config.loss.penalty='r1' is also in config.loss.penalties; give it once.",
  ),
]


@pytest.mark.parametrize("kwargs,message,overrides,config_message", RULES)
def test_a_rule_is_the_steps_and_the_configs(kwargs, message, overrides, config_message):
  with pytest.raises(options.OptionError) as e:
    make_train_step(_gan(), **kwargs)
  assert str(e.value) == message
  config = config_lib.default_config()
  for path, value in overrides.items():
    section, _, name = path.rpartition(".")
    config[section][name] = value
  with pytest.raises(ConfigError) as e:
    config_lib.validate(config)
  assert str(e.value) == config_message


def test_the_class_conditioning_rule_names_both_options():
  gan = _gan(num_classes=3)
  packed = GAN(gan.generator, gan.discriminator, gan.g_optimizer, gan.d_optimizer, (3,), 2, 3)
  with pytest.raises(options.OptionError, match=r"\(num_classes=3\) cannot judge packs \(pack=2\)"):
    make_train_step(packed)
  config = config_lib.default_config()
  config.model.num_classes, config.model.pack = 10, 2
  with pytest.raises(
    ConfigError, match=r"\(config.model.num_classes=10\).*Use config.model.pack=1"
  ):
    config_lib.validate(config)


def test_an_option_error_keeps_dollars_and_unnamed_options():
  e = options.OptionError("$n_critic got '$$x'")
  assert str(e) == "n_critic got '$x'"
  assert e.naming({"n_critic": "config.loss.n_critic"}) == "config.loss.n_critic got '$x'"
  with pytest.raises(options.OptionError, match=r"got '\$1'"):
    options.check_options(n_critic="$1")
