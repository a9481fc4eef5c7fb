"""Two real JAX processes on this machine (jax.distributed over 127.0.0.1, gloo collectives on
CPU, two devices each) train on a 4-device mesh, each feeding only its half of every global
batch through `sharding.global_batch`, and reach the state of one process with the whole batch."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "_distributed_worker.py")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(args, devices, log):
  env = dict(
    os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}"
  )
  for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    env.pop(var, None)
  return subprocess.Popen(
    [sys.executable, WORKER, *args], env=env, stdout=log, stderr=subprocess.STDOUT
  )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("distributed")
  port = _free_port()
  procs, logs = [], []
  for pid in range(2):
    log = open(tmp / f"process{pid}.log", "w")
    logs.append(log)
    procs.append(
      _start(
        [
          str(tmp / f"process{pid}.npz"),
          "--coordinator",
          f"127.0.0.1:{port}",
          "--num_processes",
          "2",
          "--process_id",
          str(pid),
        ],
        2,
        log,
      )
    )
  logs.append(open(tmp / "reference.log", "w"))
  procs.append(_start([str(tmp / "reference.npz")], 1, logs[-1]))
  try:
    codes = [p.wait(timeout=400) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
    for log in logs:
      log.close()
  names = ["process0", "process1", "reference"]
  for name, code in zip(names, codes, strict=True):
    assert code == 0, f"{name} exited with {code}:\n" + (tmp / f"{name}.log").read_text()[-4000:]
  return {name: dict(np.load(tmp / f"{name}.npz")) for name in names}


def test_two_processes_form_one_mesh(results):
  for name in ("process0", "process1"):
    r = results[name]
    assert int(r["process_count"]) == 2 and int(r["device_count"]) == 4
    assert int(r["local_device_count"]) == 2
    assert int(r["mlp_wgan_gp/local_rows"]) == 16  # half of the 32 examples of a step
    assert int(r["mlp_bn/local_rows"]) == 8
    # The gradients (and the BatchNorm statistics) are summed across the processes.
    assert int(r["mlp_wgan_gp/all_reduces"]) >= 1 and int(r["mlp_bn/all_reduces"]) >= 1
  assert int(results["reference"]["process_count"]) == 1


@pytest.mark.parametrize("model", ["mlp_wgan_gp", "mlp_bn"])
def test_two_processes_reach_the_one_process_state(results, model):
  ref = results["reference"]
  keys = sorted(k for k in ref if k.startswith(f"{model}/leaf"))
  assert len(keys) >= 6
  for name in ("process0", "process1"):
    for k in keys:
      np.testing.assert_allclose(results[name][k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(results[name][f"{model}/d_loss"], ref[f"{model}/d_loss"], rtol=1e-5)
