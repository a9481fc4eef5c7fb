"""Lazy R1 as one program with `lax.cond` against two programs chosen by the host, on W6's model.

StyleGAN2's lazy regularisation (Karras et al. 2020) computes R1 on every k-th critic update only,
with its weight times k. jaxgan does it inside one compiled program: `lax.cond` on the update
index runs the critic update with the penalties or the one without (`jaxgan.step.train`). The
alternative is two compiled programs, one with the penalty (weight x k) and one without, the host
choosing per step, as StyleGAN2's PyTorch code does with a Python `if`. This script times, on
W6's model (DCGAN 32x32x1 non-saturating, LayerNorm critic, batch 64, n_critic 1, R1 weight 5,
k = 16), all with jaxgan's own builder (`jaxgan.run.build`):

  cond   one program, `loss.penalty_every = 16` (what jaxgan does)
  two    two programs: R1 with weight 5 x 16 on steps 0, 16, 32, ..., no penalty on the others
  every  R1 (weight 5) on every step
  none   no penalty

The variants run in one process; after each one's compile and warm-up they are alternated rep by
rep (the order rotated each rep), each rep timing a multiple of k steps lasting about
`--rep_seconds`, so every variant does the same number of penalised steps. It reports the median
steps/s, the median over reps of each variant's rate over `cond`'s (which cancels most of the
drift of a shared machine), the first step's time (trace + compile + run; `two`: both programs)
and the 1-minute load average after every rep.

    python benchmarks/lazy_regularization.py --reps 3 --rep_seconds 3
    python benchmarks/lazy_regularization.py --tiny --reps 1 --rep_seconds 0.1   # smoke run

Writes `<out>.json` and `<out>.md` (default benchmarks/results/lazy-r1-<timestamp>).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import run as run_lib  # noqa: E402
from benchmarks import workloads as wl  # noqa: E402

VARIANTS = ('cond', 'two', 'every', 'none')


def variant_workloads(w: wl.Workload) -> dict[str, list[wl.Workload]]:
  """The configs of each variant: one program each, two for 'two' (with, without the penalty).

  Args:
    w: a workload with `loss.penalties` and `loss.penalty_every` = k > 1 (W6).

  Returns:
    {variant: [workload, ...]}; for 'two', `[with the penalties x k every step, without]`.

  Raises:
    ValueError: `w` has no penalty or no lazy interval.
  """
  lo = w.config.loss
  k, weights = lo.penalty_every, lo.penalties.to_dict()
  if not weights or k < 2:
    raise ValueError(f'{w.name} needs loss.penalties and loss.penalty_every > 1; got {lo}')

  def variant(name, penalties, every):
    config = w.config.copy_and_resolve_references()
    config.loss.penalties, config.loss.penalty_every = dict(penalties), every
    return wl.Workload(f'{w.name}-{name}', w.description, w.image_shape, config)

  return {
    'cond': [w],
    'two': [
      variant('two-penalised', {p: x * k for p, x in weights.items()}, 1),
      variant('two-plain', {}, 1),
    ],
    'every': [variant('every', weights, 1)],
    'none': [variant('none', {}, 1)],
  }


class Variant:
  """One variant's compiled program(s) and state; `run(n)` makes n train steps.

  Args:
    name: one of `VARIANTS`.
    workloads: its workloads from `variant_workloads`.
    every: k, for 'two': the penalised program runs when the step is a multiple of k.
    compiler_options: passed to `jax.jit` (e.g. `workloads.FAST_COMPILE`).
  """

  def __init__(self, name: str, workloads: list[wl.Workload], every: int, compiler_options=None):
    import jax

    from jaxgan.step import sharding

    self.name, self.every, self.jax = name, every, jax
    b = wl.build_jax(workloads[0], compiler_options=compiler_options)
    self.steps = [b['step']]
    mesh = sharding.make_mesh()
    for other in workloads[1:]:
      self.steps.append(wl._jit_step(other, mesh, compiler_options)[1])
    self.state, self.batch, self.key = b['state'], b['batch'], b['key']
    self.count = 0  # the host's copy of state.step: choosing a program must not wait on the device
    t = time.perf_counter()
    self.run(len(self.steps))  # each program's first call: trace + compile + run
    self.first_step_s = time.perf_counter() - t

  def run(self, n: int) -> float:
    """Makes `n` train steps; returns the seconds they took (dispatch to completion)."""
    t = time.perf_counter()
    for _ in range(n):
      if len(self.steps) == 1:
        step = self.steps[0]
      else:  # the host's choice: the penalised program on every k-th step
        step = self.steps[0] if self.count % self.every == 0 else self.steps[1]
      self.state, _ = step(self.state, self.batch, self.key)
      self.count += 1
    self.jax.block_until_ready(self.state)
    return time.perf_counter() - t


def bench(w: wl.Workload, *, reps: int, rep_seconds: float, log=print) -> dict:
  """Builds every variant of `w`, then times them alternately (see the module docstring).

  Args:
    w: the lazy workload (W6 or a tiny copy).
    reps: timed reps per variant.
    rep_seconds: about how long each variant runs per rep.
    log: where progress lines go.

  Returns:
    A JSON-serialisable dict: per variant `steps_per_s` (median), `rates`, `first_step_s`,
    `ratio_over_cond` (median of per-rep ratios) and `ratios`; `steps_per_rep`, `load_avg_1min`
    (after every rep) and `penalty_every` (k).
  """
  k = w.config.loss.penalty_every
  options = wl.FAST_COMPILE if run_lib.smoke() else None
  variants = {}
  for name, ws in variant_workloads(w).items():
    variants[name] = Variant(name, ws, k, options)
    variants[name].run(k)  # warm-up: one full period
    log(f'  {name}: first step {variants[name].first_step_s:.1f} s')
  steps = {}
  for name, v in variants.items():
    per_step = v.run(k) / k
    steps[name] = k * max(1, round(rep_seconds / per_step / k))
  rates, loads = {n: [] for n in variants}, []
  for r in range(reps):
    order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
    for name in order:
      rates[name].append(steps[name] / variants[name].run(steps[name]))
    loads.append(round(os.getloadavg()[0], 2))
    log(
      f'  rep {r}: '
      + ', '.join(f'{n} {rates[n][-1]:.3g}' for n in VARIANTS)
      + f', load {loads[-1]}'
    )
  out = dict(
    workload=w.to_dict(), penalty_every=k, steps_per_rep=steps, reps=reps, load_avg_1min=loads
  )
  for name in VARIANTS:
    ratios = [a / b for a, b in zip(rates[name], rates['cond'], strict=True)]
    out[name] = dict(
      steps_per_s=statistics.median(rates[name]),
      rates=rates[name],
      first_step_s=variants[name].first_step_s,
      ratio_over_cond=statistics.median(ratios),
      ratios=ratios,
    )
  return out


DESCRIPTIONS = {
  'cond': 'one program, `lax.cond` (jaxgan)',
  'two': 'two programs, the host chooses',
  'every': 'R1 on every step',
  'none': 'no penalty',
}


def markdown(result: dict, meta: dict) -> str:
  """The result as a Markdown table with the command, the host and the load averages."""
  k = result['penalty_every']
  lines = [
    f"Command: `{meta['command']}`  ",
    f"Date: {meta['date']}; host: {meta['host']}, {meta['cpus']} CPUs; load average (1, 5, 15 "
    f"min) at start {meta['load_start']}, at end {meta['load_end']}; 1-minute load after each "
    f"rep {result['load_avg_1min']}  ",
    f"Versions: {meta['versions']}",
    '',
    f"{result['workload']['name']}: {result['workload']['description']}; R1 every {k} critic "
    f"updates with weight x {k}, steps per rep {result['steps_per_rep']}.",
    '',
    '| variant | steps/s (median) | / cond (median of per-rep ratios) | per-rep steps/s '
    '| first step (s) |',
    '|---|---|---|---|---|',
  ]
  for name in VARIANTS:
    v = result[name]
    lines.append(
      f"| {name}: {DESCRIPTIONS[name]} | {v['steps_per_s']:.3g} | {v['ratio_over_cond']:.3f} "
      f"| {' '.join(f'{x:.3g}' for x in v['rates'])} | {v['first_step_s']:.1f} |"
    )
  return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> dict:
  """Runs the comparison and writes `<out>.json` and `<out>.md`.

  Args:
    argv: command-line arguments (see `--help`); None for `sys.argv[1:]`.

  Returns:
    The result dict of `bench`.
  """
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--workload', default='W6', help='a workload with a lazy penalty')
  p.add_argument('--reps', type=int, default=3)
  p.add_argument('--rep_seconds', type=float, default=3.0)
  p.add_argument('--tiny', action='store_true', help='toy sizes (smoke test)')
  p.add_argument('--out', default=None, help='output path without extension')
  args = p.parse_args(argv)
  w = wl.get(args.workload)
  if args.tiny:
    w = w.tiny()
  meta = run_lib.run_metadata(__file__, argv)
  print(f"load average {meta['load_start']}; {w.name}: {w.description}", flush=True)
  result = bench(
    w, reps=args.reps, rep_seconds=args.rep_seconds, log=lambda s: print(s, flush=True)
  )
  meta['load_end'] = [round(x, 2) for x in os.getloadavg()]
  md = markdown(result, meta)
  print(md)
  out = (
    Path(args.out)
    if args.out
    else ROOT / 'benchmarks' / 'results' / datetime.datetime.now().strftime('lazy-r1-%Y%m%d-%H%M%S')
  )
  out.parent.mkdir(parents=True, exist_ok=True)
  out.with_suffix('.json').write_text(json.dumps(dict(meta=meta, result=result), indent=1))
  out.with_suffix('.md').write_text(md)
  print(f'wrote {out}.json and {out}.md')
  return result


if __name__ == '__main__':
  main()
