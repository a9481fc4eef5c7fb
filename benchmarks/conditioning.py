"""The class-conditional step against the unconditional one: W8 and W8u alternated rep by rep.

W8 is the conditional DCGAN of experiments/configs/mnist_cdcgan.py (conditional BatchNorm in G,
de Vries et al. 2017; projection discriminator, Miyato & Koyama 2018); W8u the same networks
without the class embeddings (`workloads.py`). `run.py` times workloads one after the other, so
on a shared machine their difference drifts with the load; here every (framework, workload)
pair has its own worker process (`run.Worker`), and after their compiles and warm-ups the pairs
are timed in turn within every rep, the order rotated each rep. Per framework it reports the
median steps/s of each workload and the median over reps of the per-rep ratio W8 / W8u (which
cancels most of the drift), and per workload the median per-rep ratio jaxgan / PyTorch.

    python benchmarks/conditioning.py --reps 5 --rep_seconds 3 --torch_threads 1
    python benchmarks/conditioning.py --frameworks jax --tiny --reps 1 --rep_seconds 0.1  # smoke

Writes `<out>.json` and `<out>.md` (default benchmarks/results/conditioning-<timestamp>).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import run as run_lib  # noqa: E402
from benchmarks import workloads as wl  # noqa: E402

# (conditional, unconditional) workload names.
PAIR = ('W8', 'W8u')


def summarize(rates: dict[str, dict[str, list[float]]]) -> dict[str, dict]:
  """Medians and per-rep ratios of alternated timings.

  Args:
    rates: `{framework: {workload: [steps/s of rep 0, rep 1, ...]}}` with the workloads `PAIR`,
      every list as long as the others (rep i of every pair timed in the same rep).

  Returns:
    `{framework: {'<name>_steps_per_s': median, 'conditional_over_unconditional': median of
    the per-rep ratios, 'ratios': the per-rep ratios}}`, and, when both 'jax' and 'torch' are
    given, `'jax_over_torch': {workload: median of per-rep ratios}`.

  >>> out = summarize({'jax': {'W8': [8.0, 9.0, 4.0], 'W8u': [10.0, 10.0, 5.0]}})
  >>> out['jax']['conditional_over_unconditional'], out['jax']['W8u_steps_per_s']
  (0.8, 10.0)
  """
  cond, uncond = PAIR
  out = {}
  for fw, r in rates.items():
    ratios = [a / b for a, b in zip(r[cond], r[uncond], strict=True)]
    out[fw] = {f'{name}_steps_per_s': statistics.median(r[name]) for name in PAIR}
    out[fw].update(conditional_over_unconditional=statistics.median(ratios), ratios=ratios)
  if {'jax', 'torch'} <= set(rates):
    out['jax_over_torch'] = {
      name: statistics.median(
        [a / b for a, b in zip(rates['jax'][name], rates['torch'][name], strict=True)]
      )
      for name in PAIR
    }
  return out


def bench(
  workloads: dict[str, wl.Workload],
  *,
  frameworks: tuple[str, ...],
  reps: int,
  rep_seconds: float,
  warmup: int,
  torch_threads: int | None,
  log=print,
) -> dict:
  """Times every (framework, workload) pair in turn within each rep.

  Args:
    workloads: `{name: workload}` for the names of `PAIR`.
    frameworks: 'jax' and/or 'torch'.
    reps: timed reps.
    rep_seconds: about how long each pair's share of a rep lasts.
    warmup: untimed steps after the first one.
    torch_threads: PyTorch's intra-op threads; None for its default.
    log: called with a line per rep.

  Returns:
    A JSON-able dict: `rates` (`{framework: {workload: [steps/s per rep]}}`), `steps_per_rep`,
    `first_step_s`, `load_avg_1min` per rep and `summary` (`summarize`).
  """
  keys = [(fw, name) for fw in frameworks for name in PAIR]
  workers = {}
  try:
    for fw, name in keys:
      workers[fw, name] = run_lib.Worker(fw, workloads[name], warmup, torch_threads)
      log(f'  {fw} {name}: first step {workers[fw, name].ready["first_step_s"]:.2f} s')
    steps = {
      k: max(1, round(rep_seconds / max(w.ready['warm_step_s'], 1e-6))) for k, w in workers.items()
    }
    rates = {fw: {name: [] for name in PAIR} for fw in frameworks}
    loads = []
    for r in range(reps):
      for fw, name in keys[r % len(keys) :] + keys[: r % len(keys)]:
        secs = workers[fw, name].ask(cmd='run', steps=steps[fw, name])['seconds']
        rates[fw][name].append(steps[fw, name] / secs)
      loads.append(round(os.getloadavg()[0], 2))
      log(
        f'  rep {r}: '
        + ', '.join(f'{fw} {name} {rates[fw][name][-1]:.3g}' for fw, name in keys)
        + f' steps/s, load {loads[-1]}'
      )
    return dict(
      rates=rates,
      steps_per_rep={f'{fw}/{name}': n for (fw, name), n in steps.items()},
      first_step_s={f'{fw}/{name}': w.ready['first_step_s'] for (fw, name), w in workers.items()},
      load_avg_1min=loads,
      summary=summarize(rates),
    )
  finally:
    for worker in workers.values():
      worker.close()


def markdown(result: dict, meta: dict, torch_threads: int | None) -> str:
  """The result as a Markdown table with the run's metadata."""
  s = result['summary']
  lines = [
    f'Command: `{meta["command"]}`  ',
    f'Date: {meta["date"]}; host: {meta["host"]}, {meta["cpus"]} CPUs; load average (1 min) '
    f'per rep {" ".join(f"{x:.1f}" for x in result["load_avg_1min"])}  ',
    f'Versions: {meta["versions"]}',
    '',
    '| framework | W8 steps/s | W8u steps/s | W8 / W8u (median of per-rep ratios) | per-rep |',
    '|---|---|---|---|---|',
  ]
  for fw in result['rates']:
    threads = {None: 'its default threads', 1: '1 thread'}.get(torch_threads)
    label = 'jaxgan' if fw == 'jax' else f'PyTorch ({threads or f"{torch_threads} threads"})'
    lines.append(
      f'| {label} | {s[fw]["W8_steps_per_s"]:.3g} | {s[fw]["W8u_steps_per_s"]:.3g} '
      f'| {s[fw]["conditional_over_unconditional"]:.3f} '
      f'| {" ".join(f"{x:.3f}" for x in s[fw]["ratios"])} |'
    )
  if 'jax_over_torch' in s:
    lines += [
      '',
      'jaxgan / PyTorch (median of per-rep ratios): '
      + ', '.join(f'{name} {v:.2f}' for name, v in s['jax_over_torch'].items())
      + '.',
    ]
  return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> dict:
  """Runs the comparison and writes `<out>.json` and `<out>.md`.

  Args:
    argv: command-line arguments; None for `sys.argv[1:]`.

  Returns:
    The result dict of `bench` with the run's metadata under 'meta'.
  """
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--frameworks', default='jax,torch')
  p.add_argument('--reps', type=int, default=5)
  p.add_argument('--rep_seconds', type=float, default=3.0)
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--torch_threads', type=int, default=None)
  p.add_argument('--tiny', action='store_true', help='toy sizes (smoke test)')
  p.add_argument('--out', default=None, help='output path without extension')
  args = p.parse_args(argv)
  workloads = {name: wl.get(name) for name in PAIR}
  if args.tiny:
    workloads = {name: w.tiny() for name, w in workloads.items()}
  meta = run_lib.run_metadata(__file__, argv)
  print(f'load average {meta["load_start"]}', flush=True)
  result = bench(
    workloads,
    frameworks=tuple(f for f in args.frameworks.split(',') if f),
    reps=args.reps,
    rep_seconds=args.rep_seconds,
    warmup=args.warmup,
    torch_threads=args.torch_threads,
    log=lambda s: print(s, flush=True),
  )
  meta['load_end'] = [round(x, 2) for x in os.getloadavg()]
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  out = Path(args.out) if args.out else ROOT / 'benchmarks' / 'results' / f'conditioning-{stamp}'
  out.parent.mkdir(parents=True, exist_ok=True)
  md = markdown(result, meta, args.torch_threads)
  out.with_suffix('.json').write_text(json.dumps(dict(meta=meta, **result), indent=1))
  out.with_suffix('.md').write_text(md)
  print(md + f'wrote {out}.json and {out}.md')
  return dict(meta=meta, **result)


if __name__ == '__main__':
  main()
