"""Do a finished run's samples carry its augmentation? (Karras et al. 2020's "leaking".)

    python benchmarks/augment_leak.py runs/augment_1pct/runs/mnist_1pct/*/seed0 \
        --augment=diffaugment --source_dir=../shared/data

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
two references themselves, what the augmentation moves the data by in these features. Prints one
JSON line per run.
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
from jaxgan.build import build_gan
from jaxgan.checkpoint import Checkpointer
from jaxgan.data import load_source
from jaxgan.metrics.evaluator import Evaluator
from jaxgan.metrics.fid import FeatureStats, frechet_distance


def load_run(workdir: str):
  """The config, GAN and latest state of a finished run (EMA parameters included)."""
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


def reference_images(config, n: int, seed: int) -> np.ndarray:
  """`n` images of the run's evaluation reference split (all of the training split, also for a
  run trained on a fraction of it), float32 in [-1, 1], drawn without replacement."""
  split = config.eval.reference_split
  src = load_source(config.data.name, split=split, source_dir=config.run.source_dir)
  idx = np.random.default_rng(seed).choice(len(src), size=min(n, len(src)), replace=False)
  images = src.get_batch(np.sort(idx))["image"].astype(np.float32) / 127.5 - 1.0
  return images


def features(extractor, images: np.ndarray, batch: int = 500) -> np.ndarray:
  return np.concatenate(
    [extractor.features(images[i : i + batch]) for i in range(0, len(images), batch)]
  )


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("workdirs", nargs="+")
  parser.add_argument("--num_samples", type=int, default=10_000)
  parser.add_argument("--augment", default="", help="name; '' the run's own (DiffAugment if none)")
  parser.add_argument("--policy", default="")
  parser.add_argument("--p", type=float, default=-1.0, help="< 0: the run's final p (1 if none)")
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  for workdir in args.workdirs:
    config, gan, state = load_run(workdir)
    if args.source_dir:
      config.run.source_dir = args.source_dir
    name = args.augment or config.augment.name or "diffaugment"
    policy = args.policy or (config.augment.policy if name == config.augment.name else "") or None
    p = args.p if args.p >= 0 else (float(state.aug_p) if config.augment.name else 1.0)
    aug = augment_lib.get(name, policy)
    extractor = Evaluator.from_config(config).extractor
    key = jax.random.PRNGKey(args.seed)
    real = reference_images(config, args.num_samples, args.seed)
    augmented = np.concatenate(
      [
        np.asarray(aug(jnp.asarray(real[i : i + 500]), jax.random.fold_in(key, i), p))
        for i in range(0, len(real), 500)
      ]
    )
    sample = jax.jit(gan.sample, static_argnums=2)
    fakes = np.concatenate(
      [
        np.asarray(sample(state, jax.random.fold_in(key, 10**6 + i), 500))
        for i in range(0, args.num_samples, 500)
      ]
    )
    stats = {
      k: FeatureStats().update(features(extractor, x)).mean_cov()
      for k, x in (("real", real), ("aug", augmented), ("fake", fakes))
    }
    fd_real = frechet_distance(*stats["fake"], *stats["real"])
    fd_aug = frechet_distance(*stats["fake"], *stats["aug"])
    print(
      json.dumps(
        {
          "run": workdir,
          "step": int(state.step),
          "augment": f"{name}:{policy or 'default'}@p={p:.3f}",
          "fd_real": round(float(fd_real), 3),
          "fd_aug": round(float(fd_aug), 3),
          "fd_floor": round(float(frechet_distance(*stats["aug"], *stats["real"])), 3),
          "leaks": bool(fd_aug < fd_real),
        }
      ),
      flush=True,
    )


if __name__ == "__main__":
  main()
