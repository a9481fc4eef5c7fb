"""Joining the processes of a multi-host run into one JAX runtime (`jax.distributed`).

Every process runs the same command; `initialize_distributed` connects it to process 0's
coordinator before anything else touches JAX. From then on `jax.devices()` lists every device of
every process, and `jaxgan.step.sharding` builds one mesh over them.
"""

from __future__ import annotations

import logging
import os

import jax

log = logging.getLogger(__name__)

# Environment variables read by `initialize_distributed` when an argument is not given. The first
# is JAX's own; JAX has no environment variables for the other two.
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  heartbeat_timeout_seconds: int | None = None,
  initialization_timeout_seconds: int | None = None,
) -> bool:
  """Starts JAX's multi-process runtime when a multi-process run is configured.

  Arguments default to the environment variables JAX_COORDINATOR_ADDRESS ("host:port" of process
  0), JAX_NUM_PROCESSES and JAX_PROCESS_ID. Nothing happens (returns False) when no coordinator
  address is configured or there is one process. Must run before any other JAX call. On CPU the
  cross-process collectives use gloo (JAX's default `jax_cpu_collectives_implementation`).

  Args:
    coordinator_address: "host:port" of process 0.
    num_processes: the number of processes of the run.
    process_id: this process's index, in [0, num_processes).
    heartbeat_timeout_seconds: after this long without a heartbeat from a process, JAX's
      coordination service declares it dead and ends every other process with an error (None:
      JAX's default, 100 s). A process that dies in a collective is noticed at once; one that
      dies while the others wait on a checkpoint barrier only after this timeout.
    initialization_timeout_seconds: how long every process waits for all of them to join at
      start-up before it aborts (None: JAX's default, 300 s).

  Returns:
    True when `jax.distributed.initialize` was called.

  Raises:
    ValueError: several processes without a coordinator address, a process id missing or out
      of range, or a process id without a multi-process run; the message names the flag or
      variable to set.

  Example:
    >>> initialize_distributed("localhost:1234", num_processes=1)  # one process: nothing to do
    False
  """
  coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
  if num_processes is None and os.environ.get(ENV_NUM_PROCESSES):
    num_processes = int(os.environ[ENV_NUM_PROCESSES])
  if process_id is None and os.environ.get(ENV_PROCESS_ID):
    process_id = int(os.environ[ENV_PROCESS_ID])
  if coordinator_address is None or num_processes in (None, 1):
    if process_id not in (None, 0) and num_processes in (None, 1):
      raise ValueError(
        f"process_id={process_id} was given for a single-process run: pass --num_processes "
        f"and --coordinator_address as well (or set {ENV_NUM_PROCESSES} and {ENV_COORDINATOR}), "
        "or drop --process_id."
      )
    if num_processes not in (None, 1):
      raise ValueError(
        f"num_processes={num_processes} needs a coordinator address (host:port of "
        f"process 0): pass --coordinator_address or set {ENV_COORDINATOR}."
      )
    return False
  if process_id is None or not 0 <= process_id < num_processes:
    raise ValueError(
      f"A run of {num_processes} processes needs a process id in "
      f"[0, {num_processes}); got {process_id}. Pass --process_id or set "
      f"{ENV_PROCESS_ID}."
    )
  timeout = {}
  if heartbeat_timeout_seconds is not None:
    timeout["heartbeat_timeout_seconds"] = int(heartbeat_timeout_seconds)
  if initialization_timeout_seconds is not None:
    timeout["initialization_timeout"] = int(initialization_timeout_seconds)
  # Said before the wait: until every process has joined, JAX prints nothing.
  log.info(
    "Process %d of %d: joining the run at %s (waiting up to %s s for every process).",
    process_id,
    num_processes,
    coordinator_address,
    initialization_timeout_seconds or 300,
  )
  # JAX's preemption service would take SIGTERM over from here on: a SIGTERM during start-up
  # would then neither end the process nor reach the loop, which stops every process itself
  # (`jaxgan.run.loop`), so the service stays off and SIGTERM keeps its default until the loop runs.
  jax.config.update("jax_enable_preemption_service", False)
  jax.distributed.initialize(
    coordinator_address=coordinator_address,
    num_processes=num_processes,
    process_id=process_id,
    **timeout,
  )
  log.info(
    "Process %d of %d: %d local devices, %d in all.",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )
  return True
