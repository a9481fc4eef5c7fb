"""Evaluates a run's checkpoint with any metric, extractor and sample count, after training.

    # Inception FID, KID and precision/recall of 10,000 EMA samples of the newest checkpoint
    python -m jaxgan.evaluate --workdir runs/mnist --metrics fid,kid,precision_recall \
        --extractor inception --num_samples 10000

The run's own data set and reference split are the reference (`--reference_split` picks
another); the samples are the EMA generator's, drawn with the run's own evaluation keys (or
`--seed`'s), so the run's metrics and sample count reproduce the value it logged. Results go to `<workdir>/eval/<step>.json` (the metrics under
their protocol-named keys, merged with earlier evaluations of that step, and the protocol text)
and are printed. Nothing else in the workdir is touched, so a run can be evaluated while it
trains on. Reference statistics are cached in the run's `eval.cache_dir`, else
`<workdir>/reference_stats`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["evaluate_run", "main", "results_path"]


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
    jaxgan.loading.RunNotFoundError: no run, checkpoint or step in `workdir`.
    jaxgan.errors.ConfigError: an unknown metric or extractor, or a toy data set (no image
      metrics).
  """
  import jax  # pylint: disable=g-import-not-at-top

  from jaxgan import loading, loop  # pylint: disable=g-import-not-at-top
  from jaxgan.errors import ConfigError, UserError  # pylint: disable=g-import-not-at-top
  from jaxgan.metrics.evaluator import Evaluator  # pylint: disable=g-import-not-at-top

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


def main(argv: Sequence[str] | None = None) -> None:
  """Command line: see the module docstring."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--metrics", default="fid", help="comma list, e.g. fid,kid,precision_recall")
  parser.add_argument(
    "--extractor",
    default=None,
    choices=("inception", "classifier"),
    help="default: inception for fid, else the run's own",
  )
  parser.add_argument("--num_samples", type=int, default=10_000)
  parser.add_argument("--step", type=int, default=None, help="default: the newest checkpoint")
  parser.add_argument("--reference_split", default=None, help="default: the run's")
  parser.add_argument("--num_reference", type=int, default=None, help="default: the whole split")
  parser.add_argument("--seed", type=int, default=None, help="default: the run's eval keys")
  parser.add_argument("--batch_size", type=int, default=250)
  args = parser.parse_args(argv)
  from jaxgan import errors  # pylint: disable=g-import-not-at-top

  try:
    result = evaluate_run(
      args.workdir,
      metrics=args.metrics,
      extractor=args.extractor,
      num_samples=args.num_samples,
      step=args.step,
      reference_split=args.reference_split,
      num_reference=args.num_reference,
      seed=args.seed,
      batch_size=args.batch_size,
    )
  except errors.UserError as e:  # the input's fault: its message, no traceback, status 2
    sys.exit(errors.report(e))
  print(f"step {result['step']}: {result['protocol']}")
  for k, v in sorted(result["metrics"].items()):
    print(f"  {k} = {v:.6g}")
  print(f"written to {results_path(args.workdir, result['step'])}")


if __name__ == "__main__":
  main()
