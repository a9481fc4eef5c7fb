"""The package's layers, read from the source: imports run downward only.

jaxgan is built in layers (the README's "Layout"): the pure maths (losses, penalties, regularisers,
augmentations, schedules) know nothing else of jaxgan; the models know nothing of the maths that
trains them; the step composes the two; the data and the metrics know nothing of the step or the
run; the run (config, builder, loop, checkpoints, command lines) sits on top. Every import
statement of every module is read with `ast`, including the imports inside functions (a lazy import
is still a dependency), so the test needs no interpreter per module and names each offending line.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxgan"

# Each layer, by module prefix; the first match wins, so a longer prefix goes first.
LAYERS = (
  ("pure", ("jaxgan.losses", "jaxgan.penalties", "jaxgan.regularizers", "jaxgan.schedules")),
  ("pure", ("jaxgan.heads", "jaxgan.input_gradients", "jaxgan.noise_penalties")),
  ("pure", ("jaxgan.augment",)),
  ("base", ("jaxgan.errors", "jaxgan.cache", "jaxgan.onednn")),
  ("models", ("jaxgan.models",)),
  ("step", ("jaxgan.step",)),
  ("data", ("jaxgan.data",)),
  ("metrics", ("jaxgan.metrics",)),
  ("run", ("jaxgan.config", "jaxgan.run", "jaxgan.main", "jaxgan.generate", "jaxgan.evaluate")),
  ("run", ("jaxgan",)),  # the package's own __init__: the lazy public names
)

# What each layer may import. `base` is the shared leaf (the user-error types, the CPU convolution
# backend); the pure maths do not even use it, so that they can be copied out alone.
ALLOWED = {
  "pure": {"pure"},
  "base": {"base"},
  "models": {"base", "models"},
  "step": {"pure", "base", "models", "step"},
  "data": {"base", "data"},
  "metrics": {"base", "models", "data", "metrics"},
  "run": {"pure", "base", "models", "step", "data", "metrics", "run"},
}


def layer(module: str) -> str:
  for name, prefixes in LAYERS:
    if any(module == p or module.startswith(p + ".") for p in prefixes):
      return name
  raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
  parts = list(path.relative_to(root).with_suffix("").parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def jaxgan_imports(path: pathlib.Path, root: pathlib.Path = ROOT):
  """Yields `(line, imported module)` for each import of jaxgan in a file, lazy ones included."""
  package = module_name(path, root)
  if path.name != "__init__.py":
    package = package.rsplit(".", 1)[0]
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.split(".")[0] == "jaxgan":
          yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # a relative import, resolved against the file's package
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
      if base.split(".")[0] != "jaxgan":
        continue
      for alias in node.names:  # `from jaxgan import losses` imports the module jaxgan.losses
        sub = f"{base}.{alias.name}"
        is_module = (root / sub.replace(".", "/")).is_dir() or (
          root / (sub.replace(".", "/") + ".py")
        ).is_file()
        yield node.lineno, sub if is_module else base


def upward_imports(paths, root: pathlib.Path = ROOT) -> list[str]:
  """Each import in `paths` that its layer may not make, as 'file:line: what imports what'."""
  found = []
  for path in paths:
    here = module_name(path, root)
    for line, target in sorted(set(jaxgan_imports(path, root))):
      if layer(target) not in ALLOWED[layer(here)]:
        found.append(
          f"{path.relative_to(root)}:{line}: {here} ({layer(here)}) imports {target} "
          f"({layer(target)})"
        )
  return found


def test_imports_run_downward_only():
  found = upward_imports(sorted(PACKAGE.rglob("*.py")))
  assert not found, "Upward imports (see the layers in this file's docstring):\n" + "\n".join(found)


def test_the_check_finds_an_upward_import(tmp_path):
  """The walker itself: an import from the run inside a loss is found, a lazy one too."""
  fake = tmp_path / "jaxgan"
  fake.mkdir()
  (fake / "run").mkdir()
  (fake / "run" / "loop.py").write_text("")
  (fake / "penalties.py").write_text("")
  (fake / "losses.py").write_text(
    "import jax\nfrom jaxgan import penalties\n\ndef f():\n  from jaxgan.run import loop\n"
  )
  found = upward_imports([fake / "losses.py"], root=tmp_path)
  assert found == ["jaxgan/losses.py:5: jaxgan.losses (pure) imports jaxgan.run.loop (run)"]


def test_experiment_configs_import_only_the_config():
  """An experiment config imports `jaxgan.config` alone (what that loads: tests/test_imports.py)."""
  found = {
    str(path.relative_to(ROOT)): target
    for path in sorted((ROOT / "experiments" / "configs").glob("*.py"))
    for _, target in jaxgan_imports(path)
    if target != "jaxgan.config"
  }
  assert not found, found


def test_modules_stay_readable():
  """No module grows past 400 lines: past that, a module holds more than one job."""
  long = {
    str(p.relative_to(ROOT)): n
    for p in PACKAGE.rglob("*.py")
    if (n := len(p.read_text().splitlines())) > 400
  }
  assert not long, long
