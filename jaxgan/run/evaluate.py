"""Scores generated images: a run's checkpoint, or any two sets of images, with jaxgan's metrics.

Two forms. **A run** (`--workdir`): any metric, extractor and sample count, after training.

    # Inception FID, KID and precision/recall of 10,000 EMA samples of the newest checkpoint
    python -m jaxgan.evaluate --workdir runs/mnist --metrics fid,kid,precision_recall \
        --extractor inception --num_samples 10000

The run's own data set and reference split are the reference (`--reference_split` picks
another); the samples are the EMA generator's, drawn with the run's own evaluation keys (or
`--seed`'s), so the run's metrics and sample count reproduce the value it logged. Results go to
`<workdir>/eval/<step>.json` (the metrics under their protocol-named keys, merged with earlier
evaluations of that step, and the protocol text) and are printed. Nothing else in the workdir is
touched, so a run can be evaluated while it trains on. Reference statistics are cached in the
run's `eval.cache_dir`, else `<workdir>/reference_stats`.

**Two image sets** (`--images`): any generator's samples scored with jaxgan's FID Inception
network (`--inception_weights` for another file than the StyleGAN3 / clean-fid one).

    python -m jaxgan.evaluate --images samples.npz --reference ../data/folder --metrics fid,kid
    python -m jaxgan.evaluate --images samples.npz --reference mnist --reference_split test
    python -m jaxgan.evaluate --images some/folder --save_stats stats.npz   # export mu, sigma

A set is a folder of images, an .npz of uint8 images `(N, H, W, C)` (as `jaxgan.generate` writes),
a data set name (split: `--images_split` / `--reference_split`, default train) or, as the
reference for `fid` only, an .npz of `mu` (2048,), `sigma` (2048, 2048) as pytorch-fid and
clean-fid write them (`jaxgan.metrics.image_sets`). `--num`: the first N images of each set. Metrics:
`fid`, `kid` (`kid`, `kid_std`), `precision_recall` (`precision`, `recall`), printed and written
with the protocol to `--out PATH.json`. `--save_stats` writes `--images`' float64 `mu`, `sigma`
and count `n`, never over a file without `--overwrite`. Bad inputs are refused before any feature.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from jaxgan.errors import ConfigError

__all__ = ["SET_METRICS", "evaluate_run", "evaluate_sets", "main", "results_path"]

# The metrics of `evaluate_sets`.
SET_METRICS = ("fid", "kid", "precision_recall")


def results_path(workdir: str, step: int) -> str:
  """`<workdir>/eval/<step>.json`, where `evaluate_run` writes."""
  return os.path.join(workdir, "eval", f"{step}.json")


def evaluate_run(
  workdir: str,
  *,
  metrics: str,
  extractor: str | None = None,
  num_samples: int = 10_000,
  step: int | None = None,
  reference_split: str | None = None,
  num_reference: int | None = None,
  seed: int | None = None,
  batch_size: int = 250,
) -> dict:
  """Evaluates the EMA generator of one checkpoint and records the result in the workdir.

  Args:
    workdir: the run's directory.
    metrics: comma-separated `jaxgan.metrics` names (e.g. 'fid,kid,precision_recall').
    extractor: 'classifier' (jaxgan's, FCD) or 'inception' (FID); None: 'inception' when
      `metrics` asks for 'fid', else the run's own (`eval.extractor`).
    num_samples: generated samples (and reference images, at most the split's size).
    step: the checkpoint; None: the newest intact one.
    reference_split: the reference images' split; None: the run's `eval.reference_split`.
    num_reference: the first this many images of the split; None: all of them.
    seed: the sampling seed (keys `fold_in(PRNGKey(seed), step)`); None: the run's own
      evaluation keys, so the same metrics and sample count reproduce the value it logged.
    batch_size: samples per generator call and feature-network batch.

  Returns:
    `{'step': int, 'metrics': {key: float}, 'protocol': str}` as written to
    `results_path(workdir, step)` (the metrics of this call only).

  Raises:
    jaxgan.run.loading.RunNotFoundError: no run, checkpoint or step in `workdir`.
    jaxgan.errors.ConfigError: an unknown metric or extractor, or a toy data set (no image
      metrics).
  """
  import jax  # pylint: disable=g-import-not-at-top

  from jaxgan.errors import ConfigError, UserError  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.evaluator import Evaluator  # pylint: disable=g-import-not-at-top
  from jaxgan.run import (
    loading,  # pylint: disable=g-import-not-at-top
    loop,  # pylint: disable=g-import-not-at-top
  )

  gan, state, config = loading.load(workdir, step)
  step = int(state.step)
  e = config.eval
  names = [m.strip() for m in metrics.split(",")]
  e.extractor = extractor or ("inception" if "fid" in names else e.extractor)
  e.metrics, e.num_samples = metrics, num_samples
  e.reference_split = reference_split or e.reference_split
  cache = e.get("cache_dir") or os.path.join(workdir, "reference_stats")
  try:
    evaluator = Evaluator.from_config(
      config, cache_dir=cache, batch_size=batch_size, num_reference=num_reference
    )
  except ValueError as err:  # unknown metric or extractor, a metric the data set lacks
    if isinstance(err, UserError):
      raise
    raise ConfigError(f"--metrics={metrics} --extractor={e.extractor}: {err}") from None
  sample = jax.jit(gan.sample, static_argnums=2)
  if seed is None:  # the loop's own evaluation key
    key = jax.random.fold_in(loop.run_keys(config.seed)[3], step)
  else:
    key = jax.random.fold_in(jax.random.PRNGKey(seed), step)
  values = evaluator.evaluate(lambda k, n, labels=None: sample(state, k, n, labels), key=key)
  values = {k: float(v) for k, v in values.items()}
  path = results_path(workdir, step)
  record = {"step": step, "metrics": {}, "protocols": {}}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  record["metrics"].update(values)
  record["protocols"][evaluator.primary.rsplit("/", 1)[0]] = evaluator.protocol
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)
  return {"step": step, "metrics": values, "protocol": evaluator.protocol}


_KID_SUBSETS, _KID_SUBSET_SIZE, _PR_K, _PR_SAMPLES = 100, 1000, 3, 10_000


def _check_request(names: tuple[str, ...], sets: dict, save_stats: bool) -> None:
  """Refuses statistics where images are needed, and sets too small for the metrics."""
  b = sets["--reference"]
  if b is not None and b.kind == "stats" and names != ("fid",):
    raise ConfigError(
      f"--reference {b.spec} holds statistics (mu, sigma) only, which give fid; "
      f"{', '.join(m for m in names if m != 'fid')} need the reference's images: give a folder, "
      "an .npz of images or a data set, or --metrics fid."
    )
  least = 1 + _PR_K if "precision_recall" in names else 2
  for option, s in sets.items():
    need = least if names or option == "--images" and save_stats else 0
    if s is not None and s.kind != "stats" and s.count < need:
      raise ConfigError(
        f"{option} {s.spec}: {s.count} image(s); {', '.join(names) or 'statistics'} need at "
        f"least {need} (FID: thousands, 10,000 or 50,000 to compare with published numbers)."
      )


def evaluate_sets(
  images,
  reference=None,
  *,
  metrics: str = "fid",
  num: int | None = None,
  images_split: str = "train",
  reference_split: str = "train",
  data_dir: str | None = None,
  source_dir: str | None = None,
  save_stats: str | None = None,
  overwrite: bool = False,
  out: str | None = None,
  inception_weights: str | None = None,
  extractor=None,
  batch_size: int = 100,
) -> dict:
  """Scores one image set against another with the FID Inception network's features.

  Every input is checked (and both sets read) before the network runs.

  Args:
    images: the set scored: a folder, an .npz of uint8 images, a data set name
      (`jaxgan.metrics.image_sets.resolve`), or uint8 `(N, H, W, C)`.
    reference: the set compared against, as `images`, or an .npz of statistics (`fid` only);
      None: no metrics (for `save_stats` alone).
    metrics: comma-separated names from `SET_METRICS`.
    num: the first this many images of each set; None: all.
    images_split: the split of `images` when it is a data set.
    reference_split: the split of `reference` when it is a data set.
    data_dir: prepared data sets; None: `$JAXGAN_DATA_DIR`, then TFDS's default.
    source_dir: the data sets' original files; None: `$JAXGAN_SOURCE_DIR`.
    save_stats: an .npz to write `images`' statistics to (`FeatureStats.save`: float64 `mu`,
      `sigma`, the count `n` and the network's `extractor_id`).
    overwrite: let `save_stats` replace an existing file.
    out: a .json file to write the returned dict to (replaced if it exists).
    inception_weights: the network's weights file; None: the installed or fetched default.
    extractor: a `FeatureExtractor` to use instead of the Inception network (tests, research).
    batch_size: images per forward pass.

  Returns:
    `{'metrics': {name: float}, 'protocol': str, 'extractor': str, 'extractor_id': str,
    'images': {'spec', 'description', 'count'}, 'reference': the same or None,
    'save_stats': path or None}`. Metrics: `fid` (squared feature units), `kid` and `kid_std`
    (unbiased MMD^2, not scaled by 1e3), `precision` and `recall` (fractions, `images` as the
    generated side).

  Raises:
    jaxgan.errors.UserError: any bad input (`image_sets.ImageSetError`, `ConfigError`,
      `MissingWeightsError`), before any feature is computed.
  """
  from jaxgan.metrics import fid as fid_lib  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics import image_sets as sets_lib  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.kid import kernel_inception_distance  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.precision_recall import precision_recall  # pylint: disable=g-import-not-at-top

  if reference is None and save_stats is None:
    raise ConfigError(
      "--images alone does nothing: give --reference to score it, or --save_stats PATH.npz to "
      "export its statistics."
    )
  names = () if reference is None else tuple(dict.fromkeys(m.strip() for m in metrics.split(",")))
  if not set(names) <= set(SET_METRICS):
    raise ConfigError(f"--metrics {metrics}: between image sets, {', '.join(SET_METRICS)}.")
  if batch_size < 1:
    raise ConfigError(f"--batch_size {batch_size}: give a positive number of images per pass.")
  if save_stats is not None:
    save_stats = sets_lib.check_output(
      save_stats, "--save_stats", overwrite=overwrite, suffix=".npz"
    )
  if out is not None:
    out = sets_lib.check_output(out, "--out", overwrite=True, suffix=".json")
  where = dict(num=num, data_dir=data_dir, source_dir=source_dir)
  a = sets_lib.resolve(images, role="--images", split=images_split, images_only=True, **where)
  b = None
  if reference is not None:
    b = sets_lib.resolve(reference, role="--reference", split=reference_split, **where)
  _check_request(names, {"--images": a, "--reference": b}, save_stats is not None)
  if extractor is None:
    extractor = sets_lib.inception_extractor(inception_weights, batch_size=batch_size)
  ext_id = getattr(extractor, "id", None)
  if b is not None and b.extractor_id and ext_id and b.extractor_id != ext_id:
    raise ConfigError(
      f"--reference {b.spec} holds statistics of the features {b.extractor_id}, but this "
      f"evaluation's are {ext_id}: the FIDs would not be comparable. Export the reference again "
      "with --save_stats under the same --inception_weights, or pass the weights it was made with."
    )
  feats_a = sets_lib.features(extractor, a.images, batch_size=batch_size)
  stats_a = fid_lib.FeatureStats().update(feats_a)
  values: dict[str, float] = {}
  if b is not None:
    feats_b, stats_b = None, b.stats
    if b.images is not None:
      feats_b = sets_lib.features(extractor, b.images, batch_size=batch_size)
      stats_b = fid_lib.FeatureStats().update(feats_b)
    if "fid" in names:
      values["fid"] = fid_lib.stats_distance(stats_a, stats_b)
    if "kid" in names:
      values["kid"], values["kid_std"] = kernel_inception_distance(
        feats_a, feats_b, num_subsets=_KID_SUBSETS, subset_size=_KID_SUBSET_SIZE
      )
    if "precision_recall" in names:
      m = _PR_SAMPLES
      values.update(precision_recall(feats_b[:m], feats_a[:m], k=_PR_K))
  if save_stats is not None:
    try:  # the file was checked above: only a file made meanwhile is refused here
      save_stats = stats_a.save(save_stats, overwrite=overwrite, extractor_id=str(ext_id or ""))
    except FileExistsError as e:
      raise sets_lib.ImageSetError(f"--save_stats: {e}") from None
  name = getattr(extractor, "name", type(extractor).__name__)
  desc = extractor.describe() if hasattr(extractor, "describe") else name
  parts = [f"features: {name} = {desc}", f"images: {a.description}"]
  if b is not None:
    parts.append(f"reference: {b.description}")
    if b.kind == "stats" and not b.extractor_id:
      parts[-1] += " (made by another tool: comparable only if with these weights and resize)"
  if "kid" in names:
    parts.append(f"KID: {_KID_SUBSETS} subsets of {min(_KID_SUBSET_SIZE, a.count, b.count)}")
  if "precision_recall" in names:
    parts.append(f"P&R: k={_PR_K}, <= {_PR_SAMPLES} per side, images as the generated side")
  result = {
    "metrics": {k: float(v) for k, v in values.items()},
    "protocol": "; ".join(parts),
    "extractor": desc,
    "extractor_id": ext_id,
    "images": a.record(),
    "reference": None if b is None else b.record(),
    "save_stats": save_stats,
  }
  if out is not None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
      json.dump(result, f, indent=1, sort_keys=True)
    os.replace(out + ".tmp", out)
  return result


# The options of each form; the other form's are refused (None: not given).
_RUN_ONLY = ("num_samples", "step", "num_reference", "seed", "extractor")
_SETS_ONLY = ("reference", "num", "images_split", "data_dir", "source_dir", "save_stats", "out")
_SETS_ONLY += ("inception_weights",)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--workdir", help="a run's directory: evaluate its checkpoint")
  parser.add_argument("--images", help="an image set to score: folder, .npz, or data set name")
  parser.add_argument("--metrics", default="fid", help="comma list, e.g. fid,kid,precision_recall")
  parser.add_argument("--reference_split", default=None, help="default: the run's; sets: train")
  parser.add_argument("--batch_size", type=int, default=None, help="default: 250; sets: 100")
  run = parser.add_argument_group("--workdir: a run's checkpoint")
  choices = ("inception", "classifier")
  run.add_argument(
    "--extractor", choices=choices, help="default: inception for fid, else the run's"
  )
  run.add_argument("--num_samples", type=int, default=None, help="default: 10000")
  run.add_argument("--step", type=int, default=None, help="default: the newest checkpoint")
  run.add_argument("--num_reference", type=int, default=None, help="default: the whole split")
  run.add_argument("--seed", type=int, default=None, help="default: the run's eval keys")
  sets = parser.add_argument_group("--images: two image sets")
  sets.add_argument("--reference", help="folder, .npz of images or of mu/sigma, or data set name")
  sets.add_argument("--num", type=int, default=None, help="the first N images of each set")
  sets.add_argument("--images_split", default=None, help="when --images is a data set: train")
  sets.add_argument("--data_dir", default=None, help="prepared data sets; $JAXGAN_DATA_DIR")
  sets.add_argument("--source_dir", default=None, help="data sets' files; $JAXGAN_SOURCE_DIR")
  sets.add_argument("--save_stats", default=None, help="write --images' mu/sigma to this .npz")
  sets.add_argument("--overwrite", action="store_true", help="let --save_stats replace a file")
  sets.add_argument("--out", default=None, help="write the results to this .json")
  sets.add_argument("--inception_weights", default=None, help="default: the installed file")
  return parser


def _run_form(args) -> None:
  result = evaluate_run(
    args.workdir,
    metrics=args.metrics,
    extractor=args.extractor,
    num_samples=10_000 if args.num_samples is None else args.num_samples,
    step=args.step,
    reference_split=args.reference_split,
    num_reference=args.num_reference,
    seed=args.seed,
    batch_size=250 if args.batch_size is None else args.batch_size,
  )
  print(f"step {result['step']}: {result['protocol']}")
  for k, v in sorted(result["metrics"].items()):
    print(f"  {k} = {v:.6g}")
  print(f"written to {results_path(args.workdir, result['step'])}")


def _sets_form(args) -> None:
  result = evaluate_sets(
    args.images,
    args.reference,
    metrics=args.metrics,
    num=args.num,
    images_split=args.images_split or "train",
    reference_split=args.reference_split or "train",
    data_dir=args.data_dir,
    source_dir=args.source_dir,
    save_stats=args.save_stats,
    overwrite=args.overwrite,
    out=args.out,
    inception_weights=args.inception_weights,
    batch_size=100 if args.batch_size is None else args.batch_size,
  )
  print(result["protocol"])
  for k, v in sorted(result["metrics"].items()):
    print(f"  {k} = {v:.6g}")
  for what, path in (("statistics", result["save_stats"]), ("results", args.out)):
    if path:
      print(f"{what} written to {path}")


def main(argv: Sequence[str] | None = None) -> None:
  """Command line: see the module docstring."""
  args = _parser().parse_args(argv)
  from jaxgan import errors  # pylint: disable=g-import-not-at-top

  try:
    if (args.workdir is None) == (args.images is None):
      raise errors.ConfigError(
        "give exactly one of --workdir (evaluate a run's checkpoint) and --images (score an "
        f"image set, against --reference); got {'both' if args.workdir else 'neither'}."
      )
    form, other = ("--workdir", _SETS_ONLY) if args.workdir else ("--images", _RUN_ONLY)
    given = [f"--{k}" for k in other if getattr(args, k) is not None]
    given += ["--overwrite"] if args.workdir and args.overwrite else []
    if given:
      raise errors.ConfigError(
        f"{', '.join(given)} do(es) not apply to {form}: see `python -m jaxgan.evaluate --help` "
        "for each form's options."
      )
    _run_form(args) if args.workdir else _sets_form(args)
  except errors.UserError as e:  # the input's fault: its message, no traceback, status 2
    sys.exit(errors.report(e))


if __name__ == "__main__":
  main()
