"""`UserError`: the mark of an error in what the user gave (config, data, workdir, weights).

The command lines (`python -m jaxgan.main`, `python -m jaxgan.evaluate`) print such an error's
message alone, naming the problem and the fix, and exit with status 2; `--verbose` adds the
traceback. Any other exception is a bug (or a fault of the machine) and keeps its traceback.
The errors that carry the mark also derive from the built-in type they have always had
(`ValueError`, `FileNotFoundError`, `RuntimeError`), so code that catches those still does.
`OptionError` is the refusal of a component's argument (the step's, a model's) that a run config
sets under another name: the message names each argument `$name`, and the config writes it as its
field. Importing this module imports nothing but `string` and `sys`.
"""

import string
import sys
from collections.abc import Mapping
from typing import Any

# The exit status of a command line refused for its input (argparse's and absl's usage errors
# exit 2 too).
EXIT_STATUS = 2


class UserError(Exception):
  """An error in the user's input; its message names the problem and the fix."""


class ConfigError(UserError, ValueError):
  """A run config that cannot run: an unknown name, a value out of range, fields that clash."""


class OptionError(ValueError):
  """An argument of a component (the train step, a model) out of its rule.

  Args:
    template: the message, each argument it names written `$name` (the argument's own name),
      so that a caller which sets the arguments under other names (a run config's fields) can
      say the message in its own names (`naming`). A literal dollar is `$$`; `quote` writes a
      value so.

  >>> e = OptionError("$n_critic must be a positive integer; got 0.")
  >>> str(e), e.naming({"n_critic": "config.loss.n_critic"})
  ('n_critic must be a positive integer; got 0.', 'config.loss.n_critic must be a positive integer; got 0.')
  """

  def __init__(self, template: str):
    self.template = template
    super().__init__(self.naming({}))

  def naming(self, names: Mapping[str, str]) -> str:
    """The message, each argument `$name` written as `names[name]`, or as itself when absent."""

    class _Names(dict):
      def __missing__(self, key):
        return key

    return string.Template(self.template).substitute(_Names(names))


def quote(value: Any) -> str:
  """A value as an `OptionError` message shows it: its repr, with its dollars kept literal."""
  return repr(value).replace("$", "$$")


def report(error: BaseException) -> int:
  """Prints `error: <message>` to stderr, for a command line; returns `EXIT_STATUS`."""
  print(f"error: {error}", file=sys.stderr)
  return EXIT_STATUS
