"""Command line: train a GAN from a config file.

    python -m jaxgan.main --config=experiments/configs/mnist_dcgan.py --workdir=runs/mnist \
        --config.steps=100

Every config field can be overridden with `--config.<field>=value`. Running the same command again
in the same workdir resumes from the newest checkpoint.
"""

from __future__ import annotations

import logging

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from jaxgan import loop

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file with get_config().",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where logs, samples and checkpoints go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # orbax logs every save at INFO through absl; keep those quiet and ours visible.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("jaxgan").setLevel(logging.INFO)
  result = loop.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  print("final: " + "  ".join(f"{k} {v:.4g}" for k, v in result.items()), flush=True)


def cli():
  app.run(main)


if __name__ == "__main__":
  cli()
