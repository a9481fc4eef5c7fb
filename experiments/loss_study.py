"""Loss study: one architecture trained with every loss (and the gradient penalty where it applies)
over several seeds, each run through `jaxgan.train_and_evaluate`.

    # CPU-sized: the toy mixtures, 3k steps, 2 seeds
    python experiments/loss_study.py --parts=toy --toy_steps=3000 --seeds=2 --out=runs/loss_study
    # images (trains and caches a small FCD classifier per data set first)
    python experiments/loss_study.py --parts=mnist,fashion_mnist --image_steps=500 --seeds=2 \
        --source_dir=../shared/data --out=runs/loss_study
    # accelerators: multiply every training budget (eval samples stay pinned) by --scale
    python experiments/loss_study.py --parts=all --scale=20 --seeds=3 --out=runs/loss_study_tpu

Every run has its own workdir, `<out>/runs/<part>/<variant>/seed<k>`, with the loop's logs,
samples and checkpoints. Running the command again resumes: finished runs are read back, an
interrupted one continues from its last checkpoint. Written into --out: `results.csv` (one row per
run, evaluation step and metric), `summary.md` (mean +- std over seeds of the final metrics per
variant, steps/s, the protocol of every number) and `curves_<part>.png` (the metric against steps,
mean over seeds).

Variants: every loss without a penalty ('wgan' without a penalty clips weights at 0.01 with
n_critic=5, the original WGAN); with the WGAN-GP penalty: 'wgan+gp' (n_critic=5, the WGAN-GP
recipe), 'non_saturating+gp' and 'hinge+gp' (n_critic=1, as Lucic et al. 2018). On the toy
mixtures the penalty weight is 1 and Adam's b2 0.9; on images lambda=10. Image discriminators use
LayerNorm throughout: a penalised critic cannot use BatchNorm, and the architecture must be the
same for every loss.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np

from jaxgan import config as config_lib

TOY_PARTS = ("ring", "grid")
IMAGE_PARTS = ("mnist", "fashion_mnist")
FIELDS = ("part", "variant", "seed", "step", "metric", "value", "steps_per_sec")
# The metrics of the summary table, per part (the first one is plotted).
PRIMARY = {
  "ring": ("modes_captured", "high_quality"),
  "grid": ("modes_captured", "high_quality"),
  "mnist": ("fcd", "precision", "recall"),
  "fashion_mnist": ("fcd", "precision", "recall"),
}


def variants() -> list[tuple[str, dict]]:
  """(label, `config.loss` overrides) for every run of one part and seed."""
  from jaxgan import losses  # pylint: disable=g-import-not-at-top

  out = []
  for name in losses.LOSSES:
    if name == "wgan":
      out.append(("wgan", dict(name="wgan", weight_clip=0.01, n_critic=5)))
    else:
      out.append((name, dict(name=name)))
  out.append(("wgan+gp", dict(name="wgan", penalty="wgan_gp", n_critic=5)))
  out.append(("non_saturating+gp", dict(name="non_saturating", penalty="wgan_gp")))
  out.append(("hinge+gp", dict(name="hinge", penalty="wgan_gp")))
  return out


def run_config(part: str, loss: dict, seed: int, args, classifier_path: str | None):
  """The run config of one (part, variant, seed)."""
  if part in TOY_PARTS:
    c = config_lib.toy_config(part, steps=args.toy_steps)
    c.log.sample_every = c.run.steps
    c.checkpoint.every = c.eval.every = min(1000, c.run.steps)
    if loss.get("penalty"):
      c.loss.penalty_weight, c.optim.b2 = 1.0, 0.9
  else:
    c = config_lib.default_config()
    c.data.name = part
    c.model.width, c.model.d_norm = args.width, "layer"
    c.optim.ema_decay = 0.99
    c.run.steps = args.image_steps
    c.run.data_dir, c.run.source_dir = args.data_dir, args.source_dir
    c.log.every = c.eval.every = c.checkpoint.every = args.image_eval_every
    c.log.sample_every = c.run.steps
    c.eval.metrics, c.eval.num_samples = "fcd,precision_recall", args.eval_samples
    c.eval.classifier_path = classifier_path
    c.eval.cache_dir = os.path.join(args.out, "reference_stats")
  c.loss.update(loss)
  c.seed = seed
  return c


def read_log(workdir: str) -> list[dict]:
  """The run's metrics.jsonl records (empty when it has not started)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def run_one(part: str, label: str, loss: dict, seed: int, args, classifier_path, log):
  """Trains (or resumes, or reads back) one run; returns its rows for results.csv."""
  from jaxgan import loop  # pylint: disable=g-import-not-at-top

  config = run_config(part, loss, seed, args, classifier_path)
  workdir = os.path.join(args.out, "runs", part, label, f"seed{seed}")
  records = read_log(workdir)
  if not records or records[-1]["step"] < config.run.steps:
    loop.train_and_evaluate(config, workdir)
    records = read_log(workdir)
  rows = []
  for r in records:
    for key, value in r.items():
      metric = key.rsplit("/", 1)[-1]
      if "/" in key and metric in PRIMARY[part]:
        rows.append(
          dict(
            part=part,
            variant=label,
            seed=seed,
            step=r["step"],
            metric=metric,
            value=value,
            steps_per_sec=r["steps_per_sec"],
          )
        )
  final = {row["metric"]: row["value"] for row in rows if row["step"] == records[-1]["step"]}
  log(f"{part:13s} {label:18s} seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in final.items()))
  return rows


def classifier_for(part: str, args, log) -> str:
  """Path of the FCD classifier of `part`, trained and saved on first use."""
  from jaxgan.metrics import classifier as clf_lib  # pylint: disable=g-import-not-at-top

  path = os.path.join(args.out, "classifiers", f"{part}.npz")
  if not os.path.exists(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    clf, info = clf_lib.train_classifier(
      part,
      steps=args.classifier_steps,
      widths=(16, 32),
      batch_size=64,
      data_dir=args.data_dir,
      source_dir=args.source_dir,
      log=log,
    )
    clf_lib.save_classifier(path, clf)
    log(f"classifier for {part}: test accuracy {100 * info['test_accuracy']:.2f}% -> {path}")
  return path


def summary_table(rows: list[dict], part: str) -> str:
  """Markdown: mean +- std over seeds of each variant's final metrics."""
  part_rows = [r for r in rows if r["part"] == part]
  metrics = PRIMARY[part]
  lines = [
    "| variant | " + " | ".join(metrics) + " | steps/s | seeds | steps |",
    "|" + "---|" * (len(metrics) + 4),
  ]
  for label in dict.fromkeys(r["variant"] for r in part_rows):
    mine = [r for r in part_rows if r["variant"] == label]
    final = max(r["step"] for r in mine)
    cells = []
    for m in metrics:
      vals = np.array([r["value"] for r in mine if r["step"] == final and r["metric"] == m])
      cells.append(f"{vals.mean():.3g} +- {vals.std():.2g}" if len(vals) else "-")
    sps = [r["steps_per_sec"] for r in mine if r["step"] == final and r["metric"] == metrics[0]]
    seeds = len({r["seed"] for r in mine})
    lines.append(
      f"| {label} | " + " | ".join(cells) + f" | {np.median(sps):.1f} | {seeds} | {final} |"
    )
  return "\n".join(lines)


def plot_curves(rows: list[dict], part: str, path: str) -> None:
  """The part's first metric against steps, one line per variant (mean over seeds)."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  metric = PRIMARY[part][0]
  mine = [r for r in rows if r["part"] == part and r["metric"] == metric]
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for label in dict.fromkeys(r["variant"] for r in mine):
    steps = sorted({r["step"] for r in mine if r["variant"] == label})
    means = [
      np.mean([r["value"] for r in mine if r["variant"] == label and r["step"] == s]) for s in steps
    ]
    ax.plot(steps, means, marker="o", markersize=3, label=label)
  if metric == "fcd":
    ax.set_yscale("log")  # early distances are orders of magnitude above the final ones
  ax.set(xlabel="steps", ylabel=metric, title=f"{part}: {metric}, mean over seeds")
  ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_outputs(out: str, rows: list[dict], protocols: dict[str, str]) -> None:
  """results.csv, summary.md and one curves_<part>.png per part."""
  tmp = os.path.join(out, "results.csv.tmp")
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(tmp, os.path.join(out, "results.csv"))
  text = ["# Loss study", "", f"Command: `{' '.join(['python', *sys.argv])}`", ""]
  for part in dict.fromkeys(r["part"] for r in rows):
    plot_curves(rows, part, os.path.join(out, f"curves_{part}.png"))
    text += [
      f"## {part}",
      "",
      f"Protocol: {protocols[part]}. Mean +- std over seeds.",
      "",
      summary_table(rows, part),
      "",
      f"![{part}](curves_{part}.png)",
      "",
    ]
  with open(os.path.join(out, "summary.md"), "w") as f:
    f.write("\n".join(text))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--parts", default="toy", help="toy, ring, grid, mnist, fashion_mnist, all")
  parser.add_argument("--variants", default="", help="comma list of variant labels (default all)")
  parser.add_argument("--seeds", type=int, default=2)
  parser.add_argument("--toy_steps", type=int, default=3000, help="a multiple of 500")
  parser.add_argument("--image_steps", type=int, default=500)
  parser.add_argument("--image_eval_every", type=int, default=250)
  parser.add_argument("--eval_samples", type=int, default=2000)
  parser.add_argument("--width", type=int, default=16, help="DCGAN width for the image parts")
  parser.add_argument("--classifier_steps", type=int, default=1000)
  parser.add_argument(
    "--scale", type=float, default=1.0, help="multiplies the training budgets (e.g. 20 on a TPU)"
  )
  parser.add_argument("--data_dir", default=os.environ.get("JAXGAN_DATA_DIR"))
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--out", default="runs/loss_study")
  args = parser.parse_args(argv)
  parts = []
  for p in filter(None, (p.strip() for p in args.parts.split(","))):
    parts += {"toy": list(TOY_PARTS), "all": [*TOY_PARTS, *IMAGE_PARTS]}.get(p, [p])
  bad = [p for p in parts if p not in PRIMARY]
  if bad:
    parser.error(f"unknown parts {bad}; valid: toy, all, {', '.join(PRIMARY)}")
  runs = variants()
  if args.variants:
    unknown = set(args.variants.split(",")) - {label for label, _ in runs}
    if unknown:
      parser.error(f"unknown variants {sorted(unknown)}; valid: {[label for label, _ in runs]}")
    runs = [r for r in runs if r[0] in args.variants.split(",")]
  args.toy_steps = max(500, int(round(args.toy_steps * args.scale / 500)) * 500)
  args.image_steps = max(1, int(round(args.image_steps * args.scale)))
  args.image_eval_every = min(args.image_eval_every, args.image_steps)
  os.makedirs(args.out, exist_ok=True)
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  rows, protocols = [], {}
  for part in parts:
    classifier_path = None
    if part in TOY_PARTS:
      protocols[part] = (
        "PacGAN/VEEGAN mode coverage, 2,500 EMA-generator samples (high quality: "
        "within 3 sigma of the nearest mode)"
      )
    else:
      classifier_path = classifier_for(part, args, log)
      protocols[part] = "the evaluator's protocol, in each run's eval_protocol.txt"
    for label, loss in runs:
      for seed in range(args.seeds):
        rows += run_one(part, label, loss, seed, args, classifier_path, log)
        write_outputs(args.out, rows, protocols)  # after every run: a crash keeps what was done
  with open(os.path.join(args.out, "summary.md")) as f:
    print(f.read())


if __name__ == "__main__":
  main()
