"""What bounds a workload: the heavy operations of its train step, each timed alone.

    python benchmarks/ceiling.py --workloads W1,W2,W3
    python benchmarks/ceiling.py --workloads W4 --out benchmarks/results/ceiling-w4

For each workload this traces jaxgan's train step (the program `jax.jit` compiles), removes dead
code as XLA would, and collects its heavy operations: matrix products (`dot_general`), XLA's
convolutions (`conv_general_dilated`) and the oneDNN convolutions (`ffi_call`). Every distinct
one (same operation, parameters and operand shapes) is timed alone, jitted, on random operands,
with all of the machine's cores, and the times are added up over the step.

That sum is how long the step would take if everything else were free (normalisation, Adam,
activations, random numbers, the gaps between operations) and the heavy operations ran back to
back at their standalone speed. The workload's model FLOPs (`workloads.model_flops`) over that
time, as a fraction of the 2048x2048 matmul measured in the same process, is the ceiling of
`benchmarks/run.py`'s "% of matmul" with these kernels. It is an estimate, not a proof: a
compiled step may overlap small operations better than running them one at a time, and caches
are warmer in a loop over one operation than in a step. The operations, the step and the matmul
are each timed as the best of several repetitions: on a shared machine other tenants only ever
slow a measurement down, and medians taken minutes apart drift differently.

Per kind of operation it also reports the rate in model FLOPs (as XLA counts them: a
convolution's taps in the padding do not count) as a fraction of the matmul: which kernel holds a
workload back. Writes `<out>.json` and `<out>.md` when `--out` is given.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import workloads as wl  # noqa: E402
from benchmarks.run import matmul_gflops, smoke  # noqa: E402

HEAVY = ('dot_general', 'conv_general_dilated', 'ffi_call')
# The oneDNN targets of jaxgan/onednn/onednn_conv.cc, as the tables name them.
_ONEDNN = {
  'JaxganConvForward': 'oneDNN forward',
  'JaxganConvInputGradient': 'oneDNN input grad',
  'JaxganConvKernelGradient': 'oneDNN kernel grad',
  'JaxganConvKernelGradientAsForward': 'oneDNN kernel grad as forward',
}


def _sub_jaxprs(param):
  from jax.extend import core

  if isinstance(param, core.ClosedJaxpr):
    yield param.jaxpr
  elif isinstance(param, core.Jaxpr):
    yield param
  elif isinstance(param, (tuple, list)):
    for p in param:
      yield from _sub_jaxprs(p)


def heavy_ops(jaxpr) -> list:
  """The heavy equations of `jaxpr` and of every jaxpr nested in it, in program order."""
  out = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in HEAVY:
      out.append(eqn)
    for param in eqn.params.values():
      for sub in _sub_jaxprs(param):
        out.extend(heavy_ops(sub))
  return out


def live_jaxpr(fn, *args):
  """The jaxpr of `fn(*args)` without dead code (as XLA would run it), nested jaxprs included."""
  import jax
  from jax._src.interpreters import partial_eval as pe  # dce_jaxpr has no public home yet

  closed = jax.make_jaxpr(fn)(*args)
  jaxpr, _ = pe.dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars))
  return jaxpr


def step_jaxpr(b: dict):
  """The live jaxpr of `build_jax`'s step on its state, batch and key."""
  import jax

  step = b['step']
  with jax.set_mesh(step.mesh):
    return live_jaxpr(step.jitted, b['state'], b['batch'], b['key'])


def kind(eqn) -> str:
  if eqn.primitive.name == 'ffi_call':
    return _ONEDNN.get(eqn.params['target_name'], eqn.params['target_name'])
  return {'dot_general': 'XLA dot', 'conv_general_dilated': 'XLA conv'}[eqn.primitive.name]


def _in_bounds_taps(
  size: int, kernel: int, stride: int, dilation: int, pad_lo: int, out: int
) -> int:
  """(output, tap) pairs along one axis whose input index falls inside [0, size)."""
  return sum(
    0 <= stride * o + dilation * t - pad_lo < size for o in range(out) for t in range(kernel)
  )


def model_flops(eqn) -> float:
  """FLOPs of one heavy operation as XLA's cost analysis counts them: 2 x multiply-adds, a
  convolution's taps in the padding left out (XLA's count for dots and its own convolutions)."""
  if eqn.primitive.name != 'ffi_call':
    import jax

    args = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.invars]
    return wl._flops(_standalone(eqn).lower(*args).cost_analysis())
  # oneDNN (NHWC activations x, HWIO kernels k, y = conv(x, k)): the three ops visit the same
  # (output pixel, tap) pairs, so one count serves them all. (A kernel gradient computed as a
  # forward convolution is counted as that convolution, with any rows it computes and jaxgan
  # cuts off; the DCGAN and ResNet layers have none.)
  a, b = (v.aval.shape for v in eqn.invars)
  out = eqn.outvars[0].aval.shape
  x, k, y = {
    'JaxganConvForward': (a, b, out),
    'JaxganConvKernelGradientAsForward': (a, b, out),
    'JaxganConvInputGradient': (out, b, a),
    'JaxganConvKernelGradient': (a, out, b),
  }[eqn.params['target_name']]
  attrs = {name: [int(v) for v in value.val] for name, value in eqn.params['attributes']}
  (sh, sw), (dh, dw), (top, _, left, _) = attrs['strides'], attrs['dilation'], attrs['padding']
  taps = _in_bounds_taps(x[1], k[0], sh, dh, top, y[1]) * _in_bounds_taps(
    x[2], k[1], sw, dw, left, y[2]
  )
  return 2.0 * y[0] * taps * k[2] * k[3]


def _signature(eqn) -> str:
  return repr(
    (
      eqn.primitive.name,
      sorted((k, repr(v)) for k, v in eqn.params.items()),
      [v.aval.str_short() for v in eqn.invars],
    )
  )


def _best_seconds(run, seconds: float, reps: int) -> float:
  """Seconds per call: `run(n)` makes n calls and waits for them; after a warm-up call, each of
  `reps` timings makes enough calls to last about `seconds`, and the best one counts (other
  tenants of a shared machine only ever slow a measurement down)."""
  run(1)
  t = time.perf_counter()
  run(1)
  n = max(1, round(seconds / max(time.perf_counter() - t, 1e-6)))
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    run(n)
    times.append((time.perf_counter() - t) / n)
  return min(times)


def _standalone(eqn):
  """`eqn`'s operation alone, as a jitted function of its operands."""
  import jax

  return jax.jit(lambda *a: eqn.primitive.bind(*a, **eqn.params))


def time_op(eqn, min_seconds: float = 0.2, reps: int = 7) -> float:
  """Seconds of one call of `eqn`'s operation alone, on random operands (best of `reps`)."""
  import jax
  import numpy as np

  rng = np.random.default_rng(0)
  args = [
    jax.device_put(rng.standard_normal(v.aval.shape).astype(v.aval.dtype)) for v in eqn.invars
  ]
  f = _standalone(eqn)

  def run(n):
    for _ in range(n):
      out = f(*args)
    jax.block_until_ready(out)

  return _best_seconds(run, min_seconds, reps)


def measure_step(b: dict, seconds: float, reps: int) -> float:
  """Seconds per step of the workload's real jitted step, timed as the operations are."""
  import jax

  step, batch, key = b['step'], b['batch'], b['key']
  state = b['state']

  def run(n):
    nonlocal state
    for _ in range(n):
      state, _ = step(state, batch, key)
    jax.block_until_ready(state)

  run(1)  # a second warm-up: the first step after compiling can be slower
  return _best_seconds(run, seconds, reps)


def analyse(
  w: wl.Workload, *, step_seconds: float = 3.0, reps: int = 5, op_seconds: float = 0.2, log=print
) -> dict:
  """The ceiling of `w`: its heavy operations timed alone, against the measured step."""
  b = wl.build_jax(w)
  ops = heavy_ops(step_jaxpr(b))
  distinct = collections.OrderedDict()
  for eqn in ops:
    entry = distinct.setdefault(_signature(eqn), dict(eqn=eqn, count=0))
    entry['count'] += 1
  log(f'{w.name}: {len(ops)} heavy operations, {len(distinct)} distinct')
  kinds = collections.defaultdict(lambda: dict(count=0, seconds=0.0, gflop=0.0))
  for entry in distinct.values():
    eqn, count = entry['eqn'], entry['count']
    seconds = time_op(eqn, op_seconds)
    k = kinds[kind(eqn)]
    k['count'] += count
    k['seconds'] += count * seconds
    k['gflop'] += count * model_flops(eqn) / 1e9
  # Smoke runs compile the step cheaply here, not through build_jax: tracing it above
  # (make_jaxpr) refuses a jit that carries compiler_options, as a nested jit.
  if smoke():
    b = dict(b, step=b['step'].lower(b['state'], b['batch'], b['key']).compile(wl.FAST_COMPILE))
  step_s = measure_step(b, step_seconds, reps)
  peak = max(matmul_gflops() for _ in range(3))  # best of 3 medians, alike
  model_gflop = wl.model_flops(w, b['state'], b['batch'], b['key']) / 1e9
  heavy_s = sum(k['seconds'] for k in kinds.values())
  for k in kinds.values():
    k['gflops'] = k['gflop'] / k['seconds']
    k['fraction_of_matmul'] = k['gflops'] / peak
  result = dict(
    workload=w.to_dict(),
    model_gflop_per_step=model_gflop,
    matmul_gflops=peak,
    step_ms=step_s * 1e3,
    heavy_ms=heavy_s * 1e3,
    achieved_fraction=model_gflop / step_s / peak,
    ceiling_fraction=model_gflop / heavy_s / peak,
    kinds={name: kinds[name] for name in sorted(kinds)},
  )
  log(
    f"  step {result['step_ms']:.1f} ms, heavy ops alone {result['heavy_ms']:.1f} ms: "
    f"{100 * result['achieved_fraction']:.0f}% of matmul achieved, "
    f"{100 * result['ceiling_fraction']:.0f}% ceiling ({peak:.0f} GFLOP/s matmul)"
  )
  return result


def markdown(results: list[dict], command: str) -> str:
  lines = [
    f'Command: `{command}`',
    '',
    '| workload | step (ms) | heavy ops alone (ms) | the rest (ms) | % of matmul achieved '
    '| ceiling: % of matmul if only the heavy ops cost |',
    '|---|---|---|---|---|---|',
  ]
  for r in results:
    lines.append(
      f"| {r['workload']['name']} | {r['step_ms']:.1f} | {r['heavy_ms']:.1f} | "
      f"{r['step_ms'] - r['heavy_ms']:.1f} | {100 * r['achieved_fraction']:.0f} | "
      f"{100 * r['ceiling_fraction']:.0f} |"
    )
  lines += [
    '',
    '| workload | operation | per step | ms per step | model GFLOP/s | % of matmul |',
    '|---|---|---|---|---|---|',
  ]
  for r in results:
    for name, k in r['kinds'].items():
      lines.append(
        f"| {r['workload']['name']} | {name} | {k['count']} | "
        f"{1e3 * k['seconds']:.1f} | {k['gflops']:.0f} | "
        f"{100 * k['fraction_of_matmul']:.0f} |"
      )
  peaks = ', '.join(f"{r['matmul_gflops']:.0f}" for r in results)
  lines += ['', f'2048x2048 float32 matmul (jax), per workload: {peaks} GFLOP/s.']
  return '\n'.join(lines) + '\n'


def main(argv=None) -> list[dict]:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--workloads', default='W1,W2,W3', help='comma-separated names')
  p.add_argument('--tiny', action='store_true', help='toy sizes (smoke test)')
  p.add_argument('--step_seconds', type=float, default=3.0, help='per rep of the real step')
  p.add_argument('--reps', type=int, default=5, help='of the real step')
  p.add_argument('--op_seconds', type=float, default=0.2, help='per rep of each operation')
  p.add_argument('--out', default=None, help='output path without extension')
  args = p.parse_args(argv)
  results = []
  for name in args.workloads.split(','):
    w = wl.get(name)
    results.append(
      analyse(
        w.tiny() if args.tiny else w,
        step_seconds=args.step_seconds,
        reps=args.reps,
        op_seconds=args.op_seconds,
      )
    )
  command = 'python benchmarks/ceiling.py ' + ' '.join(argv if argv is not None else sys.argv[1:])
  md = markdown(results, command.strip())
  print(md)
  if args.out:
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + '.json').write_text(json.dumps(results, indent=1))
    Path(args.out + '.md').write_text(md)
  return results


if __name__ == '__main__':
  main()
