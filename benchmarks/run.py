"""Train-step throughput of jaxgan against a careful PyTorch reference, workload by workload.

Each framework runs in its own worker subprocess (so peak RSS is per framework and neither imports
the other); after warm-up the parent alternates them, `--reps` times, each rep timing enough steps
to last about `--rep_seconds`. Per workload it reports generator steps/s for each framework (median
over reps), the jaxgan/PyTorch ratio (median of the per-rep ratios, which cancels most of the drift
of a shared machine), first-step time (jaxgan: trace + compile + run), peak RSS, and jaxgan's
achieved model FLOP/s (XLA's cost analysis of the step written with Flax's plain convolutions,
`workloads.model_flops`) as a fraction of a 2048x2048 float32 matmul measured in the same run,
between the reps. PyTorch's fraction uses the same FLOP count (same model and update), so it is
comparable.

    python benchmarks/run.py                          # W1-W4, both frameworks
    python benchmarks/run.py --workloads W2 --reps 7
    python benchmarks/run.py --workloads W5,W6,W7 --reps 3   # R1+R2, lazy R1, ADA
    python benchmarks/run.py --workloads W5,W5-approx,W5-none --reps 5   # R1 / approx R1 / none
    python benchmarks/run.py --workloads W8,W8u --reps 3     # conditional DCGAN, unconditional twin
    python benchmarks/run.py --sweep --reps 3         # every loss, with/without WGAN-GP (DCGAN)
    python benchmarks/run.py --workloads W2 --conv lax    # jaxgan with Flax's own convolutions
    python benchmarks/run.py --workloads resnet-64,resnet-128,r3gan-64,r3gan-128 \
        --frameworks jax --reps 3     # the models at 64 and 128 px (workloads.SIZE_WORKLOADS)
    python benchmarks/run.py --frameworks jax --tiny  # smoke run

Writes `<out>.json` and `<out>.md` (default benchmarks/results/<timestamp>). The machine may be
shared: the load average is recorded at start and end and after every rep; quote ratios and
medians.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import functools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import workloads as wl  # noqa: E402

FRAMEWORKS = ('jax', 'torch')
MATMUL_N = 2048
SMOKE_ENV = 'JAXGAN_BENCH_SMOKE'


def smoke() -> bool:
  """True when `$JAXGAN_BENCH_SMOKE` is 1: a smoke test of the scripts, whose timings mean nothing.

  Then jaxgan's step is compiled with XLA's fast-compile options (`workloads.FAST_COMPILE`) and
  the yardstick matmul is 256 x 256: a cheap run of every code path. The variable reaches the
  worker processes through their environment.
  """
  return os.environ.get(SMOKE_ENV) == '1'


def _matmul_n() -> int:
  return 256 if smoke() else MATMUL_N


# --- workers (one per framework, in its own process) ------------------------------------------


@functools.lru_cache(maxsize=2)
def _matmul(n: int):
  import jax
  import jax.numpy as jnp

  k1, k2 = jax.random.split(jax.random.PRNGKey(1))
  a = jax.random.normal(k1, (n, n), jnp.float32)
  b = jax.random.normal(k2, (n, n), jnp.float32)
  f = jax.jit(jnp.dot)
  f(a, b).block_until_ready()
  return f, a, b


def matmul_gflops(reps: int = 10) -> float:
  """The yardstick: GFLOP/s of a 2048x2048 float32 matmul in jax (median of `reps` calls)."""
  n = _matmul_n()
  f, a, b = _matmul(n)
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    f(a, b).block_until_ready()
    times.append(time.perf_counter() - t)
  return 2 * n**3 / statistics.median(times) / 1e9


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rss_mb() -> float:
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


class JaxRunner:
  name = 'jax'

  def __init__(self, w: wl.Workload, threads: int | None = None):
    del threads  # XLA sizes its own thread pool to the machine
    import jax

    self.jax = jax
    self.w = w
    t = time.perf_counter()
    b = wl.build_jax(w, compiler_options=wl.FAST_COMPILE if smoke() else None)
    self.build_s = time.perf_counter() - t
    self._step, self.state, self.batch, self.key = b['step'], b['state'], b['batch'], b['key']

  def step(self, n: int) -> None:
    for _ in range(n):
      self.state, _ = self._step(self.state, self.batch, self.key)
    self.jax.block_until_ready(self.state)

  def flops(self) -> float:
    return wl.model_flops(self.w, self.state, self.batch, self.key)


class TorchRunner:
  name = 'torch'

  def __init__(self, w: wl.Workload, threads: int | None = None):
    import torch

    from benchmarks import torch_reference

    if threads:
      torch.set_num_threads(threads)
    t = time.perf_counter()
    self.gan = torch_reference.build_torch(w)
    self.build_s = time.perf_counter() - t

  def step(self, n: int) -> None:
    for _ in range(n):
      self.gan.step()


RUNNERS = {'jax': JaxRunner, 'torch': TorchRunner}


def worker_main(
  framework: str, workload_json: str, warmup: int, torch_threads: int | None = None
) -> None:
  """Line protocol on stdin/stdout: one JSON object per line each way."""
  out = os.fdopen(os.dup(sys.stdout.fileno()), 'w', buffering=1)
  sys.stdout = sys.stderr  # keep library prints off the protocol channel
  w = wl.Workload.from_dict(json.loads(workload_json))
  runner = RUNNERS[framework](w, torch_threads)
  t = time.perf_counter()
  runner.step(1)
  first = time.perf_counter() - t
  t = time.perf_counter()
  runner.step(warmup)
  warm = (time.perf_counter() - t) / max(warmup, 1)
  # As jaxgan's loop does after its first step (`compilation_cache.release_compiler_memory`,
  # not imported: the PyTorch worker must not load JAX), for both frameworks.
  ctypes.CDLL('libc.so.6').malloc_trim(0)
  out.write(json.dumps(dict(build_s=runner.build_s, first_step_s=first, warm_step_s=warm)) + '\n')
  for line in sys.stdin:
    cmd = json.loads(line)
    if cmd['cmd'] == 'run':
      t = time.perf_counter()
      runner.step(cmd['steps'])
      reply = dict(seconds=time.perf_counter() - t)
    elif cmd['cmd'] == 'matmul':
      reply = dict(gflops=matmul_gflops())
    elif cmd['cmd'] == 'stats':
      reply = dict(peak_rss_mb=_peak_rss_mb(), rss_mb=_rss_mb())
    elif cmd['cmd'] == 'flops':
      reply = dict(flops=runner.flops())
    elif cmd['cmd'] == 'quit':
      break
    else:
      reply = dict(error=f'unknown command {cmd}')
    out.write(json.dumps(reply) + '\n')


class Worker:
  def __init__(self, framework: str, w: wl.Workload, warmup: int, torch_threads: int | None):
    env = dict(os.environ)
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    self.framework = framework
    self.proc = subprocess.Popen(
      [
        sys.executable,
        str(Path(__file__).resolve()),
        '--worker',
        framework,
        '--workload_json',
        json.dumps(w.to_dict()),
        '--warmup',
        str(warmup),
      ]
      + (['--torch_threads', str(torch_threads)] if torch_threads else []),
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      text=True,
      env=env,
      cwd=str(ROOT),
    )
    self.ready = self._read()

  def _read(self) -> dict:
    line = self.proc.stdout.readline()
    if not line:
      self.proc.wait()
      raise RuntimeError(f'{self.framework} worker died (exit code {self.proc.returncode})')
    return json.loads(line)

  def ask(self, **cmd) -> dict:
    self.proc.stdin.write(json.dumps(cmd) + '\n')
    self.proc.stdin.flush()
    return self._read()

  def close(self) -> None:
    try:
      self.proc.stdin.write(json.dumps(dict(cmd='quit')) + '\n')
      self.proc.stdin.close()
    except (BrokenPipeError, ValueError):
      pass
    self.proc.wait(timeout=60)


# --- the parent ------------------------------------------------------------------------------


def bench_workload(
  w: wl.Workload,
  *,
  frameworks,
  reps: int,
  rep_seconds: float,
  warmup: int,
  torch_threads: int | None = None,
  log=print,
) -> dict:
  workers = {}
  try:
    for fw in frameworks:
      workers[fw] = Worker(fw, w, warmup, torch_threads)
      log(
        f'  {fw}: first step {workers[fw].ready["first_step_s"]:.2f} s, '
        f'warm step {workers[fw].ready["warm_step_s"] * 1e3:.1f} ms'
      )
    # A lazy penalty (every k-th critic update) runs on one step in k/n_critic: each rep times
    # whole periods, so every rep pays the penalty's share and no rep misses it.
    lo = w.config.loss
    period = lo.penalty_every // math.gcd(lo.penalty_every, lo.n_critic)
    steps = {
      fw: period * max(1, round(rep_seconds / max(workers[fw].ready['warm_step_s'], 1e-6) / period))
      for fw in frameworks
    }
    rates = {fw: [] for fw in frameworks}
    peaks, loads = [], []
    for r in range(reps):
      order = frameworks if r % 2 == 0 else frameworks[::-1]  # alternate who goes first
      for fw in order:
        secs = workers[fw].ask(cmd='run', steps=steps[fw])['seconds']
        rates[fw].append(steps[fw] / secs)
      # The machine may be shared: the 1-minute load average beside every rep's figures.
      loads.append(round(os.getloadavg()[0], 2))
      if 'jax' in workers:
        peaks.append(workers['jax'].ask(cmd='matmul')['gflops'])
      log(
        f'  rep {r}: '
        + ', '.join(f'{fw} {rates[fw][-1]:.3g} steps/s' for fw in frameworks)
        + (f', matmul {peaks[-1]:.0f} GFLOP/s' if peaks else '')
        + f', load {loads[-1]}'
      )
    result = dict(
      workload=w.to_dict(),
      steps_per_rep=steps,
      reps=reps,
      torch_threads=torch_threads,
      load_avg_1min=loads,
    )
    for fw in frameworks:
      stats = workers[fw].ask(cmd='stats')
      result[fw] = dict(
        steps_per_s=statistics.median(rates[fw]),
        rates=rates[fw],
        first_step_s=workers[fw].ready['first_step_s'],
        build_s=workers[fw].ready['build_s'],
        peak_rss_mb=stats['peak_rss_mb'],
        rss_mb=stats['rss_mb'],
      )
    if 'torch' in workers and 'jax' in workers:
      ratios = [a / b for a, b in zip(rates['jax'], rates['torch'], strict=True)]
      result['ratio_jax_over_torch'] = statistics.median(ratios)
      result['ratios'] = ratios
    if 'jax' in workers:
      flops = workers['jax'].ask(cmd='flops')['flops']  # after 'stats': its compile is not in RSS
      peak = statistics.median(peaks)
      result.update(model_gflop_per_step=flops / 1e9, matmul_peak_gflops=peak, matmul_peaks=peaks)
      for fw in frameworks:
        achieved = flops * result[fw]['steps_per_s'] / 1e9
        result[fw].update(achieved_gflops=achieved, fraction_of_matmul_peak=achieved / peak)
    return result
  finally:
    for worker in workers.values():
      worker.close()


def _conv(workload: dict) -> str:
  return workload['config']['model']['kwargs'].get('conv', 'auto')


def _fmt(x, spec):
  return '-' if x is None else format(x, spec)


def markdown(results: list[dict], meta: dict) -> str:
  lines = [
    f"Command: `{meta['command']}`  ",
    f"Date: {meta['date']}; host: {meta['host']}, {meta['cpus']} CPUs; "
    f"load average (1, 5, 15 min) at start {meta['load_start']}, at end {meta['load_end']}  ",
    f"Versions: {meta['versions']}",
    '',
    '| workload | jaxgan steps/s | PyTorch steps/s | jaxgan/PyTorch | first step jaxgan (s) '
    '| first step PyTorch (s) | peak RSS jaxgan (MB) | peak RSS PyTorch (MB) '
    '| RSS after the reps jaxgan (MB) | RSS after the reps PyTorch (MB) | model GFLOP/step '
    '| jaxgan GFLOP/s | jaxgan % of matmul | PyTorch % of matmul | load avg (1 min) per rep |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for r in results:
    j, t = r.get('jax', {}), r.get('torch', {})
    pct = lambda d: (
      None if 'fraction_of_matmul_peak' not in d else 100 * d['fraction_of_matmul_peak']
    )
    lines.append(
      '| '
      + ' | '.join(
        [
          f"{r['workload']['name']}: {r['workload']['description']}"
          + (f' (conv={conv})' if (conv := _conv(r['workload'])) != 'auto' else ''),
          _fmt(j.get('steps_per_s'), '.3g'),
          _fmt(t.get('steps_per_s'), '.3g'),
          _fmt(r.get('ratio_jax_over_torch'), '.2f'),
          _fmt(j.get('first_step_s'), '.1f'),
          _fmt(t.get('first_step_s'), '.2f'),
          _fmt(j.get('peak_rss_mb'), '.0f'),
          _fmt(t.get('peak_rss_mb'), '.0f'),
          _fmt(j.get('rss_mb'), '.0f'),
          _fmt(t.get('rss_mb'), '.0f'),
          _fmt(r.get('model_gflop_per_step'), '.2f'),
          _fmt(j.get('achieved_gflops'), '.0f'),
          _fmt(pct(j), '.0f'),
          _fmt(pct(t), '.0f'),
          ' '.join(f'{x:.1f}' for x in r.get('load_avg_1min', [])) or '-',
        ]
      )
      + ' |'
    )
  peaks = [r['matmul_peak_gflops'] for r in results if 'matmul_peak_gflops' in r]
  if peaks:
    lines += [
      '',
      '2048x2048 float32 matmul (jax), median per workload: '
      + ', '.join(f'{p:.0f}' for p in peaks)
      + ' GFLOP/s.',
    ]
  return '\n'.join(lines) + '\n'


def run_metadata(script: str, argv: list[str] | None) -> dict:
  """What a benchmark result records about its run: command, date, host, versions, load.

  Args:
    script: the benchmark script's `__file__`.
    argv: its arguments (None: `sys.argv[1:]`).

  Returns:
    A JSON-able dict.
  """
  args = sys.argv[1:] if argv is None else list(argv)
  return dict(
    command='python ' + ' '.join([os.path.relpath(script, ROOT), *args]),
    date=datetime.datetime.now().isoformat(timespec='seconds'),
    host=platform.node(),
    cpus=os.cpu_count(),
    versions=_versions(),
    load_start=[round(x, 2) for x in os.getloadavg()],
  )


def _versions() -> str:
  parts = []
  for mod in ('jax', 'flax', 'optax', 'torch'):
    try:
      parts.append(f'{mod} {__import__(mod).__version__}')
    except ImportError:
      pass
  return ', '.join(parts)


def main(argv=None) -> list[dict]:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--workloads', default='W1,W2,W3,W4', help='comma-separated names')
  p.add_argument('--sweep', action='store_true', help='every loss with/without WGAN-GP (DCGAN)')
  p.add_argument('--losses', default=None, help='comma-separated losses for --sweep')
  p.add_argument('--frameworks', default='jax,torch')
  p.add_argument('--reps', type=int, default=5)
  p.add_argument('--rep_seconds', type=float, default=3.0)
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--tiny', action='store_true', help='toy sizes (smoke test)')
  p.add_argument(
    '--conv',
    default='auto',
    choices=('auto', 'onednn', 'xla', 'lax'),
    help="jaxgan's convolutions (jaxgan.models.fast_conv); 'auto' is the library "
    "default ('onednn' on CPU where it builds, else 'xla')",
  )
  p.add_argument('--width', type=int, default=None, help='override the model width')
  p.add_argument(
    '--torch_threads',
    type=int,
    default=None,
    help="PyTorch intra-op threads (default: PyTorch's own, one per core)",
  )
  p.add_argument('--out', default=None, help='output path without extension')
  p.add_argument('--worker', choices=FRAMEWORKS, help=argparse.SUPPRESS)
  p.add_argument('--workload_json', help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    worker_main(args.worker, args.workload_json, args.warmup, args.torch_threads)
    return []

  frameworks = tuple(f for f in args.frameworks.split(',') if f)
  if args.sweep:
    todo = wl.sweep_workloads(args.losses.split(',') if args.losses else None)
  else:
    todo = [wl.get(n) for n in args.workloads.split(',') if n]
  if args.tiny:
    todo = [w.tiny() for w in todo]
  if args.width is not None:
    todo = [w.replace({'model.width': args.width}, name=f'{w.name}-w{args.width}') for w in todo]
  todo = [w.with_conv(args.conv) for w in todo]
  if 'torch' in frameworks and (jax_only := [w.name for w in todo if not w.torch_reference]):
    p.error(f'{", ".join(jax_only)}: no PyTorch reference (jaxgan only); pass --frameworks jax')

  meta = run_metadata(__file__, argv)
  print(f"load average {meta['load_start']}")
  out = None
  if args.out != '':
    out = (
      Path(args.out)
      if args.out
      else (ROOT / 'benchmarks' / 'results' / datetime.datetime.now().strftime('%Y%m%d-%H%M%S'))
    )
    out.parent.mkdir(parents=True, exist_ok=True)
  results = []
  for w in todo:
    print(f'{w.name}: {w.description}', flush=True)
    results.append(
      bench_workload(
        w,
        frameworks=frameworks,
        reps=args.reps,
        rep_seconds=args.rep_seconds,
        warmup=args.warmup,
        torch_threads=args.torch_threads,
        log=lambda s: print(s, flush=True),
      )
    )
    meta['load_end'] = [round(x, 2) for x in os.getloadavg()]
    md = markdown(results, meta)
    if out is not None:  # after every workload, so a long run that is stopped keeps its results
      out.with_suffix('.json').write_text(json.dumps(dict(meta=meta, results=results), indent=1))
      out.with_suffix('.md').write_text(md)
  print(md)
  if out is not None:
    print(f'wrote {out}.json and {out}.md')
  return results


if __name__ == '__main__':
  main()
