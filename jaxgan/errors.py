"""`UserError`: the mark of an error in what the user gave (config, data, workdir, weights).

The command lines (`python -m jaxgan.main`, `python -m jaxgan.evaluate`) print such an error's
message alone, naming the problem and the fix, and exit with status 2; `--verbose` adds the
traceback. Any other exception is a bug (or a fault of the machine) and keeps its traceback.
The errors that carry the mark also derive from the built-in type they have always had
(`ValueError`, `FileNotFoundError`, `RuntimeError`), so code that catches those still does.
Importing this module imports nothing but `sys`.
"""

import sys

# The exit status of a command line refused for its input (argparse's and absl's usage errors
# exit 2 too).
EXIT_STATUS = 2


class UserError(Exception):
  """An error in the user's input; its message names the problem and the fix."""


class ConfigError(UserError, ValueError):
  """A run config that cannot run: an unknown name, a value out of range, fields that clash."""


def report(error: BaseException) -> int:
  """Prints `error: <message>` to stderr, for a command line; returns `EXIT_STATUS`."""
  print(f"error: {error}", file=sys.stderr)
  return EXIT_STATUS
