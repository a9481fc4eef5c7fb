"""Data parallelism with `jax.jit` over a device mesh, on one host or many.

Why not `jax.pmap`: it has been in maintenance mode since JAX 0.8 (reimplemented on `jit` and
`shard_map`). With `jax.jit` and shardings the train step is written for the global batch, exactly
as on one device, and XLA's SPMD partitioner inserts the communication:

- the state (params, optimizer states, BatchNorm statistics, EMA) is replicated;
- the batch is split along its first axis over the mesh's 'data' axis;
- gradients are summed over devices by all-reduces that XLA inserts (and combines);
- BatchNorm statistics are statistics of the global batch (the mean over the batch axis of a
  sharded array is a global mean), with no axis names in the model;
- random numbers are drawn for the global batch (`jax_threefry_partitionable`, the default, makes
  each device compute only its own slice), so noise never repeats across devices and a run on N
  devices draws exactly the numbers of a run on one.

The mesh is 2-D, ('data', 'model'), with a 'model' axis of size 1 by default: room for sharding
parameters later without changing the callers. Multi-host: call
`jaxgan.run.distributed.initialize_distributed` before anything else touches JAX, then every process
runs the same program and feeds its own slice of the batch to `global_batch`
(`jax.make_array_from_process_local_data`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
MODEL_AXIS = "model"


def make_mesh(devices: Sequence[jax.Device] | None = None, *, model: int = 1) -> Mesh:
  """Builds a ('data', 'model') mesh.

  Devices keep their order (`jax.devices()` lists each process's devices together), so each
  process's devices hold a contiguous block of the global batch.

  Args:
    devices: the devices (default: every device of every process).
    model: the size of the 'model' axis (1: pure data parallelism).

  Returns:
    A `Mesh` of shape `(len(devices) // model, model)`.

  Raises:
    ValueError: when `model` does not divide the number of devices.

  Example:
    >>> mesh = make_mesh(jax.devices()[:1])
    >>> dict(mesh.shape)
    {'data': 1, 'model': 1}
  """
  devices = np.asarray(jax.devices() if devices is None else devices).reshape(-1)
  if model < 1 or devices.size % model:
    raise ValueError(f"The model axis size {model} does not divide the {devices.size} devices.")
  return Mesh(devices.reshape(devices.size // model, model), (DATA_AXIS, MODEL_AXIS))


def data_size(mesh: Mesh) -> int:
  """The number of ways the batch is split: the size of the mesh's 'data' axis.

  Args:
    mesh: a mesh from `make_mesh`.

  Returns:
    The size of the 'data' axis.
  """
  return mesh.shape[DATA_AXIS]


def replicated(mesh: Mesh) -> NamedSharding:
  """The sharding that holds a full copy on every device of `mesh` (used for the state).

  Args:
    mesh: a mesh from `make_mesh`.

  Returns:
    `NamedSharding(mesh, P())`.
  """
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """The sharding that splits the leading (batch) axis over the 'data' axis.

  Args:
    mesh: a mesh from `make_mesh`.

  Returns:
    `NamedSharding(mesh, P('data'))`: replicated over any other mesh axis.
  """
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  """Checks that a global batch splits evenly over the mesh's 'data' axis.

  Args:
    global_batch: the number of examples in the global batch.
    mesh: a mesh from `make_mesh`.

  Raises:
    ValueError: when it does not; the message names both numbers and two sizes that work.

  Example:
    >>> check_batch_size(12, make_mesh(jax.devices()[:1]))  # one device: any size splits
  """
  n = data_size(mesh)
  if global_batch % n:
    raise ValueError(
      f"The global batch of {global_batch} examples does not divide by the {n} devices of the "
      f"mesh's data axis; choose a batch size that is a multiple of {n} (e.g. "
      f"{max(n, global_batch // n * n)} or {(global_batch // n + 1) * n})."
    )


@functools.cache  # called for every batch; a mesh's devices never change
def _local_data_indices(mesh: Mesh) -> list[int]:
  """Indices along the 'data' axis of the devices of this process."""
  axis = list(mesh.axis_names).index(DATA_AXIS)
  pid = jax.process_index()
  rows = {
    idx[axis] for idx in np.ndindex(mesh.devices.shape) if mesh.devices[idx].process_index == pid
  }
  return sorted(rows)


def local_batch_size(global_batch: int, mesh: Mesh) -> int:
  """The number of examples this process feeds: its devices' share of the global batch.

  Args:
    global_batch: the number of examples in the global batch.
    mesh: a mesh from `make_mesh`.

  Returns:
    The local batch size (the global one on a single process).

  Raises:
    ValueError: from `check_batch_size`.

  Example:
    >>> local_batch_size(64, make_mesh(jax.devices()[:1]))
    64
  """
  check_batch_size(global_batch, mesh)
  return global_batch // data_size(mesh) * len(_local_data_indices(mesh))


def process_block(mesh: Mesh) -> tuple[int, int]:
  """Which block of the global batch this process feeds, for a loader's `shard_index/count`.

  Args:
    mesh: a mesh from `make_mesh`.

  Returns:
    `(index, count)`: the global batch splits into `count` equal, contiguous blocks of rows, one
    per process, and this process feeds block `index` (`(0, 1)` on a single process).

  Raises:
    ValueError: this process's rows of the 'data' axis are not one contiguous, aligned block
      (a hand-made mesh that interleaves processes); build the mesh with `make_mesh`.

  Example:
    >>> process_block(make_mesh(jax.devices()[:1]))
    (0, 1)
  """
  rows = _local_data_indices(mesh)
  per, first = len(rows), rows[0]
  if rows != list(range(first, first + per)) or first % per or data_size(mesh) % per:
    raise ValueError(
      f"Process {jax.process_index()} holds rows {rows} of the mesh's data axis, which is not "
      "one aligned block; build the mesh with jaxgan.step.sharding.make_mesh (devices in order)."
    )
  return first // per, data_size(mesh) // per


def process_slice(batch: np.ndarray, mesh: Mesh) -> np.ndarray:
  """This process's part of a global host batch (what it passes to `global_batch`).

  For when every process holds the whole batch (tests, small data); a real input pipeline reads
  only its own `local_batch_size` examples.

  Args:
    batch: the global batch on the host, `[global_batch, ...]`.
    mesh: a mesh from `make_mesh`.

  Returns:
    This process's rows, `[local_batch_size, ...]` (all of them on a single process).

  Raises:
    ValueError: from `check_batch_size`.
  """
  rows = _local_data_indices(mesh)
  check_batch_size(batch.shape[0], mesh)
  block = batch.shape[0] // data_size(mesh)
  return np.concatenate([batch[r * block : (r + 1) * block] for r in rows])


def global_batch(local: np.ndarray, mesh: Mesh) -> jax.Array:
  """Assembles the global batch from every process's slice `local` (leading axis).

  Each process passes its own `local_batch_size(...)` examples; on one process `local` is the
  whole batch.

  Args:
    local: this process's examples, `[local_batch_size, ...]`, a host array.
    mesh: a mesh from `make_mesh`.

  Returns:
    A global `jax.Array`, `[global_batch, ...]`, sharded by `batch_sharding(mesh)`.

  Raises:
    ValueError: when the batch does not divide over the devices; the message names both
      numbers.

  Example:
    >>> global_batch(np.zeros((6, 2), np.float32), make_mesh(jax.devices()[:1])).shape
    (6, 2)
  """
  rows = _local_data_indices(mesh)
  total = local.shape[0] * data_size(mesh) // max(len(rows), 1)
  if local.shape[0] % max(len(rows), 1):
    raise ValueError(
      f"This process feeds {local.shape[0]} examples, which does not divide by its "
      f"{len(rows)} devices of the mesh's data axis."
    )
  return jax.make_array_from_process_local_data(
    batch_sharding(mesh), np.asarray(local), (total, *local.shape[1:])
  )


def shard_batch(x: jax.Array) -> jax.Array:
  """Splits `x`'s leading (batch) axis over the 'data' axis of the mesh in context.

  For values made inside the step that have a batch axis but do not come from the batch, such as
  the generator's latents: without it XLA may compute them, and everything downstream (G's
  forward and backward passes, D on the fakes), in full on every device. Outside a mesh context
  (`jit_train_step` sets one), or when the axis does not divide, it returns `x` unchanged.

  Args:
    x: an array with a leading batch axis, `[batch, ...]`, inside a traced function.

  Returns:
    `x`, constrained to `P('data')` when a mesh with a 'data' axis that divides `batch` is in
    context.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or DATA_AXIS not in mesh.axis_names or x.shape[0] % mesh.shape[DATA_AXIS]:
    return x
  return jax.lax.with_sharding_constraint(x, P(DATA_AXIS))


class _MeshJit:
  """A jitted function traced and called with `mesh` in context (`jax.set_mesh`)."""

  def __init__(self, jitted, mesh: Mesh):
    self.jitted, self.mesh = jitted, mesh

  def __call__(self, *args, **kwargs):
    with jax.set_mesh(self.mesh):
      return self.jitted(*args, **kwargs)

  def lower(self, *args, **kwargs):
    with jax.set_mesh(self.mesh):
      return self.jitted.lower(*args, **kwargs)


def jit_train_step(
  train_step: Callable,
  mesh: Mesh,
  compiler_options: dict[str, Any] | None = None,
  *,
  with_batch: bool = True,
) -> Callable:
  """`jax.jit` of `train_step(state, batch, key)`: state replicated, batch sharded.

  The step is traced with `mesh` in context, so `shard_batch` inside it can split values made in
  the step (latents) over the devices. The batch's leading axis must divide by the size of the
  mesh's 'data' axis (see `check_batch_size`). The state is donated (updated in place) on
  accelerators, where memory is scarce; not on CPU devices, where memory is plentiful and
  donation can make back-to-back steps slower. Either way the caller must use the returned
  state, not the one passed in.

  Args:
    train_step: `train_step(state, batch, key) -> (state, metrics)`, e.g. from
      `jaxgan.step.train.make_train_step`.
    mesh: a mesh from `make_mesh`.
    compiler_options: XLA options passed to `jax.jit` (e.g. for fast-compiling smoke tests).
    with_batch: False for a step that draws its data inside the program, `step(state, key)`.

  Returns:
    The jitted step, called as `train_step` is (and with a `.lower(...)` for ahead-of-time
    compilation); it runs with `mesh` in context.
  """
  rep = replicated(mesh)
  donate = (0,) if mesh.devices.flat[0].platform != 'cpu' else ()
  jitted = jax.jit(
    train_step,
    donate_argnums=donate,
    in_shardings=(rep, batch_sharding(mesh), rep) if with_batch else (rep, rep),
    out_shardings=(rep, rep),
    compiler_options=compiler_options,
  )
  return _MeshJit(jitted, mesh)


def replicate(tree, mesh: Mesh):
  """Places a pytree of host or single-device arrays replicated on the mesh.

  On several processes every process must pass the same values (e.g. an init from the same
  seed); each process places its copy on its own devices.

  Args:
    tree: a pytree of arrays.
    mesh: a mesh from `make_mesh`.

  Returns:
    The same pytree of global `jax.Array`s, sharded by `replicated(mesh)`.
  """
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x), np.shape(x)), tree
  )
