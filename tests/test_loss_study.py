"""The loss study drives train_and_evaluate per (part, variant, seed) and resumes where it stopped."""

import csv
import json
import sys

from _helpers import REPO

sys.path.insert(0, str(REPO / "experiments"))
import loss_study  # noqa: E402


def test_study_writes_its_tables_and_resumes(tmp_path, capsys):
  argv = [
    "--parts=ring",
    "--variants=hinge,wgan+gp",
    "--seeds=1",
    "--toy_steps=500",
    f"--out={tmp_path}",
  ]
  loss_study.main(argv)
  rows = list(csv.DictReader((tmp_path / "results.csv").open()))
  assert {(r["variant"], r["metric"]) for r in rows} == {
    (v, m) for v in ("hinge", "wgan+gp") for m in ("modes_captured", "high_quality")
  }
  assert {int(r["step"]) for r in rows} == {500}
  summary = (tmp_path / "summary.md").read_text()
  assert "| hinge |" in summary and "| wgan+gp |" in summary
  assert (tmp_path / "curves_ring.png").stat().st_size > 1000
  # Each run is a train_and_evaluate workdir with the variant's loss.
  run = tmp_path / "runs" / "ring" / "wgan+gp" / "seed0"
  config = json.loads((run / "config.json").read_text())
  assert config["loss"]["penalty"] == "wgan_gp" and config["loss"]["n_critic"] == 5
  assert config["loss"]["penalty_weight"] == 1.0
  # Running again reads the finished runs back: nothing is trained or logged twice.
  before = (run / "metrics.jsonl").read_text()
  loss_study.main(argv)
  assert (run / "metrics.jsonl").read_text() == before
  assert list(csv.DictReader((tmp_path / "results.csv").open())) == rows
