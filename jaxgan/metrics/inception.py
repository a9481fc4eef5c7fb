"""The FID InceptionV3 in Flax: pytorch-fid's architecture, loading its standard weights file.

FID is defined by TensorFlow's 2015 Inception graph (Heusel et al. 2017). pytorch-fid ported it
to PyTorch, with patched blocks that reproduce the TF graph's quirks: average pools that do not
count the zero padding (`FIDInceptionA`, `FIDInceptionC`, `FIDInceptionE_1`) and a *max* pool in
the last block's pool branch (`FIDInceptionE_2`). This module rebuilds that network in Flax
linen, module for module, with the same names, so the pytorch-fid state dict maps onto it
one-to-one. Features: the 2048-d global average pool after `Mixed_7c` (pytorch-fid's default,
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

import os
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.metrics.batching import apply_in_batches

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
NUM_CLASSES = 1008


def _pair(v):
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm(eps=1e-3, inference statistics) + ReLU, as torchvision's."""
  features: int
  kernel: Any
  stride: int = 1
  padding: Any = 0

  @nn.compact
  def __call__(self, x):
    ph, pw = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel), strides=_pair(self.stride),
                padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_same(x):
  # TF's average pool: the zero padding is not counted (pytorch-fid's patch).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_s2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class FIDInceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, 1, name="branch1x1")(x)
    b5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
    b5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, 3, stride=2, name="branch3x3")(x)
    bd = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, 3, stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_s2(x)], axis=-1)


class FIDInceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, 1, name="branch1x1")(x)
    b7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
    b3 = BasicConv2d(320, 3, stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, 3, stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_s2(x)], axis=-1)


class FIDInceptionE(nn.Module):
  """`FIDInceptionE_1` (pool='avg', Mixed_7b) and `FIDInceptionE_2` (pool='max', Mixed_7c)."""
  pool: str = "avg"

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, 1, name="branch1x1")(x)
    b3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
    bd = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
    if self.pool == "avg":
      p = _avg_pool_same(x)
    else:  # the TF graph's max pool in the last block (pytorch-fid's FIDInceptionE_2)
      p = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    bp = BasicConv2d(192, 1, name="branch_pool")(p)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """The FID Inception network. `__call__(x)` -> (pool features (n, 2048), logits (n, 1008)).

  `x`: NHWC in [-1, 1], already at the network's input size (see `preprocess`); any size >= 75
  works (the network is fully convolutional up to the global pool), 299 is the FID protocol.
  """

  @nn.compact
  def __call__(self, x):
    x = BasicConv2d(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool_s2(x)
    x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool_s2(x)
    x = FIDInceptionA(32, name="Mixed_5b")(x)
    x = FIDInceptionA(64, name="Mixed_5c")(x)
    x = FIDInceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = FIDInceptionC(128, name="Mixed_6b")(x)
    x = FIDInceptionC(160, name="Mixed_6c")(x)
    x = FIDInceptionC(160, name="Mixed_6d")(x)
    x = FIDInceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = FIDInceptionE("avg", name="Mixed_7b")(x)
    x = FIDInceptionE("max", name="Mixed_7c")(x)
    feats = x.mean(axis=(1, 2))
    return feats, nn.Dense(NUM_CLASSES, name="fc")(feats)


def preprocess(images, size: int | None = 299):
  """[-1, 1] NHWC (1 or 3 channels) -> 3 channels, bilinearly resized to `size` (no antialias)."""
  x = jnp.asarray(images, jnp.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  if x.shape[-1] != 3:
    raise ValueError(f"expected 1 or 3 channels; got shape {x.shape}")
  if size is not None and x.shape[1:3] != (size, size):
    x = jax.image.resize(x, (x.shape[0], size, size, 3), "bilinear", antialias=False)
  return x


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


def _abstract_variables(size: int = 75):
  return jax.eval_shape(InceptionV3().init, jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)))


def state_dict_from_variables(variables) -> dict[str, np.ndarray]:
  """Flax variables -> a pytorch-fid-layout state dict (NumPy arrays; PyTorch layouts)."""
  params, stats = variables["params"], variables["batch_stats"]
  out = {}
  for path in _basic_conv_paths(params):
    name = ".".join(path)
    out[f"{name}.conv.weight"] = np.transpose(np.asarray(_get(params, path)["conv"]["kernel"]), (3, 2, 0, 1))
    out[f"{name}.bn.weight"] = np.asarray(_get(params, path)["bn"]["scale"])
    out[f"{name}.bn.bias"] = np.asarray(_get(params, path)["bn"]["bias"])
    out[f"{name}.bn.running_mean"] = np.asarray(_get(stats, path)["bn"]["mean"])
    out[f"{name}.bn.running_var"] = np.asarray(_get(stats, path)["bn"]["var"])
  out["fc.weight"] = np.asarray(params["fc"]["kernel"]).T
  out["fc.bias"] = np.asarray(params["fc"]["bias"])
  return out


def variables_from_state_dict(state_dict: Mapping[str, Any]) -> dict:
  """A pytorch-fid state dict (torch tensors or arrays) -> Flax variables, shape-checked.

  Every expected name must be present with its shape; extra names other than BatchNorm's
  `num_batches_tracked` counters are an error (e.g. torchvision's ImageNet Inception, which has
  other blocks and 1000 classes, is refused instead of giving wrong features).
  """
  sd = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, np.float32)
        for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
  abstract = _abstract_variables()
  want = {k: v.shape for k, v in state_dict_from_variables(
      jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), abstract)).items()}
  missing = sorted(set(want) - set(sd))
  unexpected = sorted(set(sd) - set(want))
  bad = sorted(k for k in set(want) & set(sd) if sd[k].shape != want[k])
  if missing or unexpected or bad:
    raise ValueError(
        "Not a pytorch-fid FID Inception state dict: "
        + (f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} ({len(missing)}); " if missing else "")
        + (f"unexpected {unexpected[:5]} ({len(unexpected)}); " if unexpected else "")
        + (f"wrong shapes {[(k, sd[k].shape, want[k]) for k in bad[:5]]}; " if bad else "")
        + f"expected the file from {FID_WEIGHTS_URL}.")
  params, stats = {}, {}
  for path in _basic_conv_paths(abstract["params"]):
    name = ".".join(path)
    _set(params, path, {"conv": {"kernel": np.transpose(sd[f"{name}.conv.weight"], (2, 3, 1, 0))},
                        "bn": {"scale": sd[f"{name}.bn.weight"], "bias": sd[f"{name}.bn.bias"]}})
    _set(stats, path, {"bn": {"mean": sd[f"{name}.bn.running_mean"],
                              "var": sd[f"{name}.bn.running_var"]}})
  params["fc"] = {"kernel": sd["fc.weight"].T, "bias": sd["fc.bias"]}
  return {"params": params, "batch_stats": stats}


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads pytorch-fid's .pth (needs PyTorch) or a .npz written by `convert`."""
  path = os.fspath(path)
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"Reading {path} needs PyTorch; or convert it to .npz once elsewhere with "
                      "`python -m jaxgan.metrics.inception --convert IN.pth OUT.npz`.") from e
  sd = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.detach().cpu().numpy() for k, v in sd.items()}


def convert(pth_path, npz_path) -> None:
  """pytorch-fid .pth -> .npz with the same names and arrays (loadable without PyTorch)."""
  sd = read_state_dict(pth_path)
  variables_from_state_dict(sd)  # validate before writing
  np.savez(npz_path, **{k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")})


class InceptionExtractor:
  """The FID Inception network behind the `FeatureExtractor` protocol.

  `features(images)`: (n, 2048) pool features; `logits(images)`: (n, 1008). Images NHWC in
  [-1, 1], any size, 1 or 3 channels. `resize_to=299` is the FID protocol; smaller (>= 75) only
  for tests.
  """

  name = "inception_fid"

  def __init__(self, variables, *, resize_to: int | None = 299, batch_size: int = 50,
               source: str = "", sha256: str | None = None):
    self.variables = jax.tree.map(jnp.asarray, variables)
    self.resize_to = resize_to
    self.batch_size = batch_size
    self.source = source
    self.sha256 = sha256
    self.id = (sha256 or "unknown")[:16] + f"-r{resize_to}"
    module = InceptionV3()
    self._apply = jax.jit(lambda v, x: module.apply(v, preprocess(x, resize_to)))

  def describe(self) -> str:
    official = self.sha256 is not None and self.sha256.startswith(FID_WEIGHTS_SHA256_PREFIX)
    return (f"FID InceptionV3 (pytorch-fid architecture, 2048-d pool3, bilinear resize to "
            f"{self.resize_to}; weights {os.path.basename(self.source) or '?'}, sha256 "
            f"{(self.sha256 or '?')[:12]}{'' if official else ', NOT the standard FID weights'})")

  def _run(self, images):
    x = np.asarray(images, np.float32)
    return apply_in_batches(self._apply, self.variables, x, self.batch_size)

  def features(self, images) -> np.ndarray:
    return self._run(images)[0]

  def logits(self, images) -> np.ndarray:
    return self._run(images)[1]

  def features_and_logits(self, images):
    return self._run(images)


def load_inception(path: str | os.PathLike, *, resize_to: int | None = 299,
                   batch_size: int = 50) -> InceptionExtractor:
  """The FID Inception extractor with the weights in `path` (.pth from pytorch-fid, or .npz).

  The SHA-256 of the .pth is recorded in the protocol string; the standard file's starts with
  `6726825d`. (A converted .npz has another hash; its protocol string says so.)
  """
  from jaxgan.data.idx import sha256_file  # pylint: disable=g-import-not-at-top (TFDS is heavy)
  variables = variables_from_state_dict(read_state_dict(path))
  return InceptionExtractor(variables, resize_to=resize_to, batch_size=batch_size,
                            source=os.fspath(path), sha256=sha256_file(path))


def main(argv: Sequence[str] | None = None):
  import argparse  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser(description="Convert pytorch-fid's Inception weights to .npz.")
  parser.add_argument("--convert", nargs=2, metavar=("PTH", "NPZ"), required=True)
  args = parser.parse_args(argv)
  convert(*args.convert)
  print(f"wrote {args.convert[1]}")


if __name__ == "__main__":
  main()
