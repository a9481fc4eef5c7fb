"""Command line: train a GAN from a config file.

    python -m jaxgan.main --config=experiments/configs/mnist_dcgan.py --workdir=runs/mnist \\
        --config.run.steps=100

Every config field can be overridden with `--config.<section>.<field>=value` (jaxgan/config/__init__.py).
Running the same command again in the same workdir resumes from the newest checkpoint.

Multi-host: run the same command on every host with `--coordinator_address=HOST0:PORT
--num_processes=N --process_id=I` (or the environment variables JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID); the batch is split over every device of every process.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from jaxgan import config as config_lib
from jaxgan import errors
from jaxgan.run import compilation_cache, distributed, exits, loop

FLAGS = flags.FLAGS
# Unknown fields are refused by one function, `jaxgan.config.check_override`: here before absl
# parses the flags (`check_overrides`, naming the flag) and in `validate` (every field of the
# config). ml_collections' own refusals (a bare AttributeError while parsing, a locked config
# after) are off, so that keys inside the free-form sections (model.kwargs, loss.penalties) can be
# added from the command line.
config_flags.DEFINE_config_file(
  "config",
  None,
  "Path to a config file with get_config().",
  lock_config=False,
  accept_new_attributes=True,
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
  compilation_cache.enable(FLAGS.config.run.compilation_cache_dir)  # before any compilation
  result = loop.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if result:
    print("final: " + "  ".join(f"{k} {v:.4g}" for k, v in result.items()), flush=True)


def check_overrides(argv: list[str]) -> None:
  """Refuses `--config.<path>` flags whose path is not a field, before absl parses them.

  Each path goes through `jaxgan.config.check_override`, which names the field's new place (for
  keys of the old flat layout) or the valid fields of its section; the message names the flag.

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


def cli():
  """The `jaxgan` console script and `python -m jaxgan.main`.

  A successful run exits normally. An error in the input (`jaxgan.errors.UserError`: the config,
  the data, the workdir, the weights) prints its message alone (`--verbose`: with the traceback)
  and exits 2. Any other failure (an exception, or a `SystemExit` with an error such as
  `loop.Preempted`) prints the error and its traceback and exits 1. Either way the process ends
  within `exits.EXIT_GRACE_S` seconds even when threads it leaves behind are stuck: see
  `exits.exit_promptly`.
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
    exits.exit_promptly(e.code if isinstance(e.code, int) else 1)
  except errors.UserError as e:  # the input's fault, not jaxgan's: the message names the fix
    if FLAGS.is_parsed() and FLAGS.verbose:
      traceback.print_exc()
    exits.exit_promptly(errors.report(e))
  except BaseException as e:  # noqa: BLE001 - every failure exits through exit_promptly
    traceback.print_exc()
    hint = exits.peer_failure_hint(e, FLAGS.workdir if FLAGS.is_parsed() else None)
    if hint:
      print(f"FATAL {hint}", file=sys.stderr)
    exits.exit_promptly(1)


if __name__ == "__main__":
  cli()
