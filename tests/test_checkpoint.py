"""Tests of jaxgan.run.checkpoint: roundtrip, shardings, GC, corruption fallback, resume checks."""

import copy
import functools
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import REPO, assert_bitwise_equal

from jaxgan.config import default_config
from jaxgan.run import checkpoint as ckpt_lib
from jaxgan.run.checkpoint import (
  CheckpointCorruptError,
  Checkpointer,
  CheckpointMismatchError,
  compat,
  retention,
)
from jaxgan.step.state import GAN, GANState


class TinyG(nn.Module):
  width: int = 8

  @nn.compact
  def __call__(self, z, train=False):
    return nn.Dense(2)(nn.relu(nn.Dense(self.width)(z)))


class TinyD(nn.Module):
  width: int = 8

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(1)(nn.relu(nn.Dense(self.width)(x)))[:, 0]


def _base_config():
  c = default_config()
  c.model.width = 8
  return c.to_dict()


CONFIG = _base_config()
# What jaxgan 0.1 stored: one flat dict, `loss` a name, no sections.
FLAT_CONFIG = {
  "dataset": "mnist",
  "batch_size": 64,
  "steps": 1000,
  "loss": "non_saturating",
  "g_lr": 2e-4,
  "d_lr": 2e-4,
  "seed": 0,
  "model": "dcgan",
  "checkpoint_every": 500,
}


@functools.cache
def _init_fn(width):
  gan = GAN(TinyG(width), TinyD(width), optax.adam(1e-3), optax.adam(1e-3), (4,))
  return jax.jit(gan.init)  # one compilation per width (eager init compiles op by op: slow)


@functools.cache
def make_state(width=8, seed=0, step=7) -> GANState:
  """A GANState with random (not just initial) values everywhere; cached, arrays are immutable."""
  state = _init_fn(width)(jax.random.key(seed), jnp.zeros((3, 2)))
  rng = np.random.default_rng(seed)

  def perturb(x):
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
      x = x + rng.standard_normal(x.shape).astype(x.dtype)
    return jnp.asarray(x)

  return jax.tree.map(perturb, state).replace(step=jnp.asarray(step, jnp.int32))


def config(overrides):
  """CONFIG with some fields replaced; `overrides` maps dotted names to values."""
  cfg = copy.deepcopy(CONFIG)
  for name, value in overrides.items():
    *sections, field = name.split(".")
    node = cfg
    for s in sections:
      node = node[s]
    node[field] = value
  return cfg


def make_ckpt(path, cfg=None, **kw):
  kw.setdefault("save_every", 1)
  return Checkpointer(path, config=CONFIG if cfg is None else cfg, **kw)


def save_steps(path, steps, cfg=None, states=None, **kw):
  c = make_ckpt(path, cfg, **kw)
  for s in steps:
    st = states[s] if states else make_state(seed=s, step=s)
    assert c.save(s, st, loader_state={"epoch": 0, "index": s})
  c.close()


def step_files(path, step):
  root = Path(path) / str(step) / "state"
  return sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def data_files(path, step):
  # ocdbt data files hold the (compressed) array bytes.
  return [p for p in step_files(path, step) if p.parent.name == "d"]


# ------------------------------------------------------------------------------------------------


def test_roundtrip_bitwise(tmp_path):
  state = make_state(seed=1, step=12)
  c = make_ckpt(tmp_path, save_every=4)
  assert c.should_save(12) and not c.should_save(13) and not c.should_save(0)
  assert c.save(12, state, loader_state={"epoch": 3, "pos": [1, 2]}, metrics={"fid": 3.5})
  c.wait()
  assert not c.should_save(12)  # already saved
  assert (tmp_path / "12" / ckpt_lib.MANIFEST_NAME).exists()
  c.close()

  c2 = make_ckpt(tmp_path)
  template = make_state(seed=99, step=0)
  restored, loader, step = c2.restore_latest(template)
  assert isinstance(restored, GANState)
  assert step == 12 and loader == {"epoch": 3, "pos": [1, 2]}
  assert_bitwise_equal(restored, state)
  # Abstract target works too; restoring does not alter the checkpoint.
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), template
  )
  restored2, _, _ = c2.restore_latest(abstract)
  assert_bitwise_equal(restored2, state)
  assert c2.verify(12) == ckpt_lib.Verification(12, "verified", "every file matches its manifest")
  assert c2.verify(12).usable
  c2.close()


def test_empty_directory_returns_none(tmp_path):
  c = make_ckpt(tmp_path / "new")
  assert c.restore_latest(make_state()) is None
  assert c.latest_step is None and c.all_steps() == []
  c.close()


def test_sync_save_and_none_loader_state(tmp_path):
  c = make_ckpt(tmp_path, async_save=False)
  assert c.save(3, make_state(step=3))
  assert (tmp_path / "3" / ckpt_lib.MANIFEST_NAME).exists()  # written without wait()
  _, loader, step = c.restore_latest(make_state())
  assert loader is None and step == 3
  c.close()


def _restore_onto_8_devices(path):
  """Saves from one device, restores onto 8 devices with a given sharding."""
  from jax.sharding import Mesh, NamedSharding
  from jax.sharding import PartitionSpec as P

  assert jax.device_count() == 8, jax.devices()
  state = make_state(step=5)
  assert all(len(x.devices()) == 1 for x in jax.tree.leaves(state))
  c = make_ckpt(path)
  c.save(5, state)
  c.close()
  mesh = Mesh(np.array(jax.devices()), ("data",))

  def target(x):
    spec = P("data") if x.ndim and x.shape[0] % 8 == 0 else P()
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=NamedSharding(mesh, spec))

  abstract = jax.tree.map(target, state)
  restored, _, step = make_ckpt(path).restore_latest(abstract)
  assert step == 5
  for r, a in zip(jax.tree.leaves(restored), jax.tree.leaves(abstract), strict=True):
    assert r.sharding == a.sharding, (r.sharding, a.sharding)
    assert len(r.devices()) == 8
  sharded = [
    r
    for r, a in zip(jax.tree.leaves(restored), jax.tree.leaves(abstract), strict=True)
    if a.sharding.spec == P("data")
  ]
  assert sharded  # e.g. the (8, 2) generator kernel is split over the 8 devices
  assert_bitwise_equal(restored, state)


@pytest.mark.full
def test_restore_onto_8_devices(tmp_path):
  if jax.device_count() == 8:
    _restore_onto_8_devices(tmp_path)
    return
  env = dict(os.environ)
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
  env["JAX_PLATFORMS"] = "cpu"
  root = Path(__file__).resolve().parents[1]
  env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "tests"), env.get("PYTHONPATH", "")])
  here = str(Path(__file__).resolve())
  code = (
    "import importlib.util, sys; "
    f"spec = importlib.util.spec_from_file_location('tc', {here!r}); "
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
    f"m._restore_onto_8_devices({str(tmp_path)!r})"
  )
  r = subprocess.run(
    [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
  )
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


# ------------------------------------------------------------------------------------------------
# garbage collection


def test_keep_last_k(tmp_path):
  c = make_ckpt(tmp_path, keep=2)
  for s in (1, 2, 3):
    c.save(s, make_state(step=s))
  # GC only runs once the newest save is committed and hashed: the in-flight save of 3 does not
  # count yet, so 1 and 2 are both still there.
  assert (tmp_path / "1").exists() and (tmp_path / "2").exists()
  c.wait()
  assert c.all_steps() == [2, 3] and not (tmp_path / "1").exists()
  for s in (4, 5):
    c.save(s, make_state(step=s))
  c.close()
  assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [4, 5]
  assert make_ckpt(tmp_path).all_steps() == [4, 5]


def test_deleting_a_step_never_leaves_half_of_it_in_the_listing(tmp_path):
  # Retention renames a step out of the listing before removing its files, so a run killed while
  # deleting leaves it under .deleted/, which the next launch clears.
  save_steps(tmp_path, [1, 2, 3], keep=1)
  assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["3"]
  assert not (tmp_path / ".deleted").exists() or not list((tmp_path / ".deleted").iterdir())
  killed = tmp_path / ".deleted" / "2" / "state"
  killed.mkdir(parents=True)
  (killed / "_METADATA").write_text("{")  # what a killed deletion leaves behind
  c = make_ckpt(tmp_path)
  assert c.all_steps() == [3] and not (tmp_path / ".deleted" / "2").exists()
  c.close()


def test_keep_best(tmp_path):
  fids = {1: 5.0, 2: 1.0, 3: 4.0, 4: 2.0, 5: 6.0, 6: 7.0}
  c = make_ckpt(tmp_path, keep=2, keep_best="fid", best_mode="min")
  for s, fid in fids.items():
    c.save(s, make_state(step=s), metrics={"fid": fid})
  c.close()
  # the 2 newest (5, 6) and the 2 best by FID (2, 4)
  assert make_ckpt(tmp_path).all_steps() == [2, 4, 5, 6]
  # the same directory reopened keeps applying the rule with the stored metrics
  c = make_ckpt(tmp_path, keep=2, keep_best="fid", best_mode="min")
  c.save(7, make_state(step=7), metrics={"fid": 1.5})
  c.save(8, make_state(step=8), metrics={"fid": 9.0})
  c.close()
  assert make_ckpt(tmp_path).all_steps() == [2, 7, 8]


def test_keep_best_max(tmp_path):
  c = make_ckpt(tmp_path, keep=1, keep_best="acc", best_mode="max")
  for s, acc in {1: 0.5, 2: 0.9, 3: 0.1, 4: 0.2}.items():
    c.save(s, make_state(step=s), metrics={"acc": acc})
  c.close()
  assert make_ckpt(tmp_path).all_steps() == [2, 4]


def test_retained_rule():
  """The rule alone: newest `keep`, best `keep` by a finite metric, ties to the newer step."""
  m = {
    1: {"fid": 2.0},
    2: {"fid": 1.0},
    3: {"fid": 1.0},
    4: {"fid": float("nan")},
    5: None,
    6: {"acc": 0.0},
    7: {"fid": 9.0},
  }
  assert retention.retained(m, keep=2) == {6, 7}
  assert retention.retained(m, keep=1, keep_best="fid") == {3, 7}  # 2 and 3 tie: the newer
  assert retention.retained(m, keep=2, keep_best="fid") == {2, 3, 6, 7}
  assert retention.retained(m, keep=1, keep_best="fid", best_mode="max") == {7}
  assert retention.retained(m, keep=2, keep_best="fid", best_mode="max") == {1, 6, 7}
  assert retention.retained(m, keep=10, keep_best="fid") == set(m)
  assert retention.retained({}, keep=1) == set()
  with pytest.raises(ValueError, match="keep"):
    make_ckpt("/nonexistent/never/created", keep=0)
  with pytest.raises(ValueError, match="best_mode"):
    retention.retained(m, keep=1, best_mode="lowest")


def test_unverified_steps_never_counted_or_deleted(tmp_path):
  save_steps(tmp_path, [1, 2], keep=1)
  assert make_ckpt(tmp_path).all_steps() == [2]
  save_steps(tmp_path, [3], keep=1)
  # step 3's manifest lost (process died between commit and manifest)
  (tmp_path / "3" / ckpt_lib.MANIFEST_NAME).unlink()
  save_steps(tmp_path, [4, 5], keep=1)
  assert make_ckpt(tmp_path).all_steps() == [3, 5]


def test_gc_keeps_last_good_when_newer_are_bad(tmp_path, caplog):
  save_steps(tmp_path, [1, 2, 3], keep=3)
  for s in (2, 3):  # the two newest are damaged at rest
    f = data_files(tmp_path, s)[-1]
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))
  c = make_ckpt(tmp_path, keep=2)
  with caplog.at_level(logging.WARNING, logger="jaxgan.run.checkpoint"):
    _, _, step = c.restore_latest(make_state())
  assert step == 1
  # Resumed from 1; a new save must not make GC drop step 1 because of the bad 2 and 3:
  # they do not count (moved aside), and 1 survives until 2 newer verified steps exist.
  c.save(4, make_state(step=4))
  c.wait()
  assert c.all_steps() == [1, 4]
  c.save(5, make_state(step=5))
  c.close()
  assert make_ckpt(tmp_path).all_steps() == [4, 5]
  assert len(list((tmp_path / "corrupt").glob("2.*[0-9]"))) == 1
  assert len(list((tmp_path / "corrupt").glob("3.*[0-9]"))) == 1


# ------------------------------------------------------------------------------------------------
# corruption


@pytest.fixture
def three_steps(tmp_path):
  states = {s: make_state(seed=s, step=s) for s in (1, 2, 3)}
  save_steps(tmp_path, [1, 2, 3], states=states)
  return tmp_path, states


def _restore_with_warnings(path, caplog):
  c = make_ckpt(path)
  with caplog.at_level(logging.WARNING, logger="jaxgan.run.checkpoint"):
    out = c.restore_latest(make_state())
  c.close()
  return out


def _assert_fell_back(path, states, caplog, bad_step=3, reason_word=None):
  restored, loader, step = _restore_with_warnings(path, caplog)
  assert step == bad_step - 1 and loader == {"epoch": 0, "index": bad_step - 1}
  assert_bitwise_equal(restored, states[bad_step - 1])
  msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert any(f"step {bad_step}" in m for m in msgs), msgs
  if reason_word:
    assert any(reason_word in m for m in msgs), msgs
  # moved aside, not deleted
  moved = list((path / "corrupt").glob(f"{bad_step}.*[0-9]"))
  assert len(moved) == 1 and (moved[0] / "state").is_dir()
  assert (path / "corrupt" / f"{moved[0].name}.reason.txt").exists()
  assert not (path / str(bad_step)).exists()


def test_truncated_file_falls_back(three_steps, caplog):
  path, states = three_steps
  f = step_files(path, 3)[-1]
  f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
  _assert_fell_back(path, states, caplog, reason_word="truncated")


def test_bit_flip_falls_back(three_steps, caplog):
  path, states = three_steps
  f = data_files(path, 3)[-1]
  b = bytearray(f.read_bytes())
  b[len(b) // 2] ^= 0x01  # same size, one bit different
  f.write_bytes(bytes(b))
  _assert_fell_back(path, states, caplog, reason_word="SHA-256")


def test_altered_config_json_falls_back(three_steps, caplog):
  path, states = three_steps
  f = path / "3" / "config" / "metadata"
  f.write_text(f.read_text().replace("non_saturating", "non_saturatinG"))
  _assert_fell_back(path, states, caplog, reason_word="SHA-256")


def test_deleted_commit_marker_falls_back(three_steps, caplog):
  path, states = three_steps
  (path / "3" / "commit_success.txt").unlink()
  _assert_fell_back(path, states, caplog, reason_word="missing")


def test_unfinished_tmp_save_ignored(three_steps, caplog):
  path, states = three_steps
  # a save of step 4 that died mid-way: orbax's tmp directory, never renamed / committed
  tmp = path / "4.orbax-checkpoint-tmp-1700000000000000"
  shutil.copytree(path / "3", tmp)
  (tmp / ckpt_lib.MANIFEST_NAME).unlink()
  f = sorted((tmp / "state").rglob("*"), key=lambda p: p.stat().st_size)[-1]
  f.write_bytes(f.read_bytes()[:10])
  restored, _, step = _restore_with_warnings(path, caplog)
  assert step == 3
  assert_bitwise_equal(restored, states[3])
  assert tmp.exists()  # left in place
  # saving step 4 for real now works and leaves the old tmp dir alone
  c = make_ckpt(path)
  assert c.save(4, make_state(step=4), force=True)
  c.close()
  assert tmp.exists() and (path / "4" / ckpt_lib.MANIFEST_NAME).exists()


def test_unverified_checkpoint_is_used_with_warning(three_steps, caplog):
  path, states = three_steps
  (path / "3" / ckpt_lib.MANIFEST_NAME).unlink()
  restored, _, step = _restore_with_warnings(path, caplog)
  assert step == 3
  assert_bitwise_equal(restored, states[3])
  assert any("unverified" in r.getMessage() for r in caplog.records)


# orbax/tensorstore leave an asyncio callback behind after the failed read; harmless here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_unverified_and_unloadable_is_skipped_and_left(three_steps, caplog):
  path, states = three_steps
  (path / "3" / ckpt_lib.MANIFEST_NAME).unlink()
  for f in data_files(path, 3):  # array data gone, metadata intact
    f.unlink()
  restored, _, step = _restore_with_warnings(path, caplog)
  assert step == 2
  assert_bitwise_equal(restored, states[2])
  assert any(
    "step 3" in r.getMessage() and "failed to load" in r.getMessage() for r in caplog.records
  )
  assert (path / "3").exists()  # unverified: left in place, never moved or deleted
  assert not (path / "corrupt").exists()
  # The resumed run reaches step 3 again: its save moves the unloadable step aside (a refusal
  # would leave e.g. a run's final step unsaved on every relaunch) and is restored from then on.
  damaged = sorted(str(p.relative_to(path / "3")) for p in (path / "3").rglob("*"))
  c = make_ckpt(path)
  c.restore_latest(make_state())
  new = make_state(seed=7, step=3)
  assert c.save(3, new, force=True)
  c.close()
  (moved,) = [p for p in (path / "corrupt").glob("3.*") if p.is_dir()]
  assert sorted(str(p.relative_to(moved)) for p in moved.rglob("*")) == damaged
  assert "failed to load" in Path(f"{moved}.reason.txt").read_text()
  restored, _, step = make_ckpt(path).restore_latest(make_state())
  assert step == 3
  assert_bitwise_equal(restored, new)


def test_all_bad_raises_clear_error(three_steps):
  path, _ = three_steps
  for s in (1, 2, 3):
    f = data_files(path, s)[-1]
    f.write_bytes(f.read_bytes()[:5])
  c = make_ckpt(path)
  with pytest.raises(CheckpointCorruptError) as e:
    c.restore_latest(make_state())
  # Every step named with its reason, newest first.
  assert re.search(r"step 3: .*truncated.*\n\s+step 2: .*\n\s+step 1: ", str(e.value)), e.value
  assert len(list((path / "corrupt").iterdir())) == 6  # 3 dirs + 3 reason files; none deleted


# ------------------------------------------------------------------------------------------------
# resume checks


def test_config_mismatch_model_width(tmp_path):
  save_steps(tmp_path, [1])
  c = make_ckpt(tmp_path, config({"model.width": 16}))
  with pytest.raises(CheckpointMismatchError) as e:
    c.restore_latest(make_state(width=16))
  assert "model.width: saved 8, now 16" in str(e.value)
  assert "new workdir" in str(e.value)
  assert (tmp_path / "1").exists()  # a mismatch is not corruption: nothing moved


def test_state_shape_mismatch_names_paths(tmp_path):
  save_steps(tmp_path, [1])
  c = make_ckpt(tmp_path)  # same config, but the model was changed behind its back
  with pytest.raises(CheckpointMismatchError) as e:
    c.restore_latest(make_state(width=16))
  msg = str(e.value)
  assert "d_params/Dense_0/kernel: checkpoint (8, 1) float32 != current (16, 1) float32" in msg
  assert "new workdir" in msg
  assert (tmp_path / "1").exists()  # a mismatch is not corruption: nothing moved


def test_dtype_mismatch(tmp_path):
  save_steps(tmp_path, [1])
  state = make_state()
  state = state.replace(g_params=jax.tree.map(lambda x: x.astype(jnp.bfloat16), state.g_params))
  with pytest.raises(CheckpointMismatchError, match="bfloat16"):
    make_ckpt(tmp_path).restore_latest(state)


@pytest.mark.parametrize(
  "field, value, line",
  [
    ("loss.name", "hinge", "loss.name: saved 'non_saturating', now 'hinge'"),
    ("seed", 1, "seed: saved 0, now 1"),
    ("optim.g_lr", 1e-3, "optim.g_lr: saved 0.0002, now 0.001"),
  ],
)
def test_config_mismatch_outside_resumable_sections(tmp_path, field, value, line):
  save_steps(tmp_path, [1])
  c = make_ckpt(tmp_path, config({field: value}))
  with pytest.raises(CheckpointMismatchError, match=re.escape(line)):
    c.restore_latest(make_state())


def test_resumable_sections_may_differ(tmp_path):
  save_steps(tmp_path, [1])
  changed = {
    "run.steps": 5000,
    "run.data_dir": "/elsewhere",
    "log.every": 100,
    "eval.metrics": "kid",
    "checkpoint.keep": 1,
  }
  c = make_ckpt(tmp_path, config(changed))
  assert c.restore_latest(make_state())[2] == 1
  c.close()
  # the rule is by section: other sections can be made resumable, and the defaults dropped
  c = make_ckpt(
    tmp_path,
    config({"loss.name": "hinge"}),
    resumable_sections=("run", "log", "eval", "checkpoint", "loss"),
  )
  assert c.restore_latest(make_state())[2] == 1
  c = make_ckpt(tmp_path, config({"run.steps": 5000}), resumable_sections=())
  with pytest.raises(CheckpointMismatchError, match=re.escape("run.steps: saved 2000, now 5000")):
    c.restore_latest(make_state())


def _earlier_run(tmp_path):
  """A copy of a finished toy run of 20 steps (tests/reference/workdir_v*), and its config."""
  sys.path.insert(0, str(REPO / "benchmarks"))
  from make_checkpoint_reference import reference_config

  run = sorted((REPO / "tests" / "reference").glob("workdir_v*"))[-1]
  workdir = tmp_path / run.name
  shutil.copytree(run, workdir)
  return workdir, reference_config


def _digest(root):
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_run_with_another_config_is_refused_before_anything_is_written(tmp_path):
  from jaxgan.run import loop

  workdir, reference_config = _earlier_run(tmp_path)
  before = _digest(workdir)
  config = reference_config(40)
  config.loss.name = "hinge"
  with pytest.raises(CheckpointMismatchError, match="loss.name: saved 'non_saturating', now"):
    loop.train_and_evaluate(config, str(workdir))
  assert _digest(workdir) == before  # config.json, metrics, checkpoints: all untouched


def test_config_of_another_layout_is_refused_as_another_version():
  from jaxgan.run.checkpoint.compat import check_config

  saved = {"seed": 0, "optim": {"g_lr": 2e-4, "lr_decay": "constant"}}
  now = {"seed": 0, "optim": {"g_lr": 2e-4, "ema_half_life": None}}
  with pytest.raises(CheckpointMismatchError, match="(?s)lr_decay.*jaxgan version that wrote it"):
    check_config(saved, now, where="The checkpoint")
  with pytest.raises(CheckpointMismatchError, match="Resume with the config that wrote it"):
    check_config(saved, {**saved, "seed": 1}, where="The checkpoint")


def test_flat_layout_checkpoint_is_refused(tmp_path):
  save_steps(tmp_path, [1, 2], cfg=FLAT_CONFIG)
  before = sorted(str(p) for p in tmp_path.rglob("*"))
  c = make_ckpt(tmp_path)
  with pytest.raises(CheckpointMismatchError) as e:
    c.restore_latest(make_state())
  msg = str(e.value)
  assert "step 2" in msg and "flat config layout of an earlier jaxgan" in msg
  assert "new workdir" in msg and "jaxgan 0.1" in msg
  with pytest.raises(CheckpointMismatchError, match="flat config layout"):
    c.save(3, make_state(step=3))  # nor does a new run save into that directory
  c.close()
  assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing moved or written


def test_config_diff_and_flat_layout_rules():
  saved = {
    "seed": 0,
    "model": {"width": 8, "kwargs": {}},
    "loss": {"name": "hinge"},
    "run": {"steps": 10},
  }
  now = {
    "seed": 0,
    "model": {"width": 8, "kwargs": {"g_hidden": (16, 16)}},
    "run": {"steps": 99, "new": 1},
  }
  assert ckpt_lib.config_diff(saved, now) == [
    "loss.name: saved 'hinge', not in the current config",
    "model.kwargs.g_hidden: not in the saved config, now [16, 16]",
  ]
  assert ckpt_lib.config_diff(saved, now, resumable=("run", "loss", "model")) == []
  assert ckpt_lib.is_flat_layout(FLAT_CONFIG)
  assert ckpt_lib.is_flat_layout({"loss": "hinge", "seed": 0})
  assert not ckpt_lib.is_flat_layout(CONFIG) and not ckpt_lib.is_flat_layout({})
  with pytest.raises(CheckpointMismatchError, match="flat config layout"):
    compat.check_config(FLAT_CONFIG, FLAT_CONFIG, where="The checkpoint")  # even if equal


def test_new_run_with_other_config_refuses_to_save_into_old_dir(tmp_path):
  save_steps(tmp_path, [1, 2, 3], keep=3)
  c = make_ckpt(tmp_path, config({"loss.name": "hinge"}), keep=1)
  with pytest.raises(CheckpointMismatchError, match="loss.name"):
    c.save(10, make_state(step=10))
  c.close()
  assert make_ckpt(tmp_path).all_steps() == [1, 2, 3]


def test_restore_one_step(three_steps):
  path, states = three_steps
  c = make_ckpt(path)
  restored, loader, step = c.restore(2, make_state())
  assert step == 2 and loader == {"epoch": 0, "index": 2}
  assert_bitwise_equal(restored, states[2])
  with pytest.raises(CheckpointMismatchError, match="model.width"):
    make_ckpt(path, config({"model.width": 16})).restore(2, make_state(width=16))
  c.close()


# ------------------------------------------------------------------------------------------------
# never overwrite


def test_saving_existing_step_does_not_overwrite(tmp_path):
  original = make_state(seed=1, step=5)
  c = make_ckpt(tmp_path)
  assert c.save(5, original, loader_state={"i": 1})
  assert not c.save(5, make_state(seed=2, step=5), force=True)  # in flight: refused
  c.close()
  before = {p: p.read_bytes() for p in (tmp_path / "5").rglob("*") if p.is_file()}
  # a second (failed/restarted) run trying to write the same step
  c = make_ckpt(tmp_path)
  assert not c.should_save(5)
  assert not c.save(5, make_state(seed=2, step=5), loader_state={"i": 2}, force=True)
  c.wait()
  restored, loader, step = c.restore_latest(make_state())
  c.close()
  assert step == 5 and loader == {"i": 1}
  assert_bitwise_equal(restored, original)
  after = {p: p.read_bytes() for p in (tmp_path / "5").rglob("*") if p.is_file()}
  assert before == after


def test_async_save_survives_donation(tmp_path):
  """save() returns once the arrays are off the devices: the caller may donate/free them."""
  state = jax.tree.map(jnp.copy, make_state(seed=4, step=9))
  expected = jax.tree.map(np.asarray, state)
  c = make_ckpt(tmp_path)
  assert c.save(9, state)
  for x in jax.tree.leaves(state):
    x.delete()  # what donate_argnums does to the buffers
  c.wait()
  restored, _, step = c.restore_latest(make_state())
  c.close()
  assert step == 9
  assert_bitwise_equal(restored, expected)


def test_a_checkpoint_older_than_a_field_resumes_at_its_default(caplog):
  """A field added to jaxgan after a checkpoint was written: resumed when the run leaves it at
  its default (as the older version behaved), refused when it sets it, naming the field."""
  from jaxgan import config as config_lib

  now = config_lib.default_config().to_dict()
  saved = copy.deepcopy(now)
  del saved["loss"]["lecam_decay"], saved["augment"]["ada_interval"]  # "added later"
  with caplog.at_level("INFO", logger="jaxgan.run.checkpoint.compat"):
    compat.check_config(saved, now, where="The checkpoint at step 4")
  assert "predates 2 config field(s)" in caplog.text
  assert "augment.ada_interval" in caplog.text and "loss.lecam_decay" in caplog.text
  changed = copy.deepcopy(now)
  changed["loss"]["lecam_decay"] = 0.5
  with pytest.raises(CheckpointMismatchError) as e:
    compat.check_config(saved, changed, where="The checkpoint at step 4")
  assert "loss.lecam_decay: not in the saved config, now 0.5" in str(e.value)
  assert "augment.ada_interval" not in str(e.value) and "at its default" in str(e.value)
  # A field this version no longer has still refuses.
  gone = copy.deepcopy(saved)
  gone["loss"]["old_field"] = 1
  with pytest.raises(CheckpointMismatchError, match="loss.old_field: saved 1, not in the current"):
    compat.check_config(gone, now, where="The checkpoint at step 4")


@pytest.mark.full
def test_a_run_of_an_earlier_version_resumes(tmp_path):
  """tests/reference/workdir_v*/: finished runs written by earlier jaxgan versions (by
  benchmarks/make_checkpoint_reference.py) resume with today's config and train state."""
  import jaxgan

  sys.path.insert(0, str(REPO / "benchmarks"))
  from make_checkpoint_reference import reference_config

  runs = sorted((REPO / "tests" / "reference").glob("workdir_v*"))
  assert runs, "no stored runs of earlier versions"
  for run in runs:
    workdir = tmp_path / run.name
    shutil.copytree(run, workdir)
    gan, state, config = jaxgan.load(str(workdir))
    assert int(state.step) == 20 and config.model.kwargs.g_hidden == [16, 16]
    jaxgan.train_and_evaluate(reference_config(40), str(workdir))
    assert int(jaxgan.load(str(workdir))[1].step) == 40, run.name
