"""Loss study: the same architecture trained with every loss in jaxgan.losses.LOSSES (and with
the gradient penalty where it applies), several seeds, a fixed budget; toy mixtures, MNIST and
Fashion-MNIST.

    # CPU-sized (what was run on a 2-core machine: the toy part, 3k steps, 2 seeds)
    python experiments/loss_study.py --parts=toy --toy_steps=3000 --seeds=2 --out=runs/loss_study
    # images (needs the data; trains/caches a small FCD classifier per data set first)
    python experiments/loss_study.py --parts=mnist,fashion_mnist --image_steps=500 --seeds=2 \
        --source_dir=../shared/data --out=runs/loss_study
    # accelerators: multiply every budget (steps, eval samples stay pinned) by --scale
    python experiments/loss_study.py --parts=all --scale=20 --seeds=3 --out=runs/loss_study_tpu

Writes into --out: `results.csv` (one row per run and evaluation step), `summary.md` (mean +- std
over seeds of the final metrics per loss and data set, steps/s, the protocol of every number),
and `curves_<part>.png` (a metric vs steps per loss, mean over seeds). Parts are independent:
running one part again replaces its rows and keeps the others'.

Variants: every loss without a penalty ('wgan' without a penalty uses weight clipping at 0.01,
the original WGAN, with n_critic=5); with the WGAN-GP penalty: 'wgan+gp' (n_critic=5, the WGAN-GP
recipe), 'non_saturating+gp' and 'hinge+gp' (n_critic=1, Lucic et al.'s NS-GP setting). On the
toy mixtures the penalty weight is 1 and Adam's b2 0.9 (see tests/test_toy_training.py); on images
lambda=10. Image discriminators use LayerNorm throughout (a penalised critic cannot use
BatchNorm, and the architecture must be the same for every loss).

Toy metric: modes captured and high-quality fraction (PacGAN/VEEGAN protocol, 2,500 samples).
Image metric: FCD with jaxgan's own classifier (penultimate features), 2,000 EMA-generator samples
vs the training split; the protocol string is printed in summary.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

from jaxgan import losses  # noqa: E402

TOY_PARTS = ("ring", "grid")
IMAGE_PARTS = ("mnist", "fashion_mnist")
FIELDS = ("part", "variant", "seed", "step", "metric", "value", "steps_per_sec")


def variants() -> list[tuple[str, dict]]:
  """(label, settings) for every run of one part and seed."""
  out = []
  for name in losses.LOSSES:
    if name == "wgan":
      out.append(("wgan", dict(loss="wgan", weight_clip=0.01, n_critic=5)))
    else:
      out.append((name, dict(loss=name)))
  out.append(("wgan+gp", dict(loss="wgan", penalty="wgan_gp", n_critic=5)))
  out.append(("non_saturating+gp", dict(loss="non_saturating", penalty="wgan_gp")))
  out.append(("hinge+gp", dict(loss="hinge", penalty="wgan_gp")))
  return out


# ------------------------------------------------------------------------------------------------
# toy mixtures

def run_toy(part: str, label: str, settings: dict, seed: int, steps: int, log) -> list[dict]:
  from jaxgan.toy import ToyConfig, train_toy  # pylint: disable=g-import-not-at-top

  kw = dict(settings)
  if kw.get("penalty"):
    kw.update(penalty_weight=1.0, b2=0.9)
  chunk = 500 if steps % 500 == 0 else math.gcd(steps, 500)
  config = ToyConfig(mixture=part, steps=steps, seed=seed, steps_per_call=chunk, **kw)
  rows, t0 = [], [time.perf_counter()]

  def on_log(step, metrics, coverage):
    del metrics
    now = time.perf_counter()
    sps = chunk / max(now - t0[0], 1e-9)
    t0[0] = now
    for k in ("modes_captured", "high_quality", "mean_distance"):
      rows.append(dict(part=part, variant=label, seed=seed, step=step, metric=k,
                       value=coverage[k], steps_per_sec=sps))

  train_toy(config, log=on_log)
  last = {r["metric"]: r["value"] for r in rows if r["step"] == steps}
  log(f"{part:5s} {label:18s} seed {seed}: {last['modes_captured']:.0f} modes, "
      f"{100 * last['high_quality']:.1f}% high quality, {rows[-1]['steps_per_sec']:.0f} steps/s")
  return rows


# ------------------------------------------------------------------------------------------------
# images

def get_classifier(dataset: str, args, log):
  from jaxgan.metrics import classifier as clf_lib  # pylint: disable=g-import-not-at-top

  path = os.path.join(args.out, "classifiers", f"{dataset}.npz")
  if os.path.exists(path):
    return clf_lib.load_classifier(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  clf, info = clf_lib.train_classifier(dataset, steps=args.classifier_steps, widths=(16, 32),
                                       batch_size=64, data_dir=args.data_dir,
                                       source_dir=args.source_dir, log=log)
  clf_lib.save_classifier(path, clf)
  log(f"classifier for {dataset}: test accuracy {100 * info['test_accuracy']:.2f}% -> {path}")
  return clf_lib.load_classifier(path)


def run_image(part: str, label: str, settings: dict, seed: int, steps: int, evaluator, args,
              log) -> list[dict]:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxgan import data, loop, sharding  # pylint: disable=g-import-not-at-top
  from jaxgan.train import make_train_step  # pylint: disable=g-import-not-at-top

  config = loop.default_config()
  config.update(dict(dataset=part, model="dcgan", width=args.width, d_norm="layer",
                     batch_size=64, ema_decay=0.99, seed=seed, steps=steps))
  n_critic = settings.get("n_critic", 1)
  source = data.load_source(part, data_dir=args.data_dir, source_dir=args.source_dir)
  stream = data.make_loader(source, batch_size=config.batch_size * n_critic, seed=seed)
  image_shape = tuple(np.asarray(source[0]["image"]).shape)
  if len(image_shape) == 2:
    image_shape = (*image_shape, 1)
  gan = loop.build_gan(config, image_shape)
  step_fn = make_train_step(gan, loss=settings["loss"], penalty=settings.get("penalty"),
                            penalty_weight=10.0, n_critic=n_critic, ema_decay=config.ema_decay,
                            weight_clip=settings.get("weight_clip"))
  mesh = sharding.make_mesh()
  step_fn = sharding.jit_train_step(step_fn, mesh)  # the training loop's own jit
  init_key, train_key, eval_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  state = sharding.replicate(gan.init(init_key, jnp.zeros((config.batch_size, *image_shape))),
                             mesh)
  sample = jax.jit(gan.sample, static_argnums=2)
  rows, t_train = [], 0.0
  eval_every = max(args.image_eval_every, 1)
  for step in range(1, steps + 1):
    batch = sharding.global_batch(next(stream)["image"], mesh)
    t = time.perf_counter()
    state, metrics = step_fn(state, batch, train_key)
    if step % eval_every == 0 or step == steps:
      jax.block_until_ready(state)
      t_train += time.perf_counter() - t
      sps = step / t_train  # cumulative (the first chunk includes compilation)
      out = evaluator.evaluate(lambda k, n: sample(state, k, n),
                               key=jax.random.fold_in(eval_key, step))
      for k, v in out.items():
        rows.append(dict(part=part, variant=label, seed=seed, step=step,
                         metric=k.rsplit("/", 1)[-1], value=v, steps_per_sec=sps))
    else:
      t_train += time.perf_counter() - t
  stream.close()
  fcd = [r["value"] for r in rows if r["step"] == steps and r["metric"] == "fcd"][0]
  log(f"{part} {label:18s} seed {seed}: FCD {fcd:.2f}, {rows[-1]['steps_per_sec']:.2f} steps/s")
  return rows


# ------------------------------------------------------------------------------------------------
# outputs

def read_rows(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [dict(r, seed=int(r["seed"]), step=int(r["step"]), value=float(r["value"]),
                 steps_per_sec=float(r["steps_per_sec"])) for r in csv.DictReader(f)]


def write_rows(path: str, rows: list[dict]) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    w = csv.DictWriter(f, FIELDS)
    w.writeheader()
    w.writerows(rows)
  os.replace(tmp, path)


PRIMARY = {"ring": ("modes_captured", "high_quality"), "grid": ("modes_captured", "high_quality"),
           "mnist": ("fcd", "precision", "recall"), "fashion_mnist": ("fcd", "precision", "recall")}


def summary_table(rows: list[dict], part: str) -> str:
  metrics = PRIMARY[part]
  part_rows = [r for r in rows if r["part"] == part]
  if not part_rows:
    return ""
  labels = list(dict.fromkeys(r["variant"] for r in part_rows))
  head = "| loss | " + " | ".join(metrics) + " | steps/s | seeds | steps |"
  lines = [head, "|" + "---|" * (len(metrics) + 4)]
  for label in labels:
    lr = [r for r in part_rows if r["variant"] == label]
    final = max(r["step"] for r in lr)
    cells = []
    for m in metrics:
      vals = [r["value"] for r in lr if r["step"] == final and r["metric"] == m]
      scale = 100 if m == "high_quality" else 1
      unit = "%" if m == "high_quality" else ""
      if vals:
        cells.append(f"{scale * np.mean(vals):.{1 if scale == 100 or m == 'modes_captured' else 3}f}"
                     f" +- {scale * np.std(vals):.{1 if scale == 100 or m == 'modes_captured' else 3}f}{unit}")
      else:
        cells.append("-")
    sps = [r["steps_per_sec"] for r in lr if r["step"] == final and r["metric"] == metrics[0]]
    seeds = sorted({r["seed"] for r in lr})
    lines.append(f"| {label} | " + " | ".join(cells) +
                 f" | {np.median(sps):.1f} | {len(seeds)} | {final} |")
  return "\n".join(lines)


PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
           (0, 0, 0), (120, 200, 120)]


def plot_curves(rows: list[dict], part: str, metric: str, path: str) -> None:
  """Metric vs steps, one line per variant (mean over seeds); Pillow only."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top

  part_rows = [r for r in rows if r["part"] == part and r["metric"] == metric]
  if not part_rows:
    return
  labels = list(dict.fromkeys(r["variant"] for r in part_rows))
  curves = {}
  for label in labels:
    steps = sorted({r["step"] for r in part_rows if r["variant"] == label})
    curves[label] = [(s, float(np.mean([r["value"] for r in part_rows
                                        if r["variant"] == label and r["step"] == s])))
                     for s in steps]
  xs = [s for c in curves.values() for s, _ in c]
  ys = [v for c in curves.values() for _, v in c if np.isfinite(v)]
  x0, x1 = 0, max(xs)
  y0, y1 = min(0.0, min(ys)), max(ys) * 1.05 or 1.0
  if metric == "fcd":  # log scale: early FCDs are orders of magnitude larger
    y0, y1 = math.log10(max(min(ys), 1e-3)), math.log10(max(ys)) + 0.05
  w, h, left, right, top, bottom = 900, 520, 70, 200, 30, 50
  img = Image.new("RGB", (w, h), "white")
  d = ImageDraw.Draw(img)
  px = lambda s: left + (s - x0) / max(x1 - x0, 1) * (w - left - right)  # noqa: E731
  py = lambda v: top + (1 - ((math.log10(max(v, 1e-3)) if metric == "fcd" else v) - y0)  # noqa: E731
                        / max(y1 - y0, 1e-9)) * (h - top - bottom)
  d.rectangle([left, top, w - right, h - bottom], outline="black")
  for i in range(5):
    yv = y0 + (y1 - y0) * i / 4
    label = f"{10 ** yv:.3g}" if metric == "fcd" else f"{yv:.3g}"
    y = top + (1 - i / 4) * (h - top - bottom)
    d.line([left - 4, y, left, y], fill="black")
    d.text((5, y - 6), label, fill="black")
    xv = x0 + (x1 - x0) * i / 4
    x = px(xv)
    d.line([x, h - bottom, x, h - bottom + 4], fill="black")
    d.text((x - 12, h - bottom + 8), f"{xv:.0f}", fill="black")
  d.text((left, 8), f"{part}: {metric}{' (log scale)' if metric == 'fcd' else ''} vs steps, "
                    "mean over seeds", fill="black")
  d.text(((w - right) // 2, h - 18), "steps", fill="black")
  for i, (label, pts) in enumerate(curves.items()):
    color = PALETTE[i % len(PALETTE)]
    if len(pts) > 1:
      d.line([(px(s), py(v)) for s, v in pts], fill=color, width=2)
    for s, v in pts:
      d.ellipse([px(s) - 2, py(v) - 2, px(s) + 2, py(v) + 2], fill=color)
    d.line([w - right + 10, top + 10 + 16 * i, w - right + 30, top + 10 + 16 * i], fill=color, width=3)
    d.text((w - right + 35, top + 4 + 16 * i), label, fill="black")
  img.save(path)


def write_outputs(args, rows, protocols):
  write_rows(os.path.join(args.out, "results.csv"), rows)
  parts = [p for p in (*TOY_PARTS, *IMAGE_PARTS) if any(r["part"] == p for r in rows)]
  text = ["# Loss study", "", f"Command: `{' '.join(['python', *sys.argv])}`", ""]
  for part in parts:
    text += [f"## {part}", ""]
    if part in TOY_PARTS:
      text.append("Protocol: PacGAN/VEEGAN mode coverage, 2,500 EMA-generator samples "
                  "(high quality: within 3 sigma of the nearest mode). Mean +- std over seeds.")
    else:
      text.append(f"Protocol: {protocols.get(part, 'see results.csv')}. Mean +- std over seeds.")
    text += ["", summary_table(rows, part), ""]
    metric = "high_quality" if part in TOY_PARTS else "fcd"
    png = f"curves_{part}.png"
    plot_curves(rows, part, metric, os.path.join(args.out, png))
    text += [f"![{part} {metric} vs steps]({png})", ""]
  with open(os.path.join(args.out, "summary.md"), "w") as f:
    f.write("\n".join(text))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--parts", default="toy", help="toy, ring, grid, mnist, fashion_mnist, all")
  parser.add_argument("--variants", default="", help="comma list of variant labels (default all)")
  parser.add_argument("--seeds", type=int, default=2)
  parser.add_argument("--toy_steps", type=int, default=3000)
  parser.add_argument("--image_steps", type=int, default=500)
  parser.add_argument("--image_eval_every", type=int, default=250)
  parser.add_argument("--eval_samples", type=int, default=2000)
  parser.add_argument("--width", type=int, default=16, help="DCGAN width for the image parts")
  parser.add_argument("--classifier_steps", type=int, default=1000)
  parser.add_argument("--scale", type=float, default=1.0,
                      help="multiplies the training budgets (e.g. 20 on a TPU)")
  parser.add_argument("--data_dir", default=os.environ.get("JAXGAN_DATA_DIR"))
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  parser.add_argument("--out", default="runs/loss_study")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  requested = [p.strip() for p in args.parts.split(",") if p.strip()]
  parts = []
  for p in requested:
    parts += {"toy": list(TOY_PARTS), "all": [*TOY_PARTS, *IMAGE_PARTS]}.get(p, [p])
  bad = [p for p in parts if p not in (*TOY_PARTS, *IMAGE_PARTS)]
  if bad:
    parser.error(f"unknown parts {bad}")
  runs = variants()
  if args.variants:
    keep = set(args.variants.split(","))
    runs = [r for r in runs if r[0] in keep]
  toy_steps = int(round(args.toy_steps * args.scale / 500)) * 500 or 500
  image_steps = max(1, int(round(args.image_steps * args.scale)))
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  csv_path = os.path.join(args.out, "results.csv")
  rows = [r for r in read_rows(csv_path) if r["part"] not in parts]
  protocols = {}
  for part in parts:
    evaluator = None
    if part in IMAGE_PARTS:
      from jaxgan.metrics.evaluator import Evaluator  # pylint: disable=g-import-not-at-top
      clf = get_classifier(part, args, log)
      evaluator = Evaluator.from_config(
          dict(metrics=("fcd", "precision_recall"), dataset=part, reference_split="train",
               num_samples=args.eval_samples, data_dir=args.data_dir, source_dir=args.source_dir,
               cache_dir=os.path.join(args.out, "reference_stats"), pr_samples=args.eval_samples),
          extractor=clf)
      protocols[part] = evaluator.protocol
      log(f"{part} protocol: {evaluator.protocol}")
    for label, settings in runs:
      for seed in range(args.seeds):
        if part in TOY_PARTS:
          rows += run_toy(part, label, settings, seed, toy_steps, log)
        else:
          rows += run_image(part, label, settings, seed, image_steps, evaluator, args, log)
        write_outputs(args, rows, protocols)  # after every run: a crash keeps what was done
  write_outputs(args, rows, protocols)
  print(open(os.path.join(args.out, "summary.md")).read())


if __name__ == "__main__":
  main()
