"""MLP GAN on the 2-D grid mixture of the PacGAN/VEEGAN protocol; evaluates mode coverage.

    python -m jaxgan.main --config=experiments/configs/toy_grid.py --workdir=runs/toy_grid \
        --config.loss=hinge

(`python -m jaxgan.toy --mixture=grid` runs the same experiment faster, with the data sampled
inside the compiled program; both take their hyperparameters from `jaxgan.toy.ToyConfig`.)
"""

from jaxgan.toy import runner_config


def get_config():
  return runner_config("grid")
