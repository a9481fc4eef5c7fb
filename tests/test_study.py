"""The study driver runs train_and_evaluate per (part, variant, seed), tabulates and resumes."""

import csv
import json
import sys
import time

import pytest
from _helpers import REPO

sys.path.insert(0, str(REPO / "experiments"))
import study  # noqa: E402


@pytest.mark.full
def test_study_writes_its_tables_and_resumes(tmp_path):
  argv = [
    "--study=losses",
    "--parts=ring",
    "--variants=hinge,wgan+gp",
    "--seeds=1",
    "--steps=500",  # one call of the toy configs' steps_per_call
    f"--out={tmp_path}",
  ]
  start = time.time()
  study.main(argv)
  took = time.time() - start
  rows = list(csv.DictReader((tmp_path / "results.csv").open()))
  assert {(r["variant"], r["metric"]) for r in rows} == {
    (v, m) for v in ("hinge", "wgan+gp") for m in ("modes_captured", "high_quality", "reverse_kl")
  }
  assert {int(r["step"]) for r in rows} == {500}
  summary = (tmp_path / "summary.md").read_text()
  assert "| hinge |" in summary and "| wgan+gp |" in summary
  assert (tmp_path / "curves_ring.png").stat().st_size > 1000
  # Each run is a train_and_evaluate workdir with the variant's loss and its time spent.
  run = tmp_path / "runs" / "ring" / "wgan+gp" / "seed0"
  config = json.loads((run / "config.json").read_text())
  assert config["loss"]["penalty"] == "wgan_gp" and config["loss"]["n_critic"] == 5
  assert config["loss"]["penalty_weight"] == 1.0
  spent = {
    v: json.loads((tmp_path / "runs" / "ring" / v / "seed0" / "study_run.json").read_text())
    for v in ("hinge", "wgan+gp")
  }
  # Each run's share of this launch: the two runs together took at most the whole launch.
  assert sum(s["wall_seconds"] for s in spent.values()) <= took
  # Running again reads the finished runs back: nothing is trained, logged or timed twice.
  before = (run / "metrics.jsonl").read_text()
  study.main(argv)
  assert (run / "metrics.jsonl").read_text() == before
  assert json.loads((run / "study_run.json").read_text()) == spent["wgan+gp"]
  assert list(csv.DictReader((tmp_path / "results.csv").open())) == rows
  # Tabulating alone trains nothing and keeps runs of earlier launches.
  study.main(["--study=losses", "--parts=ring", "--no_train", f"--out={tmp_path}"])
  assert list(csv.DictReader((tmp_path / "results.csv").open())) == rows


def test_time_spent_is_measured_per_kind_and_summed_over_launches(tmp_path):
  def work(sleep, busy):
    def run():
      time.sleep(sleep)  # wall time without CPU time
      end = time.process_time() + busy
      while time.process_time() < end:
        pass

    return run

  def spent():
    return json.loads((tmp_path / "study_run.json").read_text())

  # Margins for other threads of this process, which count as its CPU time too.
  study._spend(str(tmp_path), "", work(0.8, 0.2))
  first = spent()
  assert set(first) == {"wall_seconds", "cpu_seconds"}
  assert 0.2 <= first["cpu_seconds"] < 0.6 and 1.0 <= first["wall_seconds"] < 30
  study._spend(str(tmp_path), "", work(0.8, 0.2))  # a second launch adds to the first
  second = spent()
  assert second["wall_seconds"] >= first["wall_seconds"] + 1.0
  assert second["cpu_seconds"] >= first["cpu_seconds"] + 0.2
  # Another kind (the final evaluation) keeps its own sums; a launch that fails still counts.
  with pytest.raises(ZeroDivisionError):
    study._spend(str(tmp_path), "eval_", lambda: (time.sleep(0.8), 1 / 0))
  third = spent()
  assert {k: third[k] for k in second} == second
  assert 0.8 <= third["eval_wall_seconds"] < 30 and third["eval_cpu_seconds"] < 0.4


def test_every_study_variant_builds_a_valid_config(tmp_path):
  args = study.argparse.Namespace(
    steps=0, width=32, eval_every=1000, data_dir=None, source_dir=None, out=str(tmp_path)
  )
  for name, (parts, variants) in study.STUDIES.items():
    for part in parts:
      for label, overrides in variants().items():
        c = study.run_config(part, overrides, 0, args)  # validates
        for path, value in overrides.items():
          got = c[path.split(".")[0]][path.split(".")[1]]
          got = got.to_dict() if hasattr(got, "to_dict") else got  # e.g. loss.penalties
          assert got == value, (name, part, label)


def test_study_refuses_unknown_parts_and_variants(tmp_path, capsys):
  out = tmp_path / "study"
  for flag, message in (
    ("--variants=nope", "unknown variants ['nope'] for --study=grid; valid: "),
    ("--parts=nope", "unknown parts ['nope']; valid: ring, grid"),
  ):
    with pytest.raises(SystemExit) as exit_info:
      study.main(["--study=grid", flag, f"--out={out}"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
  assert not out.exists()  # refused before anything is written


def test_tabulating_an_empty_study_says_how_to_start_it(tmp_path):
  with pytest.raises(SystemExit, match="drop --no_train"):
    study.main(["--study=grid", "--no_train", f"--out={tmp_path}"])


def test_lucic_study_tabulates_the_final_inception_evaluation(tmp_path):
  """A finished run's eval/<step>.json (jaxgan.evaluate) joins its logged classifier metrics:
  Inception KID and precision/recall keep their own names beside the classifier's."""
  args = study.argparse.Namespace(
    steps=0, width=32, eval_every=0, data_dir=None, source_dir=None, out=str(tmp_path)
  )
  variants = study.lucic_variants()
  configs = {v: study.run_config("mnist_fid", o, 0, args) for v, o in variants.items()}
  # compare_gan's budget: 20 epochs of 50,000 at batch 64, a 5-update critic reading 5 batches.
  assert configs["non_saturating"].run.steps == 15_625
  assert (configs["wgan+gp"].run.steps, configs["wgan+gp"].loss.n_critic) == (3_125, 5)
  assert study.FINAL_EVALS["mnist_fid"]["reference_split"] == "test"
  run = tmp_path / "runs" / "mnist_fid" / "non_saturating" / "seed0"
  (run / "eval").mkdir(parents=True)
  logged = {"step": 15_625, "mnist_convnet-10k-train/fcd": 3.0, "mnist_convnet-10k-train/kid": 0.1}
  (run / "metrics.jsonl").write_text(json.dumps(logged) + "\n")
  (run / "study_run.json").write_text(json.dumps({"wall_seconds": 60, "cpu_seconds": 120}))
  final = {"inception_fid-10k-test/fid": 12.5, "inception_fid-10k-test/kid": 0.01}
  record = {"step": 15_625, "metrics": final, "protocols": {}}
  (run / "eval" / "15625.json").write_text(json.dumps(record))
  study.main(["--study=lucic", "--parts=mnist_fid", "--no_train", f"--out={tmp_path}"])
  rows = {
    (r["metric"], float(r["value"])) for r in csv.DictReader((tmp_path / "results.csv").open())
  }
  assert rows == {("fid", 12.5), ("kid_inception", 0.01), ("fcd", 3.0), ("kid", 0.1)}
  summary = (tmp_path / "summary.md").read_text()
  assert "| non_saturating | 12.5 +- 0" in summary and "6.7-20.3" in summary
  assert (tmp_path / "final_mnist_fid.png").stat().st_size > 1000
