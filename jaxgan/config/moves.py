"""Config keys that moved or were removed, and what to write instead.

Imported by `jaxgan.config` to name the fix when an old key is used, and by the checkpoint code
to recognise a config of the flat layout of jaxgan 0.1.
"""

from __future__ import annotations

# Fields that are gone, and what replaced them.
REMOVED = {
  "optim.lr_decay": "a schedule spec in optim.g_lr and optim.d_lr, e.g. "
  "--config.optim.g_lr='cosine(2e-4, 0, 20000)' (jaxgan.schedules)",
  "optim.decay_steps": "the steps argument of a schedule spec in optim.g_lr and optim.d_lr, e.g. "
  "--config.optim.g_lr='linear(2e-4, 0, 20000)' (jaxgan.schedules)",
}


# The keys of the flat config of jaxgan 0.1 and where each lives now.
FLAT_LAYOUT = {
  "dataset": "data.name",
  "pad_to": "data.pad_to",
  "batch_size": "data.batch_size",
  "model": "model.name",
  "latent_dim": "model.latent_dim",
  "width": "model.width",
  "d_norm": "model.d_norm",
  "compute_dtype": "model.compute_dtype",
  "model_kwargs": "model.kwargs",
  "loss": "loss.name",
  "penalty": "loss.penalty",
  "penalty_weight": "loss.penalty_weight",
  "n_critic": "loss.n_critic",
  "weight_clip": "loss.weight_clip",
  "g_lr": "optim.g_lr",
  "d_lr": "optim.d_lr",
  "b1": "optim.b1",
  "b2": "optim.b2",
  "ema_decay": "optim.ema_decay",
  "steps": "run.steps",
  "data_dir": "run.data_dir",
  "source_dir": "run.source_dir",
  "loader_workers": "run.loader_workers",
  "max_consecutive_skipped": "run.max_consecutive_skipped",
  "log_every": "log.every",
  "sample_every": "log.sample_every",
  "num_samples": "log.num_samples",
  "eval_every": "eval.every",
  "eval_samples": "eval.num_samples",
  "eval_metrics": "eval.metrics",
  "eval_extractor": "eval.extractor",
  "eval_classifier_path": "eval.classifier_path",
  "eval_inception_weights": "eval.inception_weights",
  "eval_reference_split": "eval.reference_split",
  "eval_cache_dir": "eval.cache_dir",
  "checkpoint_every": "checkpoint.every",
  "keep_checkpoints": "checkpoint.keep",
}


def flat_layout_message(key: str) -> str:
  """The error for a key of the flat layout: where it lives now."""
  return (
    f"Config key {key!r} is of the flat layout that jaxgan no longer reads; it now lives at "
    f"{FLAT_LAYOUT[key]} (--config.{FLAT_LAYOUT[key]}=...). Every field is in jaxgan/config/__init__.py "
    "(default_config)."
  )
