"""Data parallelism with `jax.jit` over a device mesh (no `jax.pmap`, in maintenance mode).

The mesh has one 'data' axis over every device of every process. The train state is replicated;
the batch is split along its first axis. Under `jax.jit` with these shardings, XLA inserts the
gradient all-reduces itself, and BatchNorm statistics are statistics of the global batch.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes) on the 'data' axis."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices).reshape(-1), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Splits the leading (batch) axis over the 'data' axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  """Raises a ValueError naming both numbers when the batch does not split over the devices."""
  n = mesh.devices.size
  if global_batch % n:
    raise ValueError(
        f"The global batch of {global_batch} examples does not divide by the {n} devices of the "
        f"mesh; choose a batch size that is a multiple of {n} (e.g. {max(n, global_batch // n * n)}).")


def local_batch_size(global_batch: int, mesh: Mesh) -> int:
  """The number of examples this process feeds (its devices' share of the global batch)."""
  check_batch_size(global_batch, mesh)
  return global_batch // jax.process_count()


def global_batch(local: np.ndarray, mesh: Mesh) -> jax.Array:
  """Assembles the global batch from every process's slice `local` (leading axis)."""
  return jax.make_array_from_process_local_data(batch_sharding(mesh), local)


def jit_train_step(train_step: Callable, mesh: Mesh) -> Callable:
  """`jax.jit` of `train_step(state, batch, key)`: state replicated and donated, batch sharded."""
  rep = replicated(mesh)
  return jax.jit(train_step, donate_argnums=0, in_shardings=(rep, batch_sharding(mesh), rep),
                 out_shardings=(rep, rep))


def replicate(tree, mesh: Mesh):
  """Places a pytree of host or single-device arrays replicated on the mesh."""
  return jax.device_put(tree, replicated(mesh))
