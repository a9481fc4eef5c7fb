"""FID Inception weights onto jaxgan's Flax `InceptionV3`: both published files' names.

Two files hold the TF 2015 Inception graph's weights under different names: pytorch-fid's state
dict (`Mixed_5b.branch1x1.conv.weight`, ...; 94 conv + batch-norm groups and the 1008-way `fc`)
and the StyleGAN3 / clean-fid TorchScript file (`net.layers.mixed.conv.weight`, ...; the same
94 groups, batch norms without scale, no `fc`). `jaxgan.metrics.inception_net` carries
pytorch-fid's names; this module maps both onto it, checking every name and shape, so a file of
another network is refused instead of giving wrong features.
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.metrics import inception_weights as weights_lib
from jaxgan.metrics import torch_archive
from jaxgan.metrics.inception_net import NUM_CLASSES, InceptionV3
from jaxgan.metrics.inception_weights import FID_WEIGHTS_URL

__all__ = [
  "convert",
  "read_state_dict",
  "state_dict_from_variables",
  "variables_from_state_dict",
  "variables_from_torchscript",
]


# ------------------------------------------------------------------------------------------------
# pytorch-fid state dict <-> Flax variables


def _basic_conv_paths(tree, prefix=()):
  """Yields the paths of every BasicConv2d (a dict with 'conv' and 'bn') in a params tree."""
  if isinstance(tree, Mapping) and "conv" in tree and "bn" in tree:
    yield prefix
    return
  if isinstance(tree, Mapping):
    for k, v in tree.items():
      yield from _basic_conv_paths(v, prefix + (k,))


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree


def _set(tree, path, value):
  for k in path[:-1]:
    tree = tree.setdefault(k, {})
  tree[path[-1]] = value


@functools.lru_cache(maxsize=2)
def _abstract_variables(num_classes: int | None = NUM_CLASSES):
  # 75: the smallest input the network takes; the variables' shapes do not depend on it. Cached
  # because every load needs these shapes and tracing the whole network is slow.
  return jax.eval_shape(
    InceptionV3(num_classes).init, jax.random.PRNGKey(0), jnp.zeros((1, 75, 75, 3))
  )


def state_dict_from_variables(variables) -> dict[str, np.ndarray]:
  """Flax variables to a pytorch-fid-layout state dict.

  Args:
    variables: `{'params': ..., 'batch_stats': ...}` of `InceptionV3`.

  Returns:
    `{name: array}` with pytorch-fid's names and PyTorch layouts (conv kernels `(out, in, kh,
    kw)`, the fc weight `(1008, 2048)`).
  """
  params, stats = variables["params"], variables["batch_stats"]
  out = {}
  for path in _basic_conv_paths(params):
    name = ".".join(path)
    out[f"{name}.conv.weight"] = np.transpose(
      np.asarray(_get(params, path)["conv"]["kernel"]), (3, 2, 0, 1)
    )
    out[f"{name}.bn.weight"] = np.asarray(_get(params, path)["bn"]["scale"])
    out[f"{name}.bn.bias"] = np.asarray(_get(params, path)["bn"]["bias"])
    out[f"{name}.bn.running_mean"] = np.asarray(_get(stats, path)["bn"]["mean"])
    out[f"{name}.bn.running_var"] = np.asarray(_get(stats, path)["bn"]["var"])
  out["fc.weight"] = np.asarray(params["fc"]["kernel"]).T
  out["fc.bias"] = np.asarray(params["fc"]["bias"])
  return out


def variables_from_state_dict(state_dict: Mapping[str, Any]) -> dict:
  """A pytorch-fid state dict to Flax variables, shape-checked.

  Every expected name must be present with its shape; extra names other than BatchNorm's
  `num_batches_tracked` counters are an error (e.g. torchvision's ImageNet Inception, which has
  other blocks and 1000 classes, is refused instead of giving wrong features).

  Args:
    state_dict: `{name: torch tensor or array}` in pytorch-fid's layout.

  Returns:
    `{'params': ..., 'batch_stats': ...}` for `InceptionV3`, float32 NumPy arrays.

  Raises:
    ValueError: naming missing, unexpected and wrongly shaped entries.
  """
  sd = {
    k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, np.float32)
    for k, v in state_dict.items()
    if not k.endswith("num_batches_tracked")
  }
  abstract = _abstract_variables()
  want = {
    k: v.shape
    for k, v in state_dict_from_variables(
      jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), abstract)
    ).items()
  }
  missing = sorted(set(want) - set(sd))
  unexpected = sorted(set(sd) - set(want))
  bad = sorted(k for k in set(want) & set(sd) if sd[k].shape != want[k])
  if missing or unexpected or bad:
    raise ValueError(
      "Not a pytorch-fid FID Inception state dict: "
      + (
        f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} ({len(missing)}); "
        if missing
        else ""
      )
      + (f"unexpected {unexpected[:5]} ({len(unexpected)}); " if unexpected else "")
      + (f"wrong shapes {[(k, sd[k].shape, want[k]) for k in bad[:5]]}; " if bad else "")
      + f"expected the file from {FID_WEIGHTS_URL}."
    )
  params, stats = {}, {}
  for path in _basic_conv_paths(abstract["params"]):
    name = ".".join(path)
    _set(
      params,
      path,
      {
        "conv": {"kernel": np.transpose(sd[f"{name}.conv.weight"], (2, 3, 1, 0))},
        "bn": {"scale": sd[f"{name}.bn.weight"], "bias": sd[f"{name}.bn.bias"]},
      },
    )
    _set(
      stats,
      path,
      {"bn": {"mean": sd[f"{name}.bn.running_mean"], "var": sd[f"{name}.bn.running_var"]}},
    )
  params["fc"] = {"kernel": sd["fc.weight"].T, "bias": sd["fc.bias"]}
  return {"params": params, "batch_stats": stats}


# The start of an old-format (PyTorch < 1.6) torch.save file: a pickle (protocol 2) of torch's
# magic number 0x1950a86a20f9469cfc6c.
_LEGACY_TORCH_HEADER = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads pytorch-fid's .pth or a .npz written by `convert`.

  Args:
    path: the file; `.npz` is read with NumPy, a zip-format .pth (PyTorch >= 1.6) with
      `torch_archive.read_tensors`, an older .pth with `torch.load`.

  Returns:
    `{name: NumPy array}`.

  Raises:
    ImportError: for an old-format .pth without PyTorch installed (the message says how to
      convert it).
    ValueError: for a file in none of these formats, or a damaged archive.
  """
  path = os.fspath(path)
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  if zipfile.is_zipfile(path):
    return torch_archive.read_tensors(path)
  with open(path, "rb") as f:
    if f.read(len(_LEGACY_TORCH_HEADER)) != _LEGACY_TORCH_HEADER:
      raise ValueError(
        f"{path} is neither a PyTorch zip archive, an old-format torch.save file nor an .npz: "
        f"not FID Inception weights. Get {weights_lib.FID_HELPER_FILE} with "
        f"`{weights_lib.FETCH_COMMAND}`, or pytorch-fid's file from {FID_WEIGHTS_URL}."
      )
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
      f"Reading {path} needs PyTorch; or convert it to .npz once elsewhere with "
      "`python -m jaxgan.metrics.inception --convert IN.pth OUT.npz`."
    ) from e
  sd = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.detach().cpu().numpy() for k, v in sd.items()}


def convert(pth_path, npz_path) -> None:
  """Writes pytorch-fid's .pth as an .npz with the same names and arrays (no PyTorch to read).

  Args:
    pth_path: the .pth (reading it needs PyTorch).
    npz_path: the .npz to write.

  Raises:
    ValueError: when the .pth is not the FID Inception state dict.
  """
  sd = read_state_dict(pth_path)
  variables_from_state_dict(sd)  # validate before writing
  np.savez(npz_path, **{k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")})


# ------------------------------------------------------------------------------------------------
# The StyleGAN3 / clean-fid TorchScript file -> Flax variables


def _ts_numbered(base: str, i: int) -> str:
  # TorchScript numbers repeated attribute names: base, base_1, base_2, ...
  return base if i == 0 else f"{base}_{i}"


# pytorch-fid's block names -> the file's (`net.layers.<block>`): the Mixed blocks in order.
_TS_BLOCKS = {
  f"Mixed_{b}": _ts_numbered("mixed", i)
  for i, b in enumerate(("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"))
}
_TS_STEM = ("1a_3x3", "2a_3x3", "2b_3x3", "3b_1x1", "4a_3x3")  # `net.layers.conv`, `conv_1`, ...
# InceptionE (Mixed_7b, Mixed_7c) names its convolutions flat, one name per branch and step.
_TS_BLOCK_E = {
  "branch1x1": "conv",
  "branch3x3_1": "tower_conv",
  "branch3x3_2a": "tower_mixed_conv",
  "branch3x3_2b": "tower_mixed_conv_1",
  "branch3x3dbl_1": "tower_1_conv",
  "branch3x3dbl_2": "tower_1_conv_1",
  "branch3x3dbl_3a": "tower_1_mixed_conv",
  "branch3x3dbl_3b": "tower_1_mixed_conv_1",
  "branch_pool": "tower_2_conv",
}


def _ts_name(path: tuple[str, ...]) -> str:
  """pytorch-fid's BasicConv2d path -> the TorchScript file's Conv2dLayer name."""
  if len(path) == 1:
    return "net.layers." + _ts_numbered("conv", _TS_STEM.index(path[0].removeprefix("Conv2d_")))
  block, conv = path
  prefix = f"net.layers.{_TS_BLOCKS[block]}."
  if block in ("Mixed_7b", "Mixed_7c"):
    return prefix + _TS_BLOCK_E[conv]
  if conv in ("branch1x1", "branch3x3"):  # the single-conv branch (A, B, C)
    return prefix + "conv"
  if conv == "branch_pool":  # A and C; B and D pool without a conv
    return prefix + "tower_2.conv"
  stem, idx = conv.rsplit("_", 1)
  # A block's first multi-conv branch is `tower`, its second `tower_1`; B (Mixed_6a) has one.
  second = stem in ("branch7x7dbl", "branch7x7x3") or (
    stem == "branch3x3dbl" and block != "Mixed_6a"
  )
  return f"{prefix}{'tower_1' if second else 'tower'}.{_ts_numbered('conv', int(idx) - 1)}"


def variables_from_torchscript(tensors: Mapping[str, np.ndarray]) -> dict:
  """The StyleGAN3 / clean-fid TorchScript file's tensors to `InceptionV3(None)` variables.

  Each of its 94 `Conv2dLayer`s holds `weight` (OIHW), `beta`, `mean`, `var`: a convolution
  without bias and a batch norm without scale (so `scale` is set to ones), eps 1e-3, as here.

  Args:
    tensors: `{name: array}` from `torch_archive.read_tensors` (e.g.
      `net.layers.mixed_9.tower_mixed_conv.weight`).

  Returns:
    `{'params': ..., 'batch_stats': ...}` for `InceptionV3(num_classes=None)`, float32.

  Raises:
    ValueError: naming missing, unexpected and wrongly shaped tensors.
  """
  abstract = _abstract_variables(None)
  params, stats, used, bad = {}, {}, set(), []
  for path in _basic_conv_paths(abstract["params"]):
    name = _ts_name(path)
    want = _get(abstract["params"], path)["conv"]["kernel"].shape
    got = {k: tensors.get(f"{name}.{k}") for k in ("weight", "beta", "mean", "var")}
    used |= {f"{name}.{k}" for k in got}
    if any(v is None for v in got.values()):
      bad.append(f"{name} missing")
      continue
    w = np.transpose(np.asarray(got["weight"], np.float32), (2, 3, 1, 0))
    if w.shape != want or any(np.shape(got[k]) != (want[-1],) for k in ("beta", "mean", "var")):
      bad.append(f"{name}: weight {got['weight'].shape}, expected OIHW of HWIO {want}")
      continue
    ones = np.ones(want[-1], np.float32)
    _set(params, path, {"conv": {"kernel": w}, "bn": {"scale": ones, "bias": got["beta"]}})
    _set(stats, path, {"bn": {"mean": got["mean"], "var": got["var"]}})
  bad += [f"unexpected {k}" for k in sorted(set(tensors) - used)]
  if bad:
    raise ValueError(
      f"Not the StyleGAN3 / clean-fid Inception TorchScript file ({len(bad)} problems: "
      f"{'; '.join(bad[:5])}); expected {weights_lib.FID_HELPER_FILE} from "
      f"{weights_lib.FID_HELPER_PACKAGE} ({weights_lib.FETCH_COMMAND})."
    )
  return jax.tree.map(lambda a: np.asarray(a, np.float32), {"params": params, "batch_stats": stats})
