"""`train_and_evaluate(config, workdir)`: the training loop around the compiled train step.

It adds to `jaxgan.train` what a run needs: data, the device mesh, checkpoints (resume after a
crash or preemption), logs (JSON lines and TensorBoard), sample grids, toy-mixture metrics and a
progress bar. Callable from a notebook; `python -m jaxgan.main` is a thin command line around it.

What a run writes into `workdir`:
  config.json                the resolved config
  metrics.jsonl              one JSON object per logged step (train metrics, steps/s, eval)
  tensorboard/               TensorBoard event files with the same scalars
  samples/step_XXXXXXX.png   sample grids from the EMA generator, on fixed noise
  checkpoints/               orbax checkpoints: state, data position, config
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
import optax

from jaxgan import losses as losses_lib
from jaxgan import penalties as penalties_lib
from jaxgan import sharding
from jaxgan.data import toy as toy_data
from jaxgan.metrics.mode_coverage import mode_coverage
from jaxgan.models import make_models
from jaxgan.state import GAN
from jaxgan.train import check_penalty_critic, make_train_step
from jaxgan import writers

log = logging.getLogger(__name__)

TOY_DATASETS = {"toy_ring": "ring", "toy_grid": "grid"}
IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar10_jpeg")


class Preempted(SystemExit):
  """Raised after a SIGTERM/SIGINT once the current step has been checkpointed."""


def default_config() -> ml_collections.ConfigDict:
  """Every field a run reads, with its default. Experiment configs start from this."""
  c = ml_collections.ConfigDict()
  # Data.
  c.dataset = "mnist"
  c.data_dir = os.environ.get("JAXGAN_DATA_DIR") or ml_collections.config_dict.placeholder(str)
  c.source_dir = os.environ.get("JAXGAN_SOURCE_DIR") or ml_collections.config_dict.placeholder(str)
  c.pad_to = ml_collections.config_dict.placeholder(int)
  c.loader_workers = 0
  # Models.
  c.model = "dcgan"
  c.latent_dim = 100
  c.width = ml_collections.config_dict.placeholder(int)
  c.d_norm = ml_collections.config_dict.placeholder(str)
  c.model_kwargs = ml_collections.ConfigDict()
  # Compute dtype of G and D: 'float32' or 'bfloat16' (mixed precision: float32 params, optimizer
  # states, losses and gradient-penalty norms; bfloat16 activations and matmuls).
  c.compute_dtype = "float32"
  # Objective and update.
  c.loss = "non_saturating"
  c.penalty = ml_collections.config_dict.placeholder(str)
  c.penalty_weight = 10.0
  c.n_critic = 1
  c.weight_clip = ml_collections.config_dict.placeholder(float)
  c.ema_decay = 0.999
  c.g_lr = 2e-4
  c.d_lr = 2e-4
  c.b1 = 0.5
  c.b2 = 0.999
  c.batch_size = 64  # global examples per discriminator update
  c.steps = 2000
  c.seed = 0
  # Logging, samples, evaluation, checkpoints.
  c.log_every = 50
  c.sample_every = 500
  c.num_samples = 64
  c.eval_every = 500
  c.eval_samples = 2500
  # Image metrics (jaxgan.metrics.Evaluator): "" for none, or e.g. "fcd,kid,precision_recall,is".
  # The toy mixtures always report mode coverage.
  c.eval_metrics = ""
  c.eval_extractor = "classifier"  # or "inception" (needs eval_inception_weights)
  c.eval_classifier_path = ml_collections.config_dict.placeholder(str)
  c.eval_inception_weights = ml_collections.config_dict.placeholder(str)
  c.eval_reference_split = "train"
  c.eval_cache_dir = ml_collections.config_dict.placeholder(str)
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.max_consecutive_skipped = 20
  return c


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises a ValueError naming the problem and the fix; runs before anything is compiled."""
  unknown = sorted(set(config.keys()) - set(default_config().keys()))
  if unknown:
    raise ValueError(f"Unknown config keys {unknown}. Valid keys: {sorted(default_config().keys())}.")
  valid = (*IMAGE_DATASETS, *TOY_DATASETS)
  if config.dataset not in valid:
    raise ValueError(f"Unknown dataset {config.dataset!r}. Valid names: {', '.join(valid)}.")
  losses_lib.get(config.loss)
  if config.dataset not in TOY_DATASETS and config.eval_metrics and jax.process_count() > 1:
    raise ValueError("Image metrics gather samples on one host; set config.eval_metrics='' for "
                     "multi-host runs and evaluate the checkpoints separately.")
  if config.penalty is not None:
    penalties_lib.get(config.penalty)
  for key in ("steps", "batch_size", "n_critic", "log_every", "sample_every", "eval_every",
              "checkpoint_every", "keep_checkpoints"):
    if config[key] < 1:
      raise ValueError(f"config.{key} must be a positive integer; got {config[key]}.")


def _image_shape(config, source) -> tuple[int, ...]:
  if config.dataset in TOY_DATASETS:
    return (2,)
  image = np.asarray(source[0]["image"])
  h, w = image.shape[:2]
  c = image.shape[2] if image.ndim == 3 else 1
  if config.pad_to:
    h = w = config.pad_to
  return (h, w, c)


class _ToyStream:
  """Batches from a 2-D mixture; its position is a batch counter, so it resumes exactly."""

  def __init__(self, mixture, batch_size, seed, shard_index=0):
    self.mixture, self.batch_size, self.seed, self.shard = mixture, batch_size, seed, shard_index
    self.position = 0

  def __iter__(self):
    return self

  def __next__(self):
    rng = np.random.default_rng([self.seed, self.shard, self.position])
    self.position += 1
    idx = rng.integers(0, len(self.mixture.modes), self.batch_size)
    noise = rng.normal(size=(self.batch_size, 2)) * self.mixture.std
    return {"image": (self.mixture.modes[idx] + noise).astype(np.float32)}

  def get_state(self):
    return {"position": self.position}

  def set_state(self, state):
    self.position = int(state["position"])

  def close(self):
    pass


def _make_data(config, local_batch):
  if config.dataset in TOY_DATASETS:
    mixture = toy_data.get(TOY_DATASETS[config.dataset])
    return mixture, _ToyStream(mixture, local_batch, config.seed, jax.process_index())
  from jaxgan import data  # pylint: disable=g-import-not-at-top  (TFDS is a heavy import)

  source = data.load_source(config.dataset, data_dir=config.data_dir, source_dir=config.source_dir)
  loader = data.make_loader(source, batch_size=local_batch, seed=config.seed, pad_to=config.pad_to,
                            shard_index=jax.process_index(), shard_count=jax.process_count(),
                            worker_count=config.loader_workers)
  return source, loader


def _make_evaluator(config, workdir):
  """The image-metric Evaluator the config asks for (None for toy data or no metrics)."""
  if config.dataset in TOY_DATASETS or not config.eval_metrics:
    return None
  from jaxgan.metrics.evaluator import Evaluator  # pylint: disable=g-import-not-at-top

  evaluator = Evaluator.from_config(dict(
      metrics=config.eval_metrics, extractor=config.eval_extractor,
      classifier_path=config.eval_classifier_path, inception_weights=config.eval_inception_weights,
      dataset=config.dataset, reference_split=config.eval_reference_split,
      num_samples=config.eval_samples, pad_to=config.pad_to, data_dir=config.data_dir,
      source_dir=config.source_dir,
      cache_dir=config.eval_cache_dir or os.path.join(workdir, "reference_stats")))
  log.info("Evaluation protocol: %s", evaluator.protocol)
  return evaluator


def build_gan(config, image_shape) -> GAN:
  kwargs = dict(config.model_kwargs.to_dict()) if config.model_kwargs else {}
  g, d = make_models(config.model, image_shape=image_shape, latent_dim=config.latent_dim,
                     width=config.width, d_norm=config.d_norm,
                     dtype=config.get("compute_dtype", "float32"), **kwargs)
  adam = lambda lr: optax.adam(lr, b1=config.b1, b2=config.b2)
  return GAN(g, d, adam(config.g_lr), adam(config.d_lr), latent_shape=(config.latent_dim,))


@contextlib.contextmanager
def _stop_signals():
  """Turns SIGTERM/SIGINT into a flag the loop reads between steps (main thread only)."""
  received = []
  handler = lambda signum, frame: received.append(signal.Signals(signum).name)
  previous = {}
  try:
    for sig in (signal.SIGTERM, signal.SIGINT):
      previous[sig] = signal.signal(sig, handler)
  except ValueError:  # not the main thread: no preemption handling
    pass
  try:
    yield received
  finally:
    for sig, old in previous.items():
      signal.signal(sig, old)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains a GAN as configured, writing logs, samples and checkpoints into `workdir`.

  Resumes from the newest good checkpoint in `workdir` when there is one. Returns the last logged
  metrics (and evaluation results).
  """
  from jaxgan.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top

  validate_config(config)
  mesh = sharding.make_mesh()
  global_batch = config.batch_size * config.n_critic
  sharding.check_batch_size(config.batch_size, mesh)
  local_batch = sharding.local_batch_size(global_batch, mesh)
  source, stream = _make_data(config, local_batch)
  image_shape = _image_shape(config, source)
  gan = build_gan(config, image_shape)  # unknown model, bad image size: errors before compiling
  train_step = make_train_step(
      gan, loss=config.loss, penalty=config.penalty, penalty_weight=config.penalty_weight,
      n_critic=config.n_critic, ema_decay=config.ema_decay, weight_clip=config.weight_clip)

  init_key, train_key, sample_key, eval_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  state = gan.init(init_key, jnp.zeros((config.batch_size, *image_shape), jnp.float32))
  check_penalty_critic(gan, state, config.penalty)  # before the workdir is touched
  state = sharding.replicate(state, mesh)
  step_fn = sharding.jit_train_step(train_step, mesh)

  os.makedirs(workdir, exist_ok=True)
  is_main = jax.process_index() == 0
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), config=config.to_dict(),
                      save_every=config.checkpoint_every, keep=config.keep_checkpoints)
  restored = ckpt.restore_latest(state)
  if restored is not None:
    state, loader_state, _ = restored
    if loader_state is not None:
      stream.set_state(loader_state)
  # After the config check of restore_latest: the evaluator may cache reference statistics in
  # the workdir. Keep-best only matters when a save collects garbage, which comes later.
  evaluator = _make_evaluator(config, workdir)
  if evaluator is not None:
    ckpt.keep_best, ckpt.best_mode = evaluator.primary, evaluator.primary_mode
  start_step = int(state.step)
  if is_main:
    # Written only once the checkpoints are known to belong to this config.
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    if evaluator is not None:
      with open(os.path.join(workdir, "eval_protocol.txt"), "w") as f:
        f.write(evaluator.protocol + "\n")
  writer = writers.MetricWriter(workdir, enabled=is_main)
  fixed_z = gan.latents(sample_key, config.num_samples)
  generate = jax.jit(gan.generate)
  sample = jax.jit(gan.sample, static_argnums=2)
  if restored is not None:
    log.info("Resumed from step %d in %s", start_step, workdir)

  def write_samples(step):
    if not is_main:
      return
    images = np.asarray(jax.device_get(generate(state, fixed_z)))
    if config.dataset in TOY_DATASETS:
      writers.save_scatter(os.path.join(workdir, "samples", f"step_{step:07d}.png"), images,
                           source.modes)
    else:
      writers.save_image_grid(os.path.join(workdir, "samples", f"step_{step:07d}.png"), images)

  def evaluate(step):
    key = jax.random.fold_in(eval_key, step)
    if evaluator is not None:
      return evaluator.evaluate(lambda k, n: sample(state, k, n), key=key)
    if config.dataset not in TOY_DATASETS:
      return {}
    samples = jax.device_get(sample(state, key, config.eval_samples))
    return {f"eval/{k}": v for k, v in mode_coverage(samples, source.modes, source.std).items()}

  pending, consecutive_skipped, last, evaluated = [], 0, {}, {}
  last_saved = start_step if restored is not None else None
  t_last, step_last = time.perf_counter(), start_step
  progress = writers.Progress(total=config.steps, initial=start_step, enabled=is_main)
  try:
    with _stop_signals() as stop:
      for step in range(start_step + 1, config.steps + 1):
        batch = sharding.global_batch(next(stream)["image"], mesh)
        state, metrics = step_fn(state, batch, train_key)
        pending.append(metrics)
        progress.update(1)
        is_last = step == config.steps
        is_eval = step % config.eval_every == 0 or is_last
        # Evaluation results go out with the log line, so an eval step is always a log step.
        if step % config.log_every == 0 or is_eval or stop:
          host = jax.device_get(pending)
          pending = []
          for m_step, m in enumerate(host, start=step - len(host) + 1):
            consecutive_skipped = consecutive_skipped + 1 if m["skipped"] else 0
            if consecutive_skipped >= config.max_consecutive_skipped:
              where = (f"The last good checkpoint (step {last_saved}) in {workdir}/checkpoints is "
                       "intact" if last_saved is not None else f"No checkpoint in {workdir} yet")
              raise FloatingPointError(
                  f"{consecutive_skipped} consecutive train steps had non-finite losses or "
                  f"gradients (last at step {m_step}); stopping. {where}: lower the learning "
                  "rates or check the data.")
          now = time.perf_counter()
          last = {k: float(np.mean([m[k] for m in host])) for k in host[-1]}
          last["steps_per_sec"] = (step - step_last) / max(now - t_last, 1e-9)
          last["skipped_total"] = int(state.skipped)
          t_last, step_last = now, step
          if is_eval:
            evaluated = evaluate(step)
            last.update(evaluated)
          writer.write(step, last)
          progress.show(step, last)
        if step % config.sample_every == 0 or is_last:
          write_samples(step)
        if ckpt.should_save(step) or is_last or stop:
          # A checkpoint carries evaluation results only from its own step (keep-best reads them).
          fresh = {k: v for k, v in last.items() if is_eval or k not in evaluated}
          if ckpt.save(step, state, loader_state=stream.get_state(),
                       metrics={k: v for k, v in fresh.items() if isinstance(v, float)}, force=True):
            last_saved = step
        if stop:
          ckpt.wait()
          saved = "checkpoint saved in" if last_saved == step else "NO checkpoint saved (see above) in"
          raise Preempted(f"Received {stop[0]}: stopped after step {step}, {saved} "
                          f"{workdir}/checkpoints. Run the same command again to resume.")
  finally:
    # Also on errors and preemption: close() waits for in-flight saves and writes their manifests.
    ckpt.close()
    writer.close()
    progress.close()
    stream.close()
  return last
