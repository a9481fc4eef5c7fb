"""Data parallelism with jax.jit over a mesh: 8 fake CPU devices give the 1-device results.

The 8-device checks run once, in a subprocess (`_sharded_worker.py`), because this process has
already fixed its device count; each test below asserts on one part of its report.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxgan.run import distributed
from jaxgan.step import sharding

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def report():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  proc = subprocess.run(
    [sys.executable, os.path.join(HERE, "_sharded_worker.py")],
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(proc.stdout)


@pytest.mark.full
@pytest.mark.parametrize("name", ["mlp_wgan_gp", "dcgan_bn", "conditional_projection"])
def test_eight_devices_give_the_one_device_state(report, name):
  # 20 steps from the same init, batches and keys: the MLP WGAN-GP (n_critic=2, gradient penalty,
  # SGD), a DCGAN whose G and D use BatchNorm (Adam), and a class-conditional MLP (projection D,
  # R1) whose batches carry labels.
  r = report[name]
  assert report["devices"] == 8
  assert r["step"] == 20 and r["skipped"] == 0
  assert r["moved"] > 1e-3, r  # the runs really trained, so equality is not trivial
  assert r["params_diff"] < 2e-6 * max(1.0, r["param_scale"]), r
  assert r["vars_diff"] < 2e-6, r  # BatchNorm running statistics
  assert r["ema_diff"] < 2e-6, r
  assert r["opt_diff"] < 1e-4, r
  assert r["metrics_diff"] < 1e-4, r


@pytest.mark.full
@pytest.mark.parametrize("name", ["mlp_wgan_gp", "dcgan_bn", "conditional_projection"])
def test_gradient_all_reduces_are_combined(report, name):
  # XLA's all-reduce combiner merges the per-parameter gradient sums into tuple all-reduces, so
  # one all-reduce sums many tensors (in the DCGAN other all-reduces carry the BatchNorm
  # statistics of the global batch). One all-reduce per parameter would make the largest 1.
  r = report[name]
  assert r["collectives"]["all-reduce"] >= 1, r
  assert r["largest_all_reduce"] >= r["n_d_param_leaves"] // 2, r
  assert r["collectives"]["all-gather"] == 0, r


@pytest.mark.full
def test_batch_norm_uses_global_batch_statistics(report):
  r = report["batch_norm"]
  assert r["input_sharded"]
  np.testing.assert_allclose(r["running_mean"], r["expected_global"], rtol=1e-5, atol=1e-6)
  assert not np.allclose(r["running_mean"], r["per_shard"], atol=1e-2)
  np.testing.assert_allclose(r["output_mean"], 0.0, atol=1e-5)
  np.testing.assert_allclose(r["output_std"], 1.0, atol=1e-3)


@pytest.mark.full
@pytest.mark.parametrize("what", ["latents", "samples", "gp_eps"])
def test_per_example_noise_differs_between_shards(report, what):
  r = report["noise"][what]
  assert r["n_shards"] == 8 and r["shard_rows"] == 2
  assert r["distinct"], r  # no two devices draw the same noise
  assert r["equal_to_single"], r  # and each draws its slice of the 1-device numbers


@pytest.mark.full
def test_indivisible_batch_names_both_numbers(report):
  errors = report["errors"]
  for name in ("check_batch_size", "global_batch"):
    assert errors[name] is not None and "12" in errors[name] and "8 devices" in errors[name]
  assert "20" in errors["local_batch_size"] and "8 devices" in errors["local_batch_size"]
  assert report["ok_sizes"] == [16, 8]


# In-process checks on this process's devices.


def test_mesh_has_data_and_model_axes():
  mesh = sharding.make_mesh()
  assert mesh.axis_names == (sharding.DATA_AXIS, sharding.MODEL_AXIS)
  assert sharding.data_size(mesh) == jax.device_count()
  assert sharding.make_mesh(model=1).shape[sharding.MODEL_AXIS] == 1
  with pytest.raises(ValueError, match="model axis size 3"):
    sharding.make_mesh(jax.devices()[:1], model=3)


def test_single_process_batch_helpers():
  mesh = sharding.make_mesh(jax.devices()[:1])
  x = np.arange(12, dtype=np.float32).reshape(6, 2)
  assert sharding.local_batch_size(6, mesh) == 6
  np.testing.assert_array_equal(sharding.process_slice(x, mesh), x)
  batch = sharding.global_batch(x, mesh)
  assert batch.shape == (6, 2)
  np.testing.assert_array_equal(np.asarray(batch), x)
  assert sharding.shard_batch(batch) is batch  # no mesh in context: unchanged


def test_initialize_distributed_needs_a_full_configuration(monkeypatch):
  for var in (
    distributed.ENV_COORDINATOR,
    distributed.ENV_NUM_PROCESSES,
    distributed.ENV_PROCESS_ID,
  ):
    monkeypatch.delenv(var, raising=False)
  assert distributed.initialize_distributed() is False  # nothing configured: single process
  assert distributed.initialize_distributed("127.0.0.1:1234", 1, 0) is False
  with pytest.raises(ValueError, match="coordinator address"):
    distributed.initialize_distributed(None, 2, 0)
  # A host that forgot --num_processes would otherwise train alone and take the workdir.
  with pytest.raises(ValueError, match="process_id=1 was given for a single-process run"):
    distributed.initialize_distributed(None, None, 1)
  monkeypatch.setenv(distributed.ENV_COORDINATOR, "127.0.0.1:1234")
  monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "2")
  with pytest.raises(ValueError, match=r"process id in \[0, 2\); got None"):
    distributed.initialize_distributed()
  with pytest.raises(ValueError, match="got 2"):
    distributed.initialize_distributed(process_id=2)


@pytest.mark.full
def test_labels_stay_with_their_images_on_eight_devices(report):
  # Every image holds its label as pixel values; each device's label shard must match its images.
  assert report["label_pairing"]
