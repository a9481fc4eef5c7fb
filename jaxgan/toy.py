"""Train an MLP GAN on a 2-D mixture with any loss and report mode coverage.

    python -m jaxgan.toy --mixture=ring --loss=non_saturating --steps=10000
    python -m jaxgan.toy --mixture=grid --loss=wgan --penalty=wgan_gp --n_critic=5

The data are sampled inside the compiled program, and `steps_per_call` train steps run per call
(a `lax.scan` over the same train step), so the host is out of the loop and a 10k-step run takes
about a CPU minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import optax

from jaxgan import losses as losses_lib
from jaxgan import penalties as penalties_lib
from jaxgan.data import toy as toy_data
from jaxgan.metrics.mode_coverage import mode_coverage
from jaxgan.models import make_models
from jaxgan.state import GAN, GANState
from jaxgan.train import make_train_step


@dataclasses.dataclass(frozen=True)
class ToyConfig:
  mixture: str = "ring"
  loss: str = "non_saturating"
  penalty: str | None = None
  penalty_weight: float = 10.0
  n_critic: int = 1
  steps: int = 10_000
  batch_size: int = 256
  latent_dim: int = 2
  hidden: tuple[int, ...] = (256, 256, 256)
  lr: float = 2e-4
  b1: float = 0.5
  b2: float = 0.999
  ema_decay: float = 0.99
  weight_clip: float | None = None
  seed: int = 0
  eval_samples: int = 2500
  steps_per_call: int = 500


def runner_config(mixture: str):
  """The same experiment as a `jaxgan.main` config (ToyConfig's defaults are the one source)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from jaxgan.loop import default_config  # pylint: disable=g-import-not-at-top

  toy = ToyConfig(mixture=mixture)
  c = default_config()
  c.dataset = f"toy_{mixture}"
  c.model = "mlp"
  c.latent_dim = toy.latent_dim
  c.model_kwargs = ml_collections.ConfigDict(
      dict(g_hidden=toy.hidden, d_hidden=toy.hidden, output_activation="none"))
  c.loss = toy.loss
  c.batch_size = toy.batch_size
  c.g_lr = c.d_lr = toy.lr
  c.b1, c.b2 = toy.b1, toy.b2
  c.ema_decay = toy.ema_decay
  c.steps = toy.steps
  c.log_every = 500
  c.eval_every = c.sample_every = 1000
  c.eval_samples = toy.eval_samples
  c.checkpoint_every = 2000
  return c


def build(config: ToyConfig):
  """Returns (gan, mixture, state, train_many) for a toy config.

  `train_many(state, key) -> (state, metrics)` runs `steps_per_call` train steps; the metrics are
  those of the last step.
  """
  mixture = toy_data.get(config.mixture)
  g, d = make_models("mlp", image_shape=(2,), g_hidden=config.hidden, d_hidden=config.hidden,
                     output_activation="none")
  adam = lambda: optax.adam(config.lr, b1=config.b1, b2=config.b2)
  gan = GAN(g, d, adam(), adam(), latent_shape=(config.latent_dim,))
  train_step = make_train_step(
      gan, loss=config.loss, penalty=config.penalty, penalty_weight=config.penalty_weight,
      n_critic=config.n_critic, ema_decay=config.ema_decay, weight_clip=config.weight_clip)
  init_key, _ = jax.random.split(jax.random.PRNGKey(config.seed))
  state = gan.init(init_key, jnp.zeros((config.batch_size, 2)))

  def train_many(state: GANState, key: jax.Array):
    def body(state, _):
      data_key = jax.random.fold_in(jax.random.fold_in(key, 1), state.step)
      batch = mixture.sample(data_key, config.n_critic * config.batch_size)
      return train_step(state, batch, key)

    state, metrics = jax.lax.scan(body, state, length=config.steps_per_call)
    return state, jax.tree.map(lambda m: m[-1], metrics)

  return gan, mixture, state, jax.jit(train_many, donate_argnums=0)


def evaluate(gan: GAN, mixture, state: GANState, key: jax.Array, n: int = 2500) -> dict:
  samples = gan.sample(state, key, n)  # from the EMA generator
  return mode_coverage(samples, mixture.modes, mixture.std)


def train_toy(config: ToyConfig, *, log=None) -> tuple[dict, GANState, GAN]:
  """Trains on the mixture; returns (final mode-coverage metrics, state, gan)."""
  if config.steps % config.steps_per_call:
    raise ValueError(f"steps={config.steps} must be a multiple of steps_per_call="
                     f"{config.steps_per_call}.")
  gan, mixture, state, train_many = build(config)
  key = jax.random.PRNGKey(config.seed + 1)
  eval_key = jax.random.PRNGKey(config.seed + 2)
  for _ in range(config.steps // config.steps_per_call):
    state, metrics = train_many(state, key)
    if log is not None:
      log(int(state.step), {k: float(v) for k, v in metrics.items()},
          evaluate(gan, mixture, state, eval_key, config.eval_samples))
  return evaluate(gan, mixture, state, eval_key, config.eval_samples), state, gan


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  fields = {f.name: f for f in dataclasses.fields(ToyConfig)}
  for name, f in fields.items():
    if name == "hidden":
      parser.add_argument("--hidden", type=lambda s: tuple(int(v) for v in s.split(",")),
                          default=f.default)
    elif name in ("penalty", "weight_clip"):
      parser.add_argument(f"--{name}", type=str if name == "penalty" else float, default=None)
    else:
      parser.add_argument(f"--{name}", type=type(f.default), default=f.default)
  parser.add_argument("--json", action="store_true", help="print the final metrics as JSON")
  args = vars(parser.parse_args(argv))
  as_json = args.pop("json")
  config = ToyConfig(**args)
  losses_lib.get(config.loss)  # fail early with the list of valid names
  if config.penalty is not None:
    penalties_lib.get(config.penalty)

  def log(step, metrics, coverage):
    if not as_json:
      print(f"step {step:6d}  d_loss {metrics['d_loss']:8.4f}  g_loss {metrics['g_loss']:8.4f}  "
            f"modes {coverage['modes_captured']:4.0f}  high-quality "
            f"{100 * coverage['high_quality']:5.1f}%  mean dist {coverage['mean_distance']:.4f}",
            flush=True)

  start = time.perf_counter()
  result, _, _ = train_toy(config, log=log)
  result = dict(result, seconds=round(time.perf_counter() - start, 1),
                **{k: v for k, v in dataclasses.asdict(config).items()
                   if k in ("mixture", "loss", "penalty", "steps", "seed")})
  print(json.dumps(result) if as_json else
        f"{config.mixture}: {result['modes_captured']:.0f}/{len(toy_data.get(config.mixture).modes)}"
        f" modes, {100 * result['high_quality']:.1f}% high-quality, {result['seconds']} s")


if __name__ == "__main__":
  main()
