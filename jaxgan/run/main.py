"""Command line: train a GAN from a config file.

    python -m jaxgan.main --config=experiments/configs/mnist_dcgan.py --workdir=runs/mnist \
        --config.run.steps=100

Every config field can be overridden with `--config.<section>.<field>=value` (jaxgan/config/__init__.py).
Running the same command again in the same workdir resumes from the newest checkpoint.

Multi-host: run the same command on every host with `--coordinator_address=HOST0:PORT
--num_processes=N --process_id=I` (or the environment variables JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID); the batch is split over every device of every process.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from typing import NoReturn

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from jaxgan import config as config_lib
from jaxgan import errors
from jaxgan.run import compilation_cache, distributed, loop
from jaxgan.run.build import check_names

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
  "config", None, "Path to a config file with get_config().", lock_config=True
)
flags.DEFINE_string("workdir", None, "Where logs, samples and checkpoints go.")
flags.DEFINE_bool(
  "verbose", False, "Print the traceback of an error in the input (config, data, workdir) too."
)
flags.DEFINE_string(
  "coordinator_address",
  None,
  "host:port of process 0, for a multi-process run (default: $JAX_COORDINATOR_ADDRESS).",
)
flags.DEFINE_integer(
  "num_processes", None, "Processes in a multi-process run (default: $JAX_NUM_PROCESSES, else 1)."
)
flags.DEFINE_integer(
  "process_id", None, "This process's index in [0, num_processes) (default: $JAX_PROCESS_ID)."
)
flags.DEFINE_integer(
  "initialization_timeout_seconds",
  None,
  "Multi-process runs: seconds to wait for every process to join at start-up (default: JAX's, "
  "300).",
)
flags.DEFINE_integer(
  "heartbeat_timeout_seconds",
  None,
  "Multi-process runs: seconds without a heartbeat after which a process is declared dead and "
  "the others stop with an error (default: JAX's, 100).",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  """Runs `train_and_evaluate` with the parsed `--config` and `--workdir`; prints the result."""
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # orbax logs every save at INFO through absl; keep those quiet and ours visible.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("jaxgan").setLevel(logging.INFO)
  # Before anything touches a JAX device.
  distributed.initialize_distributed(
    FLAGS.coordinator_address,
    FLAGS.num_processes,
    FLAGS.process_id,
    heartbeat_timeout_seconds=FLAGS.heartbeat_timeout_seconds,
    initialization_timeout_seconds=FLAGS.initialization_timeout_seconds,
  )
  # The input's errors first, before anything is logged or opened (train_and_evaluate checks
  # again, for callers that start there).
  config_lib.validate(FLAGS.config)
  check_names(FLAGS.config)
  compilation_cache.enable(FLAGS.config.run.compilation_cache_dir)  # before any compilation
  result = loop.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if result:
    print("final: " + "  ".join(f"{k} {v:.4g}" for k, v in result.items()), flush=True)


def check_overrides(argv: list[str]) -> None:
  """Refuses `--config.<path>` flags whose path is not a field, before absl parses them.

  ml_collections would refuse them too, but with a bare KeyError; this names the field's new
  place (for keys of the old flat layout) or the valid fields of its section.

  Args:
    argv: the command line, e.g. `sys.argv`.

  Raises:
    app.UsageError: naming the flag and the fix; also a missing config file or an unknown
      variant (`check_config_file`).
  """
  for i, arg in enumerate(argv[1:], start=1):
    if arg == "--config" and i + 1 < len(argv):
      check_config_file(argv[i + 1])
    elif arg.startswith("--config="):
      check_config_file(arg[len("--config=") :])
    if arg.startswith("--config."):
      path = arg[len("--config.") :].split("=", 1)[0]
      try:
        config_lib.check_override(path)
      except ValueError as e:
        raise app.UsageError(f"{arg}: {e}") from None


def check_config_file(value: str) -> None:
  """Loads `--config=PATH[:VARIANT]` once, so a missing file or an unknown variant is a message.

  ml_collections reports both as a traceback inside its flag error.

  Raises:
    app.UsageError: naming the file or variant and the fix.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top

  path, colon, variant = value.partition(":")
  if not os.path.isfile(path):
    where = os.path.dirname(path) or "."
    found = (
      sorted(f for f in os.listdir(where) if f.endswith(".py")) if os.path.isdir(where) else []
    )
    raise app.UsageError(
      f"--config={value}: there is no config file {path}"
      + (f"; the configs in {where}: {', '.join(found)}" if found else "")
      + " (experiment configs: experiments/configs/)."
    )
  spec = importlib.util.spec_from_file_location("_jaxgan_config_check", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    get_config = module.get_config
  except AttributeError:
    raise app.UsageError(f"--config={value}: {path} defines no get_config().") from None
  try:
    get_config(*([variant] if colon else []))
  except TypeError as e:
    if colon and "positional argument" in str(e):
      raise app.UsageError(
        f"--config={value}: {path} has no variants; drop ':{variant}'."
      ) from None
    raise
  except ValueError as e:  # the config's own refusal, e.g. an unknown variant
    raise app.UsageError(f"--config={value}: {e}") from None


# After a failed run, how long the threads still running may take before the process exits
# without them (seconds). The loop's own cleanup (final checkpoint, logs) is done by then.
EXIT_GRACE_S = 5.0


def cli():
  """The `jaxgan` console script and `python -m jaxgan.main`.

  A successful run exits normally. An error in the input (`jaxgan.errors.UserError`: the config,
  the data, the workdir, the weights) prints its message alone (`--verbose`: with the traceback)
  and exits 2. Any other failure (an exception, or a `SystemExit` with an error such as
  `loop.Preempted`) prints the error and its traceback and exits 1. Either way the process ends
  within `EXIT_GRACE_S` seconds even when threads it leaves behind are stuck: see
  `exit_promptly`.
  """
  try:
    check_overrides(sys.argv)
  except app.UsageError as e:  # an unknown field: an error in the input
    sys.exit(errors.report(e))
  try:
    app.run(main)
  except SystemExit as e:
    if not e.code:
      raise  # success: the interpreter's normal exit
    if not isinstance(e.code, int):
      print(e.code, file=sys.stderr)  # what the interpreter prints for SystemExit("message")
    exit_promptly(e.code if isinstance(e.code, int) else 1)
  except errors.UserError as e:  # the input's fault, not jaxgan's: the message names the fix
    if FLAGS.is_parsed() and FLAGS.verbose:
      traceback.print_exc()
    exit_promptly(errors.report(e))
  except BaseException as e:  # noqa: BLE001 - every failure exits through exit_promptly
    traceback.print_exc()
    hint = peer_failure_hint(e)
    if hint:
      print(f"FATAL {hint}", file=sys.stderr)
    exit_promptly(1)


def peer_failure_hint(error: BaseException) -> str | None:
  """What to do when a multi-process run fails in a collective, usually because a peer stopped.

  When one process of a run dies (killed, out of memory, a lost host), the others fail in their
  next collective with a transport error (gloo's "Connection reset by peer" on CPU), or are
  aborted by JAX's coordination service when process 0 is the one that died.

  Args:
    error: the exception that ended the run.

  Returns:
    The advice, or None for a single-process run or an error raised outside XLA.
  """
  import jax  # pylint: disable=g-import-not-at-top  (imported by the run already)

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
    f"resumes from the newest checkpoint in {FLAGS.workdir}/checkpoints."
  )


def exit_promptly(code: int, grace_s: float | None = None) -> NoReturn:
  """Ends a failed run's process with `code`, waiting at most `grace_s` for its threads.

  A normal interpreter exit joins every non-daemon thread without a time limit, then runs the
  `atexit` handlers. After a failure, threads of the libraries underneath may never end: orbax's
  save threads wait minutes for signals from a save that was aborted part-way, a data loader's
  workers for a consumer that is gone. So this joins the non-daemon threads and runs the `atexit`
  handlers (in a daemon thread) until `grace_s` has passed, flushes the logs and stdio, and
  ends the process with `os._exit`, naming the threads it left running.

  Args:
    code: the exit status, non-zero.
    grace_s: seconds to wait for threads and `atexit` handlers (default `EXIT_GRACE_S`).
  """
  grace = EXIT_GRACE_S if grace_s is None else grace_s
  deadline = time.monotonic() + grace
  # A last resort for whatever below may block (a logging handler or stdio lock held by a stuck
  # thread): the process ends shortly after the grace period in any case.
  backstop = threading.Timer(grace + 2.0, os._exit, args=(code,))
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
  handlers.join(max(0.0, deadline - time.monotonic()))
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


if __name__ == "__main__":
  cli()
