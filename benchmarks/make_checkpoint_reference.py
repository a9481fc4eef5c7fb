"""Writes a small finished run of this jaxgan version, which later versions must resume.

    python benchmarks/make_checkpoint_reference.py   # writes tests/reference/workdir_v<version>/

A toy-ring run with a small MLP (hidden layers of 16), 20 steps, one checkpoint, its
`config.json` and logs. `tests/test_checkpoint.py` copies it and resumes it for 20 more steps
with today's `toy_config` and the same overrides: a change to the config's fields (other than a
field added at its default) or to the train state's structure that would orphan existing runs
fails that test. Write a new one (keeping the old) when a version deliberately breaks resuming.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))


def reference_config(steps: int):
  """The run's config: `toy_config('ring')` with a 16-wide MLP, 20-step calls, no samples."""
  from jaxgan import config as config_lib  # pylint: disable=g-import-not-at-top

  c = config_lib.toy_config("ring", steps)
  c.model.kwargs.g_hidden = c.model.kwargs.d_hidden = (16, 16)
  c.data.batch_size = 32
  c.run.steps_per_call = c.log.every = c.eval.every = c.checkpoint.every = 20
  c.log.sample_every = 1000
  c.eval.num_samples = 100
  return c


def main() -> None:
  import jaxgan  # pylint: disable=g-import-not-at-top

  out = ROOT / "tests" / "reference" / f"workdir_v{jaxgan.__version__}"
  if out.exists():
    shutil.rmtree(out)
  jaxgan.train_and_evaluate(reference_config(20), str(out))
  for extra in ("tensorboard", "samples"):
    shutil.rmtree(out / extra, ignore_errors=True)
  size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
  print(f"wrote {out} ({size:,} bytes in {sum(1 for _ in out.rglob('*'))} entries)")


if __name__ == "__main__":
  main()
