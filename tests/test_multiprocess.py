"""The whole loop, `python -m jaxgan.main`, as two JAX processes on this machine.

Two processes of one CPU device each (jax.distributed over 127.0.0.1, gloo collectives) train one
run, each reading its block of every global batch. The result (state with the critic's BatchNorm
statistics, losses, FCD and KID) must equal one process of two devices with the same global
batch: the gradients and the batch statistics are summed across the processes. Then the faults of a multi-process
run: SIGKILL of one process makes the other exit promptly with an error, SIGTERM to both makes
them save one step together and stop, and the relaunch in between resumes exactly (what they
save equals an uninterrupted run's state).
"""

import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import REAL_DATA

pytestmark = pytest.mark.full

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks.multihost import Run, committed, compare, lines  # noqa: E402
from benchmarks.soak import read_checkpoint  # noqa: E402

TOY = [
  f"--config={ROOT / 'experiments/configs/toy_ring.py'}",
  "--config.model.kwargs.g_hidden=(64,64)",
  "--config.model.kwargs.d_hidden=(64,64)",
  "--config.data.batch_size=64",
  "--config.run.steps_per_call=10",
  "--config.log.every=20",
  "--config.log.sample_every=20",
  "--config.eval.every=20",
  "--config.eval.num_samples=500",
  "--config.checkpoint.every=20",
  "--config.checkpoint.keep=100",
]


def _assert_same_state(workdir: Path, reference: Path, step: int):
  diff = compare(workdir, reference, step)  # every state leaf, and the data position
  # Two processes sum gradients over gloo, one process over its two devices: float rounding.
  assert diff["max_abs_diff"] <= 1e-5 and diff["same_loader_position"], diff


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
  """One compilation cache for every launch of this module (the same programs each time)."""
  return tmp_path_factory.mktemp("xla_cache")


def test_killed_process_ends_the_run_and_a_relaunch_resumes_exactly(tmp_path, cache):
  """SIGKILL one process, relaunch, SIGTERM both: what they save equals one process's state."""
  workdir = tmp_path / "run"
  endless = [*TOY, "--config.run.steps=100000"]
  first = Run(workdir, endless, processes=2, cache=cache, name="first")
  first.wait_for_checkpoint(after=20)
  first.procs[1].send_signal(signal.SIGKILL)
  start = time.monotonic()
  codes = first.wait(timeout=90)  # the survivor must not wait for its peer forever
  elapsed = time.monotonic() - start
  assert codes[0] != 0 and codes[1] == -signal.SIGKILL, codes
  # Killed in a collective: gloo's error and our advice; while waiting on a checkpoint barrier:
  # JAX's coordination service ends the survivor once the dead peer misses its heartbeats.
  survivor = first.text(0)
  advice = ("another process has most likely stopped", "This most likely indicates that another")
  assert any(a in survivor for a in advice), survivor[-3000:]
  assert elapsed < 60, f"the survivor took {elapsed:.0f} s to exit"
  killed_at = committed(workdir)[-1]  # the newest step with its manifest

  second = Run(workdir, endless, processes=2, cache=cache, name="second")
  second.wait_for_checkpoint(after=killed_at)
  for p in second.procs:
    p.send_signal(signal.SIGTERM)
  assert second.wait(timeout=90) == [1, 1]
  # A step saved just before the kill may be complete without its manifest (written later by
  # process 0): it is restorable, and resuming from it is as exact.
  resumed = int(re.search(r"Resumed from step (\d+)", second.text(0)).group(1))
  assert resumed >= killed_at
  stopped_at = committed(workdir)[-1]
  assert f"stopped after step {stopped_at}, checkpoint saved" in second.text(0)
  assert f"stopped after step {stopped_at}, checkpoint saved" in second.text(1)

  # The relaunch after the kill resumed exactly: the state it saved when told to stop equals
  # that of one uninterrupted process.
  args = [*TOY, f"--config.run.steps={stopped_at}"]
  reference = Run(tmp_path / "reference", args, processes=1, cache=cache, name="ref")
  assert reference.wait() == [0], reference.text(0)[-3000:]
  _assert_same_state(workdir, reference.workdir, stopped_at)
  # Evaluations read the state alone (train metrics are means since the launch's previous line).
  got = {r["step"]: r for r in lines(workdir) if "eval/mean_distance" in r}
  want = [r for r in lines(reference.workdir) if "eval/mean_distance" in r and r["step"] % 20 == 0]
  assert len(want) >= 3
  for line in want:
    np.testing.assert_allclose(
      got[line["step"]]["eval/mean_distance"], line["eval/mean_distance"], rtol=1e-4
    )


@pytest.mark.skipif(not (REAL_DATA / "mnist").exists(), reason="needs the real MNIST files")
def test_two_processes_train_and_evaluate_as_one_and_only_process_0_writes(
  tmp_path, cache, mnist_dir, mnist_classifier
):
  """MNIST read by two processes, each its block of a batch; FCD and KID from each one's share.

  The only run of two processes that train to completion (test_killed_process_... stops them).
  """
  _, classifier_cache, _ = mnist_classifier
  args = [
    f"--config={ROOT / 'experiments/configs/mnist_dcgan.py'}",
    "--config.model.name=mlp",
    "--config.model.width=16",
    "--config.model.d_norm=batch",  # statistics over the global batch, across the processes
    "--config.data.batch_size=32",
    "--config.run.steps=4",
    "--config.log.every=2",
    "--config.log.sample_every=2",
    "--config.eval.every=4",
    "--config.eval.num_samples=600",
    "--config.eval.metrics=fcd,kid",
    "--config.eval.reference_split=test",
    f"--config.eval.cache_dir={classifier_cache}",
    f"--config.run.data_dir={mnist_dir}",
    "--config.checkpoint.every=4",
  ]
  # One after the other: the second launch reads the reference statistics the first cached.
  one = Run(tmp_path / "one", args, processes=1, cache=cache, name="run")
  assert one.wait() == [0], one.text(0)[-3000:]
  two = Run(tmp_path / "two", args, processes=2, cache=cache, name="run")
  assert two.wait() == [0, 0], two.text(0)[-3000:] + two.text(1)[-3000:]
  # The session's cached classifier, not one trained again by each process.
  assert "Reusing the cached mnist classifier" in two.text(0) + two.text(1)
  _assert_same_state(two.workdir, one.workdir, 4)
  leaves, _ = read_checkpoint(two.workdir, 4)
  assert any("d_vars" in k and "batch_stats" in k for k in leaves), sorted(leaves)
  got, want = lines(two.workdir)[-1], lines(one.workdir)[-1]
  metrics = [k for k in want if k.endswith(("/fcd", "/kid"))]
  assert len(metrics) == 2, want
  for name in metrics:
    np.testing.assert_allclose(got[name], want[name], rtol=1e-4, err_msg=name)
  # Process 0 alone writes: one metric line per log step, one event file, one grid per step.
  assert [r["step"] for r in lines(two.workdir)] == [2, 4]
  assert len(list((two.workdir / "tensorboard").iterdir())) == 1
  samples = sorted(p.name for p in (two.workdir / "samples").iterdir())
  assert samples == ["step_0000002.png", "step_0000004.png"]
  assert "Process 1 of 2: 1 local devices, 2 in all" in two.text(1)
  assert "final:" in two.text(1)  # process 1 trains and reports, but writes no file
  assert committed(two.workdir) == [4]
