"""The FID Inception extractor: pytorch-fid's standard weights file on jaxgan's Flax network.

FID is defined by TensorFlow's 2015 Inception graph (Heusel et al. 2017), which pytorch-fid
ported to PyTorch; `jaxgan.metrics.inception_net` rebuilds that port in Flax with the same
module names, and this module maps the pytorch-fid state dict onto it one-to-one. Features: the 2048-d global average pool after `Mixed_7c` (pytorch-fid's default,
`dims=2048`); logits: the 1008-way `fc` head (for the Inception Score).

Preprocessing, as pytorch-fid's `InceptionV3(resize_input=True, normalize_input=True)`: images in
[-1, 1] (jaxgan's convention; pytorch-fid takes [0, 1] and maps it to [-1, 1]), grey images
repeated to 3 channels, bilinear resize to 299x299 without antialiasing (PyTorch's
`F.interpolate(mode='bilinear', align_corners=False)`).

**Weights.** They cannot be downloaded by jaxgan; obtain the file once from pytorch-fid's GitHub
release:

    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

(about 92 MB; `6726825d` is the start of its SHA-256). `load_inception(path)` reads it with
PyTorch when PyTorch is installed (`torch.load(..., weights_only=True)`); to use it without
PyTorch, convert it once on a machine that has it:

    python -m jaxgan.metrics.inception --convert pt_inception-2015-12-05-6726825d.pth fid_inception.npz

The .npz holds the same state-dict names and arrays (PyTorch layouts), and loads with NumPy only.

Numbers computed here are pytorch-fid-protocol FIDs (not bit-identical to TF's: the resize
differs slightly), comparable with pytorch-fid's only at equal sample counts and reference sets.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.metrics.batching import apply_in_batches
from jaxgan.metrics.inception_net import NUM_CLASSES, InceptionV3, preprocess

FID_WEIGHTS_URL = (
  "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
  "pt_inception-2015-12-05-6726825d.pth"
)
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
__all__ = [
  "FID_WEIGHTS_URL",
  "NUM_CLASSES",
  "InceptionExtractor",
  "InceptionV3",
  "convert",
  "load_inception",
  "preprocess",
  "read_state_dict",
  "state_dict_from_variables",
  "variables_from_state_dict",
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


@functools.lru_cache(maxsize=1)
def _abstract_variables(size: int = 75):
  # The smallest input the network takes: shapes of the variables do not depend on it. Cached
  # because every load needs these shapes and tracing the whole network is slow.
  return jax.eval_shape(InceptionV3().init, jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)))


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


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads pytorch-fid's .pth (needs PyTorch) or a .npz written by `convert`.

  Args:
    path: the file; `.npz` is read with NumPy, anything else with `torch.load`.

  Returns:
    `{name: NumPy array}`.

  Raises:
    ImportError: for a .pth without PyTorch installed (the message says how to convert).
  """
  path = os.fspath(path)
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
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


class InceptionExtractor:
  """The FID Inception network behind the `FeatureExtractor` protocol.

  Images: float32 `(n, h, w, c)` in [-1, 1], any size, 1 or 3 channels.

  Attributes:
    name: `'inception_fid'`; with it the Evaluator calls the Frechet distance `fid`.
    id: the weights' hash and the input size, keying cached reference statistics.
  """

  name = "inception_fid"

  def __init__(
    self,
    variables,
    *,
    resize_to: int | None = 299,
    batch_size: int = 50,
    source: str = "",
    sha256: str | None = None,
  ):
    """Wraps loaded variables.

    Args:
      variables: `InceptionV3` variables (`variables_from_state_dict`).
      resize_to: the network's input size; 299 is the FID protocol, smaller (>= 75) for tests.
      batch_size: images per forward pass.
      source: the weights file, for the protocol string.
      sha256: the weights file's SHA-256, for the protocol string and the cache key.
    """
    self.variables = jax.tree.map(jnp.asarray, variables)
    self.resize_to = resize_to
    self.batch_size = batch_size
    self.source = source
    self.sha256 = sha256
    self.id = (sha256 or "unknown")[:16] + f"-r{resize_to}"
    module = InceptionV3()
    self._apply = jax.jit(lambda v, x: module.apply(v, preprocess(x, resize_to)))

  def describe(self) -> str:
    """The network, its input size and its weights, flagging weights that are not FID's."""
    official = self.sha256 is not None and self.sha256.startswith(FID_WEIGHTS_SHA256_PREFIX)
    return (
      f"FID InceptionV3 (pytorch-fid architecture, 2048-d pool3, bilinear resize to "
      f"{self.resize_to}; weights {os.path.basename(self.source) or '?'}, sha256 "
      f"{(self.sha256 or '?')[:12]}{'' if official else ', NOT the standard FID weights'})"
    )

  def _run(self, images):
    x = np.asarray(images, np.float32)
    return apply_in_batches(self._apply, self.variables, x, self.batch_size)

  def features(self, images) -> np.ndarray:
    """float32 `(n, 2048)`: the global average pool after `Mixed_7c`."""
    return self._run(images)[0]

  def logits(self, images) -> np.ndarray:
    """float32 `(n, 1008)`: the `fc` head (for the Inception Score)."""
    return self._run(images)[1]

  def features_and_logits(self, images) -> tuple[np.ndarray, np.ndarray]:
    """`(features, logits)` from one forward pass."""
    return self._run(images)


def load_inception(
  path: str | os.PathLike, *, resize_to: int | None = 299, batch_size: int = 50
) -> InceptionExtractor:
  """The FID Inception extractor with the weights in `path`.

  The file's SHA-256 is recorded in the protocol string; the standard file's starts with
  `6726825d` (a converted .npz has another hash, and its protocol string says so).

  Args:
    path: pytorch-fid's .pth, or its .npz conversion.
    resize_to: the network's input size; 299 is the FID protocol.
    batch_size: images per forward pass.

  Returns:
    The extractor.

  Raises:
    ValueError: when the file is not the FID Inception state dict.
    ImportError: for a .pth without PyTorch.
  """
  from jaxgan.data.checksums import sha256_file  # pylint: disable=g-import-not-at-top

  variables = variables_from_state_dict(read_state_dict(path))
  return InceptionExtractor(
    variables,
    resize_to=resize_to,
    batch_size=batch_size,
    source=os.fspath(path),
    sha256=sha256_file(path),
  )


def main(argv: Sequence[str] | None = None):
  """Command line: `python -m jaxgan.metrics.inception --convert IN.pth OUT.npz`.

  Args:
    argv: the arguments; None: `sys.argv[1:]`.
  """
  import argparse  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser(description="Convert pytorch-fid's Inception weights to .npz.")
  parser.add_argument("--convert", nargs=2, metavar=("PTH", "NPZ"), required=True)
  args = parser.parse_args(argv)
  convert(*args.convert)
  print(f"wrote {args.convert[1]}")


if __name__ == "__main__":
  main()
