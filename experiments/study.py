"""Studies: named sets of runs (part x variant x seed), each one `jaxgan.train_and_evaluate`.

    # the PacGAN-level search on the grid of 25 Gaussians (20k steps a run)
    python experiments/study.py --study=grid --seeds=5 --out=runs/grid_study
    # R3GAN's recipe on Stacked MNIST; DiffAugment / ADA on a tenth of MNIST against all of it
    python experiments/study.py --study=r3gan --seeds=3 --steps=5000 --out=runs/r3gan_study
    python experiments/study.py --study=augment --seeds=3 --out=runs/augment_study
    # the projected discriminator beside the DCGAN critic at equal wall-clock (MNIST FCD over
    # time: --eval_every; Stacked MNIST modes and KL)
    python experiments/study.py --study=projected --seeds=3 --source_dir=../shared/data \
        --out=runs/projected_study
    # class-conditional MNIST (mnist_cdcgan) and two variants of its conditioning
    python experiments/study.py --study=conditional --seeds=3 --out=runs/conditional_study
    # Stacked MNIST, 4 losses x 3 seeds (modes and reverse KL of 26,000 samples)
    python experiments/study.py --study=stacked_mnist --seeds=3 --source_dir=../shared/data \
        --out=runs/stacked_mnist_study
    # Lucic et al. 2018's budget (about 20 epochs) on MNIST and Fashion-MNIST, Inception FID
    python experiments/study.py --study=lucic --seeds=3 --source_dir=../shared/data \
        --out=runs/lucic_study
    # every loss on the toy mixtures and small image runs (classifier FCD)
    python experiments/study.py --study=losses --parts=ring,grid --seeds=2 --out=runs/loss_study

A study is a base config per part (`PARTS`) and variants, each a set of dotted config overrides
(`STUDIES`). Every run has its own workdir, `<out>/runs/<part>/<variant>/seed<k>`, with the
loop's logs, samples and checkpoints, and `study_run.json` (wall and CPU seconds, summed over
launches). Running the command again resumes: finished runs are read back, an interrupted one
continues from its last checkpoint, so a study can run across sessions and `--parts`,
`--variants` and `--seeds` pick which runs this launch trains. `--no_train` only rebuilds the
tables from the runs that exist. Written into --out: `results.csv` (one row per run, evaluation
step and metric), `summary.md` (mean +- std over seeds of the final metrics, runs finished, CPU
minutes per run, and the protocol of every number) and `curves_<part>.png`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from jaxgan import config as config_lib

FIELDS = ("part", "variant", "seed", "step", "metric", "value", "steps_per_sec")
TOY_PROTOCOL = (
  "PacGAN/VEEGAN mode coverage of 2,500 EMA-generator samples (high quality: within 3 sigma of "
  "the nearest mode; reverse KL of their mode histogram to the uniform one)"
)
TOY_METRICS = ("modes_captured", "high_quality", "reverse_kl")


def _image_part(
  name: str, steps: int, metrics: str, extractor: str, num_samples: int, eval_every: int = 0
):
  """A DCGAN part on an image data set; `eval_every` > 0 fixes its evaluation interval."""

  def base(args):
    c = config_lib.default_config()
    c.data.name = name
    c.model.width, c.model.d_norm = args.width, "layer"  # one D for every loss, penalised or not
    c.optim.ema_decay = 0.999
    c.run.steps = steps
    c.log.every, c.log.sample_every = 500, steps
    c.eval.every = c.checkpoint.every = min(steps, args.eval_every or eval_every or 1000)
    c.checkpoint.every = min(c.checkpoint.every, 1000)  # a relaunch loses at most 1,000 steps
    c.eval.metrics, c.eval.extractor, c.eval.num_samples = metrics, extractor, num_samples
    return c

  return base


def _config_file(path: str, split: str | None = None, steps: int | None = None):
  """A part from a config file; `split` and `steps` replace the file's."""

  def base(args):
    del args
    import importlib.util  # pylint: disable=g-import-not-at-top

    spec = importlib.util.spec_from_file_location("study_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.data.split = split or config.data.split
    if steps:
      config.run.steps = steps
      config.eval.every = config.checkpoint.every = min(config.eval.every, steps)
    return config

  return base


_CHEAP = "fcd,kid,precision_recall"
# The final Inception metrics (KID, precision and recall in Inception features get the suffix
# '_inception'), then the classifier's of the same run.
_LUCIC = (
  "fid", "kid_inception", "precision_inception", "recall_inception", "fcd", "kid", "precision",
  "recall",
)  # fmt: skip
# Lucic et al. 2018, Table 2: the best FID of each loss after the large hyperparameter search
# (the range over MM/NS GAN, LSGAN, WGAN, WGAN-GP, DRAGAN, BEGAN).
LUCIC_BEST_FID = {"mnist_fid": (6.7, 20.3), "fashion_mnist_fid": (21.5, 30.7)}
_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
# part -> (base config from the parsed arguments, the metrics tabulated: the first is plotted).
PARTS = {
  "ring": (lambda args: config_lib.toy_config("ring", 3000), TOY_METRICS),
  "grid": (lambda args: config_lib.toy_config("grid", 3000), TOY_METRICS),
  # The grid search's base: toy_grid as it was before the search (20k steps).
  "grid_20k": (lambda args: config_lib.toy_config("grid", 20_000), TOY_METRICS),
  "mnist": (_image_part("mnist", 500, "fcd,precision_recall", "classifier", 2000), ("fcd",)),
  # The main job on all of MNIST and on its first tenth (6,000 images), FCD against all of it.
  "mnist_full": (_config_file(os.path.join(_CONFIGS, "mnist_dcgan.py")), ("fcd",)),
  "mnist_1pct": (
    _config_file(os.path.join(_CONFIGS, "mnist_dcgan.py"), split="train[:1%]"),
    ("fcd",),
  ),
  "mnist_10pct": (
    _config_file(os.path.join(_CONFIGS, "mnist_dcgan.py"), split="train[:10%]"),
    ("fcd",),
  ),
  "fashion_mnist": (
    _image_part("fashion_mnist", 500, "fcd,precision_recall", "classifier", 2000),
    ("fcd",),
  ),
  "stacked_mnist": (
    _config_file(os.path.join(_CONFIGS, "stacked_mnist_dcgan.py")),
    ("modes", "kl", "kl_real"),
  ),
  "stacked_mnist_r3gan": (
    _config_file(os.path.join(_CONFIGS, "stacked_mnist_r3gan.py")),
    ("modes", "kl", "kl_real"),
  ),
  # The projected discriminator (feature_critic) beside the DCGAN critic, each at the step count
  # of equal wall-clock on 2 CPU cores (the config files' docstrings; Stacked MNIST at 40%).
  "mnist_projected": (_config_file(os.path.join(_CONFIGS, "mnist_projected.py")), ("fcd",)),
  "stacked_mnist_4k": (
    _config_file(os.path.join(_CONFIGS, "stacked_mnist_dcgan.py"), steps=4000),
    ("modes", "kl", "kl_real"),
  ),
  "stacked_mnist_projected_4k": (
    _config_file(os.path.join(_CONFIGS, "stacked_mnist_projected.py"), steps=372),
    ("modes", "kl", "kl_real"),
  ),
  # Class-conditional MNIST: accuracy of the requested classes, intra-class and overall FCD.
  "mnist_cdcgan": (
    _config_file(os.path.join(_CONFIGS, "mnist_cdcgan.py")),
    ("class_acc", "intra_fcd", "fcd"),
  ),
  # Lucic et al. 2018 (their compare_gan): 20 epochs of 50,000 images at batch 64 (15,625 steps),
  # FID of 10,000 samples against the 10,000 test images. Training logs the classifier's
  # FCD, KID and precision/recall of 10,000 samples every 5,000 steps; the Inception FID (with
  # KID and precision/recall in Inception features) of 10,000 samples is taken from the last
  # checkpoint afterwards (`LUCIC_FINAL`), so the Inception network is never in the training job.
  "mnist_fid": (_image_part("mnist", 15_625, _CHEAP, "classifier", 10_000, 5000), _LUCIC),
  "fashion_mnist_fid": (
    _image_part("fashion_mnist", 15_625, _CHEAP, "classifier", 10_000, 5000),
    _LUCIC,
  ),
}


# part -> the evaluation `jaxgan.run.evaluate.evaluate_run` makes of a finished run's last checkpoint.
_LUCIC_FINAL = dict(
  metrics="fid,kid,precision_recall",
  extractor="inception",
  num_samples=10_000,
  reference_split="test",
  num_reference=10_000,
)
FINAL_EVALS = {"mnist_fid": _LUCIC_FINAL, "fashion_mnist_fid": _LUCIC_FINAL}


def loss_variants() -> dict[str, dict]:
  """Every loss, and the WGAN-GP penalty where it applies, as config overrides."""
  from jaxgan import losses  # pylint: disable=g-import-not-at-top

  out = {}
  for name in losses.LOSSES:
    if name == "wgan":  # the original WGAN: clipped weights, 5 critic updates
      out["wgan"] = {"loss.name": "wgan", "loss.weight_clip": 0.01, "loss.n_critic": 5}
    else:
      out[name] = {"loss.name": name}
  out["wgan+gp"] = {"loss.name": "wgan", "loss.penalty": "wgan_gp", "loss.n_critic": 5}
  out["non_saturating+gp"] = {"loss.name": "non_saturating", "loss.penalty": "wgan_gp"}
  out["hinge+gp"] = {"loss.name": "hinge", "loss.penalty": "wgan_gp"}
  return out


def four_losses(penalty_weight: float) -> dict[str, dict]:
  """The losses of the quality tables: NS, hinge, WGAN-GP and relativistic (RpGAN) with R1."""
  return {
    "non_saturating": {"loss.name": "non_saturating"},
    "hinge": {"loss.name": "hinge"},
    "wgan+gp": {
      "loss.name": "wgan",
      "loss.penalty": "wgan_gp",
      "loss.n_critic": 5,
      "model.d_norm": "layer",
      "optim.b1": 0.0,
      "optim.b2": 0.9,
    },
    "rsgan+r1": {
      "loss.name": "rsgan",
      "loss.penalty": "r1",
      "loss.penalty_weight": penalty_weight,
      "model.d_norm": "layer",
    },
  }


def lucic_variants() -> dict[str, dict]:
  """Lucic et al. 2018's losses at equal epochs: the four of the quality tables, LSGAN, then the
  minimax game, the original WGAN (clipped weights) and DRAGAN.

  A critic with `n_critic` 5 reads 5 batches a step, so its runs take a fifth of the steps: every
  run sees about 20 epochs of data, as in the paper's budget.
  """
  five = {"run.steps": 3_125, "loss.n_critic": 5}
  out = four_losses(penalty_weight=1.0)
  out["wgan+gp"].update(five)
  out["lsgan"] = {"loss.name": "lsgan"}
  out["minimax"] = {"loss.name": "minimax"}
  out["wgan"] = {"loss.name": "wgan", "loss.weight_clip": 0.01, **five}
  out["dragan"] = {"loss.name": "non_saturating", "loss.penalty": "dragan"}
  return out


def stacked_variants() -> dict[str, dict]:
  """The four losses, and the two anti-collapse options on the non-saturating DCGAN."""
  return {
    **four_losses(penalty_weight=0.1),
    "non_saturating+pack2": {"model.pack": 2},
    "non_saturating+mbstd4": {"model.minibatch_std": 4},
    "non_saturating+diffaugment": {"augment.name": "diffaugment"},
  }


def _gamma(gamma: float) -> dict:
  """R1 and R2 at gamma / 2 each (R3GAN)."""
  return {"r1": gamma / 2, "r2": gamma / 2}


def augment_variants() -> dict[str, dict]:
  """Without augmentation, DiffAugment (the paper's policy) and ADA (target 0.6)."""
  return {
    "none": {},
    "diffaugment": {"augment.name": "diffaugment"},
    "diffaugment_tc": {"augment.name": "diffaugment", "augment.policy": "translation,cutout"},
    "ada": {"augment.name": "ada", "augment.ada_target": 0.6},
  }


def grid_variants() -> dict[str, dict]:
  """What might lift the grid to PacGAN's level: length, packing, minibatch stddev, lr, EMA."""
  decay = {"optim.g_lr": "linear(2e-4, 0, 20000)", "optim.d_lr": "linear(2e-4, 0, 20000)"}
  lr = {"optim.g_lr": 5e-4, "optim.d_lr": 5e-4}
  return {
    "base": {},
    "pack2": {"model.pack": 2},
    "pack4": {"model.pack": 4},
    "mbstd4": {"model.minibatch_std": 4},
    "decay": decay,
    "ema0.999": {"optim.ema_decay": 0.999},
    "pack4+decay": {"model.pack": 4, **decay},
    "40k": {"run.steps": 40_000},
    "pack2+40k": {"model.pack": 2, "run.steps": 40_000},
    "mbstd4+40k": {"model.minibatch_std": 4, "run.steps": 40_000},
    "lr5e-4": lr,
    "pack2+lr5e-4": {"model.pack": 2, **lr},
  }


# study -> (default parts, variants).
STUDIES = {
  "losses": (("ring", "grid", "mnist", "fashion_mnist"), loss_variants),
  "grid": (("grid_20k",), grid_variants),
  "stacked_mnist": (("stacked_mnist",), stacked_variants),
  "augment": (("mnist_10pct", "mnist_full"), augment_variants),
  "r3gan": (
    ("stacked_mnist_r3gan",),
    lambda: {"r3gan": {}, "gamma0.1": {"loss.penalties": _gamma(0.1)}},
  ),
  "lucic": (("mnist_fid", "fashion_mnist_fid"), lucic_variants),
  "conditional": (("mnist_cdcgan",), lambda: conditional_variants()),
  "projected": (
    ("mnist_full", "mnist_projected", "stacked_mnist_4k", "stacked_mnist_projected_4k"),
    # 'steps3000': mnist_projected at mnist_dcgan's steps rather than its wall-clock.
    lambda: {"base": {}, "steps3000": {"run.steps": 3000, "log.sample_every": 3000}},
  ),
}


def conditional_variants() -> dict[str, dict]:
  """mnist_cdcgan, its generator with per-layer gain tables, an ACGAN discriminator, and the
  same recipe unconditional.

  Evaluated every 500 steps, to see when the requested classes are drawn.
  """
  every = {"eval.every": 500}
  return {
    "cdcgan": every,
    "per_layer_cbn": {"model.shared_embedding": 0, **every},
    "acgan": {"model.d_conditioning": "acgan", **every},
    # The same recipe without labels: how much of the FCD is the conditioning's.
    "unconditional": {
      "model.num_classes": 0,
      "model.g_conditioning": None,
      "model.d_conditioning": None,
      "model.shared_embedding": 0,
      "eval.metrics": "fcd",
      **every,
    },
  }


def run_config(part: str, overrides: dict, seed: int, args):
  """The run config of one (part, variant, seed): the part's base, the overrides, the seed."""
  c = PARTS[part][0](args)
  if args.steps:
    c.run.steps = args.steps
    c.eval.every = c.checkpoint.every = min(c.eval.every, args.steps)
    c.log.sample_every = args.steps
  if args.eval_every and not config_lib.is_toy(c):  # a trajectory, for any part
    c.eval.every = c.checkpoint.every = min(args.eval_every, c.run.steps)
  for path, value in overrides.items():
    section, field = path.split(".")
    c[section][field] = value
  if c.loss.penalty and c.model.d_norm is None and c.model.name == "dcgan":
    c.model.d_norm = "layer"  # a penalised critic cannot use BatchNorm
  if c.loss.penalty and config_lib.is_toy(c):
    c.loss.penalty_weight, c.optim.b2 = 1.0, 0.9
  if not config_lib.is_toy(c):
    c.run.data_dir = args.data_dir or c.run.data_dir
    c.run.source_dir = args.source_dir or c.run.source_dir
    c.eval.cache_dir = os.path.join(args.out, "cache")
  c.seed = seed
  config_lib.validate(c)
  return c


def read_log(workdir: str) -> list[dict]:
  """The run's metrics.jsonl records (empty when it has not started)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _spend(workdir: str, kind: str, work) -> None:
  """Runs `work()`, adding its wall and CPU seconds to `<kind>wall_seconds` and
  `<kind>cpu_seconds` in the run's study_run.json (summed over launches; written atomically)."""
  path = os.path.join(workdir, "study_run.json")
  spent = {"wall_seconds": 0.0, "cpu_seconds": 0.0}
  if os.path.exists(path):
    with open(path) as f:
      spent = json.load(f)
  wall, cpu = time.time(), time.process_time()
  try:
    work()
  finally:
    spent[f"{kind}wall_seconds"] = spent.get(f"{kind}wall_seconds", 0.0) + time.time() - wall
    spent[f"{kind}cpu_seconds"] = spent.get(f"{kind}cpu_seconds", 0.0) + time.process_time() - cpu
    with open(path + ".tmp", "w") as f:
      json.dump(spent, f)
    os.replace(path + ".tmp", path)


def _train(config, workdir: str) -> None:
  """Trains or resumes one run, adding this launch's time to study_run.json."""
  from jaxgan.run import loop  # pylint: disable=g-import-not-at-top

  _spend(workdir, "", lambda: loop.train_and_evaluate(config, workdir))


def _final_eval(part: str, workdir: str, step: int, train: bool, log) -> dict | None:
  """The part's final evaluation of a finished run (`FINAL_EVALS`), made once and then read back
  from `<workdir>/eval/<step>.json`; None for a part without one, or one not made yet."""
  from jaxgan.run import evaluate  # pylint: disable=g-import-not-at-top

  spec = FINAL_EVALS.get(part)
  if spec is None:
    return None
  path = evaluate.results_path(workdir, step)
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
    first = spec["metrics"].split(",")[0]  # made already if its first metric is there
    if any(k.rsplit("/", 1)[-1] == first for k in record["metrics"]):
      return record
  if not train:
    return None
  log(f"{workdir}: {spec['extractor']} evaluation of step {step}")
  _spend(workdir, "eval_", lambda: evaluate.evaluate_run(workdir, step=step, **spec))
  return _final_eval(part, workdir, step, False, log)


def collect(part: str, label: str, seed: int, args, train: bool, log) -> list[dict]:
  """Trains (or resumes, or reads back) one run; returns its rows for results.csv."""
  workdir = os.path.join(args.out, "runs", part, label, f"seed{seed}")
  config = run_config(part, STUDIES[args.study][1]()[label], seed, args)
  records = read_log(workdir)
  if train and (not records or records[-1]["step"] < config.run.steps):
    _train(config, workdir)
    records = read_log(workdir)
  if not records:
    return []
  if records[-1]["step"] >= config.run.steps:
    final = _final_eval(part, workdir, records[-1]["step"], train, log)
    if final is not None:  # its keys name their extractor: inception_fid-10k-train/fid
      records = [*records, {"step": final["step"], **final["metrics"]}]
  rows = []
  for r in records:
    for key, value in r.items():
      metric = key.rsplit("/", 1)[-1]
      if key.startswith("inception_fid") and metric != "fid":
        metric += "_inception"  # the classifier's run logs its own kid, precision, recall
      if "/" in key and metric in PARTS[part][1]:  # eval/<metric> or <protocol>/<metric>
        rows.append(
          dict(
            part=part,
            variant=label,
            seed=seed,
            step=r["step"],
            metric=metric,
            value=value,
            steps_per_sec=r.get("steps_per_sec", float("nan")),
          )
        )
  final = {row["metric"]: row["value"] for row in rows if row["step"] == records[-1]["step"]}
  log(f"{part} {label} seed {seed} step {records[-1]['step']}: {final}")
  return rows


def _spent(out: str, part: str, label: str) -> tuple[float, float, float]:
  """Mean wall and CPU minutes per run of a variant's training, and the CPU minutes of its final
  evaluation (NaN without one), from the runs' study_run.json."""
  root = os.path.join(out, "runs", part, label)
  walls, cpus, evals = [], [], []
  for seed in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    path = os.path.join(root, seed, "study_run.json")
    if os.path.exists(path):
      with open(path) as f:
        spent = json.load(f)
      walls.append(spent["wall_seconds"] / 60)
      cpus.append(spent["cpu_seconds"] / 60)
      evals.append(spent.get("eval_cpu_seconds", np.nan) / 60)
  if not walls:
    return np.nan, np.nan, np.nan
  return float(np.mean(walls)), float(np.mean(cpus)), float(np.mean(evals))


def summary_table(rows: list[dict], part: str, out: str, targets: dict[str, int]) -> str:
  """Markdown: mean +- std over the finished seeds of each variant's final metrics.

  Args:
    rows: the results rows.
    part: the part tabulated.
    out: the study's folder (for the runs' time spent).
    targets: each variant's final step (a run counts once it is there).

  Returns:
    The Markdown table.
  """
  metrics = PARTS[part][1]
  lines = [
    "| variant | "
    + " | ".join(metrics)
    + " | seeds done | steps | min/run (wall, CPU; final eval CPU) |",
    "|" + "---|" * (len(metrics) + 4),
  ]
  part_rows = [r for r in rows if r["part"] == part]
  for label in dict.fromkeys(r["variant"] for r in part_rows):
    target_steps = targets[label]
    mine = [r for r in part_rows if r["variant"] == label and r["step"] == target_steps]
    cells = []
    for m in metrics:
      vals = np.array([r["value"] for r in mine if r["metric"] == m], np.float64)
      cells.append(f"{vals.mean():.4g} +- {vals.std():.2g}" if len(vals) else "-")
    wall, cpu, evaluation = _spent(out, part, label)
    seeds = len({r["seed"] for r in mine})
    lines.append(
      f"| {label} | "
      + " | ".join(cells)
      + f" | {seeds} | {target_steps} | {wall:.1f}, {cpu:.1f}; {evaluation:.1f} |"
    )
  return "\n".join(lines)


def plot_curves(rows: list[dict], part: str, path: str) -> None:
  """The part's first metric against steps, one line per variant (mean over seeds)."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  metric = PARTS[part][1][0]
  if part in FINAL_EVALS:  # the final metric has one step: plot the logged one's trajectory
    metric = PARTS[part][1][4]
  mine = [r for r in rows if r["part"] == part and r["metric"] == metric]
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for label in dict.fromkeys(r["variant"] for r in mine):
    steps = sorted({r["step"] for r in mine if r["variant"] == label})
    means = [
      np.mean([r["value"] for r in mine if r["variant"] == label and r["step"] == s]) for s in steps
    ]
    ax.plot(steps, means, marker="o", markersize=3, label=label)
  if metric in ("fcd", "fid", "kl"):
    ax.set_yscale("log")  # early distances are orders of magnitude above the final ones
  ax.set(xlabel="steps", ylabel=metric, title=f"{part}: {metric}, mean over seeds")
  ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_final(rows: list[dict], part: str, path: str) -> None:
  """Each variant's final FID (one point a seed, a bar for the mean) beside Lucic et al.'s range
  of best FIDs (`LUCIC_BEST_FID`)."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  mine = [r for r in rows if r["part"] == part and r["metric"] == "fid"]
  labels = list(dict.fromkeys(r["variant"] for r in mine))
  fig, ax = plt.subplots(figsize=(7, 4))
  lo, hi = LUCIC_BEST_FID[part]
  ax.axhspan(lo, hi, color="tab:green", alpha=0.2, label="Lucic et al. 2018, best FIDs")
  for i, label in enumerate(labels):
    values = [r["value"] for r in mine if r["variant"] == label]
    ax.bar(i, np.mean(values), color="tab:blue", alpha=0.5)
    ax.plot([i] * len(values), values, "k.", markersize=6)
  ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
  spec = FINAL_EVALS[part]
  against = (
    f"{spec['num_samples']:,} samples vs {spec['num_reference']:,} {spec['reference_split']}"
  )
  ax.set(ylabel=f"FID ({against})", title=f"{part}: final FID per loss")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _protocol(out: str, part: str) -> str:
  if PARTS[part][1] == TOY_METRICS:
    return TOY_PROTOCOL
  for root, _, files in os.walk(os.path.join(out, "runs", part)):
    if "eval_protocol.txt" in files:
      with open(os.path.join(root, "eval_protocol.txt")) as f:
        return f.read().strip().splitlines()[-1]
  return "the evaluator's, in each run's eval_protocol.txt"


def write_outputs(args, rows: list[dict], parts: list[str]) -> None:
  """results.csv, summary.md and one curves_<part>.png per part with rows."""
  tmp = os.path.join(args.out, "results.csv.tmp")
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(tmp, os.path.join(args.out, "results.csv"))
  text = [f"# Study: {args.study}", "", f"Command: `{' '.join(['python', *sys.argv])}`", ""]
  for part in parts:
    if not any(r["part"] == part for r in rows):
      continue
    variants = STUDIES[args.study][1]()
    targets = {label: run_config(part, o, 0, args).run.steps for label, o in variants.items()}
    plot_curves(rows, part, os.path.join(args.out, f"curves_{part}.png"))
    extra = []
    if part in FINAL_EVALS and any(r["part"] == part and r["metric"] == "fid" for r in rows):
      plot_final(rows, part, os.path.join(args.out, f"final_{part}.png"))
      lo, hi = LUCIC_BEST_FID[part]
      extra = [
        f"Lucic et al. 2018's best FIDs after their search: {lo}-{hi}. Final evaluation: "
        f"{FINAL_EVALS[part]}.",
        "",
        f"![{part}](final_{part}.png)",
        "",
      ]
    text += [
      f"## {part}",
      "",
      f"Protocol: {_protocol(args.out, part)}. Mean +- std over the seeds that reached the "
      "variant's final step (runs still short of it, or made with another --steps, are left "
      "out).",
      "",
      summary_table(rows, part, args.out, targets),
      "",
      f"![{part}](curves_{part}.png)",
      "",
      *extra,
    ]
  with open(os.path.join(args.out, "summary.md"), "w") as f:
    f.write("\n".join(text))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--study", default="losses", choices=sorted(STUDIES))
  parser.add_argument("--parts", default="", help="comma list (default: the study's parts)")
  parser.add_argument("--variants", default="", help="comma list of variant labels (default all)")
  parser.add_argument("--seeds", type=int, default=2)
  parser.add_argument("--first_seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=0, help="every run's steps (0: the part's)")
  parser.add_argument(
    "--eval_every", type=int, default=0, help="image parts (0: the part's own; 1000 for 'mnist')"
  )
  parser.add_argument("--width", type=int, default=32, help="DCGAN width of the image parts")
  parser.add_argument("--no_train", action="store_true", help="only tabulate the runs that exist")
  parser.add_argument("--data_dir", default=os.environ.get("JAXGAN_DATA_DIR"))
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--out", default="runs/study")
  args = parser.parse_args(argv)
  default_parts, variants_fn = STUDIES[args.study]
  parts = [p.strip() for p in args.parts.split(",") if p.strip()] or list(default_parts)
  bad = [p for p in parts if p not in PARTS]
  if bad:
    parser.error(f"unknown parts {bad}; valid: {', '.join(PARTS)}")
  labels = list(variants_fn())
  chosen = [v.strip() for v in args.variants.split(",") if v.strip()] or labels
  unknown = sorted(set(chosen) - set(labels))
  if unknown:
    parser.error(f"unknown variants {unknown} for --study={args.study}; valid: {labels}")
  os.makedirs(args.out, exist_ok=True)
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  rows = []
  seeds = range(args.first_seed, args.first_seed + args.seeds)
  for part in parts:
    for label in labels:
      # This launch trains the chosen runs; runs of other launches are tabulated too.
      root = os.path.join(args.out, "runs", part, label)
      done = (
        {int(d[4:]) for d in os.listdir(root) if d[4:].isdigit()} if os.path.isdir(root) else set()
      )
      mine = set(seeds) if label in chosen and not args.no_train else set()
      for seed in sorted(done | mine):
        train = seed in mine
        rows += collect(part, label, seed, args, train, log)
        write_outputs(args, rows, parts)  # after every run: a crash keeps what was done
  if not rows:
    sys.exit(
      f"No runs of --study={args.study} under {args.out}/runs yet; drop --no_train to train them."
    )
  write_outputs(args, rows, parts)
  with open(os.path.join(args.out, "summary.md")) as f:
    print(f.read())


if __name__ == "__main__":
  main()
