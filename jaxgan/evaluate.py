"""`python -m jaxgan.evaluate`: scores a trained run, or one image set against another.

The command's name stays here; its code is `jaxgan.run.evaluate`.
"""

from jaxgan.run.evaluate import main

if __name__ == "__main__":
  main()
