"""Soak test: a run killed at random moments and relaunched each time must end bitwise equal to
an uninterrupted run of the same config.

The run is `python -m jaxgan.main` (default: an MNIST MLP of width 16, batch 32, a checkpoint
and a metric line every step, no image metrics). A one-step launch fills the compilation cache
(in the workdir); then the uninterrupted reference runs in `<workdir>/reference`, timed: the
start-up (to its first metric line) and the time per step. Then the
soak run in `<workdir>/soak` is launched and killed K times, each time after a delay drawn
uniformly over that launch's expected life (start-up plus its remaining steps), so kills land
in imports, compilation, restoring, training and saving alike; the signal is SIGKILL or SIGTERM
with equal odds (seeded). After each kill it is relaunched, and after the K-th kill it runs to
the end. Then both runs' final checkpoints are read back (every state leaf and the data
loader's position compared bitwise) and every metric line of the soak run (resumed steps are
logged again) is compared with the reference's line for that step, timing keys left out.

Prints K, the kill schedule, each launch's exit code and PASS or FAIL; exits 1 on FAIL (a
difference, a launch that exits non-zero on its own, or a launch that does not stop within
--stop_timeout seconds of SIGTERM).

    python benchmarks/soak.py --k 10 --seed 0 --steps 150 --source_dir ../shared/data
    python benchmarks/soak.py --toy --k 10                 # the toy ring (no data files)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = ("steps_per_sec",)


def run_flags(args) -> list[str]:
  """The command-line flags of the run both the reference and the soak launch."""
  common = [
    f"--config.run.steps={args.steps}",
    "--config.run.steps_per_call=1",
    "--config.checkpoint.every=1",
    "--config.log.every=1",  # one line per step: a resumed step's line can be compared exactly
    f"--config.log.sample_every={args.steps}",
    f"--config.run.compilation_cache_dir={args.workdir / 'xla_cache'}",
  ]
  if args.toy:
    return [
      "--config=experiments/configs/toy_ring.py",
      *common,
      f"--config.eval.every={args.steps}",
      "--config.eval.num_samples=500",
      "--config.model.kwargs.g_hidden=(64,64)",
      "--config.model.kwargs.d_hidden=(64,64)",
    ]
  flags = [
    "--config=experiments/configs/mnist_dcgan.py",
    *common,
    "--config.model.name=mlp",
    "--config.model.width=16",
    "--config.data.batch_size=32",
    "--config.eval.metrics=",
  ]
  if args.source_dir:
    flags.append(f"--config.run.source_dir={args.source_dir}")
  return flags


def start(workdir: Path, flags: list[str], log) -> subprocess.Popen:
  """Starts one launch of `python -m jaxgan.main`, its output appended to `log`."""
  argv = [sys.executable, "-m", "jaxgan.main", f"--workdir={workdir}", *flags]
  return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def latest_step(workdir: Path) -> int:
  """The newest committed checkpoint step in `workdir` (0 when there is none)."""
  ckpt = workdir / "checkpoints"
  steps = [int(p.name) for p in ckpt.iterdir() if p.name.isdigit()] if ckpt.exists() else []
  return max(steps, default=0)


def read_checkpoint(workdir: Path, step: int) -> tuple[dict, dict]:
  """Reads a step's state leaves (path -> NumPy array) and its extra record through orbax."""
  import jax  # pylint: disable=g-import-not-at-top (only the comparison needs JAX)
  from etils import epath  # pylint: disable=g-import-not-at-top

  from jaxgan.checkpoint import store as store_lib  # pylint: disable=g-import-not-at-top

  store = store_lib.Store(epath.Path(workdir / "checkpoints"), async_save=False)
  try:
    meta = store.read_tree_metadata(step)
    abstract = store_lib.to_abstract(
      jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), meta)
    )
    state, extra = store.read_state(step, abstract)
  finally:
    store.close()
  leaves = jax.tree_util.tree_flatten_with_path(state)[0]
  return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}, extra


def read_metrics(workdir: Path) -> tuple[dict[int, list[dict]], int]:
  """Every metric line of a run, grouped by step, and the count of lines that do not parse."""
  by_step, torn = {}, 0
  for line in (workdir / "metrics.jsonl").read_text().splitlines():
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      torn += 1
      continue
    record = {k: v for k, v in record.items() if k not in TIMING_KEYS}
    by_step.setdefault(record["step"], []).append(record)
  return by_step, torn


def compare(reference: Path, soak: Path, steps: int) -> list[str]:
  """Returns the differences between the two runs' final checkpoints and metric lines."""
  problems = []
  for name, w in (("reference", reference), ("soak", soak)):
    if latest_step(w) != steps:
      problems.append(f"the {name} run's newest checkpoint is {latest_step(w)}, not {steps}")
  if problems:
    return problems
  ref_state, ref_extra = read_checkpoint(reference, steps)
  soak_state, soak_extra = read_checkpoint(soak, steps)
  if ref_state.keys() != soak_state.keys():
    problems.append(f"state trees differ: {sorted(ref_state.keys() ^ soak_state.keys())}")
  for path in sorted(ref_state.keys() & soak_state.keys()):
    a, b = ref_state[path], soak_state[path]
    if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
      diff = (
        np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.shape == b.shape else "-"
      )
      problems.append(f"state leaf {path} differs (max abs difference {diff})")
  for key in ("loader_state", "step"):
    if ref_extra.get(key) != soak_extra.get(key):
      problems.append(f"extra[{key!r}] differs: {ref_extra.get(key)} vs {soak_extra.get(key)}")
  print(f"compared {len(ref_state)} state leaves bitwise", flush=True)
  ref_metrics, ref_torn = read_metrics(reference)
  soak_metrics, soak_torn = read_metrics(soak)
  if ref_torn or soak_torn:
    problems.append(
      f"metrics.jsonl lines that do not parse: reference {ref_torn}, soak {soak_torn}"
    )
  if sorted(soak_metrics) != sorted(ref_metrics):
    missing = sorted(set(ref_metrics) - set(soak_metrics))
    extra = sorted(set(soak_metrics) - set(ref_metrics))
    problems.append(f"logged steps differ: missing {missing[:10]}, extra {extra[:10]}")
  for step, records in sorted(soak_metrics.items()):
    expected = ref_metrics.get(step, [None])[0]
    for record in records:
      if expected is not None and record != expected:
        keys = sorted(
          k for k in expected.keys() | record.keys() if expected.get(k) != record.get(k)
        )
        problems.append(f"metrics at step {step} differ in {keys}")
  lines = sum(len(r) for r in soak_metrics.values())
  print(f"compared {lines} metric lines of {len(soak_metrics)} steps", flush=True)
  return problems


def main(argv=None) -> int:
  """Runs the reference, then the killed-and-relaunched run, and compares them.

  Args:
    argv: command-line arguments (default `sys.argv[1:]`).

  Returns:
    0 on PASS, 1 on FAIL.
  """
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--k", type=int, default=10, help="kills before the run may finish")
  p.add_argument("--seed", type=int, default=0, help="seeds the kill times and signals")
  p.add_argument("--steps", type=int, default=150, help="train steps of the run")
  p.add_argument("--workdir", type=Path, default=None, help="default: a new temporary directory")
  p.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  p.add_argument("--toy", action="store_true", help="the toy ring instead of the MNIST MLP")
  p.add_argument("--stop_timeout", type=float, default=120.0, help="seconds to stop after SIGTERM")
  args = p.parse_args(argv)
  args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="jaxgan_soak_"))).absolute()
  args.workdir.mkdir(parents=True, exist_ok=True)
  reference, soak = args.workdir / "reference", args.workdir / "soak"
  if reference.exists() or soak.exists():
    sys.exit(f"{args.workdir} already holds a soak run; pass a new --workdir.")
  flags = run_flags(args)
  rng = random.Random(args.seed)
  print(f"workdir {args.workdir}\nflags {' '.join(flags)}", flush=True)

  with open(args.workdir / "reference.log", "w") as log:
    # Fills the compilation cache, so that the reference's start-up is a relaunch's.
    warmup = [f for f in flags if not f.startswith("--config.run.steps=")]
    if start(args.workdir / "warmup", [*warmup, "--config.run.steps=1"], log).wait():
      print(f"FAIL: the warm-up launch failed; see {log.name}")
      return 1
    proc, t0, startup = start(reference, flags, log), time.perf_counter(), None
    metrics = reference / "metrics.jsonl"
    while proc.poll() is None:  # start-up: from launch to the first step's metric line
      if startup is None and metrics.exists() and metrics.read_text().endswith("\n"):
        startup = time.perf_counter() - t0
      time.sleep(0.02)
    wall = time.perf_counter() - t0
  if proc.returncode:
    print(f"FAIL: the reference run exited {proc.returncode}; see {log.name}")
    return 1
  startup = startup or wall
  per_step = (wall - startup) / args.steps
  print(f"reference: {wall:.1f} s (start-up {startup:.1f} s, {per_step * 1e3:.0f} ms/step)")

  schedule, failures, kills = [], [], 0
  log = open(args.workdir / "soak.log", "w")
  while True:
    done = latest_step(soak)
    life = startup + per_step * (args.steps - done)
    kill = kills < args.k
    delay = rng.uniform(0.0, life) if kill else None
    sig = rng.choice([signal.SIGKILL, signal.SIGTERM]) if kill else None
    log.write(f"\n===== launch {len(schedule)}: from step {done}, kill {delay} {sig}\n")
    log.flush()
    proc, t0 = start(soak, flags, log), time.perf_counter()
    killed = False
    if kill:
      try:
        proc.wait(timeout=delay)
      except subprocess.TimeoutExpired:
        proc.send_signal(sig)
        killed = True
    try:
      rc = proc.wait(timeout=args.stop_timeout if killed else None)
    except subprocess.TimeoutExpired:
      proc.kill()
      rc = proc.wait()
      failures.append(
        f"launch {len(schedule)} did not stop within {args.stop_timeout} s of {sig.name}"
      )
    elapsed = time.perf_counter() - t0
    entry = {
      "launch": len(schedule),
      "from_step": done,
      "signal": sig.name if killed else None,
      "after_s": round(delay, 2) if killed else None,
      "exit": rc,
      "seconds": round(elapsed, 1),
      "to_step": latest_step(soak),
    }
    schedule.append(entry)
    print(
      f"launch {entry['launch']:2d}: from step {done:4d}, "
      + (f"{sig.name} after {delay:6.2f} s" if killed else "no kill                ")
      + f" -> exit {rc}, checkpoint {entry['to_step']}, {elapsed:.1f} s",
      flush=True,
    )
    if killed:
      kills += 1
      continue
    if rc != 0:
      failures.append(f"launch {entry['launch']} exited {rc} on its own (see {log.name})")
      break
    if latest_step(soak) >= args.steps:
      break
  log.close()

  print(
    f"K = {kills} kills ({sum(e['signal'] == 'SIGKILL' for e in schedule)} SIGKILL, "
    f"{sum(e['signal'] == 'SIGTERM' for e in schedule)} SIGTERM), {len(schedule)} launches"
  )
  if not failures:
    failures = compare(reference, soak, args.steps)
  for f in failures:
    print("  " + f)
  print("PASS" if not failures else "FAIL", flush=True)
  return 0 if not failures else 1


if __name__ == "__main__":
  sys.exit(main())
