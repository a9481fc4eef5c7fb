"""Do a finished run's samples carry its augmentation? (Karras et al. 2020's "leaking".)

    python benchmarks/augment_leak.py runs/study/runs/mnist_1pct/*/seed0 --num_samples 5000 \
        --source_dir=../shared/data

For each run directory (a `jaxgan.main` workdir) the EMA generator of its latest checkpoint draws
`--num_samples` images, and their Frechet distance in the run's own evaluation features (e.g.
jaxgan's MNIST classifier) is measured against two references of as many images of the run's
evaluation reference split (`eval.reference_split`, all of the training split):

- `fd_real`: the training images as they are (the run's own metric);
- `fd_aug`: the same images through an augmentation (`--augment`, `--policy`, at `--p`; by
  default the run's own augmentation at its final p, and DiffAugment at p = 1 for a run that had
  none).

A generator that learned the data sits closer to the real images (`fd_real` < `fd_aug`); one
whose samples carry the augmentation (translated borders, cutout squares, colour shifts) sits
closer to the augmented ones: `leaks = fd_aug < fd_real`. `fd_floor` is the distance between the
two references themselves, what the augmentation moves the data by in these features.

It also measures D's overfitting as the ADA paper does (Karras et al. 2020, Figure 1): D's mean
raw score and the fraction of positive scores on the run's training images (`d_train`,
`acc_train`), on held-out real images (`--heldout_split`: `d_heldout`, `acc_heldout`) and on the
samples (`d_fake`; `acc_fake` the fraction judged fake). A D that memorised its training set
scores held-out digits like fakes: `acc_train - acc_heldout` is the gap. D runs in inference mode
(BatchNorm's running statistics) on un-augmented images. Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import augment as augment_lib
from jaxgan.data import load_source
from jaxgan.metrics.evaluator import Evaluator
from jaxgan.metrics.fid import FeatureStats, frechet_distance
from jaxgan.run.build import build_gan
from jaxgan.run.checkpoint import Checkpointer
from jaxgan.step.critic import apply_module
from jaxgan.step.state import scores_and_logits


def load_run(workdir: str):
  """The config, GAN and latest state of a finished run (EMA parameters included)."""
  if not os.path.isfile(os.path.join(workdir, "config.json")):
    raise SystemExit(f"{workdir} is not a jaxgan workdir (no config.json): pass a run's --workdir.")
  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  src = load_source(config.data.name, split="train[:1]", source_dir=config.run.source_dir)
  image_shape = src.get_batch([0])["image"].shape[1:]
  if config.data.get("pad_to"):
    image_shape = (config.data.pad_to, config.data.pad_to, image_shape[-1])
  gan = build_gan(config, image_shape)
  state = gan.init(jax.random.PRNGKey(0), jnp.zeros((2, *image_shape), jnp.float32))
  ckpt = Checkpointer(
    os.path.join(workdir, "checkpoints"),
    config=config.to_dict(),
    save_every=config.checkpoint.every,
  )
  restored = ckpt.restore_latest(state)
  ckpt.close()
  if restored is None:
    raise SystemExit(f"{workdir}: no checkpoint to read; train the run first.")
  return config, gan, restored[0]


def split_images(config, n: int, seed: int, split: str) -> np.ndarray:
  """`n` images of a split of the run's data set (all of them when fewer), float32 in [-1, 1],
  drawn without replacement."""
  src = load_source(config.data.name, split=split, source_dir=config.run.source_dir)
  idx = np.random.default_rng(seed).choice(len(src), size=min(n, len(src)), replace=False)
  return src.get_batch(np.sort(idx))["image"].astype(np.float32) / 127.5 - 1.0


def batched(fn, x: np.ndarray, batch: int = 500) -> np.ndarray:
  return np.concatenate([np.asarray(fn(x[i : i + batch], i)) for i in range(0, len(x), batch)])


def check_run(workdir: str, args) -> dict:
  """The leak and overfitting measures of one run (see the module docstring)."""
  config, gan, state = load_run(workdir)
  if args.source_dir:
    config.run.source_dir = args.source_dir
  name = args.augment or config.augment.name or "diffaugment"
  policy = args.policy or (config.augment.policy if name == config.augment.name else "") or None
  p = args.p if args.p >= 0 else (float(state.aug_p) if config.augment.name else 1.0)
  aug = augment_lib.get(name, policy)
  extractor = Evaluator.from_config(config).extractor
  key = jax.random.PRNGKey(args.seed)
  real = split_images(config, args.num_samples, args.seed, config.eval.reference_split)
  augmented = batched(lambda x, i: aug(jnp.asarray(x), jax.random.fold_in(key, i), p), real)
  sample = jax.jit(gan.sample, static_argnums=2)
  n = args.num_samples
  fakes = batched(lambda x, i: sample(state, jax.random.fold_in(key, n + i), len(x)), real[:n])
  stats = {
    k: FeatureStats().update(batched(lambda b, i: extractor.features(b), x)).mean_cov()
    for k, x in (("real", real), ("aug", augmented), ("fake", fakes))
  }
  fd_real = frechet_distance(*stats["fake"], *stats["real"])
  fd_aug = frechet_distance(*stats["fake"], *stats["aug"])
  critic = jax.jit(
    lambda x: scores_and_logits(
      apply_module(gan.discriminator, state.d_params, state.d_vars, x, False)[0]
    )[0]
  )
  scores = {
    "train": batched(lambda x, i: critic(x), split_images(config, n, args.seed, config.data.split)),
    "heldout": batched(
      lambda x, i: critic(x), split_images(config, n, args.seed, args.heldout_split)
    ),
    "fake": batched(lambda x, i: critic(x), fakes),
  }
  row = {
    "run": workdir,
    "step": int(state.step),
    "augment": f"{name}:{policy or 'default'}@p={p:.3f}",
    "fd_real": round(float(fd_real), 3),
    "fd_aug": round(float(fd_aug), 3),
    "fd_floor": round(float(frechet_distance(*stats["aug"], *stats["real"])), 3),
    "leaks": bool(fd_aug < fd_real),
    **{f"d_{k}": round(float(v.mean()), 3) for k, v in scores.items()},
    "acc_train": round(float((scores["train"] > 0).mean()), 4),
    "acc_heldout": round(float((scores["heldout"] > 0).mean()), 4),
    "acc_fake": round(float((scores["fake"] < 0).mean()), 4),
  }
  return row


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("workdirs", nargs="+")
  parser.add_argument("--num_samples", type=int, default=10_000)
  parser.add_argument("--augment", default="", help="name; '' the run's own (DiffAugment if none)")
  parser.add_argument("--policy", default="")
  parser.add_argument("--p", type=float, default=-1.0, help="< 0: the run's final p (1 if none)")
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--heldout_split", default="test", help="real images D never saw")
  args = parser.parse_args(argv)
  for workdir in args.workdirs:
    print(json.dumps(check_run(workdir, args)), flush=True)


if __name__ == "__main__":
  main()
