"""MLP GAN on the 2-D ring mixture of the PacGAN/VEEGAN protocol; evaluates mode coverage.

    python -m jaxgan.main --config=experiments/configs/toy_ring.py --workdir=runs/toy_ring \
        --config.loss=hinge

(`python -m jaxgan.toy --mixture=ring` runs the same experiment faster, with the data sampled
inside the compiled program; both take their hyperparameters from `jaxgan.toy.ToyConfig`.)
"""

from jaxgan.toy import runner_config


def get_config():
  return runner_config("ring")
