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
    "losses, penalties"
  }


def test_library_step_snippet_runs(capsys):
  namespace = {}
  exec(compile(_snippet("own-step"), "README.md", "exec"), namespace)
  assert namespace["images"].shape == (16, 32, 32, 3)
  metrics = namespace["metrics"]
  assert int(namespace["state"].step) == 1 and float(metrics["skipped"]) == 0
  assert all(math.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["penalty"]) > 0
  assert "(16, 32, 32, 3)" in capsys.readouterr().out


def test_readme_stays_short():
  assert len(README.splitlines()) < 200


def test_ci_runs_the_readme_test_command():
  commands = re.findall(r"```bash\n(.*?)\n```", README.split("## Quickstart")[1], re.S)[:2]
  assert len(commands) == 2
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1].strip() in ci.splitlines()
  assert "jaxgan.main" in commands[0] and "mnist_dcgan" in commands[0]
