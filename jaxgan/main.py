"""Command line: train a GAN from a config file.

    python -m jaxgan.main --config=experiments/configs/mnist_dcgan.py --workdir=runs/mnist \
        --config.run.steps=100

Every config field can be overridden with `--config.<section>.<field>=value` (jaxgan/config.py).
Running the same command again in the same workdir resumes from the newest checkpoint.

Multi-host: run the same command on every host with `--coordinator_address=HOST0:PORT
--num_processes=N --process_id=I` (or the environment variables JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID); the batch is split over every device of every process.
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from jaxgan import compilation_cache, loop, sharding
from jaxgan import config as config_lib

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
  "config", None, "Path to a config file with get_config().", lock_config=True
)
flags.DEFINE_string("workdir", None, "Where logs, samples and checkpoints go.")
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
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  """Runs `train_and_evaluate` with the parsed `--config` and `--workdir`; prints the result."""
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # orbax logs every save at INFO through absl; keep those quiet and ours visible.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("jaxgan").setLevel(logging.INFO)
  # Before anything touches a JAX device.
  sharding.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
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
    app.UsageError: naming the flag and the fix.
  """
  for arg in argv[1:]:
    if arg.startswith("--config."):
      path = arg[len("--config.") :].split("=", 1)[0]
      try:
        config_lib.check_override(path)
      except ValueError as e:
        raise app.UsageError(f"{arg}: {e}") from None


def cli():
  """The `jaxgan` console script and `python -m jaxgan.main`."""
  try:
    check_overrides(sys.argv)
  except app.UsageError as e:
    sys.exit(f"FATAL Flags parsing error: {e}\nPass --helpfull to see help on flags.")
  app.run(main)


if __name__ == "__main__":
  cli()
