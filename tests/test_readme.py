"""The README's code and commands are the ones that run."""

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxgan import penalties

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


LOSSES_DOC = (REPO / "docs" / "losses.md").read_text()


def _snippet(name, text=README):
  match = re.search(rf"<!-- readme-snippet: {name} -->\s*```python\n(.*?)```", text, re.S)
  assert match, f"snippet {name!r} not found"
  return match.group(1)


def test_distillation_loop_snippet_learns_the_target():
  """The README's loop: the student's samples reach the target Gaussian N((1, -1), 0.5^2 I),
  through a frozen feature network and two heads, with the approximate R1."""
  namespace = {}
  exec(compile(_snippet("custom-loop"), "README.md", "exec"), namespace)
  samples = np.asarray(namespace["samples"])
  np.testing.assert_allclose(samples.mean(0), [1.0, -1.0], atol=0.3)
  np.testing.assert_allclose(samples.std(0), [0.5, 0.5], atol=0.2)
  # Only jaxgan.losses and jaxgan.penalties; the frozen network is never given to an optimiser.
  assert set(re.findall(r"from jaxgan import (.*)", _snippet("custom-loop"))) == {
    "losses, penalties"
  }
  assert "opt.init(frozen)" not in _snippet("custom-loop")


def test_wgan_gp_loop_snippet_runs(capsys):
  namespace = {}
  exec(compile(_snippet("wgan-gp-loop", LOSSES_DOC), "docs/losses.md", "exec"), namespace)
  assert math.isfinite(float(namespace["d_value"])) and math.isfinite(float(namespace["g_value"]))
  assert "critic loss" in capsys.readouterr().out


@pytest.mark.full
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


def test_what_the_readme_names_exists():
  """Its links, modules, losses, penalties, config fields, configs and studies: a rename that
  leaves the README behind fails here."""
  import importlib

  from jaxgan import config as config_lib
  from jaxgan import losses

  for link in re.findall(r"\]\(([^)#]+)\)", README):
    assert (REPO / link).exists(), link
  for module in re.findall(r"python -m (jaxgan[\w.]*)", README):
    importlib.import_module(module)
  for module, name in re.findall(r"`(jaxgan(?:\.\w+)*)`(?: has `(\w+)`)?", README):
    assert name == "" or hasattr(importlib.import_module(module), name), (module, name)
  # The table of losses, and the penalties.
  table = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", README, re.M)
  names = [n for row in table for n in re.findall(r"`(\w+)`", row)]
  assert "rahinge" in names and "minimax" in names, names
  for name in names:
    losses.get(name)
  penalties_line = re.search(r"Penalties: (.*?);", README, re.S).group(1)
  for name in re.findall(r"`(\w+)`", penalties_line):
    assert hasattr(penalties, name), name
  for name in re.findall(r"`(\w+_regularizer)`", README):
    assert hasattr(importlib.import_module("jaxgan.regularizers"), name), name
  # Config fields, as `section.field` or --config.section.field=...
  config = config_lib.default_config()
  fields = re.findall(r"`(?:--config\.)?([a-z]+)\.([a-z_]+)(?:=[^`]*)?`", README)
  fields += re.findall(r"--config\.([a-z]+)\.([a-z_]+)", README)
  named = [(section, field) for section, field in fields if section in config]
  assert len(named) >= 15, named
  for section, field in named:
    assert field in config[section], f"config.{section}.{field}"
  # Every experiment config is listed, and every listed one exists.
  listed = re.search(r"Configs in `experiments/configs/`: (.*?) Critics take", README, re.S)
  listed = set(re.findall(r"`(\w+)`", listed.group(1)))
  assert listed == {p.stem for p in (REPO / "experiments" / "configs").glob("*.py")}
  sys.path.insert(0, str(REPO / "experiments"))
  import study

  assert set(re.search(r"--study=([\w|]+)", README).group(1).split("|")) == set(study.STUDIES)


def test_ci_runs_the_readme_test_command():
  commands = re.findall(r"```bash\n(.*?)\n```", README.split("## Quickstart")[1], re.S)[:2]
  assert len(commands) == 2
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1].strip() in ci.splitlines()
  assert "jaxgan.main" in commands[0] and "mnist_dcgan" in commands[0]
