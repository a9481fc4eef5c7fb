"""`python -m jaxgan.main --config=CONFIG --workdir=DIR`: trains a GAN from a config.

The command's name stays here; its code is `jaxgan.run.main`.
"""

from jaxgan.run import main as _main

if __name__ == "__main__":
  __doc__ = _main.__doc__  # absl prints the __main__ module's docstring as the usage
  _main.cli()
