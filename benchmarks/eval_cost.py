"""Where the time of a 10,000-sample evaluation goes: sampling, the feature networks, the metrics.

    python benchmarks/eval_cost.py --source_dir ../shared/data --cache_dir runs/lucic/cache

Times, on this machine, each piece of one evaluation of `--num` generated MNIST samples
(the Lucic study's: FID, KID and precision/recall in Inception features, and the classifier's
FCD): the width-32 DCGAN generator drawing them (batches of 500, jitted); jaxgan's MNIST
classifier's features; the FID Inception network's features with the folded oneDNN network
(`conv='auto'` on this CPU) and with Flax's layers (`conv='lax'`, what every evaluation ran on
before), timed on `--inception_images` images and scaled linearly to `--num` (the network's
cost is linear in the images; the line says so); the statistics and Frechet distance of 2048-d
features; KID (100 subsets of 1,000); precision/recall (k = 3). The metrics run on random
features of the real size, since their cost does not depend on the values. The reference set's
features cost as much as the samples' once, then come from the cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))


def _timed(fn, *args):
  t = time.perf_counter()
  out = fn(*args)
  return time.perf_counter() - t, out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--num", type=int, default=10_000)
  parser.add_argument("--inception_images", type=int, default=500)
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--cache_dir", default=None, help="where the MNIST classifier is cached")
  args = parser.parse_args(argv)
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from jaxgan import config as config_lib  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics import classifier_cache, fid, inception  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.kid import kernel_inception_distance  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.precision_recall import precision_recall  # pylint: disable=g-import-not-at-top
  from jaxgan.run.build import build_gan  # pylint: disable=g-import-not-at-top

  rows = []
  c = config_lib.default_config()
  c.model.width, c.model.d_norm = 32, "layer"
  gan = build_gan(c, (28, 28, 1))
  state = gan.init(jax.random.key(0), jnp.zeros((64, 28, 28, 1)))
  sample = jax.jit(gan.sample, static_argnums=2)
  sample(state, jax.random.key(1), 500).block_until_ready()

  def draw():
    return np.concatenate(
      [np.asarray(sample(state, jax.random.key(i), 500)) for i in range(args.num // 500)]
    )

  seconds, images = _timed(draw)
  rows.append(("sampling: the DCGAN generator (EMA), batches of 500", seconds))
  clf = classifier_cache.cached_classifier(
    "mnist", cache_dir=args.cache_dir, source_dir=args.source_dir
  )
  clf.features(images[:500])
  rows.append(("classifier features (FCD)", _timed(clf.features, images)[0]))
  few = images[: args.inception_images]
  scale = args.num / len(few)
  by_conv = {}
  for conv in ("auto", "lax"):
    ext = inception.load_inception(batch_size=50, conv=conv)
    ext.features(few[:50])
    seconds = by_conv[conv] = _timed(ext.features, few)[0] * scale
    rows.append((f"Inception features, conv={conv!r} ({len(few)} timed, x{scale:g})", seconds))
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, args.num, 2048)).astype(np.float32)

  def frechet():
    return fid.stats_distance(fid.FeatureStats().update(a), fid.FeatureStats().update(b))

  rows.append(("FID statistics and Frechet distance (2048-d)", _timed(frechet)[0]))
  rows.append(("KID, 100 subsets of 1,000", _timed(kernel_inception_distance, a, b)[0]))
  rows.append(("precision/recall, k = 3", _timed(precision_recall, a, b)[0]))
  fixed = sum(s for name, s in rows if not name.startswith("Inception"))
  lines = [
    f"`{' '.join(['python', *sys.argv])}`: one evaluation of {args.num:,} samples "
    "(seconds; the reference set's Inception features cost the same once, then are cached)",
    "",
    "| piece | seconds |",
    "|---|---|",
    *[f"| {name} | {s:.1f} |" for name, s in rows],
    *[f"| total with conv={conv!r} | {fixed + s:.1f} |" for conv, s in by_conv.items()],
  ]
  print("\n".join(lines))


if __name__ == "__main__":
  main()
