"""First-step time of `python -m jaxgan.main` with a cold and a warm persistent compilation cache.

Each repetition launches the run twice, each time in a fresh workdir: first with an empty cache
directory (cold: every program is compiled and written), then with the directory the first
launch filled (warm: the programs are read back). Per launch it reports

* `launch->step 1`: wall time from starting the process to the first step's line in
  metrics.jsonl (imports, data, initialisation, the train step's trace, compile and first run);
* `step 1`: the loop's own time for the first step (1 / the steps_per_sec of that line: the
  train step's trace, compile or cache load, and run);
* `step compile`: the train step's XLA compilation, or its cache load (JAX_LOG_COMPILES's
  "Finished XLA compilation of jit(call)"), and `all compiles`: that summed over every program;
* `total`: the launch's wall time to exit.

    python benchmarks/compile_cache.py --source_dir ../shared/data            # 3 reps
    python benchmarks/compile_cache.py --config experiments/configs/toy_ring.py --steps 500 \
        --config.run.steps_per_call=500                                      # any --config.*
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPILE = re.compile(r"Finished XLA compilation of (\S+) in ([0-9.eE+-]+) sec")


def launch(config: str, steps: int, workdir: Path, cache_dir: Path, extra: list[str]) -> dict:
  """Runs one launch of `python -m jaxgan.main` and times it.

  Args:
    config: the config file.
    steps: `--config.run.steps`.
    workdir: a fresh workdir.
    cache_dir: `--config.run.compilation_cache_dir`.
    extra: more `--config.*` flags.

  Returns:
    Seconds: `launch_to_step1`, `step1`, `step_compile`, `all_compiles`, `total` (see the module
    docstring), and `cache_hits`, the number of programs loaded from the cache.

  Raises:
    RuntimeError: the launch exited non-zero (with the end of its log).
  """
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  env["JAX_LOG_COMPILES"] = "1"
  argv = [
    sys.executable,
    "-m",
    "jaxgan.main",
    f"--config={config}",
    f"--workdir={workdir}",
    f"--config.run.steps={steps}",
    "--config.log.every=1",
    "--config.eval.metrics=",
    f"--config.run.compilation_cache_dir={cache_dir}",
    *extra,
  ]
  metrics = workdir / "metrics.jsonl"
  with tempfile.TemporaryFile("w+") as err:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    first = None
    while proc.poll() is None:
      if first is None and metrics.exists() and metrics.read_text().endswith("\n"):
        first = time.perf_counter() - start
      time.sleep(0.02)
    total = time.perf_counter() - start
    err.seek(0)
    log = err.read()
  if proc.returncode:
    raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{log[-3000:]}")
  line = json.loads(metrics.read_text().splitlines()[0])
  compiles = [(name, float(t)) for name, t in COMPILE.findall(log)]
  return {
    "launch_to_step1": first if first is not None else total,
    "step1": 1.0 / line["steps_per_sec"],
    "step_compile": sum(t for name, t in compiles if name == "jit(call)"),
    "all_compiles": sum(t for _, t in compiles),
    "total": total,
    "cache_hits": log.count("Persistent compilation cache hit"),
  }


def main(argv=None) -> int:
  """Alternates cold and warm launches; prints a Markdown table of medians and every rep.

  Args:
    argv: command-line arguments (default `sys.argv[1:]`).

  Returns:
    The exit status, 0.
  """
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", default="experiments/configs/mnist_dcgan.py")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--reps", type=int, default=3)
  p.add_argument("--source_dir", default=os.environ.get("JAXGAN_SOURCE_DIR"))
  args, extra = p.parse_known_args(argv)  # the rest: more --config.* flags for every launch
  if args.source_dir:
    extra.append(f"--config.run.source_dir={args.source_dir}")
  keys = ["launch_to_step1", "step1", "step_compile", "all_compiles", "total"]
  rows = {"cold": [], "warm": []}
  with tempfile.TemporaryDirectory(prefix="jaxgan_compile_cache_") as tmp:
    for rep in range(args.reps):
      cache = Path(tmp) / f"cache{rep}"
      for kind in ("cold", "warm"):
        r = launch(args.config, args.steps, Path(tmp) / f"{kind}{rep}", cache, extra)
        rows[kind].append(r)
        print(f"rep {rep} {kind}: " + "  ".join(f"{k} {r[k]:.2f}" for k in keys), flush=True)
        print(f"  cache hits {r['cache_hits']}", flush=True)
  print(f"\n`uptime`: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
  print("\n| launch | " + " | ".join(f"{k} (s)" for k in keys) + " |")
  print("|---" * (len(keys) + 1) + "|")
  for kind, rs in rows.items():
    cells = [
      f"{statistics.median(r[k] for r in rs):.2f} ({', '.join(f'{r[k]:.2f}' for r in rs)})"
      for k in keys
    ]
    print(f"| {kind} | " + " | ".join(cells) + " |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
