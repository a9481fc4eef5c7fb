"""Soak test: a run killed at random moments and relaunched each time must end bitwise equal to
an uninterrupted run of the same config.

The run is `python -m jaxgan.main` (default: an MNIST MLP of width 16, batch 32, a checkpoint
and a metric line every step, no image metrics). A one-step launch fills the compilation cache
(in the workdir); then the uninterrupted reference runs in `<workdir>/reference`, timed: the
start-up (to its first metric line) and the time per step. Then the soak run in
`<workdir>/soak` is launched and killed K times (`draw_kills`): about a third of the kills at a
time drawn uniformly over the start-up (imports, data, compilation, restoring), the others once
a drawn step's metric line is out plus a delay drawn over one step's time (which covers that
step's save); the signal is SIGKILL or SIGTERM with equal odds (all seeded). After each kill
the run is relaunched; after the K-th it runs to the end. Then both runs' final checkpoints are
read back through orbax (every state leaf and the data loader's position compared bitwise) and
every metric line of the soak run (resumed steps are logged again) is compared with the
reference's line for that step, timing keys left out.

Prints K, the kill schedule, each launch's exit code and PASS or FAIL; exits 1 on FAIL (a
difference, a launch that exits non-zero on its own, or a launch that does not stop within
--stop_timeout seconds of SIGTERM).

`--processes 2`: every launch is two processes of one CPU device (`benchmarks.multihost.Run`,
jax.distributed over 127.0.0.1), and the reference is one process of two devices, bitwise the
same run. Each kill is SIGKILL to one process (the other must end by itself within
--peer_timeout seconds), SIGTERM to both, or SIGTERM to one (they agree to stop at the next log
step), with equal odds; after each, both processes must end within their bound (one still
running is a FAIL, and so is a SIGTERM after which the run goes on more than STOP_SLACK_STEPS
steps) before both are relaunched. With a metric line every step, each line is one
step's values, so a line logged again after a resume equals the reference's exactly.

    python benchmarks/soak.py --k 10 --seed 0 --steps 150 --source_dir ../shared/data
    python benchmarks/soak.py --toy --k 10                 # the toy ring (no data files)
    python benchmarks/soak.py --processes 2 --k 8 --steps 80 --source_dir ../shared/data
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
# --processes 2: steps a SIGTERMed run may go on past the newest metric line at the signal.
STOP_SLACK_STEPS = 5


def run_flags(args) -> list[str]:
  """The command-line flags of the run both the reference and the soak launch.

  Args:
    args: the parsed command line (`steps`, `workdir`, `toy`, `source_dir`).

  Returns:
    The `--config=...` and `--config.*` flags, without `--workdir`.
  """
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
  """Starts one launch of `python -m jaxgan.main`.

  Args:
    workdir: the run's `--workdir`.
    flags: from `run_flags`.
    log: an open file that gets the launch's stdout and stderr.

  Returns:
    The running process.
  """
  argv = [sys.executable, "-m", "jaxgan.main", f"--workdir={workdir}", *flags]
  return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def latest_step(workdir: Path) -> int:
  """The newest checkpoint step in `workdir`.

  Args:
    workdir: a run's workdir.

  Returns:
    The largest integer-named directory under `checkpoints/` (orbax's committed steps; a
    half-deleted step counts too), 0 when there is none.
  """
  ckpt = workdir / "checkpoints"
  steps = [int(p.name) for p in ckpt.iterdir() if p.name.isdigit()] if ckpt.exists() else []
  return max(steps, default=0)


def read_checkpoint(workdir: Path, step: int) -> tuple[dict, dict]:
  """Reads a committed step back through jaxgan's orbax store.

  Args:
    workdir: a run's workdir.
    step: a committed step.

  Returns:
    `(leaves, extra)`: the state's leaves as {key path: NumPy array}, and the extra record
    (format version, step, data loader position, metrics).
  """
  import jax  # pylint: disable=g-import-not-at-top (only the comparison needs JAX)
  from etils import epath  # pylint: disable=g-import-not-at-top

  from jaxgan.run.checkpoint import store as store_lib  # pylint: disable=g-import-not-at-top

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
  """Reads a run's metrics.jsonl.

  Args:
    workdir: a run's workdir.

  Returns:
    `(by_step, torn)`: step -> every record logged for it (timing keys dropped), in file order;
    and the number of lines that are not JSON.
  """
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
  """Compares two runs' final checkpoints (bitwise) and metric lines (exactly).

  Args:
    reference: the uninterrupted run's workdir.
    soak: the killed-and-relaunched run's workdir.
    steps: the step both must have reached.

  Returns:
    The differences, in words; empty when the runs agree.
  """
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


def draw_kills(
  rng, k: int, steps: int, startup: float, per_step: float, processes: int = 1
) -> list[dict]:
  """Draws the kill plan: K kills in launch order, each a dict with `signal`, `step`, `after_s`
  and `targets` (the indices of the processes that get the signal).

  A third of the kills (on average) land in start-up: `step` None, `after_s` uniform over the
  reference's start-up (imports, data, compilation, restoring). The others wait for a target
  step's metric line, then `after_s` uniform over one step's time, which covers the step's save;
  their targets are distinct steps in [1, steps - 1], increasing, so the run always advances.
  The last kill is one of these whenever there are any. With one process the signal is SIGKILL
  or SIGTERM with equal odds; with two, the kill is one of three with equal odds: SIGKILL one
  process (the other must end by itself), SIGTERM both, or SIGTERM one (the processes agree at
  the next log step), the one process drawn uniformly.

  Args:
    rng: a seeded `random.Random`.
    k: the number of kills.
    steps: the run's train steps.
    startup: the reference's start-up, seconds.
    per_step: the reference's time per step, seconds.
    processes: the processes of each launch, 1 or 2.

  Returns:
    The plan: K dicts, `signal` a `signal.Signals`, `step` an int or None, `after_s` a float,
    `targets` a list of process indices.
  """
  n_train = min(sum(rng.random() >= 1 / 3 for _ in range(k)), steps - 1)
  targets = sorted(rng.sample(range(1, steps), n_train))
  phases = [True] * n_train + [False] * (k - n_train)
  rng.shuffle(phases)
  if n_train and not phases[-1]:
    # The last kill waits for a step: a start-up kill late in the run could come after the end.
    last = max(i for i, training in enumerate(phases) if training)
    phases[last], phases[-1] = phases[-1], phases[last]
  plan = []
  for training in phases:
    if processes == 1:
      sig, who = rng.choice([signal.SIGKILL, signal.SIGTERM]), [0]
    else:
      how, pid = rng.choice(["SIGKILL one", "SIGTERM both", "SIGTERM one"]), rng.randrange(2)
      sig = signal.SIGKILL if how == "SIGKILL one" else signal.SIGTERM
      who = [0, 1] if how == "SIGTERM both" else [pid]
    if training:
      kill = {"signal": sig, "step": targets.pop(0), "after_s": rng.uniform(0, per_step)}
    else:
      kill = {"signal": sig, "step": None, "after_s": rng.uniform(0, startup)}
    plan.append({**kill, "targets": who})
  return plan


def describe(kill: dict | None, processes: int = 1) -> str:
  """A kill of the plan in words (`"no kill"` for None); with 2 processes, naming the targets."""
  if kill is None:
    return "no kill"
  when = "after launch" if kill["step"] is None else f"after step {kill['step']}'s line"
  who = ""
  if processes > 1:
    targets = kill["targets"]
    who = " both" if len(targets) > 1 else f" p{targets[0]}"
  return f"{kill['signal'].name}{who} {kill['after_s']:.2f} s {when}"


def new_steps(metrics: Path, offset: int) -> list[int]:
  """The steps of the complete metric lines written past a byte offset.

  Args:
    metrics: a metrics.jsonl file (may not exist yet).
    offset: its size when the launch started.

  Returns:
    The steps of this launch's complete lines, in file order.
  """
  if not metrics.exists():
    return []
  with open(metrics, "rb") as f:
    f.seek(offset)
    text = f.read().decode(errors="replace")
  steps = []
  for line in text.split("\n")[:-1]:
    try:
      steps.append(int(json.loads(line)["step"]))
    except (ValueError, KeyError):
      pass
  return steps


def time_reference(proc, reference: Path, steps: int) -> tuple[float, float] | None:
  """Waits for the uninterrupted reference run; its wall time and start-up, or None if it failed.

  The start-up is the time from launch to the first step's metric line; the rest divided by
  `steps` is the time per step, from which the kill plan is drawn.
  """
  t0, startup = time.perf_counter(), None
  metrics = reference / "metrics.jsonl"
  while proc.poll() is None:
    if startup is None and metrics.exists() and metrics.read_text().endswith("\n"):
      startup = time.perf_counter() - t0
    time.sleep(0.02)
  wall = time.perf_counter() - t0
  if proc.returncode:
    return None
  startup = startup or wall
  print(
    f"reference: {wall:.1f} s (start-up {startup:.1f} s, "
    f"{(wall - startup) / steps * 1e3:.0f} ms/step)",
    flush=True,
  )
  return wall, startup


def kill_when_due(procs: list, kill: dict | None, metrics: Path, offset: int) -> float | None:
  """Sends `kill` to its target processes of a launch when it is due (see `draw_kills`).

  Args:
    procs: the launch's processes, just started.
    kill: the plan's kill for this launch (`targets` default to process 0), or None.
    metrics: the run's metrics.jsonl; `offset`: its size before the launch.

  Returns:
    Seconds from now until the signal was sent; None when there was no kill, or a process ended
    before it was due.
  """
  t0 = time.perf_counter()
  while kill is not None and all(p.poll() is None for p in procs):
    now = time.perf_counter() - t0
    if kill["step"] is None:
      due = now >= kill["after_s"]
    else:  # after the target step's metric line (or a later one) and the drawn offset
      due = kill.get("seen") is not None and now >= kill["seen"] + kill["after_s"]
      if kill.get("seen") is None and max(new_steps(metrics, offset), default=0) >= kill["step"]:
        kill["seen"] = now
    if due:
      for i in kill.get("targets", [0]):
        procs[i].send_signal(kill["signal"])
      return now
    time.sleep(0.005)
  return None


def verdict(failures: list[str], reference: Path, soak: Path, steps: int) -> int:
  """Compares the runs unless a launch already failed; prints PASS or FAIL; the exit status."""
  if not failures:
    failures = compare(reference, soak, steps)
  for f in failures:
    print("  " + f)
  print("PASS" if not failures else "FAIL", flush=True)
  return 0 if not failures else 1


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
  p.add_argument(
    "--processes",
    type=int,
    default=1,
    choices=(1, 2),
    help="2: every launch is 2 processes of 1 CPU device; the reference 1 process of 2",
  )
  p.add_argument(
    "--peer_timeout",
    type=float,
    default=60.0,
    help="--processes 2: seconds a process may outlive its SIGKILLed or ended peer",
  )
  args = p.parse_args(argv)
  args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="jaxgan_soak_"))).absolute()
  args.workdir.mkdir(parents=True, exist_ok=True)
  reference, soak = args.workdir / "reference", args.workdir / "soak"
  if reference.exists() or soak.exists():
    sys.exit(f"{args.workdir} already holds a soak run; pass a new --workdir.")
  flags = run_flags(args)
  rng = random.Random(args.seed)
  print(f"workdir {args.workdir}\nflags {' '.join(flags)}", flush=True)
  if args.processes == 2:
    return soak_two_processes(args, flags, rng)

  with open(args.workdir / "reference.log", "w") as log:
    # Fills the compilation cache, so that the reference's start-up is a relaunch's.
    warmup = [f for f in flags if not f.startswith("--config.run.steps=")]
    if start(args.workdir / "warmup", [*warmup, "--config.run.steps=1"], log).wait():
      print(f"FAIL: the warm-up launch failed; see {log.name}")
      return 1
    timed = time_reference(start(reference, flags, log), reference, args.steps)
  if timed is None:
    print(f"FAIL: the reference run failed; see {log.name}")
    return 1
  wall, startup = timed
  per_step = (wall - startup) / args.steps

  plan = draw_kills(rng, args.k, args.steps, startup, per_step)
  print("kill plan: " + ", ".join(describe(k) for k in plan), flush=True)
  schedule, failures, kills = [], [], 0
  log = open(args.workdir / "soak.log", "w")
  while True:
    done = latest_step(soak)
    kill = plan[kills] if kills < len(plan) else None
    log.write(f"\n===== launch {len(schedule)}: from step {done}, kill {kill}\n")
    log.flush()
    metrics = soak / "metrics.jsonl"
    offset = metrics.stat().st_size if metrics.exists() else 0
    proc, t0 = start(soak, flags, log), time.perf_counter()
    killed_at = kill_when_due([proc], kill, metrics, offset)
    try:
      rc = proc.wait(timeout=args.stop_timeout if killed_at is not None else None)
    except subprocess.TimeoutExpired:
      proc.kill()
      rc = proc.wait()
      failures.append(
        f"launch {len(schedule)} did not stop within {args.stop_timeout} s of {kill['signal'].name}"
      )
    elapsed = time.perf_counter() - t0
    entry = {"launch": len(schedule), "from_step": done, "exit": rc, "to_step": latest_step(soak)}
    schedule.append(entry)
    what = f"{describe(kill)} (sent at {killed_at:.2f} s)" if killed_at is not None else "no kill"
    print(
      f"launch {entry['launch']:2d}: from checkpoint {done:4d}, {what} -> exit {rc}, "
      f"checkpoint {entry['to_step']}, {elapsed:.1f} s",
      flush=True,
    )
    if killed_at is not None:
      kills += 1
      continue
    if rc != 0:
      failures.append(f"launch {entry['launch']} exited {rc} on its own (see {log.name})")
      break
    if latest_step(soak) >= args.steps:
      if kills < len(plan):
        print(f"  the run finished before kill {kills} of the plan", flush=True)
      break
  log.close()

  print(
    f"K = {kills} kills ({sum(k['signal'] == signal.SIGKILL for k in plan[:kills])} SIGKILL, "
    f"{sum(k['signal'] == signal.SIGTERM for k in plan[:kills])} SIGTERM), "
    f"{len(schedule)} launches, exit codes {[e['exit'] for e in schedule]}"
  )
  return verdict(failures, reference, soak, args.steps)


def wait_all(procs: list, bound: float | None, peer_bound: float) -> tuple[list, list, list]:
  """Waits for every process of a launch, each within a bound.

  Args:
    procs: the launch's `subprocess.Popen`s.
    bound: seconds (from now) every process has to end; None: no bound until the first ends.
    peer_bound: seconds the others have once one has ended (when `bound` is None).

  Returns:
    `(codes, seconds, hung)`: each process's exit status, the seconds from now to its end, and
    the indices of those that outlived their bound (SIGKILLed then; their status is -9).
  """
  t0 = time.perf_counter()
  deadline = None if bound is None else t0 + bound
  codes, seconds, hung = [None] * len(procs), [None] * len(procs), []
  while any(c is None for c in codes):
    now = time.perf_counter()
    for i, proc in enumerate(procs):
      if codes[i] is None and proc.poll() is not None:
        codes[i], seconds[i] = proc.returncode, now - t0
    if deadline is None and any(c is not None for c in codes):
      deadline = now + peer_bound
    if deadline is not None and now > deadline:
      for i, proc in enumerate(procs):
        if codes[i] is None:
          proc.kill()
          codes[i], seconds[i] = proc.wait(), now - t0
          hung.append(i)
    time.sleep(0.02)
  return codes, seconds, hung


def soak_two_processes(args, flags: list[str], rng) -> int:
  """The soak with `--processes 2`: each launch is two processes of one CPU device.

  The launches go through `benchmarks.multihost.Run` (jax.distributed over 127.0.0.1, a dead
  peer declared dead after 10 s); the reference is one process of two devices, which is bitwise
  the same run (`benchmarks/multihost.py`). The kill plan comes from `draw_kills(...,
  processes=2)`. After a kill both processes must end: a SIGTERMed one within `--stop_timeout`
  s, the survivor of a SIGKILL within `--peer_timeout` s; one still running then is a FAIL (and
  is killed). Then both are relaunched. The comparison is `compare`'s.

  Args:
    args: the parsed command line.
    flags: from `run_flags`.
    rng: the seeded `random.Random`, after nothing was drawn from it.

  Returns:
    0 on PASS, 1 on FAIL.
  """
  # Imported here: benchmarks.multihost imports this module (read_checkpoint).
  if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
  from benchmarks.multihost import Run  # pylint: disable=g-import-not-at-top

  reference, soak = args.workdir / "reference", args.workdir / "soak"
  cache = args.workdir / "xla_cache"
  # A process whose peer died before joining stops waiting after this (JAX's default: 300 s).
  two = [*flags, "--initialization_timeout_seconds=30"]
  warmup = [f for f in flags if not f.startswith("--config.run.steps=")] + ["--config.run.steps=1"]
  # Fills the compilation cache for both layouts: the reference's and the soak's start-ups are
  # then relaunches'.
  for processes, extra in ((1, []), (2, ["--initialization_timeout_seconds=30"])):
    run = Run(
      args.workdir / f"warmup{processes}p",
      warmup + extra,
      processes=processes,
      cache=cache,
      name="run",
    )
    codes = wait_all(run.procs, None, args.peer_timeout)[0]
    if any(codes):
      print(f"FAIL: the {processes}-process warm-up exited {codes}; see {run.logs}")
      return 1
  run = Run(reference, flags, processes=1, cache=cache, name="run")  # 1 process of 2 devices
  timed = time_reference(run.procs[0], reference, args.steps)
  if timed is None:
    print(f"FAIL: the reference run failed; see {run.logs[0]}")
    return 1
  wall, startup = timed
  per_step = (wall - startup) / args.steps

  plan = draw_kills(rng, args.k, args.steps, startup, per_step, processes=2)
  print("kill plan: " + ", ".join(describe(k, 2) for k in plan), flush=True)
  schedule, failures, kills = [], [], 0
  t_soak = time.perf_counter()
  while True:
    done, n = latest_step(soak), len(schedule)
    kill = plan[kills] if kills < len(plan) else None
    metrics = soak / "metrics.jsonl"
    offset = metrics.stat().st_size if metrics.exists() else 0
    run, t0 = Run(soak, two, processes=2, cache=cache, name=f"launch{n:02d}"), time.perf_counter()
    procs = run.procs
    killed_at = kill_when_due(procs, kill, metrics, offset)
    logged = max(new_steps(metrics, offset), default=done)  # the newest line at the kill
    if killed_at is not None:
      sigkill = kill["signal"] == signal.SIGKILL
      bound = args.peer_timeout if sigkill else args.stop_timeout
      codes, seconds, hung = wait_all(procs, bound, args.peer_timeout)
    else:  # no kill (or a process ended before it): the first to end starts the peer bound
      codes, seconds, hung = wait_all(procs, None, args.peer_timeout)
    for i in hung:
      failures.append(f"launch {n}: process {i} was still running {seconds[i]:.0f} s later")
    if killed_at is not None and kill["signal"] == signal.SIGTERM:
      # The processes agree to stop at the first log step after the signal (a line every step
      # here); the slack covers the step in flight and metric lines not yet written.
      if latest_step(soak) > logged + STOP_SLACK_STEPS:
        failures.append(
          f"launch {n}: the SIGTERM sent after step {logged}'s line was not honoured: the run "
          f"went on to step {latest_step(soak)}, exit codes {codes} (see {run.logs})"
        )
    entry = {"launch": n, "from_step": done, "exit": codes, "to_step": latest_step(soak)}
    entry["ended_s"] = [round(x, 1) for x in seconds]
    schedule.append(entry)
    what = (
      f"{describe(kill, 2)} (sent at {killed_at:.2f} s)" if killed_at is not None else "no kill"
    )
    since = "kill" if killed_at is not None else "first"
    print(
      f"launch {n:2d}: from checkpoint {done:4d}, {what} -> exit {codes} (ended "
      f"{', '.join(f'{x:.1f}' for x in seconds)} s after the {since}), "
      f"checkpoint {entry['to_step']}, {time.perf_counter() - t0:.1f} s",
      flush=True,
    )
    if killed_at is not None:
      kills += 1
      continue
    if any(codes):
      failures.append(f"launch {n} exited {codes} on its own (see {run.logs})")
      break
    if latest_step(soak) >= args.steps:
      if kills < len(plan):
        print(f"  the run finished before kill {kills} of the plan", flush=True)
      break

  sigkills = sum(k["signal"] == signal.SIGKILL for k in plan[:kills])
  both = sum(len(k["targets"]) == 2 for k in plan[:kills])
  print(
    f"K = {kills} kills ({sigkills} SIGKILL one, {both} SIGTERM both, "
    f"{kills - sigkills - both} SIGTERM one), {len(schedule)} launches, exit codes "
    f"{[e['exit'] for e in schedule]}, soak {time.perf_counter() - t_soak:.0f} s"
  )
  return verdict(failures, reference, soak, args.steps)


if __name__ == "__main__":
  sys.exit(main())
