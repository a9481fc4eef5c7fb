"""`train_and_evaluate(config, workdir)`: the one training loop behind every run.

It adds to `jaxgan.step.train` what a run needs: data (`jaxgan.run.inputs`), the device mesh, checkpoints
(resume after a crash or preemption), logs (JSON lines and TensorBoard), sample grids, metrics and
a progress bar. Callable from a notebook; `python -m jaxgan.main` is a thin command line around it,
and the studies in `experiments/` call it once per run.

What a run writes into `workdir`:
  config.json                the resolved config
  metrics.jsonl              one JSON object per logged step (train metrics, steps/s, eval)
  tensorboard/               TensorBoard event files with the same scalars
  samples/step_XXXXXXX.png   sample grids (scatter plots for 2-D data) from the EMA generator
  checkpoints/               orbax checkpoints: state, data position, config
  .jaxgan.lock               the owning run's host, pid, start and command; removed at its end

On several processes (`jaxgan.run.distributed.initialize_distributed`) every process runs this loop on its
block of each batch; process 0 alone writes files, and SIGTERM on any process stops all of them at
the next log step, saved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import config as config_lib
from jaxgan.errors import ConfigError, UserError
from jaxgan.metrics.mode_coverage import mode_coverage
from jaxgan.run import compilation_cache, inputs, writers
from jaxgan.run.build import build_gan, build_train_step
from jaxgan.step import labels as labels_lib
from jaxgan.step import sharding

log = logging.getLogger(__name__)


class Preempted(SystemExit):
  """Raised after a SIGTERM/SIGINT once the current step has been checkpointed."""


def make_evaluator(config, cache_dir: str, **settings):
  """The image-metric Evaluator of a run config (`Evaluator.from_config`, reading the data set
  as the run does: `config.read_options`).

  Raises:
    ValueError: a 2-D mixture (its metric is mode coverage, which the loop reports), a critic on
      the Inception network scored in its features (`check_critic_network`), and as
      `Evaluator.from_config`.
  """
  if config_lib.is_toy(config):
    raise ValueError(
      f"config.data.name={config.data.name!r} is a 2-D mixture: its metric is "
      "mode coverage, not an image Evaluator."
    )
  from jaxgan.config.checks import critic_backbone  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.eval_networks import check_critic_network  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.evaluator import Evaluator  # pylint: disable=g-import-not-at-top

  check_critic_network(config.eval.extractor, critic_backbone(config))  # jaxgan.evaluate's too
  read = config_lib.read_options(config)
  return Evaluator.from_config(config, read=read, cache_dir=cache_dir, **settings)


def _make_evaluator(config, workdir):
  """The image-metric Evaluator the config asks for (None for toy data or no metrics)."""
  if config_lib.is_toy(config) or not config.eval.metrics:
    return None
  cache_dir = config.eval.cache_dir or os.path.join(workdir, "reference_stats")
  evaluator = make_evaluator(config, cache_dir)
  log.info("Evaluation protocol: %s", evaluator.protocol)
  return evaluator


def run_keys(seed: int) -> jax.Array:
  """A run's four keys from its seed: init, train, sample grids, evaluation (the evaluation of
  step s uses `fold_in(eval, s)`; `jaxgan.evaluate` reuses it to reproduce a logged value)."""
  return jax.random.split(jax.random.PRNGKey(seed), 4)


def _grid_latents(gan, key, n: int):
  """The fixed latents of the sample grids; a conditional GAN's grid has one class per row.

  Returns:
    `(z, labels, columns)`: labels None and columns None (a square grid) for an unconditional
    GAN; else up to 10 classes (at most n) evenly spaced over all of them, one per row of
    `columns` samples.
  """
  if not gan.num_classes:
    return gan.latents(key, n), None, None
  rows = labels_lib.grid_labels(gan.num_classes, rows=min(10, n))
  columns = max(1, n // len(rows))
  return gan.latents(key, len(rows) * columns), jnp.asarray(np.repeat(rows, columns)), columns


class _StopSignals:
  """Whether to stop for SIGTERM/SIGINT, decided at the same train step on every process.

  A handler turns the signals into a flag (main thread only). One process stops after the call
  during which the signal came (or the next one). Several processes agree at the loop's log
  steps, which every process reaches in the same order: each shares its flag
  (`multihost.any_true`, one small allgather per log line) once the log step's results are on
  the host, and all stop at the first log step after a signal reached any of them, so they save
  the same step and none waits on a collective that the others never join.
  """

  def __init__(self):
    self.received: list[str] = []
    self._previous = {}
    self._distributed = jax.process_count() > 1

  def __enter__(self):
    handler = lambda signum, frame: self.received.append(signal.Signals(signum).name)
    try:
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no preemption handling
      pass
    return self

  def __exit__(self, *exc):
    for sig, old in self._previous.items():
      if old is not None:  # None: a handler installed outside Python, which cannot be restored
        signal.signal(sig, old)

  def check(self, sync_point: bool) -> bool:
    """Whether to stop after this call; `sync_point`: every process is at the same log step."""
    if not self._distributed:
      return bool(self.received)
    from jaxgan.run.checkpoint import multihost  # pylint: disable=g-import-not-at-top (orbax)

    if sync_point and multihost.any_true(bool(self.received)):
      self.received = self.received or ["SIGTERM or SIGINT (on another process)"]
      return True
    return False


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains a GAN as configured, writing logs, samples and checkpoints into `workdir`.

  Resumes from the newest good checkpoint in `workdir` when there is one; a checkpoint of another
  experiment (a different `data`, `model`, `loss`, `optim` section or seed) is refused.

  Args:
    config: a run config (`jaxgan.config.default_config()` with overrides).
    workdir: the run's directory; created when missing.

  Returns:
    An empty dict when `workdir` is already at `run.steps`; otherwise the last logged metrics: mean train metrics since the previous log line (`d_loss`, `g_loss`,
    `penalty`, ...), `steps_per_sec`, `skipped_total` and the last evaluation's `eval/...` or
    protocol-named metric keys.

  Raises:
    ValueError: an invalid config (`jaxgan.errors.ConfigError`: unknown names included), a batch
      that does not divide over the devices, a gradient penalty on a BatchNorm critic; before
      anything is written.
    jaxgan.run.checkpoint.CheckpointMismatchError: `workdir` holds checkpoints of another config.
    jaxgan.run.workdir.WorkdirBusyError: another live run holds `workdir`; before anything is written.
    FloatingPointError: `run.max_consecutive_skipped` non-finite updates in a row.
    Preempted: after SIGTERM/SIGINT, once the current step is checkpointed.
  """
  config_lib.validate(config)  # every field, name and metric: before any data or file
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.data.batch_size, mesh)
  with contextlib.ExitStack() as cleanup:
    return _train(config, workdir, mesh, cleanup)


def _train(config, workdir, mesh, cleanup: contextlib.ExitStack) -> dict[str, Any]:
  """The body of `train_and_evaluate`; `cleanup` closes what it opens, on every exit."""
  from jaxgan.run.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top (orbax)

  inp = inputs.make_input(config, mesh)
  cleanup.callback(inp.close)
  k = config.run.steps_per_call
  try:  # the modules' and the step's refusals of this config, before the workdir is touched
    gan = build_gan(config, inp.image_shape)
    step = build_train_step(config, gan, inp.class_frequencies)
  except (ValueError, TypeError) as e:  # e.g. a penalty on a BatchNorm critic: the input's fault
    if isinstance(e, UserError):
      raise
    raise ConfigError(str(e)) from e
  call = inputs.compile_call(step, inp, mesh, k)

  init_key, train_key, sample_key, eval_key = run_keys(config.seed)
  state = gan.init(init_key, jnp.zeros((config.data.batch_size, *inp.image_shape), jnp.float32))
  state = sharding.replicate(state, mesh)

  from jaxgan.run.workdir import acquire  # pylint: disable=g-import-not-at-top

  # The first write: a workdir in use by another run is refused before anything is written, and
  # the lock outlives the checkpointer (released last, after the final save is committed).
  cleanup.callback(acquire(workdir).release)
  is_main = jax.process_index() == 0
  ckpt = Checkpointer(
    os.path.join(workdir, "checkpoints"),
    config=config.to_dict(),
    save_every=config.checkpoint.every,
    keep=config.checkpoint.keep,
  )
  # Also on errors and preemption: close() waits for in-flight saves and writes their manifests.
  cleanup.callback(ckpt.close)
  restored = ckpt.restore_latest(state)
  if restored is not None:
    state, loader_state, _ = restored
    inp.set_state(loader_state)
  start_step = int(state.step)
  if start_step >= config.run.steps:
    log.info(
      "The run in %s is at step %d, at or past config.run.steps=%d: nothing to do. Raise "
      "--config.run.steps to train on.",
      workdir,
      start_step,
      config.run.steps,
    )
    return {}
  if start_step % k:
    raise ValueError(
      f"The checkpoint in {workdir} is at step {start_step}, not a multiple of "
      f"config.run.steps_per_call={k}; resume with a steps_per_call that divides "
      f"{start_step}."
    )
  # After the config check of restore_latest: the evaluator may cache reference statistics in
  # the workdir. Keep-best only matters when a save collects garbage, which comes later.
  evaluator = _make_evaluator(config, workdir)
  if evaluator is not None:
    ckpt.keep_best, ckpt.best_mode = evaluator.primary, evaluator.primary_mode
  if is_main:
    # Written only once the checkpoints are known to belong to this config.
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    if evaluator is not None:
      with open(os.path.join(workdir, "eval_protocol.txt"), "w") as f:
        f.write(evaluator.protocol + "\n")
  writer = writers.MetricWriter(workdir, enabled=is_main)
  cleanup.callback(writer.close)
  fixed_z, fixed_labels, columns = _grid_latents(gan, sample_key, config.log.num_samples)
  generate = jax.jit(gan.generate)
  sample = jax.jit(gan.sample, static_argnums=2)
  if restored is not None:
    log.info("Resumed from step %d in %s", start_step, workdir)

  def write_samples(step):
    if not is_main:
      return
    images = np.asarray(jax.device_get(generate(state, fixed_z, fixed_labels)))
    path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
    if inp.mixture is not None:
      writers.save_scatter(path, images, inp.mixture.modes)
    else:
      writers.save_image_grid(path, images, columns=columns)

  def evaluate(step):
    key = jax.random.fold_in(eval_key, step)
    if evaluator is not None:
      return evaluator.evaluate(lambda k, n, labels=None: sample(state, k, n, labels), key=key)
    if inp.mixture is None:
      return {}
    samples = jax.device_get(sample(state, key, config.eval.num_samples))
    coverage = mode_coverage(samples, inp.mixture.modes, inp.mixture.std)
    return {f"eval/{name}": v for name, v in coverage.items()}

  pending, consecutive_skipped, last, evaluated = [], 0, {}, {}
  last_saved = start_step if restored is not None else None
  t_last, step_last = time.perf_counter(), start_step
  total = config.run.steps
  progress = writers.Progress(total=total, initial=start_step, enabled=is_main)
  cleanup.callback(progress.close)
  with _StopSignals() as signals:
    for step in range(start_step + k, total + 1, k):
      state, metrics = call(state, train_key)
      if step == start_step + k:  # compiled: hand the compiler's freed heap back
        compilation_cache.release_compiler_memory()
      pending.append(metrics)
      progress.update(k)
      is_last = step == total
      is_eval = step % config.eval.every == 0 or is_last
      is_log = step % config.log.every == 0 or is_eval
      stop = signals.check(sync_point=False)  # one process: a signal received so far
      # Evaluation results go out with the log line, so an eval step is always a log step.
      if is_log or stop:
        fetched = jax.device_get(pending)  # one transfer per log line, not per step
        # After the wait for this call: a signal that arrived while it ran stops it here.
        stop = signals.check(sync_point=is_log)
        host = {name: np.concatenate([m[name] for m in fetched]) for name in fetched[-1]}
        pending = []
        first = step - len(host["skipped"]) + 1
        for offset, skipped in enumerate(host["skipped"]):
          consecutive_skipped = consecutive_skipped + 1 if skipped else 0
          if consecutive_skipped >= config.run.max_consecutive_skipped:
            where = (
              f"The last good checkpoint (step {last_saved}) in {workdir}/checkpoints is intact"
              if last_saved is not None
              else f"No checkpoint in {workdir} yet"
            )
            raise FloatingPointError(
              f"{consecutive_skipped} consecutive train steps had non-finite losses or "
              f"gradients (last at step {first + offset}); stopping. {where}: lower the "
              "learning rates or check the data."
            )
        now = time.perf_counter()
        last = {name: float(np.mean(v)) for name, v in host.items()}
        last["steps_per_sec"] = (step - step_last) / max(now - t_last, 1e-9)
        last["skipped_total"] = int(state.skipped)
        t_last, step_last = now, step
        if is_eval:
          evaluated = evaluate(step)
          last.update(evaluated)
        writer.write(step, last)
        progress.show(step, last)
      if step % config.log.sample_every == 0 or is_last:
        write_samples(step)
      if ckpt.should_save(step) or is_last or stop:
        # A checkpoint carries evaluation results only from its own step (keep-best reads them).
        fresh = {name: v for name, v in last.items() if is_eval or name not in evaluated}
        scalars = {name: v for name, v in fresh.items() if isinstance(v, float)}
        if ckpt.save(step, state, loader_state=inp.get_state(), metrics=scalars, force=True):
          last_saved = step
      if stop:
        ckpt.wait()
        saved = (
          "checkpoint saved in" if last_saved == step else "NO checkpoint saved (see above) in"
        )
        raise Preempted(
          f"Received {signals.received[0]}: stopped after step {step}, {saved} "
          f"{workdir}/checkpoints. Run the same command again to resume."
        )
  return last
