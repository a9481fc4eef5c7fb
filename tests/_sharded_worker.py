"""Runs in a subprocess with 8 fake CPU devices; prints one JSON object of results for
tests/test_sharding.py (the parent process has already fixed its own device count).

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/_sharded_worker.py
"""

from __future__ import annotations

import json
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgan import GAN, make_train_step, penalties
from jaxgan.models import layers, make_models
from jaxgan.step import sharding

STEPS = 20


def mlp_wgan_gp():
  g, d = make_models(
    "mlp", image_shape=(2,), g_hidden=(32, 32), d_hidden=(32, 32), output_activation="none"
  )
  # SGD with momentum rather than Adam: Adam's first steps move every parameter by about the
  # learning rate whatever its gradient's size, so a gradient that cancels analytically (here a
  # D bias entry: -4e-9 on one device, 0 on eight) becomes a 3e-4 parameter difference. SGD keeps
  # gradient differences at their own (rounding) size, which is what this comparison is about.
  opt = optax.sgd(1e-2, momentum=0.5)
  gan = GAN(g, d, opt, opt, latent_shape=(4,))
  step = make_train_step(gan, loss="wgan", penalty="wgan_gp", n_critic=2, ema_decay=0.9)
  batches = np.random.default_rng(0).normal(size=(STEPS, 2 * 16, 2)).astype(np.float32)
  return gan, step, batches


def dcgan_bn():
  g, d = make_models("dcgan", image_shape=(28, 28, 1), latent_dim=8, width=8)  # D: BatchNorm
  gan = GAN(g, d, optax.adam(2e-4, b1=0.5), optax.adam(2e-4, b1=0.5), latent_shape=(8,))
  step = make_train_step(gan, loss="non_saturating", ema_decay=0.9)
  batches = np.tanh(np.random.default_rng(1).normal(size=(STEPS, 16, 28, 28, 1))).astype(np.float32)
  return gan, step, batches


def conditional_projection():
  # Class-conditional: labels concatenated to z, a spectrally normalised projection D, R1 closed
  # over the labels (an MLP: the labels' path at a fraction of a convolutional compile).
  g, d = make_models(
    "mlp",
    image_shape=(4, 4, 1),
    g_hidden=(16,),
    d_hidden=(16, 16),
    d_norm="spectral",
    num_classes=10,
  )
  opt = optax.sgd(1e-2, momentum=0.5)  # as mlp_wgan_gp: differences stay at rounding size
  gan = GAN(g, d, opt, opt, latent_shape=(100,), num_classes=10)
  step = make_train_step(gan, loss="hinge", penalty="r1", penalty_weight=1.0, ema_decay=0.9)
  rng = np.random.default_rng(2)
  images = np.tanh(rng.normal(size=(STEPS, 16, 4, 4, 1))).astype(np.float32)
  labels = rng.integers(0, 10, size=(STEPS, 16)).astype(np.int32)
  return gan, step, [{"image": x, "label": y} for x, y in zip(images, labels, strict=True)]


def _global(batch, mesh):
  return jax.tree.map(lambda x: sharding.global_batch(x, mesh), batch)


def label_pairing(mesh) -> bool:
  """Each device's shard of the labels belongs to its shard of the images."""
  labels = np.random.default_rng(3).permutation(16).astype(np.int32) % 10
  images = np.broadcast_to(labels[:, None, None, None], (16, 2, 2, 1)).astype(np.float32)
  batch = _global({"image": images, "label": labels}, mesh)
  image_shards = {s.device: s for s in batch["image"].addressable_shards}
  ok = len(image_shards) == 8
  for s in batch["label"].addressable_shards:
    x = image_shards[s.device]
    ok &= s.index[0] == x.index[0] and np.array_equal(np.asarray(x.data)[:, 0, 0, 0], s.data)
  return bool(ok)


def run(train_step, init, batches, mesh):
  """STEPS steps on `mesh` from the host state `init` and the same keys.

  Returns:
    (host state, host metrics of the last step, compiled HLO).
  """
  state = sharding.replicate(init, mesh)
  key = jax.random.PRNGKey(1)
  # Compiled ahead of time, once: the same executable runs every step and gives the HLO.
  step_fn = (
    sharding.jit_train_step(train_step, mesh).lower(state, _global(batches[0], mesh), key).compile()
  )
  for b in batches:
    state, metrics = step_fn(state, _global(b, mesh), key)
  return jax.device_get(state), jax.device_get(metrics), step_fn.as_text()


COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")


def count_collectives(hlo: str) -> dict[str, int]:
  """Collective instructions in a compiled HLO module (async pairs counted once, at -start)."""
  counts = {}
  for op in COLLECTIVES:
    # `%name = type op(` or `%name = type op-start(` (the matching -done ops are not counted).
    counts[op] = len(re.findall(rf"\s{op}(?:-start)?\(", hlo))
  return counts


def largest_all_reduce(hlo: str) -> int:
  """The most tensors one all-reduce instruction sums (a tuple all-reduce sums several)."""
  sizes = [1]
  for line in hlo.splitlines():
    m = re.search(r"=\s*(\(.*?\)|\S+)\s+all-reduce(?:-start)?\(", line)
    if m:
      sizes.append(m.group(1).count("[") if m.group(1).startswith("(") else 1)
  return max(sizes)


def max_diff(a, b) -> float:
  return max(
    float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  )


def max_abs(a) -> float:
  return max(float(np.max(np.abs(x))) for x in jax.tree.leaves(a))


def main():
  assert jax.device_count() == 8, jax.devices()
  mesh8 = sharding.make_mesh()
  mesh1 = sharding.make_mesh(jax.devices()[:1])
  out = {"devices": jax.device_count()}

  # 1. The same steps on 8 devices and on 1 give the same state.
  builders = (("mlp_wgan_gp", mlp_wgan_gp), ("dcgan_bn", dcgan_bn))
  builders += (("conditional_projection", conditional_projection),)
  for name, build in builders:
    gan, step, batches = build()
    example = jnp.asarray(batches[0]["image"] if isinstance(batches[0], dict) else batches[0])
    init = jax.device_get(gan.init(jax.random.PRNGKey(0), example))
    s1, m1, _ = run(step, init, batches, mesh1)
    s8, m8, hlo = run(step, init, batches, mesh8)
    if name == "mlp_wgan_gp":
      mlp_gan, mlp_state = gan, s1
    n_params = len(jax.tree.leaves((s1.g_params, s1.d_params)))
    moved = max_diff(s1.g_params, init.g_params)
    out[name] = dict(
      params_diff=max_diff((s1.g_params, s1.d_params), (s8.g_params, s8.d_params)),
      vars_diff=max_diff((s1.g_vars, s1.d_vars), (s8.g_vars, s8.d_vars))
      if jax.tree.leaves((s1.g_vars, s1.d_vars))
      else 0.0,
      opt_diff=max_diff((s1.g_opt_state, s1.d_opt_state), (s8.g_opt_state, s8.d_opt_state)),
      ema_diff=max_diff(s1.ema_params, s8.ema_params),
      param_scale=max_abs((s1.g_params, s1.d_params)),
      moved=moved,
      metrics_diff=max_diff(m1, m8),
      step=int(s8.step),
      skipped=int(s8.skipped),
      n_param_leaves=n_params,
      n_stat_leaves=len(jax.tree.leaves((s1.g_vars, s1.d_vars))),
      n_d_param_leaves=len(jax.tree.leaves(s1.d_params)),
      largest_all_reduce=largest_all_reduce(hlo),
      collectives=count_collectives(hlo),
    )

  # 2. Per-example noise and interpolation coefficients differ between shards, and equal the
  # single-device draws.
  gan, state = mlp_gan, mlp_state
  key = jax.random.PRNGKey(3)
  draws = {
    "latents": lambda k: gan.latents(k, 16),
    "samples": lambda k: gan.sample(state, k, 16, ema=False),
    "gp_eps": lambda k: penalties._per_example_uniform(k, jnp.zeros((16, 2))),
  }
  out["noise"] = {}
  for name, f in draws.items():
    sharded = jax.jit(f, out_shardings=sharding.batch_sharding(mesh8))(key)
    single = np.asarray(jax.jit(f)(key))
    shards = [
      np.asarray(s.data) for s in sorted(sharded.addressable_shards, key=lambda s: s.index[0].start)
    ]
    distinct = all(not np.allclose(shards[i], shards[j]) for i in range(8) for j in range(i + 1, 8))
    # The random draws match bit for bit. The samples also pass through G's matmuls, which XLA
    # may sum in another order at 2 rows a device than at 16 (seen on an AVX2 host: float32
    # rounding), so they match to rounding.
    sharded = np.asarray(sharded)
    equal = (
      np.array_equal(sharded, single)
      if name != "samples"
      else np.allclose(sharded, single, rtol=1e-5, atol=1e-6)
    )
    out["noise"][name] = dict(
      n_shards=len(shards),
      shard_rows=int(shards[0].shape[0]),
      distinct=distinct,
      equal_to_single=bool(equal),
      max_diff=float(np.abs(sharded - single).max()),
    )

  # 3. BatchNorm under jit with a sharded batch normalises with global-batch statistics.
  bn = layers.batch_norm(True)
  x = np.arange(16, dtype=np.float32)[:, None] * np.ones(
    (1, 3), np.float32
  ) + np.random.default_rng(2).normal(size=(16, 3)).astype(np.float32)
  variables = bn.init(jax.random.PRNGKey(0), x)

  @jax.jit
  def bn_apply(variables, x):
    return bn.apply(variables, x, mutable=["batch_stats"])

  y, upd = bn_apply(variables, sharding.global_batch(x, mesh8))
  momentum = layers.BN_MOMENTUM
  global_mean, shard0_mean = x.mean(0), x[:2].mean(0)
  out["batch_norm"] = dict(
    input_sharded=len(sharding.global_batch(x, mesh8).sharding.device_set) == 8,
    running_mean=np.asarray(upd["batch_stats"]["mean"]).tolist(),
    expected_global=((1 - momentum) * global_mean).tolist(),
    per_shard=((1 - momentum) * shard0_mean).tolist(),
    output_mean=np.asarray(y).mean(0).tolist(),
    output_std=np.asarray(y).std(0).tolist(),
  )

  # 4. Batches that do not divide by the device count.
  errors = {}
  for name, f in (
    ("check_batch_size", lambda: sharding.check_batch_size(12, mesh8)),
    ("global_batch", lambda: sharding.global_batch(np.zeros((12, 2)), mesh8)),
    ("local_batch_size", lambda: sharding.local_batch_size(20, mesh8)),
  ):
    try:
      f()
      errors[name] = None
    except ValueError as e:
      errors[name] = str(e)
  out["errors"] = errors
  out["label_pairing"] = label_pairing(mesh8)
  out["ok_sizes"] = [sharding.local_batch_size(16, mesh8), sharding.local_batch_size(8, mesh1)]
  json.dump(out, sys.stdout)


if __name__ == "__main__":
  main()
