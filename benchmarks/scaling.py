"""Step time of the data-parallel train step on 1, 2, 4 and 8 devices (same global batch).

    python benchmarks/scaling.py [--steps 10] [--devices 1,2,4,8]

On a CPU the devices are fake (`--xla_force_host_platform_device_count=8`, set here) and share the
machine's cores, so the step does not get faster with more devices: the table shows the overhead
of partitioning and of the collectives XLA inserts. (The train step constrains the latents it
draws to the 'data' axis, `sharding.shard_batch`: without that, an earlier version ran G in full
on every device, 1,053 vs 273 ms per DCGAN step on 8 devices.)

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
import optax  # noqa: E402

from jaxgan import GAN, make_train_step, sharding  # noqa: E402
from jaxgan.models import make_models  # noqa: E402


def workloads():
  adam = lambda: optax.adam(1e-4, b1=0.5, b2=0.9)
  g, d = make_models("mlp", image_shape=(2,), g_hidden=(256,) * 3, d_hidden=(256,) * 3,
                     output_activation="none")
  yield ("mlp wgan-gp (toy ring, 256x3, batch 256, n_critic 5)",
         GAN(g, d, adam(), adam(), latent_shape=(2,)),
         dict(loss="wgan", penalty="wgan_gp", n_critic=5), (5 * 256, 2))
  g, d = make_models("dcgan", image_shape=(28, 28, 1), width=32)
  yield ("dcgan BatchNorm (28x28x1, width 32, batch 64)",
         GAN(g, d, adam(), adam(), latent_shape=(100,)),
         dict(loss="non_saturating"), (64, 28, 28, 1))


def collectives(hlo: str) -> str:
  count = lambda op: len(re.findall(rf"\s{op}(?:-start)?\(", hlo))
  return f"{count('all-reduce')}/{count('all-gather')}/{count('collective-permute')}"


def bench(gan, step_kwargs, batch_shape, n_devices, steps):
  mesh = sharding.make_mesh(jax.devices()[:n_devices])
  train_step = make_train_step(gan, **step_kwargs)
  state = gan.init(jax.random.PRNGKey(0), jnp.zeros((8, *batch_shape[1:])))
  state = sharding.replicate(jax.tree.map(np.asarray, state), mesh)
  batch = sharding.global_batch(
      np.random.default_rng(0).normal(size=batch_shape).astype(np.float32), mesh)
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
  print(f"jax {jax.__version__}, {jax.device_count()} {jax.devices()[0].platform} devices, "
        f"{os.cpu_count()} cores")
  print(f"{'workload':52s} {'devices':>7s} {'ms/step':>9s} {'vs 1':>6s} "
        f"{'compile s':>9s} {'AR/AG/CP':>9s}")
  for name, gan, step_kwargs, batch_shape in workloads():
    base = None
    for n in counts:
      ms, compile_s, coll = bench(gan, step_kwargs, batch_shape, n, args.steps)
      base = base or ms
      print(f"{name:52s} {n:7d} {ms:9.1f} {ms / base:6.2f} {compile_s:9.1f} {coll:>9s}",
            flush=True)


if __name__ == "__main__":
  main()
