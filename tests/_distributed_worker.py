"""One process of a multi-process data-parallel run on CPU, for tests/test_distributed.py.

    python tests/_distributed_worker.py OUT.npz [--coordinator 127.0.0.1:PORT --num_processes 2
                                                 --process_id 0]

Initialises JAX's distributed runtime (gloo collectives on CPU) when a coordinator is given,
trains the MLP WGAN-GP and an MLP GAN whose D has BatchNorm for a few steps on a mesh over every
device of every process, each process feeding only its own slice of each global batch through
`sharding.global_batch`, and saves the resulting parameters and statistics.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jaxgan.run import distributed  # noqa: E402  (imports JAX, but does not start its backend)
from jaxgan.step import sharding  # noqa: E402  (imports JAX, but does not start its backend)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("out")
  parser.add_argument("--coordinator", default=None)
  parser.add_argument("--num_processes", type=int, default=1)
  parser.add_argument("--process_id", type=int, default=0)
  parser.add_argument("--steps", type=int, default=6)
  args = parser.parse_args()
  distributed.initialize_distributed(args.coordinator, args.num_processes, args.process_id)

  import _sharded_worker as w
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp
  import numpy as np
  import optax

  from jaxgan import GAN, make_train_step
  from jaxgan.models import make_models

  assert jax.process_count() == args.num_processes, jax.process_count()
  mesh = sharding.make_mesh()
  results = {
    "process_count": jax.process_count(),
    "device_count": jax.device_count(),
    "local_device_count": jax.local_device_count(),
  }

  g, d = make_models("mlp", image_shape=(2,), g_hidden=(16,), d_hidden=(16, 16), d_norm="batch")
  opt = optax.sgd(1e-2, momentum=0.5)
  bn_gan = GAN(g, d, opt, opt, latent_shape=(4,))
  bn_step = make_train_step(bn_gan, loss="non_saturating", ema_decay=0.9)
  rng = np.random.default_rng(5)
  bn_batches = rng.normal(size=(args.steps, 16, 2)).astype(np.float32)

  gp_gan, gp_step, gp_batches = w.mlp_wgan_gp()
  for name, (gan, step, batches) in {
    "mlp_wgan_gp": (gp_gan, gp_step, gp_batches[: args.steps]),
    "mlp_bn": (bn_gan, bn_step, bn_batches),
  }.items():
    # Each process sees only its own slice of every global batch.
    local = np.stack([sharding.process_slice(b, mesh) for b in batches])
    results[f"{name}/local_rows"] = local.shape[1]
    init = jax.device_get(gan.init(jax.random.PRNGKey(0), jnp.zeros(local.shape[1:], jnp.float32)))
    state, metrics, hlo = w.run(step, init, local, mesh)
    for i, leaf in enumerate(
      jax.tree.leaves((state.g_params, state.d_params, state.g_vars, state.d_vars))
    ):
      results[f"{name}/leaf{i}"] = leaf
    results[f"{name}/d_loss"] = metrics["d_loss"]
    results[f"{name}/all_reduces"] = w.count_collectives(hlo)["all-reduce"]
  np.savez(args.out, **results)


if __name__ == "__main__":
  main()
