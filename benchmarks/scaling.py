"""Step time of the data-parallel train step on 1, 2, 4 and 8 devices (same global batch).

    python benchmarks/scaling.py [--steps 10] [--devices 1,2,4,8]

On a CPU the devices are fake (`--xla_force_host_platform_device_count=8`, set here) and share the
machine's cores, so the step does not get faster with more devices: the table shows the overhead
of partitioning and of the collectives XLA inserts. A partitioning mistake shows as a step that
grows with the device count (e.g. G run in full on every device when the latents it draws are not
constrained to the 'data' axis, `sharding.shard_batch`).

Columns: ms per step (median over --steps calls, after compiling), compile seconds and the
collectives in the compiled step (all-reduce / all-gather / collective-permute).
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import argparse  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan.config import default_config  # noqa: E402
from jaxgan.run.build import build_gan, build_train_step  # noqa: E402
from jaxgan.step import sharding  # noqa: E402


def workloads():
  """(name, config, image_shape) of each measured workload, built by the loop's own builder."""
  c = default_config()
  c.data.name, c.data.batch_size = "toy_ring", 256
  c.model.name, c.model.latent_dim = "mlp", 2
  c.model.kwargs.g_hidden = c.model.kwargs.d_hidden = (256,) * 3
  c.model.kwargs.output_activation = "none"
  c.loss.name, c.loss.penalty, c.loss.n_critic = "wgan", "wgan_gp", 5
  c.optim.g_lr = c.optim.d_lr = 1e-4
  c.optim.b1, c.optim.b2 = 0.5, 0.9
  yield "mlp wgan-gp (toy ring, 256x3, batch 256, n_critic 5)", c, (2,)
  c = default_config()
  c.data.name, c.data.batch_size = "mnist", 64
  c.model.name, c.model.width = "dcgan", 32
  c.optim.g_lr = c.optim.d_lr = 1e-4
  c.optim.b1, c.optim.b2 = 0.5, 0.9
  yield "dcgan BatchNorm (28x28x1, width 32, batch 64)", c, (28, 28, 1)


def collectives(hlo: str) -> str:
  count = lambda op: len(re.findall(rf"\s{op}(?:-start)?\(", hlo))
  return f"{count('all-reduce')}/{count('all-gather')}/{count('collective-permute')}"


def bench(config, image_shape, n_devices, steps):
  mesh = sharding.make_mesh(jax.devices()[:n_devices])
  gan = build_gan(config, image_shape)
  train_step = build_train_step(config, gan)
  batch_shape = (config.loss.n_critic * config.data.batch_size, *image_shape)
  state = gan.init(jax.random.PRNGKey(0), jnp.zeros((8, *batch_shape[1:])))
  state = sharding.replicate(jax.tree.map(np.asarray, state), mesh)
  batch = sharding.global_batch(
    np.random.default_rng(0).normal(size=batch_shape).astype(np.float32), mesh
  )
  key = jax.random.PRNGKey(1)
  t = time.perf_counter()
  compiled = sharding.jit_train_step(train_step, mesh).lower(state, batch, key).compile()
  compile_s = time.perf_counter() - t
  for _ in range(2):
    state, metrics = compiled(state, batch, key)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t)
  return 1e3 * float(np.median(times)), compile_s, collectives(compiled.as_text())


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--devices", default="1,2,4,8")
  args = parser.parse_args()
  counts = [int(n) for n in args.devices.split(",")]
  print(
    f"jax {jax.__version__}, {jax.device_count()} {jax.devices()[0].platform} devices, "
    f"{os.cpu_count()} cores"
  )
  print(
    f"{'workload':52s} {'devices':>7s} {'ms/step':>9s} {'vs 1':>6s} "
    f"{'compile s':>9s} {'AR/AG/CP':>9s}"
  )
  for name, config, image_shape in workloads():
    base = None
    for n in counts:
      ms, compile_s, coll = bench(config, image_shape, n, args.steps)
      base = base or ms
      print(f"{name:52s} {n:7d} {ms:9.1f} {ms / base:6.2f} {compile_s:9.1f} {coll:>9s}", flush=True)


if __name__ == "__main__":
  main()
