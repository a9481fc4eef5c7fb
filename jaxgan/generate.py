"""`python -m jaxgan.generate --workdir=DIR`: samples from a trained run.

The command's name stays here; its code is `jaxgan.run.generate`.
"""

from jaxgan.run.generate import main

if __name__ == "__main__":
  main()
