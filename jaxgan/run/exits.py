"""How a failed run's process ends: a peer's failure named, stuck threads not waited for.

`jaxgan.main.cli` ends every failed run through `exit_promptly`, and adds `peer_failure_hint`'s
advice when a multi-process run failed because another process stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from typing import NoReturn

import jax

# After a failed run, how long the threads still running may take before the process exits
# without them (seconds). The loop's own cleanup (final checkpoint, logs) is done by then.
EXIT_GRACE_S = 5.0


def peer_failure_hint(error: BaseException, workdir: str | None) -> str | None:
  """What to do when a multi-process run fails in a collective, usually because a peer stopped.

  When one process of a run dies (killed, out of memory, a lost host), the others fail in their
  next collective with a transport error (gloo's "Connection reset by peer" on CPU), or are
  aborted by JAX's coordination service when process 0 is the one that died.

  Args:
    error: the exception that ended the run.
    workdir: the run's folder, for the advice.

  Returns:
    The advice, or None for a single-process run or an error raised outside XLA.
  """
  if jax.process_count() == 1:
    return None
  # The first failure may be followed by others in the cleanup (a checkpoint barrier is a
  # collective too), which then carry it as their context.
  chain, seen = [], set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    chain.append(error)
    error = error.__cause__ or error.__context__
  transport = ("Gloo", "coordination", "heartbeat", "Connection reset", "Connection closed")
  if not any(
    isinstance(e, jax.errors.JaxRuntimeError) or any(t in str(e) for t in transport) for e in chain
  ):
    return None
  return (
    f"A computation across the run's {jax.process_count()} processes failed (above): another "
    "process has most likely stopped. Relaunch every process with the same command; the run "
    f"resumes from the newest checkpoint in {workdir}/checkpoints."
  )


def exit_promptly(code: int, grace_s: float | None = None) -> NoReturn:
  """Ends a failed run's process with `code`, waiting at most `grace_s` for its threads.

  A normal interpreter exit joins every non-daemon thread without a time limit, then runs the
  `atexit` handlers. After a failure, threads of the libraries underneath may never end: orbax's
  save threads wait minutes for signals from a save that was aborted part-way, a data loader's
  workers for a consumer that is gone. So this joins the non-daemon threads until `grace_s` has
  passed, runs the `atexit` handlers (in a daemon thread) for what is left of it, or at least half
  of it, flushes the logs and stdio, and ends the process with `os._exit`, naming the threads it
  left running.

  Args:
    code: the exit status, non-zero.
    grace_s: seconds to wait for threads and `atexit` handlers (default `EXIT_GRACE_S`).
  """
  grace = EXIT_GRACE_S if grace_s is None else grace_s
  deadline = time.monotonic() + grace
  # A last resort for whatever below may block (a logging handler or stdio lock held by a stuck
  # thread): the process ends shortly after the grace period in any case.
  backstop = threading.Timer(1.5 * grace + 2.0, os._exit, args=(code,))
  backstop.daemon = True
  backstop.start()
  me = threading.current_thread()
  for thread in threading.enumerate():
    if thread is not me and not thread.daemon:
      # orbax's threads re-raise their own error from join: the exit goes on regardless.
      with contextlib.suppress(Exception):
        thread.join(max(0.0, deadline - time.monotonic()))
  handlers = threading.Thread(target=atexit._run_exitfuncs, name="atexit", daemon=True)
  handlers.start()
  # The handlers (log and event-file flushes) get their own share of the grace period: a stuck
  # thread above has used all of it, and they would otherwise get none.
  handlers.join(max(deadline - time.monotonic(), grace / 2))
  stuck = [t.name for t in threading.enumerate() if t is not me and not t.daemon and t.is_alive()]
  if handlers.is_alive():
    stuck.append("atexit handlers")
  if stuck:
    print(
      f"jaxgan: exiting with status {code} without waiting for {', '.join(stuck)} "
      f"(still running {grace:g} s after the failure).",
      file=sys.stderr,
    )
  logging.shutdown()
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(Exception):
      stream.flush()
  os._exit(code)
