"""Whether a checkpoint belongs to the current run: its config and its tree.

The resolved config is stored with every checkpoint. On restore, and before the first save into a
directory that already holds checkpoints, the stored config is compared with the current one, and
the stored tree (paths, shapes, dtypes) with the abstract state; any difference raises
`CheckpointMismatchError` naming the dotted fields or parameter paths, instead of a stack trace
from jaxgan.errors import UserError
from deep inside orbax. A mismatch is not corruption: nothing is moved or deleted.

The rule for configs is structural (see `jaxgan.config`): fields in the sections of
`RESUMABLE_SECTIONS` (`run`, `log`, `eval`, `checkpoint`: how long, where, how often) may differ
when a run is resumed; every other field (`seed`, `data`, `model`, `loss`, `optim`) defines the
experiment and must be equal. A checkpoint whose config has the flat layout of jaxgan 0.1 (no
sections) is refused with a message that says so, never compared field by field or misloaded.

  >>> saved = {"seed": 0, "model": {"width": 8}, "run": {"steps": 100}}
  >>> config_diff(saved, {"seed": 0, "model": {"width": 16}, "run": {"steps": 500}})
  ['model.width: saved 8, now 16']
  >>> is_flat_layout({"dataset": "mnist", "loss": "hinge", "steps": 100})
  True
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxgan.config import FLAT_LAYOUT, RESUMABLE_SECTIONS
from jaxgan.errors import UserError

log = logging.getLogger(__name__)
_FIX = "Resume with the config that wrote it, or start the new config in a new workdir."


class CheckpointMismatchError(UserError, ValueError):
  """The checkpoint was written by a run with another config or another state structure."""


def _json_default(x):
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, (set, frozenset)):
    return sorted(x, key=repr)
  if hasattr(x, "to_dict"):  # ml_collections.ConfigDict
    return x.to_dict()
  return str(x)


def to_json(obj: Any) -> Any:
  """`obj` as a JSON roundtrip gives it back (ConfigDicts -> dicts, tuples -> lists, str keys).

  Args:
    obj: a JSON-able tree: dicts, ConfigDicts, lists, tuples, NumPy scalars and arrays; or None.

  Returns:
    Plain dicts, lists, strings and numbers, or None.
  """
  if obj is None:
    return None
  if hasattr(obj, "to_dict"):
    obj = obj.to_dict()
  return json.loads(json.dumps(obj, default=_json_default, sort_keys=True))


def _flatten(cfg: Mapping, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in cfg.items():
    key = f"{prefix}.{k}" if prefix else str(k)
    if isinstance(v, Mapping):
      out.update(_flatten(v, key))  # an empty section contributes no field
    else:
      out[key] = v
  return out


def is_flat_layout(config: Mapping | None) -> bool:
  """Whether a stored config has the flat layout of jaxgan 0.1 (`jaxgan.config.FLAT_LAYOUT`).

  Args:
    config: a stored config, as JSON gives it back.

  Returns:
    True when a top-level key of the flat layout holds a value rather than a section (e.g.
    `dataset`, `steps`, `g_lr`, or `loss` a name), the rule `jaxgan.config.validate` applies.
  """
  return any(k in FLAT_LAYOUT and not isinstance(v, Mapping) for k, v in (config or {}).items())


def config_diff(
  saved: Mapping | None, now: Mapping | None, resumable: Sequence[str] = RESUMABLE_SECTIONS
) -> list[str]:
  """The fields that differ between two nested configs, outside the resumable sections.

  Args:
    saved: the config stored with the checkpoint.
    now: the current config (a dict or ConfigDict).
    resumable: top-level sections whose fields may differ.

  Returns:
    One line per differing dotted field, sorted: `'<field>: saved <value>, now <value>'` (or
    'not in the saved config' / 'not in the current config').
  """
  a, b = _flatten(to_json(saved) or {}), _flatten(to_json(now) or {})
  lines = []
  for key in sorted(set(a) | set(b)):
    if key.split(".", 1)[0] in resumable:
      continue
    if key not in b:
      lines.append(f"{key}: saved {a[key]!r}, not in the current config")
    elif key not in a:
      lines.append(f"{key}: not in the saved config, now {b[key]!r}")
    elif a[key] != b[key]:
      lines.append(f"{key}: saved {a[key]!r}, now {b[key]!r}")
  return lines


def _added_at_default(line: str, now: Mapping | None) -> bool:
  """Whether a `config_diff` line is a field the saved config lacks and `now` holds at its
  default: a field added to jaxgan after the checkpoint was written, left as the older version
  behaved (every field's default is the behaviour from before it existed)."""
  if ": not in the saved config, now " not in line:
    return False
  from jaxgan.config import default_config  # pylint: disable=g-import-not-at-top

  key = line.split(":", 1)[0]
  defaults = _flatten(to_json(default_config().to_dict()))
  return key in defaults and _flatten(to_json(now) or {}).get(key) == defaults[key]


def check_config(
  saved: Mapping | None,
  now: Mapping | None,
  *,
  where: str,
  resumable: Sequence[str] = RESUMABLE_SECTIONS,
) -> None:
  """Raises unless a checkpoint written with config `saved` may be resumed with `now`.

  Args:
    saved: the config stored with the checkpoint.
    now: the current config.
    where: names the checkpoint in the message, e.g. 'The checkpoint at step 5 in /w/checkpoints'.
    resumable: top-level sections whose fields may differ.

  A field that `saved` lacks is accepted when `now` holds it at its default (a field a later
  jaxgan added: the checkpoint's run behaved as the default does), and logged.

  Raises:
    CheckpointMismatchError: `saved` has the flat layout of jaxgan 0.1, or a field outside the
      resumable sections differs (each one named with both values), or a field added since the
      checkpoint is set to another value than its default.
  """
  if is_flat_layout(saved):
    raise CheckpointMismatchError(
      f"{where} was written by the flat config layout of an earlier jaxgan and cannot be resumed "
      "by this version. Start a new workdir, or use jaxgan 0.1 to finish it."
    )
  diff = config_diff(saved, now, resumable)
  added = [d for d in diff if _added_at_default(d, now)]
  if added:
    log.info(
      "%s predates %d config field(s), resumed at their defaults: %s",
      where,
      len(added),
      ", ".join(d.split(":", 1)[0] for d in added),
    )
    diff = [d for d in diff if d not in added]
  if diff:
    fix = _FIX
    if any("not in the saved config" in d or "not in the current config" in d for d in diff):
      # Fields added or removed: a config of another jaxgan version, not a changed value.
      fix = (
        "Fields were added or removed since the checkpoint was written: a field it lacks can "
        "be resumed only at its default (drop the override), and one this jaxgan no longer "
        "has cannot. Otherwise finish it with the jaxgan version that wrote it, or start a new "
        "workdir."
      )
    raise CheckpointMismatchError(
      f"{where} was written with a different config:\n  "
      + "\n  ".join(diff)
      + f"\n{fix} (Only the sections {tuple(resumable)} may differ when resuming.)"
    )


def _path_str(path) -> str:
  def one(k):
    for attr in ("name", "key", "idx"):
      if hasattr(k, attr):
        return str(getattr(k, attr))
    return str(k)

  return "/".join(one(k) for k in path)


def _leaves(tree) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
  is_leaf = lambda x: hasattr(x, "shape") and hasattr(x, "dtype")  # noqa: E731
  flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]
  return {_path_str(p): (tuple(x.shape), np.dtype(x.dtype)) for p, x in flat}


def check_tree(saved, abstract, *, where: str) -> None:
  """Raises unless the stored tree has the current state's paths, shapes and dtypes.

  Args:
    saved: the stored tree's metadata (leaves with `.shape` and `.dtype`), from orbax.
    abstract: the current state, concrete or of `jax.ShapeDtypeStruct`s.
    where: names the checkpoint in the message.

  Raises:
    CheckpointMismatchError: naming every differing parameter path (the first 25) with the
      stored and current `(shape) dtype`.
  """
  stored, wanted = _leaves(saved), _leaves(abstract)
  fmt = lambda sd: f"{sd[0]} {sd[1]}"  # noqa: E731
  lines = []
  for path in sorted(set(stored) | set(wanted)):
    if path not in wanted:
      lines.append(f"{path}: in the checkpoint {fmt(stored[path])}, not in the current state")
    elif path not in stored:
      lines.append(f"{path}: missing from the checkpoint, current state has {fmt(wanted[path])}")
    elif stored[path] != wanted[path]:
      lines.append(f"{path}: checkpoint {fmt(stored[path])} != current {fmt(wanted[path])}")
  if lines:
    shown = lines[:25] + ([f"... and {len(lines) - 25} more"] if len(lines) > 25 else [])
    raise CheckpointMismatchError(
      f"{where} does not match the current model/optimizer ({len(lines)} mismatching parameter "
      "paths):\n  " + "\n  ".join(shown) + f"\n{_FIX}"
    )
