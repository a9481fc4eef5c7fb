"""The benchmark workloads in plain PyTorch: same models, losses, penalties and update semantics.

Written to be a fair, careful reference rather than a naive port:

- n_critic semantics as in `jaxgan.train`: discriminator update i sees its own real slice and fakes
  from its own noise; the generator update reuses the fakes of the last discriminator update (G's
  forward for the first n_critic - 1 updates runs under `torch.no_grad`; the last one keeps its
  graph for the G update).
- D updates see detached fakes, so no gradient flows into G during D steps; during the G update
  D's parameters have `requires_grad=False`, so no D weight gradients are computed.
- Real scores in the G loss are computed (under `no_grad`) only for the relativistic losses that
  use them.
- Adam is PyTorch's fused CPU implementation; the EMA of G's parameters is one `_foreach_lerp_`.
- The gradient penalty is `autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)`, as everyone
  writes it.

Differences that do not change the arithmetic of interest: NCHW layout and PyTorch's default
initialisers (DCGAN uses N(0, 0.02) as in jaxgan); D's BatchNorm running statistics are also
updated by the G pass (jaxgan discards those); jaxgan additionally computes gradient norms and a
finiteness guard over the state. Image sizes 32 and 64 (jaxgan's DCGAN also supports 28).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

try:
  from benchmarks.workloads import Workload
except ImportError:  # run as a script from benchmarks/
  from workloads import Workload  # type: ignore

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
    elif isinstance(m, nn.BatchNorm2d):
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


class DCGANGenerator(nn.Module):
  """z -> 4x4x(w*2^(k-1)) -> ... -> size x size x C, 4x4 stride-2 transposed convs, BN, ReLU."""

  def __init__(self, image_size=32, channels=1, width=64, latent_dim=LATENT_DIM):
    super().__init__()
    num_up = {32: 3, 64: 4}[image_size]
    f = width * 2 ** (num_up - 1)
    self.f = f
    self.fc = nn.Linear(latent_dim, 4 * 4 * f, bias=False)
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
    x = self.fc(z).view(z.shape[0], self.f, 4, 4)
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
      layers.append(_sn(nn.Conv2d(c, out, 4, 2, 1, bias=not normed), spectral))
      if normed:
        layers.append(_norm2d(norm, out))
      layers.append(nn.LeakyReLU(0.2))
      c, s = out, s // 2
    self.net = nn.Sequential(*layers)
    self.fc = _sn(nn.Linear(c * s * s, 1), spectral)
    _dcgan_init(self)

  def forward(self, x):
    return self.fc(self.net(x).flatten(1))[:, 0]


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


def make_models(w: Workload) -> tuple[nn.Module, nn.Module]:
  """PyTorch's G and D for `w.config.model` and `w.image_shape` (NCHW where jaxgan is NHWC).

  Raises:
    ValueError: a model or model keyword this reference does not write.
  """
  m = w.config.model
  if m.kwargs.to_dict().keys() - {'conv'}:  # conv chooses jaxgan's kernels, not the function
    raise ValueError(f'the PyTorch reference takes no model keywords; got {m.kwargs}')
  norm, width, latent = d_norm(w), m.width, m.latent_dim
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


PENALTIES = {
  'wgan_gp': _gp,
  'wgan_lp': lambda D, real, fake: _gp(D, real, fake, one_sided=True),
  'r1': lambda D, real, fake: _squared_grad_norms(D, real).mean(),
  'r2': lambda D, real, fake: _squared_grad_norms(D, fake).mean(),
}


# --- the update ------------------------------------------------------------------------------


def _adam(params, lr: float, w: Workload):
  betas = (w.config.optim.b1, w.config.optim.b2)
  try:
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
  except (RuntimeError, TypeError):
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


class TorchGAN:
  """One `step()` = n_critic D updates and one G update, as `jaxgan.train.make_train_step`.

  Args:
    w: the workload; its config gives the models, `loss`, `optim` and `data.batch_size`.
    seed: seeds PyTorch's initialisers, the fixed batch and the noise.

  Raises:
    ValueError: a config field the reference does not implement (weight clipping, another
      compute dtype, a model keyword).
  """

  def __init__(self, w: Workload, seed: int = 0):
    c = w.config
    if c.loss.weight_clip is not None or c.model.compute_dtype != 'float32':
      raise ValueError('the PyTorch reference has no weight clipping and computes in float32')
    torch.manual_seed(seed)
    self.w = w
    self.n_critic, self.batch_size = c.loss.n_critic, c.data.batch_size
    self.latent_dim, self.penalty_weight = c.model.latent_dim, c.loss.penalty_weight
    self.ema_decay, self.loss_name = c.optim.ema_decay, c.loss.name
    self.G, self.D = make_models(w)
    self.G.train()
    self.D.train()
    self.opt_g = _adam(self.G.parameters(), c.optim.g_lr, w)
    self.opt_d = _adam(self.D.parameters(), c.optim.d_lr, w)
    self.g_params = list(self.G.parameters())
    self.d_params = list(self.D.parameters())
    self.ema = [p.detach().clone() for p in self.g_params]
    self.d_loss, self.g_loss = LOSSES[c.loss.name]
    self.penalty = PENALTIES[c.loss.penalty] if c.loss.penalty else None
    shape = (
      w.image_shape
      if len(w.image_shape) == 1
      else (w.image_shape[2], w.image_shape[0], w.image_shape[1])
    )  # NHWC -> NCHW
    self.batch = torch.rand(self.n_critic, self.batch_size, *shape) * 2 - 1
    # As jaxgan: a critic without state (no BatchNorm, no spectral norm) on vectors scores real
    # and fake in one pass of twice the rows, which is faster for small matmuls.
    self.one_pass = len(w.image_shape) == 1 and d_norm(w) in ('none', 'layer')

  def _d_update(self, real, fake):
    if self.one_pass:
      s_real, s_fake = self.D(torch.cat([real, fake])).chunk(2)
    else:
      s_real, s_fake = self.D(real), self.D(fake)
    loss = self.d_loss(s_real, s_fake)
    if self.penalty is not None:
      loss = loss + self.penalty_weight * self.penalty(self.D, real, fake)
    self.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    self.opt_d.step()
    return loss

  def step(self) -> tuple[torch.Tensor, torch.Tensor]:
    """One train step.

    Returns:
      The last critic update's loss and the generator's loss, scalar float32 tensors.
    """
    G, D = self.G, self.D
    for i in range(self.n_critic):
      z = torch.randn(self.batch_size, self.latent_dim)
      if i < self.n_critic - 1:
        with torch.no_grad():
          fake = G(z)
      else:
        fake = G(z)  # keeps its graph: the G update reuses these fakes
      d_loss = self._d_update(self.batch[i], fake.detach())

    for p in self.d_params:
      p.requires_grad_(False)
    s_fake = D(fake)
    if self.loss_name in G_NEEDS_REAL:
      with torch.no_grad():
        s_real = D(self.batch[-1])
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
    return d_loss.detach(), g_loss.detach()


def build_torch(w: Workload, seed: int = 0) -> TorchGAN:
  """The PyTorch reference of workload `w` (see `TorchGAN`)."""
  return TorchGAN(w, seed)
