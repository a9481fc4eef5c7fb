"""The benchmark workloads in plain PyTorch: same models, losses, penalties and update semantics.

Written to be a fair, careful reference rather than a naive port:

- n_critic semantics as in `jaxgan.step.train`: discriminator update i sees its own real slice and fakes
  from its own noise; the generator update reuses the fakes of the last discriminator update (G's
  forward for the first n_critic - 1 updates runs under `torch.no_grad`; the last one keeps its
  graph for the G update).
- D updates see detached fakes, so no gradient flows into G during D steps; during the G update
  D's parameters have `requires_grad=False`, so no D weight gradients are computed.
- Real scores in the G loss are computed (under `no_grad`) only for the relativistic losses that
  use them.
- Adam is PyTorch's fused CPU implementation; the EMA of G's parameters is one `_foreach_lerp_`.
- The gradient penalty is `autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)`, as everyone
  writes it; R1 and R2 the same on real and on (detached) fake inputs. The approximate R1 and R2
  of APT (Lin et al. 2025), `approx_r1` and `approx_r2`, are (D(x) - D(x + sigma eps))^2
  averaged over the batch, eps ~ `torch.randn`, sigma = `workloads.APPROX_SIGMA` (jaxgan's
  default): no `create_graph`, one extra forward pass of D at the noisy inputs, since D(x) is the
  critic loss's own score of x (the real or the detached fake one). Several penalties
  (`config.loss.penalties`) are summed with their weights. Lazy regularisation
  (`config.loss.penalty_every` = k, Karras et al. 2020) is StyleGAN2's: a Python `if` computes the
  penalties on every k-th critic update only, with their weights times k.
- ADA (`config.augment.name = 'ada'`, Karras et al. 2020) is `AugmentPipe` below: the ops of
  `jaxgan.augment.ada` (per-example blit and geometric transforms composed into one 3x3 matrix,
  applied by `F.affine_grid` + `F.grid_sample` (bilinear, reflection padding); colour transforms
  composed into one 4x4 matrix; every transform gated per example with probability p times its
  multiplier), on real and fake images before D in both players' losses and inside the
  penalties' critic. With `augment.ada_target` p starts at 0 and moves every `ada_interval` steps
  by sign(r_t - target) * images / (ada_kimg * 1000), r_t the mean of sign(D(real)).
- Class conditioning (`config.model.num_classes` > 0; the DCGAN of `mnist_cdcgan`, W8):
  `CondBatchNorm2d` for every BatchNorm of G (de Vries et al. 2017): per-layer embeddings, gain
  1 + delta[y] and bias[y], both zero at init; or, with `model.shared_embedding` = E (BigGAN,
  Brock et al. 2019), G's one `nn.Embedding(num_classes, E)` e (jaxgan's init, std 1/sqrt(E)) and per layer
  gain 1 + W_g e(y), bias W_b e(y) by bias-free `nn.Linear(E, C)`. D is the projection
  discriminator (Miyato & Koyama 2018), D(x, y) =
  fc(phi(x)) + <embed(y), phi(x)>, the embedding spectrally normalised with the rest of D. Real
  examples keep fixed labels; each critic update draws uniform labels for its fakes, and the G
  update reuses the last one's fakes with their labels, as `jaxgan.step.train`.

Differences that do not change the arithmetic of interest: NCHW layout and PyTorch's default
initialisers (DCGAN uses N(0, 0.02) as in jaxgan); D's BatchNorm running statistics are also
updated by the G pass (jaxgan discards those); jaxgan additionally computes gradient norms and a
finiteness guard over the state; the random draws differ (PyTorch's generator, one call per
parameter as the official ADA code; jaxgan's counter-based keys), so values agree in
distribution, not bit for bit. jaxgan's lazy step is one compiled program whose `lax.cond` skips
the penalties; PyTorch's `if` skips them on the host. The DCGAN at sizes 28, 32 and 64.
Hyperparameter schedules, bCR, LeCam and DiffAugment are not written here: a config that asks for
them is refused.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

try:
  from benchmarks.workloads import APPROX_SIGMA, Workload
except ImportError:  # run as a script from benchmarks/
  from workloads import APPROX_SIGMA, Workload  # type: ignore

# jaxgan's default latent size, the one every workload uses; the models take it as an argument.
LATENT_DIM = 100


# --- layers ----------------------------------------------------------------------------------


class ChannelLayerNorm(nn.Module):
  """LayerNorm over (C, H, W) with a per-channel scale and offset (jaxgan's `layer_norm`)."""

  def __init__(self, channels: int, eps: float = 1e-6):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(channels))
    self.bias = nn.Parameter(torch.zeros(channels))
    self.eps = eps

  def forward(self, x):
    x = F.layer_norm(x, x.shape[1:], eps=self.eps)
    return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def _norm2d(norm: str, channels: int) -> nn.Module:
  if norm == 'batch':
    return nn.BatchNorm2d(channels, momentum=0.1, eps=1e-5)
  if norm == 'layer':
    return ChannelLayerNorm(channels)
  return nn.Identity()


def _sn(module: nn.Module, spectral: bool) -> nn.Module:
  return spectral_norm(module, n_power_iterations=1) if spectral else module


def _dcgan_init(module: nn.Module) -> None:
  for m in module.modules():
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
      nn.init.normal_(m.weight, 0.0, 0.02)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)


# --- MLP -------------------------------------------------------------------------------------


class MLPGenerator(nn.Module):
  def __init__(self, out_dim=784, hidden=(256, 512), latent_dim=LATENT_DIM):
    super().__init__()
    layers, d = [], latent_dim
    for h in hidden:
      layers += [nn.Linear(d, h), nn.ReLU()]
      d = h
    layers += [nn.Linear(d, out_dim), nn.Tanh()]
    self.net = nn.Sequential(*layers)

  def forward(self, z):
    return self.net(z)


class MLPDiscriminator(nn.Module):
  def __init__(self, in_dim=784, hidden=(512, 256), norm='none'):
    super().__init__()
    spectral = norm == 'spectral'
    layers, d = [], in_dim
    for i, h in enumerate(hidden):
      layers.append(_sn(nn.Linear(d, h), spectral))
      if i > 0 and norm == 'batch':
        layers.append(nn.BatchNorm1d(h, momentum=0.1, eps=1e-5))
      elif i > 0 and norm == 'layer':
        layers.append(nn.LayerNorm(h, eps=1e-6))
      layers.append(nn.LeakyReLU(0.2))
      d = h
    layers.append(_sn(nn.Linear(d, 1), spectral))
    self.net = nn.Sequential(*layers)

  def forward(self, x):
    return self.net(x.flatten(1))[:, 0]


# --- DCGAN -----------------------------------------------------------------------------------


# The DCGAN's sizes: image size -> (side of G's first map, stride-2 stages), as jaxgan's.
DCGAN_BASE = {28: (7, 2), 32: (4, 3), 64: (4, 4)}


class DCGANGenerator(nn.Module):
  """z -> 4x4x(w*2^(k-1)) -> ... -> size x size x C, 4x4 stride-2 transposed convs, BN, ReLU.

  (7x7 for size 28: 7 -> 14 -> 28.)
  """

  def __init__(self, image_size=32, channels=1, width=64, latent_dim=LATENT_DIM):
    super().__init__()
    self.base, num_up = DCGAN_BASE[image_size]
    f = width * 2 ** (num_up - 1)
    self.f = f
    self.fc = nn.Linear(latent_dim, self.base**2 * f, bias=False)
    self.bn0 = nn.BatchNorm2d(f, momentum=0.1, eps=1e-5)
    layers = []
    for _ in range(num_up - 1):
      layers += [
        nn.ConvTranspose2d(f, f // 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(f // 2, momentum=0.1, eps=1e-5),
        nn.ReLU(),
      ]
      f //= 2
    layers += [nn.ConvTranspose2d(f, channels, 4, 2, 1), nn.Tanh()]
    self.net = nn.Sequential(*layers)
    _dcgan_init(self)

  def forward(self, z):
    x = self.fc(z).view(z.shape[0], self.f, self.base, self.base)
    return self.net(F.relu(self.bn0(x)))


class DCGANDiscriminator(nn.Module):
  def __init__(self, image_size=32, channels=1, width=64, norm='batch'):
    super().__init__()
    num_down = 4 if image_size == 64 else 3
    spectral = norm == 'spectral'
    layers, c, s = [], channels, image_size
    for i in range(num_down):
      normed = i > 0 and norm in ('batch', 'layer')
      out = width * 2**i
      if s % 2:  # XLA's 'SAME' on an odd side (7 -> 4 for size 28) pads 1 before and 2 after
        layers.append(nn.ZeroPad2d((1, 2, 1, 2)))
      layers.append(_sn(nn.Conv2d(c, out, 4, 2, 0 if s % 2 else 1, bias=not normed), spectral))
      if normed:
        layers.append(_norm2d(norm, out))
      layers.append(nn.LeakyReLU(0.2))
      c, s = out, (s + 1) // 2
    self.net = nn.Sequential(*layers)
    self.fc = _sn(nn.Linear(c * s * s, 1), spectral)
    _dcgan_init(self)

  def forward(self, x):
    return self.fc(self.net(x).flatten(1))[:, 0]


# --- class-conditional DCGAN ----------------------------------------------------------------


class CondBatchNorm2d(nn.Module):
  """Conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018; Brock et al. 2019).

  BatchNorm without affine parameters, then a per-class gain and bias. Per-layer embeddings
  (`embedding_dim` 0): `(1 + delta[y]) * x_hat + bias[y]`, `delta` and `bias`
  `nn.Embedding(num_classes, channels)` initialised to zeros, so the gain starts at exactly 1 and
  the layer at initialisation is plain BatchNorm with scale 1 and offset 0 (compare_gan's
  BigGAN-deep bug was a missing "+1"). Shared embedding (BigGAN, `embedding_dim` E > 0): given
  G's class embedding e `[n, E]`, `(1 + gain(e)) * x_hat + bias(e)` with `gain` and `bias`
  bias-free `nn.Linear(E, channels)`, initialised as jaxgan's `nn.Dense` (LeCun normal,
  truncated at 2 standard deviations).

  Args:
    channels: C of the `[n, C, H, W]` input.
    num_classes: K; labels are in [0, K).
    embedding_dim: E, the width of G's shared class embedding; 0 for per-layer embeddings.
  """

  def __init__(self, channels: int, num_classes: int, embedding_dim: int = 0):
    super().__init__()
    self.bn = nn.BatchNorm2d(channels, affine=False, momentum=0.1, eps=1e-5)
    self.embedding_dim = embedding_dim
    if embedding_dim:
      self.gain = nn.Linear(embedding_dim, channels, bias=False)
      self.bias = nn.Linear(embedding_dim, channels, bias=False)
      self.reset_linear()
    else:
      self.delta = nn.Embedding(num_classes, channels)
      self.bias = nn.Embedding(num_classes, channels)
      nn.init.zeros_(self.delta.weight)
      nn.init.zeros_(self.bias.weight)

  def reset_linear(self) -> None:
    """The shared-embedding projections at jaxgan's `nn.Dense` default: LeCun normal, variance
    1 / E, truncated at +-2 standard deviations of the untruncated normal."""
    # 0.8796...: the standard deviation of a unit normal truncated to [-2, 2].
    std = 1.0 / math.sqrt(self.embedding_dim) / 0.87962566103423978
    for m in (self.gain, self.bias):
      nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)

  def forward(self, x, y):
    """`[n, C, H, W]` float32 and int64 labels `[n]` (per-layer embeddings) or G's shared
    embedding e(y), float32 `[n, E]` -> `[n, C, H, W]`."""
    if self.embedding_dim:
      delta, bias = self.gain(y), self.bias(y)
    else:
      delta, bias = self.delta(y), self.bias(y)
    return self.bn(x) * (1.0 + delta[:, :, None, None]) + bias[:, :, None, None]


class CondDCGANGenerator(nn.Module):
  """`DCGANGenerator` with every BatchNorm a `CondBatchNorm2d`: `G(z, y)`.

  With `shared_embedding` E > 0, G owns one `nn.Embedding(num_classes, E)` ('shared', std 1/sqrt(E)
  at init, as jaxgan's 'SharedEmbed') and every `CondBatchNorm2d` reads e(y).
  """

  def __init__(
    self,
    image_size=32,
    channels=1,
    width=64,
    latent_dim=LATENT_DIM,
    num_classes=10,
    shared_embedding=0,
  ):
    super().__init__()
    self.base, num_up = DCGAN_BASE[image_size]
    f = width * 2 ** (num_up - 1)
    self.f = f
    self.shared = nn.Embedding(num_classes, shared_embedding) if shared_embedding else None
    self.fc = nn.Linear(latent_dim, self.base**2 * f, bias=False)
    norms, ups = [CondBatchNorm2d(f, num_classes, shared_embedding)], []
    for _ in range(num_up - 1):
      ups.append(nn.ConvTranspose2d(f, f // 2, 4, 2, 1, bias=False))
      norms.append(CondBatchNorm2d(f // 2, num_classes, shared_embedding))
      f //= 2
    self.ups, self.norms = nn.ModuleList(ups), nn.ModuleList(norms)
    self.out = nn.ConvTranspose2d(f, channels, 4, 2, 1)
    _dcgan_init(self)  # convolutions and the dense layer; the embeddings keep their own
    if shared_embedding:
      nn.init.normal_(self.shared.weight, 0.0, shared_embedding**-0.5)
      for norm in self.norms:  # _dcgan_init's N(0, 0.02) reached their nn.Linear too
        norm.reset_linear()

  def forward(self, z, y):
    x = self.fc(z).view(z.shape[0], self.f, self.base, self.base)
    c = y if self.shared is None else self.shared(y)
    x = F.relu(self.norms[0](x, c))
    for up, norm in zip(self.ups, self.norms[1:], strict=True):
      x = F.relu(norm(up(x), c))
    return torch.tanh(self.out(x))


class ProjectionDCGANDiscriminator(DCGANDiscriminator):
  """`DCGANDiscriminator` with the projection term (Miyato & Koyama 2018): `D(x, y)`.

  With phi(x) the flattened features that feed the output layer,
  `D(x, y) = fc(phi(x)) + <embed(y), phi(x)>`; `embed` is `nn.Embedding(num_classes, dim(phi))`,
  Glorot-uniform, spectrally normalised when the critic is (their code's SNEmbedID).
  """

  def __init__(self, image_size=32, channels=1, width=64, norm='spectral', num_classes=10):
    super().__init__(image_size, channels, width, norm)
    dim = self.fc.in_features
    embed = nn.Embedding(num_classes, dim)
    nn.init.xavier_uniform_(embed.weight)
    self.embed = _sn(embed, norm == 'spectral')

  def forward(self, x, y):
    phi = self.net(x).flatten(1)
    return self.fc(phi)[:, 0] + (self.embed(y) * phi).sum(1)


# --- ResNet (SNGAN) --------------------------------------------------------------------------


def _up(x):
  return F.interpolate(x, scale_factor=2, mode='nearest')


class GBlock(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.bn1, self.bn2 = nn.BatchNorm2d(cin, momentum=0.1), nn.BatchNorm2d(cout, momentum=0.1)
    self.c1 = nn.Conv2d(cin, cout, 3, 1, 1)
    self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
    self.sc = nn.Conv2d(cin, cout, 1)

  def forward(self, x):
    h = self.c1(_up(F.relu(self.bn1(x))))
    h = self.c2(F.relu(self.bn2(h)))
    return h + self.sc(_up(x))  # as jaxgan: the 1x1 shortcut acts on the upsampled input


class DBlock(nn.Module):
  def __init__(self, cin, cout, down, optimized=False, norm='spectral'):
    super().__init__()
    spectral = norm == 'spectral'
    self.down, self.optimized = down, optimized
    self.c1 = _sn(nn.Conv2d(cin, cout, 3, 1, 1), spectral)
    self.c2 = _sn(nn.Conv2d(cout, cout, 3, 1, 1), spectral)
    self.n1 = nn.Identity() if optimized else _norm2d(norm, cin)
    self.n2 = _norm2d(norm, cout)
    self.has_sc = optimized or down or cin != cout
    if self.has_sc:
      self.sc = _sn(nn.Conv2d(cin, cout, 1), spectral)

  def forward(self, x):
    if self.optimized:
      h = self.c2(F.relu(self.n2(self.c1(x))))
      return F.avg_pool2d(h, 2) + self.sc(F.avg_pool2d(x, 2))
    h = self.c2(F.relu(self.n2(self.c1(F.relu(self.n1(x))))))
    if self.down:
      h = F.avg_pool2d(h, 2)
    if self.has_sc:
      s = self.sc(x)
      x = F.avg_pool2d(s, 2) if self.down else s
    return h + x


class ResNetGenerator(nn.Module):
  def __init__(self, channels=3, width=256, latent_dim=LATENT_DIM):
    super().__init__()
    self.width = width
    self.fc = nn.Linear(latent_dim, 4 * 4 * width)
    self.blocks = nn.Sequential(*[GBlock(width, width) for _ in range(3)])
    self.bn = nn.BatchNorm2d(width, momentum=0.1)
    self.out = nn.Conv2d(width, channels, 3, 1, 1)

  def forward(self, z):
    x = self.fc(z).view(z.shape[0], self.width, 4, 4)
    x = self.blocks(x)
    return torch.tanh(self.out(F.relu(self.bn(x))))


class ResNetDiscriminator(nn.Module):
  def __init__(self, channels=3, width=128, norm='spectral'):
    super().__init__()
    self.blocks = nn.Sequential(
      DBlock(channels, width, down=True, optimized=True, norm=norm),
      DBlock(width, width, down=True, norm=norm),
      DBlock(width, width, down=False, norm=norm),
      DBlock(width, width, down=False, norm=norm),
    )
    self.norm = _norm2d(norm, width)
    self.fc = _sn(nn.Linear(width, 1), norm == 'spectral')

  def forward(self, x):
    x = F.relu(self.norm(self.blocks(x))).sum(dim=(2, 3))
    return self.fc(x)[:, 0]


# jaxgan's default critic normalisation of each model (jaxgan.models.DEFAULT_D_NORM), for
# configs that leave `model.d_norm` unset.
DEFAULT_D_NORM = {'mlp': 'none', 'dcgan': 'batch', 'resnet': 'spectral'}


def d_norm(w: Workload) -> str:
  """The critic normalisation `w` asks for, resolved as `jaxgan.models.make_models` does."""
  m = w.config.model
  return DEFAULT_D_NORM[m.name] if m.d_norm is None else m.d_norm


def num_classes(w: Workload) -> int:
  """`w.config.model.num_classes`: 0 for an unconditional workload."""
  return w.config.model.get('num_classes', 0) or 0


def check_conditioning(w: Workload) -> None:
  """Checks that the reference writes `w`'s class conditioning.

  It writes the conditional DCGAN of `mnist_cdcgan`: conditional BatchNorm in G ('cbn', with
  per-layer embeddings or BigGAN's shared one) and the projection discriminator
  ('projection'), without penalties.

  Raises:
    ValueError: another model or conditioning, a penalty, or a `shared_embedding` that is not
      an integer >= 0, naming it.
  """
  m = w.config.model
  if m.name != 'dcgan':
    raise ValueError(f'the PyTorch reference conditions the dcgan only; got model {m.name!r}')
  if m.get('g_conditioning') not in (None, 'cbn') or m.get('d_conditioning') not in (
    None,
    'projection',
  ):
    raise ValueError(
      "the PyTorch reference writes g_conditioning 'cbn' and d_conditioning 'projection' only; "
      f'got {m.get("g_conditioning")!r} and {m.get("d_conditioning")!r}'
    )
  shared = m.get('shared_embedding', 0)
  if isinstance(shared, bool) or not isinstance(shared, int) or shared < 0:
    raise ValueError(
      f'the PyTorch reference needs model.shared_embedding an integer >= 0 (0: per-layer CBN '
      f'embeddings); got {shared!r}'
    )
  if w.config.loss.penalty is not None or len(w.config.loss.penalties):
    raise ValueError('the PyTorch reference writes conditional workloads without penalties')


def make_models(w: Workload) -> tuple[nn.Module, nn.Module]:
  """PyTorch's G and D for `w.config.model` and `w.image_shape` (NCHW where jaxgan is NHWC).

  A class-conditional config (`model.num_classes` > 0) gets `CondDCGANGenerator` (with
  `model.shared_embedding`) and `ProjectionDCGANDiscriminator`, called `G(z, y)` and `D(x, y)` with int64 labels `[n]`.

  Raises:
    ValueError: a model, model keyword or conditioning this reference does not write.
  """
  m = w.config.model
  if m.kwargs.to_dict().keys() - {'conv'}:  # conv chooses jaxgan's kernels, not the function
    raise ValueError(f'the PyTorch reference takes no model keywords; got {m.kwargs}')
  norm, width, latent = d_norm(w), m.width, m.latent_dim
  if num_classes(w):
    check_conditioning(w)
    size, _, channels = w.image_shape
    width = 64 if width is None else width
    k = num_classes(w)
    return (
      CondDCGANGenerator(size, channels, width, latent, k, m.get('shared_embedding', 0)),
      ProjectionDCGANDiscriminator(size, channels, width, norm, k),
    )
  if m.name == 'mlp':
    width = 256 if width is None else width
    dim = math.prod(w.image_shape)
    return (
      MLPGenerator(dim, (width, 2 * width), latent),
      MLPDiscriminator(dim, (2 * width, width), norm),
    )
  size, _, channels = w.image_shape
  if m.name == 'dcgan':
    width = 64 if width is None else width
    return (
      DCGANGenerator(size, channels, width, latent),
      DCGANDiscriminator(size, channels, width, norm),
    )
  if m.name == 'resnet':
    return (
      ResNetGenerator(channels, 256 if width is None else width, latent),
      ResNetDiscriminator(channels, 128 if width is None else width, norm),
    )
  raise ValueError(f'unknown model {m.name!r}')


# --- losses and penalties --------------------------------------------------------------------


def _ra(r, f):
  return r - f.mean(), f - r.mean()


def _rasgan_d(r, f):
  r, f = _ra(r, f)
  return F.softplus(-r).mean() + F.softplus(f).mean()


def _rasgan_g(r, f):
  r, f = _ra(r, f)
  return F.softplus(-f).mean() + F.softplus(r).mean()


def _ralsgan_d(r, f):
  r, f = _ra(r, f)
  return ((r - 1) ** 2).mean() + ((f + 1) ** 2).mean()


def _ralsgan_g(r, f):
  r, f = _ra(r, f)
  return ((f - 1) ** 2).mean() + ((r + 1) ** 2).mean()


def _rahinge_d(r, f):
  r, f = _ra(r, f)
  return F.relu(1 - r).mean() + F.relu(1 + f).mean()


def _rahinge_g(r, f):
  r, f = _ra(r, f)
  return F.relu(1 - f).mean() + F.relu(1 + r).mean()


def _bce_d(r, f):
  return F.softplus(-r).mean() + F.softplus(f).mean()


# name -> (d_loss(real, fake), g_loss(real, fake)); same formulas as jaxgan.losses.
LOSSES = {
  'minimax': (_bce_d, lambda r, f: -F.softplus(f).mean()),
  'non_saturating': (_bce_d, lambda r, f: F.softplus(-f).mean()),
  'lsgan': (
    lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean(),
    lambda r, f: 0.5 * ((f - 1) ** 2).mean(),
  ),
  'wgan': (lambda r, f: f.mean() - r.mean(), lambda r, f: -f.mean()),
  'hinge': (lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(), lambda r, f: -f.mean()),
  'rsgan': (lambda r, f: F.softplus(f - r).mean(), lambda r, f: F.softplus(r - f).mean()),
  'rasgan': (_rasgan_d, _rasgan_g),
  'ralsgan': (_ralsgan_d, _ralsgan_g),
  'rahinge': (_rahinge_d, _rahinge_g),
}
# Generator losses that read the real scores.
G_NEEDS_REAL = {'rsgan', 'rasgan', 'ralsgan', 'rahinge'}


def _squared_grad_norms(D, x):
  x = x.detach().requires_grad_(True)
  (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
  return g.pow(2).flatten(1).sum(1)


def _gp(D, real, fake, one_sided=False):
  eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1))
  x_hat = eps * real + (1 - eps) * fake
  excess = torch.sqrt(_squared_grad_norms(D, x_hat) + 1e-12) - 1.0
  if one_sided:
    excess = F.relu(excess)
  return excess.pow(2).mean()


def approx_squared_differences(D, x, scores=None, noise=None, sigma: float = APPROX_SIGMA):
  """APT's approximate R1 (Lin et al. 2025) at `x`: mean_i (D(x_i) - D(x_i + sigma eps_i))^2.

  Args:
    D: the critic, `[n, ...] -> [n]`.
    x: the inputs `[n, ...]` (real, or detached fake); detached here.
    scores: D(x) when the caller has it (the critic loss's scores, whose graph the penalty's
      gradient then goes through); None computes it.
    noise: eps, the shape of `x`; None draws `torch.randn_like(x)`.
    sigma: the noise scale.

  Returns:
    A scalar float32 tensor. For a critic linear in x it is sigma^2 ||grad D||^2 in expectation:
    the approximate R1 is about sigma^2 R1.
  """
  x = x.detach()
  if scores is None:
    scores = D(x)
  if noise is None:
    noise = torch.randn_like(x)
  return (scores - D(x + sigma * noise)).pow(2).mean()


PENALTIES = {
  'wgan_gp': _gp,
  'wgan_lp': lambda D, real, fake: _gp(D, real, fake, one_sided=True),
  'r1': lambda D, real, fake: _squared_grad_norms(D, real).mean(),
  'r2': lambda D, real, fake: _squared_grad_norms(D, fake).mean(),
  'approx_r1': lambda D, real, fake, scores=None: approx_squared_differences(D, real, scores),
  'approx_r2': lambda D, real, fake, scores=None: approx_squared_differences(D, fake, scores),
}
# Penalties that reuse the critic loss's scores of (real, fake): index 0 the real, 1 the fake.
REUSES_SCORES = {'approx_r1': 0, 'approx_r2': 1}


def penalty_loss(
  D, real, fake, weights: dict[str, float], every: int = 1, update: int = 0, scores=None
):
  """The weighted penalties of one critic update, lazily as StyleGAN2 (Karras et al. 2020).

  Args:
    D: the critic, `[n, ...] -> [n]` (with augmentation, D behind it).
    real: real inputs `[n, ...]`, float32.
    fake: fake inputs, the same shape (detached).
    weights: penalty name (a key of `PENALTIES`) -> weight.
    every: the lazy interval k: the penalties are computed when `update % k == 0`, times k.
    update: the critic update's index (0-based, counted over the whole run).
    scores: the critic loss's `(D(real), D(fake))`, for the penalties of `REUSES_SCORES` (the
      approximate R1 and R2 then run D once more, at the noisy inputs); None: they compute them.

  Returns:
    A scalar float32 tensor to add to the critic loss, or None when nothing is due.
  """
  if not weights or update % every:
    return None

  def value(name):
    if scores is not None and name in REUSES_SCORES:
      return PENALTIES[name](D, real, fake, scores[REUSES_SCORES[name]])
    return PENALTIES[name](D, real, fake)

  return sum(every * w * value(name) for name, w in weights.items())


# --- ADA's augmentation pipeline (Karras et al. 2020) -----------------------------------------

# As jaxgan.augment.ada_lib (and StyleGAN2-ADA's AugmentPipe defaults).
ADA_BLIT = ('xflip', 'rotate90', 'xint')
ADA_GEOMETRIC = ('scale', 'rotate', 'aniso', 'xfrac')
ADA_COLOUR = ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')
ADA_TRANSFORMS = ADA_BLIT + ADA_GEOMETRIC + ADA_COLOUR + ('noise', 'cutout')
ADA_PRESETS = {
  'blit': dict.fromkeys(ADA_BLIT, 1.0),
  'geom': dict.fromkeys(ADA_GEOMETRIC, 1.0),
  'color': dict.fromkeys(ADA_COLOUR, 1.0),
  'bg': dict.fromkeys(ADA_BLIT + ADA_GEOMETRIC, 1.0),
  'bgc': dict.fromkeys(ADA_BLIT + ADA_GEOMETRIC + ADA_COLOUR, 1.0),
  'bgcc': dict.fromkeys(ADA_BLIT + ADA_GEOMETRIC + ADA_COLOUR + ('cutout',), 1.0),
  'r3gan': {
    **dict.fromkeys(ADA_BLIT + ADA_GEOMETRIC, 1.0),
    **dict.fromkeys(ADA_COLOUR, 0.5),
    'cutout': 1.0,
  },
}
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
NOISE_STD, CUTOUT_SIZE = 0.1, 0.5


def parse_ada_policy(policy: str | None) -> dict[str, float]:
  """An ADA policy (a preset, or 'name[:multiplier],...') as {transform: multiplier}.

  Raises:
    ValueError: an unknown transform or preset.
  """
  policy = policy or 'bgc'
  if policy in ADA_PRESETS:
    return dict(ADA_PRESETS[policy])
  out = {}
  for entry in filter(None, (e.strip() for e in policy.split(','))):
    name, _, mult = entry.partition(':')
    if name not in ADA_TRANSFORMS:
      raise ValueError(f'unknown ADA transform {name!r}; valid: {ADA_TRANSFORMS}')
    if float(mult or 1.0) > 0:
      out[name] = float(mult or 1.0)
  return out


def matrix(*rows) -> torch.Tensor:
  """Rows of per-example entries (scalars or `[n]` tensors) -> float32 `[n, R, C]`."""
  n = max(e.shape[0] for row in rows for e in row if isinstance(e, torch.Tensor))
  entries = [
    e.float() if isinstance(e, torch.Tensor) else torch.full((n,), float(e))
    for row in rows
    for e in row
  ]
  return torch.stack(entries, dim=-1).reshape(n, len(rows), len(rows[0]))


def translate2d(tx, ty):
  return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1])


def scale2d(sx, sy):
  return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1])


def rotate2d(theta):
  return matrix(
    [torch.cos(theta), -torch.sin(theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]
  )


def rotate90_2d(k):
  """k quarter turns from exact 0/+-1 entries (as jaxgan: cos(pi/2) in float32 is not 0)."""
  k = k.long() % 4
  c = torch.tensor([1.0, 0.0, -1.0, 0.0])[k]
  s = torch.tensor([0.0, 1.0, 0.0, -1.0])[k]
  return matrix([c, -s, 0], [s, c, 0], [0, 0, 1])


def translate3d(tx, ty, tz):
  return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1])


def scale3d(sx, sy, sz):
  return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1])


_LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3.0)
_LUMA_OUTER = torch.outer(_LUMA, _LUMA)


def luma_flip3d(i):
  """Householder reflection along the luma axis where `i` is 1: `[n, 4, 4]`."""
  return torch.eye(4) - 2 * _LUMA_OUTER * i.reshape(-1, 1, 1)


def hue_rotate3d(theta):
  """Rotation about the luma axis by `theta` (Rodrigues, as StyleGAN2-ADA's rotate3d)."""
  v = float(_LUMA[0])
  s, c = torch.sin(theta), torch.cos(theta)
  cc = 1 - c
  return matrix(
    [v * v * cc + c, v * v * cc - v * s, v * v * cc + v * s, 0],
    [v * v * cc + v * s, v * v * cc + c, v * v * cc - v * s, 0],
    [v * v * cc - v * s, v * v * cc + v * s, v * v * cc + c, 0],
    [0, 0, 0, 1],
  )


def saturate3d(s):
  return _LUMA_OUTER + (torch.eye(4) - _LUMA_OUTER) * s.reshape(-1, 1, 1)


def warp(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
  """Resamples NCHW `images` at `g_inv @ (output pixel)` (pixels about the centre).

  `F.affine_grid` + `F.grid_sample` (bilinear, reflection about the edge pixels' centres with
  align_corners=True), as `jaxgan.augment.transforms.warp`: one sampling pass, without
  StyleGAN2-ADA's 2x wavelet up- and downsampling around it.
  """
  n, c, h, w = images.shape
  cx, cy = (w - 1) / 2, (h - 1) / 2
  to_norm = torch.diag(torch.tensor([1 / cx, 1 / cy, 1.0]))
  from_norm = torch.diag(torch.tensor([cx, cy, 1.0]))
  theta = to_norm @ g_inv @ from_norm
  grid = F.affine_grid(theta[:, :2], [n, c, h, w], align_corners=True)
  return F.grid_sample(images, grid, 'bilinear', 'reflection', align_corners=True)


# ADA's anti-aliasing filter around geometric transforms ('Hz_geom'): the Symlet-6 wavelet's
# low-pass filter, normalised to unit DC gain.
SYM6 = (
  0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
  0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
  -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip


@functools.lru_cache(maxsize=64)
def _upsample_matrix(length: int) -> torch.Tensor:
  """upfirdn2d's 2x upsampling with SYM6 (zero insertion, padding [6, 5], gain 2) along one axis,
  as a `(2 length, length)` matrix (so it and its transpose in the backward pass are matmuls)."""
  f = torch.tensor(SYM6, dtype=torch.float64)
  f = (f / f.sum()).float()
  u = torch.zeros(2 * length, length)
  for m in range(length):
    for s in range(6):
      for row, tap, col in ((2 * m, 11 - 2 * s, m + s - 3), (2 * m + 1, 10 - 2 * s, m + s - 2)):
        if 0 <= col < length:
          u[row, col] += 2 * f[tap]
  return u


@functools.lru_cache(maxsize=8)
def _downsample_matrix(length_in: int, length: int) -> torch.Tensor:
  """upfirdn2d's 2x downsampling with SYM6 (padding -6, flipped filter) to `length` samples."""
  f = torch.tensor(SYM6, dtype=torch.float64)
  f = (f / f.sum()).float()
  d = torch.zeros(length, length_in)
  for m in range(length):
    d[m, 1 + 2 * m : 1 + 2 * m + 12] = f
  return d


def filtered_warp(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
  """StyleGAN2-ADA's execution of a geometric transform on NCHW `images`, as
  `jaxgan.augment.transforms.filtered_warp` computes it: reflect padding by the margin this
  batch's transformed corners need (plus 6 pixels, at most size - 1 a side), 2x SYM6 upsampling,
  a bilinear `grid_sample` (zeros outside), 2x SYM6 downsampling. Eager, so the padding is just
  this batch's margin (jaxgan's compiled step pads by the largest and zeroes the rest)."""
  n, c, h, w = images.shape
  cx, cy = (w - 1) / 2, (h - 1) / 2
  corners = torch.tensor([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]])
  p = corners @ g_inv[:, :2].transpose(1, 2)  # [n, 4, 2]
  m = torch.cat([(-p).flatten(0, 1).max(0).values, p.flatten(0, 1).max(0).values])
  m = m + torch.tensor([6 - cx, 6 - cy, 6 - cx, 6 - cy])
  m = torch.minimum(m.clamp(min=0), torch.tensor([w - 1, h - 1, w - 1, h - 1.0]))
  mx0, my0, mx1, my1 = (int(v) for v in m.ceil())
  x = F.pad(images, [mx0, mx1, my0, my1], mode='reflect')
  hp, wp = x.shape[2:]
  x = _upsample_matrix(hp) @ x @ _upsample_matrix(wp).T  # [n, c, 2 hp, 2 wp]
  # The output grid and 3 pixels around it at twice the resolution, in padded-input pixels.
  ho, wo = 2 * (h + 6), 2 * (w + 6)
  a = (torch.arange(wo) - (wo - 1) / 2 + 0.5) / 2
  b = (torch.arange(ho) - (ho - 1) / 2 + 0.5) / 2
  grid = torch.stack([a.expand(ho, wo), b[:, None].expand(ho, wo), torch.ones(ho, wo)], -1)
  src = grid.reshape(1, -1, 3) @ g_inv[:, :2].transpose(1, 2)  # [n, ho wo, 2] about the centre
  ix = 2 * (src[..., 0] + cx + mx0)  # pixel index in the upsampled image
  iy = 2 * (src[..., 1] + cy + my0)
  norm = torch.stack([ix / (2 * wp - 1) * 2 - 1, iy / (2 * hp - 1) * 2 - 1], -1)
  x = F.grid_sample(x, norm.view(n, ho, wo, 2), 'bilinear', 'zeros', align_corners=True)
  return _downsample_matrix(ho, h) @ x @ _downsample_matrix(wo, w).T


def apply_colour(images: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
  """A 4x4 colour matrix per example on NCHW images (one channel: ADA's row average)."""
  n, ch, h, w = images.shape
  x = images.reshape(n, ch, h * w)
  if ch == 3:
    x = c[:, :3, :3] @ x + c[:, :3, 3:]
  else:
    m = c[:, :3, :].mean(dim=1, keepdim=True)
    x = x * m[:, :, :3].sum(dim=2, keepdim=True) + m[:, :, 3:]
  return x.reshape(n, ch, h, w)


class AugmentPipe:
  """ADA's pipeline (Karras et al. 2020) on NCHW float images, the ops of jaxgan's `ada`.

  Args:
    policy: a preset of `ADA_PRESETS` or 'name[:multiplier],...'.
    p: the probability; each transform is applied per example with probability p * multiplier.
  """

  def __init__(self, policy: str | None = 'bgc', p: float = 0.0):
    self.mults, self.p = parse_ada_policy(policy), p

  def _gate(self, name, value, identity):
    on = torch.rand(value.shape[0]) < self.mults.get(name, 0.0) * self.p
    on = on.reshape((-1,) + (1,) * (value.dim() - 1))
    return torch.where(on, value, identity)

  def geometry(self, n: int, h: int, w: int) -> torch.Tensor:
    """Draws the blit and geometric transforms: `[n, 3, 3]` output pixel -> input point."""
    m, g = self.mults, torch.eye(3).expand(n, 3, 3)
    zero, one = torch.zeros(n), torch.ones(n)
    if 'xflip' in m:
      g = g @ scale2d(1 - 2 * self._gate('xflip', torch.floor(torch.rand(n) * 2), zero), 1)
    if 'rotate90' in m:
      g = g @ rotate90_2d(self._gate('rotate90', torch.floor(torch.rand(n) * 4), zero))
    if 'xint' in m:
      t = self._gate('xint', (torch.rand(n, 2) * 2 - 1) * XINT_MAX, torch.zeros(n, 2))
      g = g @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
    if 'scale' in m:
      s = self._gate('scale', torch.exp2(torch.randn(n) * SCALE_STD), one)
      g = g @ scale2d(1 / s, 1 / s)
    p_rot = 1 - math.sqrt(min(max(1 - m.get('rotate', 0.0) * self.p, 0.0), 1.0))
    thetas = []
    if 'rotate' in m:
      for _ in range(2):
        theta = (torch.rand(n) * 2 - 1) * math.pi * ROTATE_MAX
        thetas.append(torch.where(torch.rand(n) < p_rot, theta, zero))
      g = g @ rotate2d(thetas[0])
    if 'aniso' in m:
      s = self._gate('aniso', torch.exp2(torch.randn(n) * ANISO_STD), one)
      g = g @ scale2d(1 / s, s)
    if thetas:
      g = g @ rotate2d(thetas[1])
    if 'xfrac' in m:
      t = self._gate('xfrac', torch.randn(n, 2) * XFRAC_STD, torch.zeros(n, 2))
      g = g @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
    return g

  def colour(self, n: int, channels: int) -> torch.Tensor:
    """Draws the colour transforms: `[n, 4, 4]` on (r, g, b, 1)."""
    m, c = self.mults, torch.eye(4).expand(n, 4, 4)
    zero, one = torch.zeros(n), torch.ones(n)
    if 'brightness' in m:
      b = self._gate('brightness', torch.randn(n) * BRIGHTNESS_STD, zero)
      c = translate3d(b, b, b) @ c
    if 'contrast' in m:
      s = self._gate('contrast', torch.exp2(torch.randn(n) * CONTRAST_STD), one)
      c = scale3d(s, s, s) @ c
    if 'lumaflip' in m:
      c = luma_flip3d(self._gate('lumaflip', torch.floor(torch.rand(n) * 2), zero)) @ c
    if 'hue' in m and channels > 1:
      theta = (torch.rand(n) * 2 - 1) * math.pi * HUE_MAX
      c = hue_rotate3d(self._gate('hue', theta, zero)) @ c
    if 'saturation' in m and channels > 1:
      s = self._gate('saturation', torch.exp2(torch.randn(n) * SATURATION_STD), one)
      c = saturate3d(s) @ c
    return c

  def __call__(self, images: torch.Tensor) -> torch.Tensor:
    """`[n, C, H, W]` float images -> the same shape, differentiable w.r.t. the images."""
    n, ch, h, w = images.shape
    m = self.mults
    # Every enabled stage runs whatever p is, as in jaxgan's compiled step and ADA's own code:
    # the work per step does not depend on p.
    if any(t in m for t in ADA_GEOMETRIC):  # as jaxgan's ada: ADA's filtered execution, and
      g = self.geometry(n, h, w)  # an example with the identity matrix unchanged
      identity = (g == torch.eye(3)).all(dim=(1, 2)).view(-1, 1, 1, 1)
      images = torch.where(identity, images, filtered_warp(images, g))
    elif any(t in m for t in ADA_BLIT):  # blits alone: exact pixel permutations
      images = warp(images, self.geometry(n, h, w))
    if any(t in m for t in ADA_COLOUR):
      images = apply_colour(images, self.colour(n, ch))
    if 'noise' in m:
      sigma = self._gate('noise', torch.randn(n).abs() * NOISE_STD, torch.zeros(n))
      images = images + torch.randn_like(images) * sigma.view(-1, 1, 1, 1)
    if 'cutout' in m:
      size = self._gate('cutout', torch.full((n,), CUTOUT_SIZE), torch.zeros(n)).view(-1, 1, 1)
      centre = torch.rand(n, 2, 1, 1)
      ys = ((torch.arange(h) + 0.5) / h).view(1, -1, 1)
      xs = ((torch.arange(w) + 0.5) / w).view(1, 1, -1)
      cut = ((ys - centre[:, 0]).abs() < size / 2) & ((xs - centre[:, 1]).abs() < size / 2)
      images = images * (~cut).unsqueeze(1).float()
    return images


# --- the update ------------------------------------------------------------------------------


def _number(c, field: str) -> float:
  """A config field that this reference takes as a plain number only (no schedule specs)."""
  v = c
  for name in field.split('.'):
    v = v[name]
  if isinstance(v, bool) or not isinstance(v, (int, float)):
    raise ValueError(
      f'config.{field}={v!r}: the PyTorch reference takes numbers only, not schedule specs'
    )
  return float(v)


def _adam(params, lr: float, w: Workload):
  betas = (w.config.optim.b1, _number(w.config, 'optim.b2'))
  try:
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
  except (RuntimeError, TypeError):
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def penalty_weights(w: Workload) -> dict[str, float]:
  """`config.loss.penalties` and `loss.penalty` (weight `loss.penalty_weight`) as one dict.

  Raises:
    ValueError: a penalty the reference does not write, or a weight that is not a number.
  """
  lo = w.config.loss
  weights = {name: _number(w.config, f'loss.penalties.{name}') for name in lo.penalties}
  if lo.penalty is not None:
    weights[lo.penalty] = _number(w.config, 'loss.penalty_weight')
  unknown = set(weights) - set(PENALTIES)
  if unknown:
    raise ValueError(
      f'the PyTorch reference has no penalty {sorted(unknown)}; it writes {list(PENALTIES)}'
    )
  return weights


class TorchGAN:
  """One `step()` = n_critic D updates and one G update, as `jaxgan.step.train.make_train_step`.

  Args:
    w: the workload; its config gives the models, `loss` (with several penalties and their lazy
      interval), `augment` (ADA only), `optim` and `data.batch_size`. With
      `model.num_classes` > 0 the batch has fixed labels beside its images (uniform over the
      classes), every critic update draws uniform labels for its fakes, and the G update reuses
      the last critic update's fakes with their labels, as jaxgan's step with
      `data.fake_labels='uniform'`.
    seed: seeds PyTorch's initialisers, the fixed batch and the noise.

  Raises:
    ValueError: a config field the reference does not implement (weight clipping, another
      compute dtype, a model keyword, schedules, bCR, LeCam, an EMA half-life, DiffAugment,
      conditioning other than `check_conditioning`'s, class frequencies for fake labels).
  """

  def __init__(self, w: Workload, seed: int = 0):
    c = w.config
    if c.loss.weight_clip is not None or c.model.compute_dtype != 'float32':
      raise ValueError('the PyTorch reference has no weight clipping and computes in float32')
    if (
      _number(c, 'loss.consistency_weight')
      or _number(c, 'loss.lecam_weight')
      or c.optim.ema_half_life is not None
    ):
      raise ValueError('the PyTorch reference writes neither bCR, LeCam nor an EMA half-life')
    if c.augment.name not in (None, 'ada'):
      raise ValueError(f'the PyTorch reference writes ADA only; got augment {c.augment.name!r}')
    if c.augment.name is not None and set(penalty_weights(w)) & set(REUSES_SCORES):
      # AugmentPipe draws its transforms per call: D(x) and D(x + sigma eps) would compare two
      # augmentations of x rather than x and its noisy copy.
      raise ValueError('the PyTorch reference writes the approximate R1 / R2 without augmentation')
    self.num_classes = num_classes(w)
    if self.num_classes and c.data.get('fake_labels', 'uniform') != 'uniform':
      raise ValueError("the PyTorch reference draws fake labels 'uniform' only")
    torch.manual_seed(seed)
    self.w = w
    self.n_critic, self.batch_size = c.loss.n_critic, c.data.batch_size
    self.latent_dim = c.model.latent_dim
    self.penalties, self.every = penalty_weights(w), c.loss.penalty_every
    self.ema_decay, self.loss_name = c.optim.ema_decay, c.loss.name
    self.G, self.D = make_models(w)
    self.G.train()
    self.D.train()
    self.opt_g = _adam(self.G.parameters(), _number(c, 'optim.g_lr'), w)
    self.opt_d = _adam(self.D.parameters(), _number(c, 'optim.d_lr'), w)
    self.g_params = list(self.G.parameters())
    self.d_params = list(self.D.parameters())
    self.ema = [p.detach().clone() for p in self.g_params]
    self.d_loss, self.g_loss = LOSSES[c.loss.name]
    shape = (
      w.image_shape
      if len(w.image_shape) == 1
      else (w.image_shape[2], w.image_shape[0], w.image_shape[1])
    )  # NHWC -> NCHW
    self.batch = torch.rand(self.n_critic, self.batch_size, *shape) * 2 - 1
    self.labels = (
      torch.randint(0, self.num_classes, (self.n_critic, self.batch_size))
      if self.num_classes
      else None
    )
    # As jaxgan: a critic without state (no BatchNorm, no spectral norm) on vectors scores real
    # and fake in one pass of twice the rows, which is faster for small matmuls.
    self.one_pass = len(w.image_shape) == 1 and d_norm(w) in ('none', 'layer')
    self.augment, self.ada_target = None, None
    if c.augment.name == 'ada':
      self.ada_target = c.augment.ada_target
      p = 0.0 if self.ada_target is not None else _number(c, 'augment.p')
      self.augment = AugmentPipe(c.augment.policy, p)
      self.ada_kimg, self.ada_interval = c.augment.ada_kimg, c.augment.ada_interval
      self.one_pass = False
    self.d_updates = self.steps = 0
    self.ada_signs, self.ada_count = torch.zeros(()), 0

  def _critic(self):
    """D as the losses and penalties see it, `critic(x, y=None)`: behind the augmentation,
    when there is one, and given the labels of a conditional workload."""
    D, augment = self.D, self.augment
    if augment is None and not self.num_classes:
      return D
    aug = (lambda x: x) if augment is None else augment
    return lambda x, y=None: D(aug(x)) if y is None else D(aug(x), y)

  def _d_update(self, real, fake, y_real=None, y_fake=None):
    critic = self._critic()
    if self.one_pass:
      s_real, s_fake = self.D(torch.cat([real, fake])).chunk(2)
    elif self.num_classes:
      s_real, s_fake = critic(real, y_real), critic(fake, y_fake)
    else:
      s_real, s_fake = critic(real), critic(fake)
    loss = self.d_loss(s_real, s_fake)
    # StyleGAN2's lazy regularisation: a Python `if` on the update count (inside penalty_loss).
    penalty = penalty_loss(
      critic, real, fake, self.penalties, self.every, self.d_updates, (s_real, s_fake)
    )
    if penalty is not None:
      loss = loss + penalty
    self.d_updates += 1
    if self.ada_target is not None:
      self.ada_signs += torch.sign(s_real.detach()).sum()
      self.ada_count += s_real.shape[0]
    self.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    self.opt_d.step()
    return loss

  def _adjust_ada_p(self) -> None:
    """ADA's controller (Karras et al. 2020): every `ada_interval` steps, p moves towards r_t."""
    self.steps += 1
    if self.ada_target is None or self.steps % self.ada_interval:
      return
    r_t = float(self.ada_signs) / self.ada_count
    adjust = math.copysign(1.0, r_t - self.ada_target) if r_t != self.ada_target else 0.0
    p = self.augment.p + adjust * self.ada_count / (self.ada_kimg * 1000)
    self.augment.p = min(max(p, 0.0), 1.0)
    self.ada_signs, self.ada_count = torch.zeros(()), 0

  def step(self) -> tuple[torch.Tensor, torch.Tensor]:
    """One train step.

    Returns:
      The last critic update's loss and the generator's loss, scalar float32 tensors.
    """
    k = self.num_classes
    G = self.G
    y_real = y_fake = None
    for i in range(self.n_critic):
      z = torch.randn(self.batch_size, self.latent_dim)
      args = (z,)
      if k:
        y_real, y_fake = self.labels[i], torch.randint(0, k, (self.batch_size,))
        args = (z, y_fake)
      if i < self.n_critic - 1:
        with torch.no_grad():
          fake = G(*args)
      else:
        fake = G(*args)  # keeps its graph: the G update reuses these fakes
      d_loss = self._d_update(self.batch[i], fake.detach(), y_real, y_fake)

    for p in self.d_params:
      p.requires_grad_(False)
    critic = self._critic()
    s_fake = critic(fake, y_fake) if k else critic(fake)
    if self.loss_name in G_NEEDS_REAL:
      with torch.no_grad():
        s_real = critic(self.batch[-1], y_real) if k else critic(self.batch[-1])
    else:
      s_real = None
    g_loss = self.g_loss(s_real, s_fake)
    self.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    self.opt_g.step()
    for p in self.d_params:
      p.requires_grad_(True)
    with torch.no_grad():
      torch._foreach_lerp_(self.ema, self.g_params, 1.0 - self.ema_decay)
    self._adjust_ada_p()
    return d_loss.detach(), g_loss.detach()


def build_torch(w: Workload, seed: int = 0) -> TorchGAN:
  """The PyTorch reference of workload `w` (see `TorchGAN`)."""
  return TorchGAN(w, seed)
