"""End-to-end fault tolerance of `train_and_evaluate`: kill, preempt, NaN.

Every test trains the toy ring with a small MLP and, where the run reaches the end, compares the
final checkpoint bitwise with one uninterrupted reference run (`reference` fixture): params, EMA,
optimizer states, step, skip counter and the data position. Damaged checkpoints (the fallback
past them, their quarantine) and a checkpoint of another config are tests/test_checkpoint.py's.

Runs that must be killed run in a subprocess (`_CHILD`); a patched `inputs.compile_call` sleeps
after each step there so the kill lands while training, without changing any number.
"""

import functools
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from _helpers import assert_bitwise_equal

from jaxgan.config import toy_config
from jaxgan.run import checkpoint as ckpt_lib
from jaxgan.run import inputs, loop
from jaxgan.run.build import build_gan

pytestmark = pytest.mark.full

STEPS = 40  # every finished run ends here
EVERY = 10  # checkpoint_every and log_every


def make_config(steps=STEPS, **overrides) -> ml_collections.ConfigDict:
  """The toy ring with a small MLP; `overrides` are dotted field names, e.g. optim.g_lr=1e-3."""
  cfg = toy_config("ring", steps=steps)
  cfg.model.kwargs.update(g_hidden=(32, 32), d_hidden=(32, 32))
  cfg.data.batch_size = 64
  cfg.run.steps_per_call = 1  # the host sees every step, so a kill can land between any two
  cfg.checkpoint.every = EVERY
  cfg.log.every = EVERY
  cfg.log.sample_every = 10_000  # samples and mode coverage only at the last step
  cfg.eval.every = 10_000
  cfg.eval.num_samples = 256
  cfg.log.num_samples = 16
  for name, value in overrides.items():
    *sections, field = name.split(".")
    node = cfg
    for section in sections:
      node = node[section]
    node[field] = value
  return cfg


@functools.cache
def _template(model_json):
  cfg = make_config()
  cfg.model.kwargs = ml_collections.ConfigDict(json.loads(model_json))
  gan = build_gan(cfg, (2,))
  return jax.jit(gan.init)(jax.random.PRNGKey(0), jnp.zeros((cfg.data.batch_size, 2)))


def load_checkpoint(workdir, cfg=None, step=None):
  """(state, loader_state, step) of the newest good checkpoint (or of `step`) in `workdir`."""
  cfg = cfg or make_config()
  template = _template(json.dumps(cfg.model.kwargs.to_dict()))
  ck = ckpt_lib.Checkpointer(Path(workdir) / "checkpoints", config=cfg.to_dict(), save_every=0)
  try:
    if step is None:
      return ck.restore_latest(template)
    return ck.restore(step, template)
  finally:
    ck.close()


def assert_same_final_state(workdir, reference):
  state, loader_state, step = load_checkpoint(workdir)
  ref_state, ref_loader, ref_step = reference["final"]
  assert step == ref_step == STEPS
  assert loader_state is None and ref_loader is None  # the toy data are drawn in the program
  # params, BatchNorm-free vars, EMA, both optimizer states, step and skip counter
  assert_bitwise_equal(state, ref_state)


def all_finite(tree):
  return all(
    bool(np.all(np.isfinite(np.asarray(x))))
    for x in jax.tree.leaves(tree)
    if np.issubdtype(np.asarray(x).dtype, np.floating)
  )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """One uninterrupted run of STEPS steps; checkpoints at 20, 30, 40 remain (keep=3)."""
  workdir = tmp_path_factory.mktemp("reference")
  loop.train_and_evaluate(make_config(), str(workdir))
  ckdir = workdir / "checkpoints"
  assert sorted(int(p.name) for p in ckdir.iterdir() if p.name.isdigit()) == [20, 30, 40]
  final = load_checkpoint(workdir)
  initial = load_checkpoint(workdir, step=20)  # training moved the parameters (not a no-op)
  assert not np.array_equal(
    jax.tree.leaves(final[0].g_params)[0], jax.tree.leaves(initial[0].g_params)[0]
  )
  return {"workdir": workdir, "final": final}


# ------------------------------------------------------------------------------------------------
# runs in a subprocess

_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from jaxgan.run import inputs
    from jaxgan.run import loop
    from test_fault_tolerance import make_config

    compile_call = inputs.compile_call
    def slow_compile_call(*args):
      call = compile_call(*args)
      def slow_call(state, *rest):
        if int(state.step) >= {slow_from}:
          time.sleep({delay})
        return call(state, *rest)
      return slow_call
    inputs.compile_call = slow_compile_call
    loop.train_and_evaluate(make_config(), {workdir!r})
""")


@pytest.fixture(scope="module")
def child_env(tmp_path_factory):
  # The children share a persistent compilation cache: the second one skips most compiles.
  cache = tmp_path_factory.mktemp("jax_cache")
  return {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "JAX_COMPILATION_CACHE_DIR": str(cache),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
  }


def start_child(workdir, env, *, slow_from, delay):
  code = _CHILD.format(
    tests=str(Path(__file__).parent), slow_from=slow_from, delay=delay, workdir=str(workdir)
  )
  log_path = Path(workdir).parent / f"{Path(workdir).name}.log"
  with open(log_path, "w") as out:
    proc = subprocess.Popen(
      [sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT, env=env
    )
  return proc, log_path


def wait_for(condition, proc, log_path, what, timeout=120):
  deadline = time.monotonic() + timeout
  while not condition():
    if proc.poll() is not None:
      pytest.fail(f"child exited ({proc.returncode}) before {what}:\n{Path(log_path).read_text()}")
    if time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f"timed out waiting for {what}:\n{Path(log_path).read_text()}")
    time.sleep(0.01)


@pytest.mark.full
def test_sigkill_after_save_then_resume_is_bitwise_exact(tmp_path, reference, child_env, caplog):
  """SIGKILL at a (seeded) random point after the step-20 checkpoint committed; resume to 40."""
  workdir = tmp_path / "run"
  workdir.mkdir()
  # From batch 20 on, 0.15 s per step: the 20 remaining steps take >= 3 s; we kill within 0.6 s.
  proc, log_path = start_child(workdir, child_env, slow_from=20, delay=0.15)
  committed = workdir / "checkpoints" / "20"  # orbax renames its tmp dir to this on commit
  wait_for(committed.is_dir, proc, log_path, "the step-20 checkpoint")
  time.sleep(random.Random(0).uniform(0.0, 0.6))
  proc.send_signal(signal.SIGKILL)
  assert proc.wait(timeout=60) == -signal.SIGKILL, Path(log_path).read_text()
  assert not (workdir / "checkpoints" / str(STEPS)).exists()

  caplog.set_level(logging.INFO)
  loop.train_and_evaluate(make_config(), str(workdir))
  resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Resumed from")]
  assert resumed and int(resumed[0].split()[3]) >= 20, resumed
  assert_same_final_state(workdir, reference)


@pytest.mark.full
def test_sigterm_stops_with_checkpoint_and_resumes(tmp_path, reference, child_env):
  workdir = tmp_path / "run"
  workdir.mkdir()
  proc, log_path = start_child(workdir, child_env, slow_from=EVERY, delay=0.1)
  metrics = workdir / "metrics.jsonl"  # first logged step: the loop (and its handler) is running
  wait_for(
    lambda: metrics.exists() and metrics.read_text().strip(),
    proc,
    log_path,
    "the first logged step",
  )
  time.sleep(0.35)
  proc.send_signal(signal.SIGTERM)
  rc = proc.wait(timeout=60)
  output = Path(log_path).read_text()
  assert rc == 1, output  # SystemExit with a message, not a death by signal
  m = re.search(r"Received SIGTERM: stopped after step (\d+), checkpoint saved in (\S+)\.", output)
  assert m, output
  stopped = int(m.group(1))
  assert EVERY < stopped < STEPS, output  # usually mid-interval: a save forced by the signal
  step_dir = workdir / "checkpoints" / str(stopped)
  assert (step_dir / ckpt_lib.MANIFEST_NAME).exists()  # committed and verified before exiting
  state, loader_state, step = load_checkpoint(workdir)
  assert step == int(state.step) == stopped and loader_state is None

  loop.train_and_evaluate(make_config(), str(workdir))
  assert_same_final_state(workdir, reference)


# ------------------------------------------------------------------------------------------------
# non-finite steps


def _poison(monkeypatch, positions):
  """The batches of the train steps (0-based) in `positions` are all NaN, inside the program."""
  sample = inputs.ProgramInput.sample
  bad = jnp.asarray(sorted(positions))

  def poisoned(self, key, step):
    batch = sample(self, key, step)
    return jnp.where(jnp.any(step == bad), jnp.nan, batch)

  monkeypatch.setattr(inputs.ProgramInput, "sample", poisoned)


def _metric_lines(workdir):
  return {d["step"]: d for d in map(json.loads, (Path(workdir) / "metrics.jsonl").open())}


def test_nan_batch_is_skipped_and_training_continues(tmp_path, monkeypatch):
  _poison(monkeypatch, {14})  # step 15
  workdir = tmp_path / "run"
  cfg = make_config(steps=20)
  last = loop.train_and_evaluate(cfg, str(workdir))
  assert last["skipped_total"] == 1
  lines = _metric_lines(workdir)
  assert lines[10]["skipped"] == 0 and lines[10]["skipped_total"] == 0
  assert lines[20]["skipped"] == pytest.approx(0.1) and lines[20]["skipped_total"] == 1
  state, _, step = load_checkpoint(workdir, cfg)
  assert step == int(state.step) == 20 and int(state.skipped) == 1
  assert all_finite(state)
  at_10, _, _ = load_checkpoint(workdir, cfg, step=10)
  for a, b in zip(jax.tree.leaves(state.g_params), jax.tree.leaves(at_10.g_params), strict=True):
    assert not np.array_equal(a, b)  # the other nine steps were applied


def test_consecutive_nan_steps_stop_the_run(tmp_path, monkeypatch):
  _poison(monkeypatch, set(range(10, 1000)))  # every step from 11 on
  workdir = tmp_path / "run"
  cfg = make_config(**{"run.max_consecutive_skipped": 5, "checkpoint.every": 5})
  with pytest.raises(
    FloatingPointError,
    match=r"5 consecutive train steps .*\(last at step 15\); stopping\. The last "
    r"good checkpoint \(step 15\) in .* is intact",
  ):
    loop.train_and_evaluate(cfg, str(workdir))
  ckdir = workdir / "checkpoints"
  steps = sorted(int(p.name) for p in ckdir.iterdir() if p.name.isdigit())
  assert steps == [5, 10, 15]  # the run stopped at the log step 20, before saving it
  ck = ckpt_lib.Checkpointer(ckdir, config=cfg.to_dict(), save_every=0)
  assert [ck.verify(s).status for s in steps] == ["verified"] * 3  # manifests written, all intact
  ck.close()
  state, loader_state, step = load_checkpoint(workdir, cfg)
  assert step == 15 and int(state.skipped) == 5 and all_finite(state)
  assert loader_state is None
  # skipped updates leave params, EMA and optimizer states exactly as they were after step 10
  at_10, _, _ = load_checkpoint(workdir, cfg, step=10)
  assert_bitwise_equal(state.replace(step=at_10.step, skipped=at_10.skipped), at_10)


def test_diverging_run_without_checkpoint_says_so(tmp_path):
  """A huge learning rate: every update is non-finite (and dropped) from step 1 on."""
  cfg = make_config(
    steps=20,
    **{"optim.g_lr": 1e30, "optim.d_lr": 1e30, "run.max_consecutive_skipped": 3, "log.every": 5},
  )
  with pytest.raises(
    FloatingPointError,
    match=r"3 consecutive train steps .*\(last at step 3\); "
    r"stopping\. No checkpoint in .* yet",
  ):
    loop.train_and_evaluate(cfg, str(tmp_path / "run"))
  assert not [p for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit()]
