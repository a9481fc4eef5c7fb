"""End to end: configs through train_and_evaluate, the files a run leaves, and early errors."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
from _helpers import REAL_DATA, REPO, require_real_data
from PIL import Image

from jaxgan import config as config_lib
from jaxgan.run import loop


def _config(name, variant=None):
  spec = importlib.util.spec_from_file_location(
    name, REPO / "experiments" / "configs" / f"{name}.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


@pytest.fixture(scope="module")
def data_dir(mnist_dir):
  return mnist_dir  # MNIST prepared once per session (conftest.py)


def _small(config, data_dir):
  """A 4-step run of a tiny DCGAN on the real data, logging and saving every 2 steps."""
  config.run.update(data_dir=data_dir, source_dir=str(REAL_DATA), steps=4)
  config.model.width, config.data.batch_size = 8, 8
  config.log.update(every=2, sample_every=2)
  config.checkpoint.every = 2
  config.eval.metrics = ""  # the evaluation is tested below, with a small classifier


@pytest.mark.parametrize(
  "name",
  [
    "mnist_dcgan",
    "mnist_wgan_gp",
    "fashion_mnist_lsgan",
    "cifar10_sngan_hinge",
    "toy_ring",
    "toy_grid",
    "stacked_mnist_dcgan",
    "stacked_mnist_r3gan",
    "cifar10_r3gan",
    "mnist_cdcgan",
    "cifar10_sngan_projection",
    "stacked_mnist_cdcgan",
    "images_resnet",
  ],
)
def test_every_config_is_valid_and_documents_its_command(name):
  config = _config(name)
  config_lib.validate(config)
  text = (REPO / "experiments" / "configs" / f"{name}.py").read_text()
  assert f"python -m jaxgan.main --config=experiments/configs/{name}.py" in text


@pytest.mark.full
def test_mnist_dcgan_run_writes_its_files(tmp_path, data_dir):
  config = _config("mnist_dcgan")
  _small(config, data_dir)
  config.log.num_samples = 16
  result = loop.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(result["d_loss"]) and np.isfinite(result["g_loss"])
  lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [2, 4]
  assert {"d_loss", "g_loss", "steps_per_sec", "d_real", "d_fake"} <= set(lines[0])
  image = np.asarray(Image.open(tmp_path / "samples" / "step_0000004.png"))
  assert image.shape == (4 * 29 + 1, 4 * 29 + 1) and image.std() > 0  # 4x4 grid of 28x28 digits
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
  assert json.loads((tmp_path / "config.json").read_text())["loss"]["name"] == "non_saturating"
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [
    "2",
    "4",
  ]
  # Running again in the same workdir resumes: nothing left to do at step 4.
  config.run.steps = 6
  loop.train_and_evaluate(config, str(tmp_path))
  lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [2, 4, 6]


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
  require_real_data("cifar10_jpeg")
  from jaxgan import data

  path = tmp_path_factory.mktemp("tfds_cifar")
  # The smoke runs read a few batches: the first 1,000 images of each split, in this module's own
  # data_dir, spare decoding all 60,000 JPEGs (the source files are still verified whole, and
  # tests/test_data.py checks the records against the release).
  data.prepare("cifar10_jpeg", data_dir=path, source_dir=REAL_DATA, max_examples_per_split=1000)
  return str(path)


# cifar10_sngan_projection differs from cifar10_sngan_hinge only by its conditioning, which the
# conditional R3GAN smoke run here and tests/test_conditional.py cover through the loop.
@pytest.mark.full
@pytest.mark.parametrize("name", ["cifar10_sngan_hinge", "cifar10_r3gan"])
def test_cifar10_smoke_variant_runs(tmp_path, cifar_dir, name):
  config = _config(name, "smoke")
  config.run.update(data_dir=cifar_dir, source_dir=str(REAL_DATA), steps=2)
  config.log.num_samples = 4
  if name.startswith("cifar10_sngan"):
    # One critic update: the program of five unrolled ones costs most of this test in compile,
    # and n_critic > 1 is tested in test_train.
    config.model.width, config.loss.n_critic = 8, 1
  config.log.update(every=1, sample_every=2)
  config.checkpoint.every = 2
  result = loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert np.isfinite(result["d_loss"])
  grid = Image.open(tmp_path / "run" / "samples" / "step_0000002.png").size
  # 4 samples: a 2x2 grid, or for the conditional model 4 classes of 1, one per row.
  assert grid == ((33 + 1, 4 * 33 + 1) if config.model.num_classes else (2 * 33 + 1,) * 2)
  if name == "cifar10_r3gan":  # RpGAN + R1 + R2 and scheduled ADA reach the logged metrics
    assert result["penalty_r1"] > 0 and result["penalty_r2"] > 0 and "aug_p" in result


@pytest.mark.full
def test_toy_run_reports_mode_coverage(tmp_path):
  config = _config("toy_ring")
  config.run.update(steps=40, steps_per_call=10)
  config.log.update(every=10, sample_every=20)
  config.eval.update(every=20, num_samples=500)
  config.checkpoint.every = 20
  config.data.batch_size = 32
  config.model.kwargs.update(g_hidden=(16,), d_hidden=(16,))
  result = loop.train_and_evaluate(config, str(tmp_path))
  lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [10, 20, 30, 40]
  assert [("eval/modes_captured" in line) for line in lines] == [False, True, False, True]
  # The untrained generator's samples are nowhere near the modes: a coverage of the ring that
  # is not all 8 modes at full quality, and distances that the metric computed from samples.
  assert result["eval/high_quality"] < 0.5 and result["eval/mean_distance"] > 0.05
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [
    "20",
    "40",
  ]
  assert Image.open(tmp_path / "samples" / "step_0000020.png").size == (256, 256)
  # Launched again at its last step, the run does nothing and writes nothing.
  before = sorted(str(p) for p in tmp_path.rglob("*"))
  assert loop.train_and_evaluate(config, str(tmp_path)) == {}
  assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.full
@pytest.mark.parametrize(
  "flag, message",
  [
    ("--config.steps=10", r"flat layout.*now lives at run\.steps \(--config\.run\.steps=\.\.\.\)"),
    ("--config.loss=hinge", r"'loss' is of the flat layout.*loss\.name"),
    (
      "--config.optim.lr=1",
      r"optim has no 'lr'; its fields are b1, b2, d_lr, ema_decay, ema_half_life, ema_rampup, g_lr",
    ),
    ("--config.run=1", r"config\.run is a section"),
  ],
)
def test_command_line_refuses_unknown_fields_naming_the_fix(tmp_path, flag, message):
  config = REPO / "experiments" / "configs" / "toy_ring.py"
  argv = [sys.executable, "-m", "jaxgan.main", f"--config={config}", f"--workdir={tmp_path}", flag]
  done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
  assert done.returncode != 0
  assert re.search(message, done.stderr), done.stderr
  assert "Traceback" not in done.stderr and not any(tmp_path.iterdir())


@pytest.mark.full
@pytest.mark.parametrize(
  "flag, message",
  [
    (
      "--config.loss.name=hinje",
      r"config\.loss\.name: Unknown GAN loss 'hinje'\. Valid names: .*hinge",
    ),
    ("--config.loss.penalty=r3", r"config\.loss\.penalty='r3': Unknown penalty 'r3'\. Valid names"),
    (
      "--config.model.name=stylegan",
      r"config\.model\.name: unknown model 'stylegan'; valid models",
    ),
    ("--config.augment.name=mixup", r"config\.augment: Unknown augmentation 'mixup'"),
    ("--config.data.batch_size=0", r"config\.data\.batch_size"),
    (
      "--config.data.resolution=48",
      r"config\.data\.resolution: dcgan supports image sizes 28, 32, 64, 128; got 48",
    ),
    ("--config.run.stepz=100", r"error: --config\.run\.stepz=100: .*run has no 'stepz'"),
    ("--config.optim.g_lr=cosine(2e-4, 5e-5)", r"config\.optim\.g_lr"),
  ],
)
def test_input_errors_are_one_message_and_status_2(tmp_path, flag, message):
  """An error in the input is refused before any data, model or file: its message, status 2, no
  traceback (with --verbose, the traceback too)."""
  config = REPO / "experiments" / "configs" / "mnist_dcgan.py"
  workdir = tmp_path / "run"
  argv = [sys.executable, "-m", "jaxgan.main", f"--config={config}", f"--workdir={workdir}", flag]
  # No data where the run looks: the name checks come first, or this would be a data error.
  env = {**os.environ, "JAXGAN_SOURCE_DIR": str(tmp_path / "none"), "TFDS_DATA_DIR": str(tmp_path)}
  done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
  assert done.returncode == 2, done.stderr[-3000:]
  assert re.search(message, done.stderr) and done.stderr.count("error:") == 1, done.stderr
  assert "Traceback" not in done.stderr and not workdir.exists()
  assert "compilation cache" not in done.stderr  # refused before anything else is logged
  if flag.startswith("--config.loss.name"):
    verbose = subprocess.run(
      [*argv, "--verbose"], capture_output=True, text=True, timeout=120, env=env
    )
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


@pytest.mark.full
def test_missing_data_is_one_message_and_status_2(tmp_path):
  config = REPO / "experiments" / "configs" / "mnist_dcgan.py"
  argv = [
    sys.executable,
    "-m",
    "jaxgan.main",
    f"--config={config}",
    f"--workdir={tmp_path / 'run'}",
    f"--config.run.source_dir={tmp_path / 'nowhere'}",
    f"--config.run.data_dir={tmp_path / 'tfds'}",
  ]
  done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
  assert done.returncode == 2, done.stderr[-3000:]
  assert f"error: Source directory {tmp_path / 'nowhere'} for 'mnist' does not exist" in done.stderr
  assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
  "config, message",
  [
    ("mnist_dcgan.py:hingee", r"mnist_dcgan\.py has no variants; drop ':hingee'"),
    ("cifar10_r3gan.py:fulll", r"Unknown variant 'fulll'; valid: '' \(full\) or 'smoke'"),
    ("mnist_dcgn.py", r"no config file .*mnist_dcgn\.py; the configs in .*mnist_dcgan\.py"),
  ],
)
def test_config_file_typos_are_usage_errors(config, message):
  from absl import app

  from jaxgan.main import check_overrides

  path = REPO / "experiments" / "configs" / config
  with pytest.raises(app.UsageError, match=message):
    check_overrides(["jaxgan", f"--config={path}"])
  with pytest.raises(app.UsageError, match=message):
    check_overrides(["jaxgan", "--config", str(path)])


@pytest.mark.full
def test_missing_image_folder_is_one_message_and_status_2(tmp_path):
  config = REPO / "experiments" / "configs" / "mnist_dcgan.py"
  (tmp_path / "photos").mkdir()
  argv = [
    sys.executable,
    "-m",
    "jaxgan.main",
    f"--config={config}",
    f"--workdir={tmp_path / 'run'}",
    f"--config.data.name=folder:{tmp_path / 'photoz'}",
  ]
  done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
  assert done.returncode == 2, done.stderr[-3000:]
  assert re.search(
    r"error: Image folder .*photoz .*does not exist\. Folders in .*: photos", done.stderr
  )
  assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


def test_command_line_accepts_model_kwargs():
  from jaxgan.main import check_overrides

  check_overrides(["jaxgan", "--config.model.kwargs.conv=xla", "--config.run.steps=5"])
  # absl parses them into the config too: keys the experiment's config lacks included (only
  # jaxgan.config.check_override refuses keys, and it leaves the free-form sections alone).
  config = REPO / "experiments" / "configs" / "toy_ring.py"
  code = (  # the config flag reads sys.argv when it is defined
    "import sys\n"
    f"sys.argv = ['jaxgan', '--config={config}', '--workdir=w', '--config.model.kwargs.conv=xla',"
    " '--config.loss.penalties.r1=0.5']\n"
    "from jaxgan import main\n"
    "main.FLAGS(sys.argv)\n"
    "print(main.FLAGS.config.model.kwargs.conv, main.FLAGS.config.loss.penalties.r1)\n"
  )
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert done.stdout.split() == ["xla", "0.5"], done.stderr[-2000:]


@pytest.mark.full
def test_toy_steps_per_call_do_not_change_the_result(tmp_path):
  # The batch of step t is drawn from fold_in(key, t) inside the program: the same run scanned
  # 10 steps per call or 1 step per call gives the same parameters.
  results = []
  for k in (1, 10):
    config = _config("toy_ring")
    config.run.update(steps=20, steps_per_call=k)
    config.log.update(every=10, sample_every=20)
    config.eval.update(every=20, num_samples=100)
    config.checkpoint.every = 20
    config.data.batch_size = 16
    config.model.kwargs.update(g_hidden=(8,), d_hidden=(8,))
    results.append(loop.train_and_evaluate(config, str(tmp_path / f"k{k}")))
  for key in ("d_loss", "g_loss", "eval/mean_distance"):
    np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-5)


@pytest.mark.parametrize(
  "override,message",
  [
    (dict(lossy="x"), r"Unknown config field 'lossy': the config has no 'lossy'; its fields"),
    ({"optim.lossy": 1}, r"Unknown config field 'optim.lossy': optim has no 'lossy'.*g_lr"),
    ({"steps": 5}, r"flat layout.*--config\.run\.steps"),
    ({"loss.name": "gan"}, "Unknown GAN loss 'gan'.*non_saturating"),
    ({"loss.penalty": "gp"}, "Unknown penalty 'gp'.*wgan_gp"),
    ({"model.name": "vit"}, "vit.*dcgan.*mlp.*resnet"),
    ({"model.name": "dcgan", "model.kwargs": ml_collections.ConfigDict()}, "square image_shape"),
    ({"data.name": "imagenet"}, "Unknown data set config.data.name='imagenet'.*mnist"),
    ({"run.steps": 0}, "config.run.steps must be a positive integer"),
    ({"log.every": 250}, "multiples of config.run.steps_per_call=500"),
    ({"augment.name": "ada"}, "config.augment.name='ada' needs config.augment.ada_target"),
    ({"augment.name": "ada", "augment.ada_target": 1.5}, r"ada_target must lie in \(0, 1\)"),
    ({"augment.name": "diffaugment"}, "transforms images; 'toy_ring' is points in the plane"),
    ({"loss.penalty_every": 0}, "config.loss.penalty_every must be a positive integer"),
    ({"loss.penalties": {"r3": 1.0}}, "Unknown penalty 'r3'.*r1, r2"),
    ({"loss.penalties": {"r1": -1.0}}, r"config.loss.penalties.r1=-1.0 goes below 0"),
    ({"optim.g_lr": "cosine(1e-4, 0)"}, r"optim.g_lr: 'cosine\(1e-4, 0\)' does not fit cosine"),
    ({"optim.lr_decay": "linear"}, "optim.lr_decay is gone; use a schedule spec"),
    ({"model.num_classes": 10}, "'toy_ring' has no labels"),
    ({"model.d_norm": "batch", "loss.penalty": "r1"}, "'r1' penalty needs per-example.*BatchNorm"),
  ],
)
def test_bad_config_fails_before_training(tmp_path, override, message):
  config = _config("toy_ring")
  with config.unlocked():
    for k, v in override.items():
      section, _, name = k.rpartition(".")
      (config[section] if section else config)[name] = v
  with pytest.raises(ValueError, match=message):
    loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.full
def test_image_metrics_are_logged_with_their_protocol(tmp_path, data_dir):
  from jaxgan.metrics.classifier import save_classifier, train_classifier

  clf, _ = train_classifier(
    "mnist",
    steps=20,
    batch_size=32,
    widths=(8, 8),
    feature_dim=16,
    num_train=512,
    num_test=128,
    data_dir=data_dir,
    source_dir=str(REAL_DATA),
    log=lambda *a: None,
  )
  clf_path = tmp_path / "clf.npz"
  save_classifier(clf_path, clf)  # returns the checksum
  config = _config("mnist_dcgan")
  _small(config, data_dir)
  config.log.sample_every = 4
  config.checkpoint.update(every=1, keep=4)
  config.eval.update(every=2, metrics="fcd,kid", num_samples=200, classifier_path=str(clf_path))
  result = loop.train_and_evaluate(config, str(tmp_path / "run"))
  fcd_key = [k for k in result if k.endswith("/fcd")]
  assert fcd_key and fcd_key[0].startswith("mnist_convnet-200-train")
  assert np.isfinite(result[fcd_key[0]]) and result[fcd_key[0]] > 0
  assert "200" in (tmp_path / "run" / "eval_protocol.txt").read_text()
  lines = [
    json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
  ]
  assert all(fcd_key[0] in line for line in lines)
  # The finished run as objects, and evaluated again: the same metric and sample count with the
  # run's own keys reproduce the logged value; nothing but eval/<step>.json is written.
  import jaxgan
  from jaxgan.run import evaluate, loading

  run = str(tmp_path / "run")
  before = sorted(p.relative_to(run) for p in (tmp_path / "run").rglob("*"))
  gan, state, saved = jaxgan.load(run)
  assert int(state.step) == 4 and saved.eval.metrics == "fcd,kid"
  images = gan.sample(state, jax.random.PRNGKey(0), 3)
  assert images.shape == (3, 28, 28, 1)
  assert int(jaxgan.load(run, step=2)[1].step) == 2
  with pytest.raises(loading.RunNotFoundError, match="no checkpoint at step 9.*1, 2, 3, 4"):
    jaxgan.load(run, step=9)
  got = evaluate.evaluate_run(run, metrics="fcd", num_samples=200)
  assert got["metrics"][fcd_key[0]] == pytest.approx(lines[-1][fcd_key[0]], rel=1e-4)
  record = json.loads((tmp_path / "run" / "eval" / "4.json").read_text())
  assert record["step"] == 4 and fcd_key[0] in record["metrics"]
  after = sorted(p.relative_to(run) for p in (tmp_path / "run").rglob("*"))
  assert sorted(set(after) - set(before)) == [Path("eval"), Path("eval/4.json")]
  for args in (["--workdir", str(tmp_path)], ["--workdir", run, "--metrics", "fdc"]):
    with pytest.raises(SystemExit) as exit_info:
      evaluate.main([*args, "--metrics", "fcd"] if len(args) == 2 else args)
    assert exit_info.value.code == 2
  # Samples into files: deterministic whatever the batching; truncation; refusals write nothing.
  from jaxgan.run import generate

  a, step, _ = generate.generate(run, num=5, batch_size=2)
  b, _, _ = generate.generate(run, num=5)
  np.testing.assert_allclose(a, b, atol=1e-6)  # same latents; kernels per batch size round apart
  np.testing.assert_array_equal(generate.generate(run, num=5, batch_size=2)[0], a)
  assert step == 4 and a.shape == (5, 28, 28, 1)
  assert not np.array_equal(generate.generate(run, num=5, truncation=0.5)[0], a)
  generate.main(["--workdir", run, "--num", "5", "--out", str(tmp_path / "s.npz")])
  with np.load(tmp_path / "s.npz") as f:
    assert f["images"].dtype == np.uint8 and f["images"].shape == (5, 28, 28, 1)
  generate.main(["--workdir", run, "--interpolate", "2x3", "--out", str(tmp_path / "i.png")])
  assert Image.open(tmp_path / "i.png").size == (3 * 29 + 1, 2 * 29 + 1)
  generate.main(["--workdir", run, "--num", "3", "--out", str(tmp_path / "pngs")])
  assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [
    f"00000{i}.png" for i in range(3)
  ]
  for bad in (["--truncation", "0"], ["--labels", "3"], ["--step", "9"], ["--out", "x.jpg"]):
    with pytest.raises(SystemExit) as exit_info:
      generate.main(["--workdir", run, "--out", str(tmp_path / "bad.npz"), *bad])
    assert exit_info.value.code == 2 and not (tmp_path / "bad.npz").exists()
  # Keep-best reads a checkpoint's own evaluation: step 3 must not carry step 2's FCD.
  saved = {
    int(p.name): json.loads((p / "jaxgan_manifest.json").read_text())["metrics"]
    for p in (tmp_path / "run" / "checkpoints").iterdir()
    if p.name.isdigit()
  }
  assert sorted(saved) == [1, 2, 3, 4]
  assert [fcd_key[0] in (saved[s] or {}) for s in (1, 2, 3, 4)] == [False, True, False, True]
