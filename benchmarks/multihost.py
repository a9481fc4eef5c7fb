"""One run as two JAX processes against one process of two devices: are they the same run?

Launches `python -m jaxgan.main` twice per config, as two processes of one CPU device each
(jax.distributed over 127.0.0.1, gloo collectives) and as one process of two devices, with the
same global batch, and prints the largest differences between their final checkpoints and the
metrics they logged. The toy ring samples its data inside the program; MNIST is read by the host
loader, each process reading its block of every global batch, and evaluated (FCD, KID) with each
process measuring its share of the sample batches. `tests/test_multiprocess.py` launches runs
through `Run` as well.

    python benchmarks/multihost.py --source_dir ../shared/data --workdir /tmp/multihost
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks.soak import read_checkpoint  # noqa: E402  (a checkpoint's leaves, by path)

LAUNCH_TIMEOUT = 240  # seconds for one launch; a hang fails the test instead of CI


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class LaunchError(RuntimeError):
  """A process hung, ended early, or saved nothing in time."""


class Run:
  """The processes of one launch of `python -m jaxgan.main` on this machine.

  Two devices in all: one process of two CPU devices, or two processes of one (jax.distributed
  over 127.0.0.1, a dead peer declared dead after 10 s). Each process's output goes to
  `<workdir>-<name>-p<i>.log` beside the workdir.

  Args:
    workdir: the run's workdir.
    args: `--config=...` and overrides.
    processes: 1 or 2.
    cache: the compilation cache directory (shared by launches of the same programs).
    name: tells the log files of several launches on one workdir apart.
  """

  def __init__(self, workdir: Path, args: list[str], *, processes: int, cache: Path, name: str):
    self.workdir, self.logs = workdir, []
    devices = 2 if processes == 1 else 1  # two devices in all, either way
    env = dict(
      os.environ,
      JAX_PLATFORMS="cpu",
      XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
    )
    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
      env.pop(var, None)
    command = [
      sys.executable,
      "-m",
      "jaxgan.main",
      f"--workdir={workdir}",
      *args,
      f"--config.run.compilation_cache_dir={cache}",
    ]
    port = free_port()
    self.procs = []
    for pid in range(processes):
      extra = []
      if processes > 1:
        extra = [
          f"--coordinator_address=127.0.0.1:{port}",
          "--num_processes=2",
          f"--process_id={pid}",
          "--heartbeat_timeout_seconds=10",  # a dead peer is declared dead after 10 s
        ]
      log_path = workdir.parent / f"{workdir.name}-{name}-p{pid}.log"
      self.logs.append(log_path)
      with open(log_path, "w") as log:
        self.procs.append(
          subprocess.Popen(command + extra, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        )

  def text(self, pid: int) -> str:
    """What process `pid` printed so far."""
    return self.logs[pid].read_text()

  def wait(self, timeout: float = LAUNCH_TIMEOUT) -> list[int]:
    """Every process's exit status; kills them all and raises `LaunchError` if one outlives
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    try:
      return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in self.procs]
    except subprocess.TimeoutExpired:
      self.kill()
      hung = f"a process hung:\n{self.text(0)[-3000:]}\n{self.text(-1)[-3000:]}"
      raise LaunchError(hung) from None

  def kill(self):
    """SIGKILLs every process still running."""
    for p in self.procs:
      if p.poll() is None:
        p.kill()
        p.wait()

  def wait_for_checkpoint(self, after: int = 0, timeout: float = LAUNCH_TIMEOUT) -> int:
    """Blocks until a checkpoint step > `after` is committed (has its manifest); returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      steps = committed(self.workdir)
      if steps and steps[-1] > after:
        return steps[-1]
      if any(p.poll() is not None for p in self.procs):
        self.kill()
        raise LaunchError(
          f"a process ended early:\n{self.text(0)[-3000:]}\n{self.text(-1)[-3000:]}"
        )
      time.sleep(0.2)
    self.kill()
    raise LaunchError(f"no checkpoint after step {after} in {timeout:g} s")


def committed(workdir: Path) -> list[int]:
  """The checkpoint steps in `workdir` that have their integrity manifest, ascending."""
  ckpt = workdir / "checkpoints"
  if not ckpt.exists():
    return []
  return sorted(
    int(p.name)
    for p in ckpt.iterdir()
    if (p / "jaxgan_manifest.json").exists() and p.name.isdigit()
  )


def lines(workdir: Path) -> list[dict]:
  """The run's metric lines, in order."""
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def compare(two: Path, one: Path, step: int) -> dict[str, float]:
  """The largest differences between two runs' checkpoints at `step` and their last lines."""
  got, got_extra = read_checkpoint(two, step)
  want, want_extra = read_checkpoint(one, step)
  assert got.keys() == want.keys(), (sorted(got), sorted(want))
  abs_diff = max(float(np.max(np.abs(got[k] - want[k]), initial=0.0)) for k in want)
  rel = [np.abs(got[k] - want[k]) / np.maximum(np.abs(want[k]), 1e-6) for k in want]
  out = {
    "leaves": len(want),
    "bitwise_equal_leaves": sum(np.array_equal(got[k], want[k]) for k in want),
    "max_abs_diff": abs_diff,
    "max_rel_diff": max(float(np.max(r, initial=0.0)) for r in rel),
    "same_loader_position": got_extra.get("loader_state") == want_extra.get("loader_state"),
  }
  last_two, last_one = lines(two)[-1], lines(one)[-1]
  for name, value in last_one.items():
    if name.startswith("eval/") or name.endswith(("/fcd", "/kid", "d_loss", "g_loss")):
      out[f"{name} (1 process)"] = value
      out[f"{name} (2 processes)"] = last_two[name]
  return out


TOY = [
  f"--config={ROOT / 'experiments/configs/toy_ring.py'}",
  "--config.run.steps=500",
  "--config.run.steps_per_call=10",
  "--config.log.every=100",
  "--config.eval.every=500",
  "--config.checkpoint.every=500",
]


def mnist(source_dir: str) -> list[str]:
  """An MNIST MLP run of 50 steps with FCD and KID of 2,000 samples at the end."""
  return [
    f"--config={ROOT / 'experiments/configs/mnist_dcgan.py'}",
    "--config.model.name=mlp",
    "--config.data.batch_size=64",
    "--config.run.steps=50",
    "--config.log.every=10",
    "--config.eval.every=50",
    "--config.eval.num_samples=2000",
    "--config.eval.metrics=fcd,kid",
    "--config.checkpoint.every=50",
    f"--config.run.source_dir={source_dir}",
  ]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
  parser.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  args = parser.parse_args(argv)
  root = Path(args.workdir or tempfile.mkdtemp(prefix="jaxgan-multihost-"))
  root.mkdir(parents=True, exist_ok=True)
  cases = {"toy_ring": (TOY, 500)}
  if args.source_dir:
    cases["mnist_mlp"] = (mnist(args.source_dir), 50)
  for name, (flags, steps) in cases.items():
    results = {}
    for processes in (1, 2):
      workdir = root / f"{name}_{processes}p"
      start = time.perf_counter()
      run = Run(workdir, flags, processes=processes, cache=root / "xla", name="run")
      codes = run.wait(timeout=1800)
      if any(codes):
        print(run.text(0)[-3000:])
        raise LaunchError(f"{name}, {processes} process(es): exit codes {codes}")
      results[processes] = (workdir, time.perf_counter() - start)
    print(f"{name}: 1 process {results[1][1]:.0f} s, 2 processes {results[2][1]:.0f} s (wall)")
    for key, value in compare(results[2][0], results[1][0], steps).items():
      print(f"  {key}: {value}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
