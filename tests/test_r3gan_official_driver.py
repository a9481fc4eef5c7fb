"""benchmarks/r3gan_official.py without the official repository: the architecture it hands the
official modules (jaxgan's CPU-size R3GAN, D in reverse order) and the recipes it refuses.
"""

import sys
import types
from pathlib import Path

import pytest

pytest.importorskip('torch')
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import r3gan_official as driver  # noqa: E402


def _recorder():
  # Stands in for R3GAN.Networks: records the constructor arguments.
  calls = {}

  def module(name):
    return lambda *args: calls.setdefault(name, args)

  return types.SimpleNamespace(Generator=module('G'), Discriminator=module('D')), calls


def test_official_modules_get_jaxgans_architecture():
  c = driver.load_config(driver.CONFIG)
  networks, calls = _recorder()
  args = types.SimpleNamespace(widths=None, blocks=None, latent=c.model.latent_dim)
  driver.build(networks, c, args)
  # G: NoiseDimension, WidthPerStage, CardinalityPerStage, BlocksPerStage, ExpansionFactor at
  # 4, 8, 16, 32 px; D the same from 32 px down (groups of 16 channels: cardinality = 2w / 16).
  assert calls['G'] == (64, [64, 32, 16, 8], [8, 4, 2, 1], [1, 1, 1, 1], 2)
  assert calls['D'] == ([8, 16, 32, 64], [1, 2, 4, 8], [1, 1, 1, 1], 2)
  assert (args.widths, args.blocks) == ('64,32,16,8', '1,1,1,1')  # recorded for resuming
  networks, calls = _recorder()
  args = types.SimpleNamespace(widths='128,64,32,16', blocks='2,1,1,1', latent=64)
  driver.build(networks, c, args)
  assert calls['G'] == (64, [128, 64, 32, 16], [16, 8, 4, 2], [2, 1, 1, 1], 2)
  assert calls['D'] == ([16, 32, 64, 128], [2, 4, 8, 16], [1, 1, 1, 2], 2)


def test_refuses_recipes_the_official_code_does_not_run(tmp_path):
  # A config that starts from the real one and changes one thing.
  base = (
    'import importlib.util\n'
    f'spec = importlib.util.spec_from_file_location("base", {driver.CONFIG!r})\n'
    'base = importlib.util.module_from_spec(spec)\n'
    'spec.loader.exec_module(base)\n'
  )
  for change, why in (
    ('c.optim.b1 = 0.5', 'optim.b1 0'),
    ('c.loss.penalties = {"r1": 0.5}', 'penalties'),
    ('c.optim.ema_half_life = 10000.0', 'half-life'),
  ):
    path = tmp_path / 'config.py'
    path.write_text(base + f'def get_config():\n  c = base.get_config()\n  {change}\n  return c\n')
    with pytest.raises(ValueError, match=why):
      driver.load_config(str(path))
