"""A workdir belongs to one run: the lock of `jaxgan.run.workdir`, alone and in `python -m jaxgan.main`.

The owner that dies holds its lock in a subprocess that is SIGKILLed, so the kernel, not the test,
drops its flock. The end-to-end test runs two `python -m jaxgan.main` on one workdir.
"""

import datetime
import errno
import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import pytest

from jaxgan.run import workdir as workdir_lib
from jaxgan.run.checkpoint import multihost

ROOT = Path(__file__).resolve().parents[1]
HOST = socket.gethostname()


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
  """Every file under `root`: (inode, mtime in ns, bytes). A run may be saving a checkpoint
  meanwhile (orbax renames its temporary directories): what vanishes during the walk is left out."""
  out = {}
  for folder, _, files in os.walk(root):  # os.walk skips folders that vanish
    for name in sorted(files):
      p = Path(folder) / name
      try:
        st = p.stat()
        out[str(p.relative_to(root))] = (st.st_ino, st.st_mtime_ns, p.read_bytes())
      except FileNotFoundError:
        continue
  return out


def _dead_pid() -> int:
  """A pid no process has: above the kernel's largest (no subprocess needed)."""
  try:
    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
  except OSError:
    pid = 2**22 + 1  # Linux's largest pid_max
  with pytest.raises(ProcessLookupError):
    os.kill(pid, 0)
  return pid


def test_acquire_records_the_owner_and_release_removes_it(tmp_path):
  workdir = tmp_path / "new" / "run"  # created by acquire
  lock = workdir_lib.acquire(str(workdir), command="train --x")
  assert lock.held and Path(lock.path) == workdir / ".jaxgan.lock"
  owner = json.loads(Path(lock.path).read_text())
  assert owner == lock.owner == workdir_lib.read_owner(str(workdir))
  assert owner["host"] == HOST and owner["pid"] == os.getpid() and owner["command"] == "train --x"
  started = datetime.datetime.fromisoformat(owner["started"])
  assert abs(time.time() - started.timestamp()) < 60
  lock.release()
  lock.release()  # idempotent
  assert not lock.held and not Path(lock.path).exists()
  with workdir_lib.acquire(str(workdir)) as again:  # free again
    assert again.held
  assert workdir_lib.read_owner(str(workdir)) is None


@pytest.mark.full
def test_a_live_owner_is_refused_and_a_killed_one_taken_over(tmp_path, caplog):
  code = textwrap.dedent(f"""
    import sys, time
    from jaxgan.run import workdir
    lock = workdir.acquire({str(tmp_path)!r}, command="the first run")
    print("held", flush=True)
    time.sleep(600)
  """)
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
  try:
    assert proc.stdout.readline().strip() == "held"
    before = _snapshot(tmp_path)
    with pytest.raises(workdir_lib.WorkdirBusyError) as e:
      workdir_lib.acquire(str(tmp_path))
    message = str(e.value)
    assert f"host {HOST}, pid {proc.pid}, started " in message and "the first run" in message
    assert "--workdir" in message and "stop it" in message
    assert _snapshot(tmp_path) == before  # the refused run changed nothing
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
  assert (tmp_path / ".jaxgan.lock").exists()  # the file outlives its owner; its flock does not
  caplog.set_level(logging.WARNING, logger="jaxgan.run.workdir")
  with workdir_lib.acquire(str(tmp_path)) as lock:
    assert lock.owner["pid"] == os.getpid()
    assert workdir_lib.read_owner(str(tmp_path))["pid"] == os.getpid()
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1 and "stale" in warnings[0], warnings
  assert f"pid {proc.pid}" in warnings[0] and "the first run" in warnings[0]


def test_one_process_cannot_take_its_own_held_lock_twice(tmp_path):
  # flock is per open file: a second run in the same process (a notebook) is refused too.
  with workdir_lib.acquire(str(tmp_path)):
    with pytest.raises(workdir_lib.WorkdirBusyError, match=f"pid {os.getpid()}"):
      workdir_lib.acquire(str(tmp_path))


def test_without_flock_a_dead_pid_on_this_host_is_stale(tmp_path, monkeypatch, caplog):
  def no_flock(fd, op):
    raise OSError(errno.ENOLCK, "No locks available")

  monkeypatch.setattr(fcntl, "flock", no_flock)
  caplog.set_level(logging.WARNING, logger="jaxgan.run.workdir")
  path = tmp_path / ".jaxgan.lock"
  with workdir_lib.acquire(str(tmp_path)) as lock:  # free: taken by exclusive creation
    assert lock.held and json.loads(path.read_text())["pid"] == os.getpid()
    with pytest.raises(workdir_lib.WorkdirBusyError, match=f"pid {os.getpid()}"):
      workdir_lib.acquire(str(tmp_path))  # a live pid
  assert not path.exists()

  dead = _dead_pid()
  path.write_text(json.dumps({"host": HOST, "pid": dead, "started": "x", "command": "c"}))
  with workdir_lib.acquire(str(tmp_path)):
    assert json.loads(path.read_text())["pid"] == os.getpid()
  assert any(f"pid {dead}" in r.getMessage() for r in caplog.records)

  # Another host's pid cannot be checked from here: refused, saying so, file untouched.
  other = json.dumps({"host": "elsewhere", "pid": dead, "started": "x", "command": "c"})
  path.write_text(other)
  with pytest.raises(workdir_lib.WorkdirBusyError, match="host elsewhere.*cannot be checked"):
    workdir_lib.acquire(str(tmp_path))
  assert path.read_text() == other


@pytest.mark.parametrize("index", [0, 1])
def test_every_process_of_a_multi_process_run_refuses_together(tmp_path, monkeypatch, index):
  # Process 0 decides; its verdict and message reach the others through two collectives, faked
  # here by what process 0 would broadcast.
  holder = workdir_lib.acquire(str(tmp_path), command="the owner")
  calls = []
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(jax, "process_index", lambda: index)
  monkeypatch.setattr(multihost, "broadcast_int", lambda v: calls.append(v) or 1)
  message = f"The workdir {tmp_path} is in use by another jaxgan run (host h, pid 7, ...)"
  monkeypatch.setattr(
    workdir_lib, "_broadcast_text", lambda text: calls.append(text) or (text or message)
  )
  with pytest.raises(workdir_lib.WorkdirBusyError) as e:
    workdir_lib.acquire(str(tmp_path))
  holder.release()
  assert len(calls) == 2  # both collectives, on every process
  if index == 0:
    assert calls[0] == 1 and f"pid {os.getpid()}" in calls[1] and "the owner" in str(e.value)
  else:
    assert calls == [0, ""] and str(e.value) == message  # process 1 only took part


def test_other_processes_hold_nothing_when_process_0_has_the_lock(tmp_path, monkeypatch):
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  monkeypatch.setattr(multihost, "broadcast_int", lambda v: 0)
  lock = workdir_lib.acquire(str(tmp_path / "run"))
  assert not lock.held and lock.owner is None and (tmp_path / "run").is_dir()
  assert not (tmp_path / "run" / ".jaxgan.lock").exists()
  lock.release()  # a no-op


# ------------------------------------------------------------------------------------------------
# end to end: python -m jaxgan.main

TINY = [
  "--config=experiments/configs/toy_ring.py",
  "--config.run.steps_per_call=1",
  "--config.log.sample_every=1000000",
  "--config.eval.every=1000000",
  "--config.model.kwargs.g_hidden=(16,)",
  "--config.model.kwargs.d_hidden=(16,)",
  "--config.data.batch_size=16",
]


@pytest.mark.full
def test_a_second_run_on_a_busy_workdir_is_refused_and_the_first_is_untouched(tmp_path):
  workdir = tmp_path / "run"
  # Both launches share a compilation cache: the second one's compiles are reads.
  env = {**os.environ, "JAXGAN_CACHE_DIR": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
  main = [sys.executable, "-m", "jaxgan.main", f"--workdir={workdir}", *TINY]
  first_log = tmp_path / "first.log"
  with open(first_log, "w") as out:
    first = subprocess.Popen(
      [
        *main,
        "--config.run.steps=10000000",
        "--config.log.every=10",
        "--config.checkpoint.every=50",
      ],
      cwd=ROOT,
      env=env,
      stdout=out,
      stderr=subprocess.STDOUT,
    )
  try:
    deadline = time.monotonic() + 120
    metrics = workdir / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().strip()):  # the loop is running
      assert first.poll() is None, first_log.read_text()
      assert time.monotonic() < deadline, first_log.read_text()
      time.sleep(0.05)
    lock_before = _snapshot(workdir)[".jaxgan.lock"]
    config_before = _snapshot(workdir)["config.json"]

    # Another config (seed): a config.json or checkpoint it wrote would differ from the first's.
    start = time.monotonic()
    second = subprocess.run(
      [*main, "--config.run.steps=5", "--config.seed=7"],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=120,
    )
    took = time.monotonic() - start
    assert second.returncode != 0, second.stderr[-3000:]
    assert f"error: The workdir {workdir} is in use" in second.stderr, second.stderr[-3000:]
    assert "Traceback" not in second.stderr  # a refusal, not a crash
    assert f"host {HOST}, pid {first.pid}, started " in second.stderr, second.stderr[-3000:]
    assert took < 60, took  # a hang guard: start-up and compiles, then the refusal
    assert first.poll() is None, first_log.read_text()  # the first run goes on
    after = _snapshot(workdir)
    assert after[".jaxgan.lock"] == lock_before and after["config.json"] == config_before
  finally:
    first.send_signal(signal.SIGTERM)  # saves and stops: the run ends as a preempted run does
    rc = first.wait(timeout=60)
  output = first_log.read_text()
  assert rc == 1, output
  m = re.search(r"Received SIGTERM: stopped after step (\d+), checkpoint saved in", output)
  assert m, output
  stopped = int(m.group(1))
  assert (workdir / "checkpoints" / str(stopped)).is_dir()
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  steps = [json.loads(line)["step"] for line in lines]
  # One writer: every 10th step once, then the step the signal stopped it at.
  assert steps[:-1] == list(range(10, 10 * len(steps), 10)) and steps[-1] == stopped, steps
  assert not (workdir / ".jaxgan.lock").exists()  # released by the first run's exit
