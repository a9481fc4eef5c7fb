"""What a run shows and leaves behind: metric logs, sample images and progress.

Metrics go to `metrics.jsonl` (one JSON object per logged step: easy to load with pandas) and to
TensorBoard event files written by tensorboardX (no TensorFlow needed). Progress is a tqdm bar on
an interactive terminal and plain log lines otherwise (CI logs, batch jobs).
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
from PIL import Image


class MetricWriter:
  """Appends scalars to `workdir/metrics.jsonl` and to TensorBoard events in `workdir/tensorboard`.

  Args:
    workdir: the run's directory (must exist).
    enabled: False on every process but the first of a multi-process run: then nothing is written
      and tensorboardX is not imported.
  """

  def __init__(self, workdir: str, *, enabled: bool = True):
    self.enabled = enabled
    if not enabled:
      return
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top

    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, scalars: dict) -> None:
    """Writes one record: `{"step": step, **scalars}`; values are converted to Python floats."""
    if not self.enabled:
      return
    scalars = {k: float(v) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({"step": int(step), **scalars}) + "\n")
    self._jsonl.flush()
    for k, v in scalars.items():
      self._tb.add_scalar(k, v, global_step=int(step))
    self._tb.flush()

  def close(self) -> None:
    """Flushes and closes both files."""
    if self.enabled:
      self._jsonl.close()
      self._tb.close()


def to_uint8(images: np.ndarray) -> np.ndarray:
  """float images in [-1, 1] as uint8 pixels: `round((x + 1) * 127.5)`, clipped to [0, 255].

  >>> to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])).tolist()
  [0, 128, 255, 255]
  """
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def save_png(path: str, images: np.ndarray) -> None:
  """Saves one float image `(h, w, c)` in [-1, 1] as a PNG (temporary file, then renamed)."""
  _save_png(path, to_uint8(images))


def image_grid(images: np.ndarray, *, columns: int | None = None) -> np.ndarray:
  """Tiles images into one picture with a 1-pixel black border.

  Args:
    images: float `(n, h, w, c)` in [-1, 1].
    columns: images per row; default ceil(sqrt(n)).

  Returns:
    uint8 `(rows * (h + 1) + 1, columns * (w + 1) + 1, c)`.

  >>> image_grid(np.zeros((4, 2, 2, 1))).shape
  (7, 7, 1)
  """
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.zeros((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.uint8)
  pixels = to_uint8(images)
  for i in range(n):
    r, col = divmod(i, columns)
    grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = pixels[
      i
    ]
  return grid


def _save_png(path: str, array: np.ndarray) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if array.shape[-1] == 1:
    array = array[..., 0]
  tmp = path + ".tmp"
  Image.fromarray(array).save(tmp, format="PNG")
  os.replace(tmp, path)  # a killed run never leaves a half-written PNG


def save_image_grid(path: str, images: np.ndarray, *, columns: int | None = None) -> None:
  """Saves images as one PNG grid (written to a temporary file, then renamed).

  Args:
    path: the PNG's path; its directory is created.
    images: float `(n, h, w, c)` in [-1, 1], or `(n, d)` with d a square (flat grey images).
    columns: images per row (a conditional run's grid has one class per row); default
      ceil(sqrt(n)).

  Raises:
    ValueError: `(n, d)` samples whose d is not a square.
  """
  images = np.asarray(images, np.float32)
  if images.ndim == 2:  # flat MLP samples: square grey images
    side = int(round(math.sqrt(images.shape[1])))
    if side * side != images.shape[1]:
      raise ValueError(f"Cannot show samples of shape {images.shape[1:]} as images.")
    images = images.reshape(-1, side, side, 1)
  _save_png(path, image_grid(images, columns=columns))


def save_scatter(path: str, points: np.ndarray, modes: np.ndarray, *, size: int = 256) -> None:
  """Renders 2-D samples (white) and a mixture's modes (red) as a `size` x `size` PNG.

  Args:
    path: the PNG's path; its directory is created.
    points: float `(n, 2)` samples.
    modes: float `(k, 2)` mode centres; the view spans 1.25 times their largest coordinate.
    size: the image's side in pixels.
  """
  points, modes = np.asarray(points), np.asarray(modes)
  lim = 1.25 * float(np.abs(modes).max())
  canvas = np.zeros((size, size, 3), np.uint8)

  def to_pixels(p):
    ij = np.round((p + lim) / (2 * lim) * (size - 1)).astype(int)
    ok = np.all((ij >= 0) & (ij < size), axis=1)
    return ij[ok]

  for x, y in to_pixels(points):
    canvas[size - 1 - y, x] = 255
  for x, y in to_pixels(modes):
    canvas[max(size - 3 - y, 0) : size + 1 - y, max(x - 1, 0) : x + 2] = (255, 0, 0)
  _save_png(path, canvas)


class Progress:
  """A tqdm bar with the latest losses on a terminal; plain lines on stdout otherwise.

  Args:
    total: the run's last step.
    initial: the step it starts from (a resumed run's).
    enabled: False on every process but the first.
  """

  def __init__(self, *, total: int, initial: int = 0, enabled: bool = True):
    self.enabled = enabled
    self._bar = None
    if enabled and sys.stderr.isatty():
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top

      self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
    self.total = total

  def update(self, n: int) -> None:
    """Advances the bar by `n` steps."""
    if self._bar is not None:
      self._bar.update(n)

  def show(self, step: int, metrics: dict) -> None:
    """Shows the latest losses and evaluation results (a line per call without a terminal)."""
    if not self.enabled:
      return
    keys = [
      k
      for k in (
        "d_loss",
        "g_loss",
        "penalty",
        "steps_per_sec",
        "eval/modes_captured",
        "eval/high_quality",
      )
      if k in metrics
    ]
    if self._bar is not None:
      self._bar.set_postfix({k.split("/")[-1]: f"{metrics[k]:.4g}" for k in keys}, refresh=False)
    else:
      text = "  ".join(f"{k} {metrics[k]:.4g}" for k in keys)
      print(f"step {step}/{self.total}  {text}", flush=True)

  def close(self) -> None:
    """Closes the bar."""
    if self._bar is not None:
      self._bar.close()
