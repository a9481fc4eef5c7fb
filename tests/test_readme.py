"""The README's code and commands are the ones that run."""

import math
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _snippet(name):
  match = re.search(rf"<!-- readme-snippet: {name} -->\s*```python\n(.*?)```", README, re.S)
  assert match, f"README snippet {name!r} not found"
  return match.group(1)


def test_custom_training_loop_snippet_runs(capsys):
  namespace = {}
  exec(compile(_snippet("custom-loop"), "README.md", "exec"), namespace)
  assert math.isfinite(float(namespace["d_value"])) and math.isfinite(float(namespace["g_value"]))
  assert "critic loss" in capsys.readouterr().out
  # It only uses jaxgan.losses and jaxgan.penalties.
  assert {m for m in re.findall(r"from jaxgan import (.*)", _snippet("custom-loop"))} == {
      "losses, penalties"}


def test_ci_runs_the_readme_test_command():
  commands = re.findall(r"```bash\n(.*?)\n```", README.split("## Quickstart")[1], re.S)[:2]
  assert len(commands) == 2
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1].strip() in ci.splitlines()
  assert "jaxgan.main" in commands[0] and "mnist_dcgan" in commands[0]
