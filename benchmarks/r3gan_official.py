"""The official R3GAN code (brownvc/R3GAN, PyTorch) trained with jaxgan's `stacked_mnist_r3gan`.

Does the official code collapse on Stacked MNIST at jaxgan's CPU scale, as jaxgan's recipe does
(865 modes at step 1,000, 423 at 2,000, 63-80 at 4,000-5,000; docs/results.md)? It does: the
answer is in docs/results.md. Needs PyTorch (`pip install -e '.[bench]'`) and a local git copy of
brownvc/R3GAN (`--mirror`; or a work tree at `--official_dir`). Launch, from the repository root
(0.5-2 s a step on one thread, plus about a minute per evaluation); each variant needs its own
`--out`, since a relaunch resumes and refuses other hyperparameters:

    mkdir -p runs/r3gan_official && nohup .venv/bin/python benchmarks/r3gan_official.py \\
        --steps 5000 --eval_every 1000 --out runs/r3gan_official/trajectory.jsonl \\
        > runs/r3gan_official/log.txt 2>&1 &

Relaunching the same command resumes from `<out dir>/checkpoint.pt` (written at every
evaluation). `--official_dir` (default /tmp/r3gan_official) holds a work tree of the official
repository; when missing it is extracted from the git repository `--mirror` with `git archive`. No official
code is copied into jaxgan: it is imported from there.

What runs. The official `R3GAN.Networks` Generator and Discriminator at the widths, blocks,
cardinalities and expansion that `jaxgan.models.r3gan.make` derives from the config's model
(D takes them reversed), trained by the official `AdversarialTraining` (RpGAN + gamma/2 (R1 + R2))
in a loop that follows the official `training/training_loop.py`: per iteration a D phase (one real
batch, fresh z) then a G phase (ANOTHER real batch, fresh z), each module's `requires_grad` on only
in its phase, Adam(betas=(0, b2), eps=1e-8), then the EMA of G. Hyperparameters default to
`experiments/configs/stacked_mnist_r3gan.py` (lr 2e-4, b2 0.99, gamma 1, batch 64, latent 64,
EMA decay 0.999 per step), all constant: the official cosine schedules and half-life EMA are
replaced by jaxgan's constants so that both runs use the same values. Real batches come from
jaxgan's own loader (`jaxgan.data.load_source` + `make_loader`, seed = config seed, padded to 32,
in [-1, 1]), NCHW for torch. Every `--eval_every` steps the EMA generator is scored by jaxgan's
Evaluator with metric 'modes' (26,000 samples, modes of 1000, reverse KL, jaxgan's cached MNIST
classifier and the real-data floor), as jaxgan's loop scores its runs. One CPU thread for torch.

Differences from jaxgan's train step (`jaxgan.step.train.make_train_step`), all known ones:
- G's update: jaxgan reuses the last D update's noise (its fakes) and its real batch (for the
  relativistic real scores); the official G phase draws a fresh real batch and fresh z. So this
  driver reads 128 real images per step (loader batches 2k for D and 2k+1 for G at step k)
  where jaxgan reads 64 (batch k for both players).
- jaxgan drops an update whose losses or gradients are not finite (`skip_nonfinite`); the
  official loop applies every update.
- Initial weights and every random draw differ (torch's generator against JAX keys); the
  distributions and the arithmetic (float32 convolutions, [1, 2, 1] resampling, fix-up init,
  Adam, R1/R2 as batch means of squared input-gradient norms) are the same formulas, computed
  by different kernels, so values agree only to rounding.
- Evaluation latents come from torch's generator seeded from the Evaluator's JAX keys.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import subprocess
import sys
import time
import types

import numpy as np

try:
  import torch
except ImportError:  # --help works without it; a run says what to install
  torch = None

MIRROR = '/work/.mirror/brownvc+R3GAN/repo'  # where this project's tools put a fetched copy
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'experiments', 'configs', 'stacked_mnist_r3gan.py')
# Flags that define the run: a resumed run must keep them.
DEFINING = ('gamma', 'lr', 'b2', 'ema_decay', 'widths', 'blocks', 'seed', 'batch', 'latent')


def import_official(path: str, mirror: str = MIRROR):
  """`(R3GAN.Networks, R3GAN.Trainer)` from a work tree at `path`, extracted when missing."""
  if not os.path.exists(os.path.join(path, 'R3GAN', 'Networks.py')):
    if not os.path.isdir(mirror):
      raise SystemExit(
        f'No official R3GAN at {path} and no git repository at --mirror={mirror}: clone '
        'https://github.com/brownvc/R3GAN and pass --official_dir=<its work tree>.'
      )
    os.makedirs(path, exist_ok=True)
    archive = subprocess.run(
      ['git', '-C', mirror, 'archive', 'HEAD'], check=True, capture_output=True
    )
    subprocess.run(['tar', '-x', '-C', path], input=archive.stdout, check=True)
  # CPU patch: torch_utils/ops/{conv2d,grid_sample}_gradfix import `parse_version` from
  # setuptools' pkg_resources, absent here; packaging's is the same function. The CUDA kernels
  # (bias_act, upfirdn2d) fall back to their reference code by themselves off CUDA.
  try:
    import pkg_resources  # noqa: F401
  except ImportError:
    import packaging.version

    sys.modules['pkg_resources'] = types.SimpleNamespace(parse_version=packaging.version.parse)
  sys.path.append(path)  # after jaxgan's own packages: the official tree has a `metrics` too
  import R3GAN.Networks
  import R3GAN.Trainer

  return R3GAN.Networks, R3GAN.Trainer


def load_config(path: str):
  """jaxgan's run config, checked to be one the official code can express."""
  spec = importlib.util.spec_from_file_location('r3gan_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  pen = dict(c.loss.penalties)
  checks = {
    'loss.name rsgan': c.loss.name == 'rsgan',
    'penalties r1 = r2 only': set(pen) == {'r1', 'r2'} and pen['r1'] == pen['r2'],
    'optim.b1 0': c.optim.b1 == 0.0,
    'constant, equal learning rates': isinstance(c.optim.g_lr, float)
    and c.optim.g_lr == c.optim.d_lr,
    'constant b2': isinstance(c.optim.b2, float),
    'no EMA half-life': c.optim.ema_half_life is None,
    'n_critic 1, no augmentation': c.loss.n_critic == 1 and c.augment.name is None,
    'unconditional r3gan with a linear output': c.model.name == 'r3gan'
    and not c.model.num_classes
    and c.model.kwargs.get('output_activation') == 'none',
  }
  bad = [name for name, ok in checks.items() if not ok]
  if bad:
    raise ValueError(f'{path} is not a recipe the official code runs as is: {bad}')
  return c


def build(networks, c, args):
  """The official G and D at the architecture `jaxgan.models.r3gan.make` gives the config."""
  from jaxgan.models import r3gan

  kwargs = {k: v for k, v in c.model.kwargs.items() if k not in ('output_activation', 'conv')}
  kwargs['width'] = c.model.width
  if args.widths:
    kwargs.update(widths=tuple(int(w) for w in args.widths.split(',')), width=None)
  if args.blocks:
    kwargs['blocks'] = tuple(int(b) for b in args.blocks.split(','))
  g, _ = r3gan.make((c.data.pad_to, c.data.pad_to, 3), **kwargs)
  w, k, n = list(g.widths), list(g.cardinality), list(g.blocks)
  args.widths, args.blocks = ','.join(map(str, w)), ','.join(map(str, n))
  G = networks.Generator(args.latent, w, k, n, g.expansion)
  D = networks.Discriminator(w[::-1], k[::-1], n[::-1], g.expansion)
  print(f'widths {w} cardinality {k} blocks {n} expansion {g.expansion} latent {args.latent}')
  return G, D


def to_torch(batch) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(batch['image'].transpose(0, 3, 1, 2)))


def make_sampler(G_ema, latent: int):
  """`sample_fn(key, n)` for jaxgan's Evaluator: NHWC float32 NumPy images of G_ema."""

  def sample(key, n):
    seed = int.from_bytes(np.asarray(key).tobytes()[-8:], 'little') & (2**63 - 1)
    z = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
      return G_ema(z).permute(0, 2, 3, 1).numpy()

  return sample


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--steps', type=int, default=5000)
  p.add_argument('--eval_every', type=int, default=1000)
  p.add_argument('--log_every', type=int, default=100)
  p.add_argument('--num_samples', type=int, default=None, help="None: the config's (26,000)")
  p.add_argument('--gamma', type=float, default=None, help="None: the config's (2 x r1 weight)")
  p.add_argument('--lr', type=float, default=None)
  p.add_argument('--b2', type=float, default=None)
  p.add_argument('--ema_decay', type=float, default=None)
  p.add_argument('--widths', default=None, help="G's order, e.g. 64,32,16,8; None: the config's")
  p.add_argument('--blocks', default=None, help="per stage, e.g. 1,1,1,1; None: the config's")
  p.add_argument('--seed', type=int, default=None)
  p.add_argument('--config', default=CONFIG)
  p.add_argument('--official_dir', default='/tmp/r3gan_official')
  p.add_argument('--mirror', default=MIRROR, help='a git repository of brownvc/R3GAN')
  p.add_argument('--out', default=os.path.join('runs', 'r3gan_official', 'trajectory.jsonl'))
  p.add_argument('--source_dir', default=os.environ.get('JAXGAN_SOURCE_DIR', '../shared/data'))
  p.add_argument('--data_dir', default=os.environ.get('JAXGAN_DATA_DIR'))
  args = p.parse_args(argv)
  if torch is None:
    raise SystemExit("benchmarks/r3gan_official.py needs PyTorch: pip install -e '.[bench]'")
  torch.set_num_threads(1)
  torch.set_num_interop_threads(1)
  c = load_config(args.config)
  defaults = dict(
    gamma=2 * c.loss.penalties['r1'], lr=c.optim.g_lr, b2=c.optim.b2, ema_decay=c.optim.ema_decay,
    seed=c.seed, num_samples=c.eval.num_samples,
  )  # fmt: skip
  for name, value in defaults.items():
    if getattr(args, name) is None:
      setattr(args, name, value)
  args.batch, args.latent = c.data.batch_size, c.model.latent_dim
  networks, trainer_lib = import_official(args.official_dir, args.mirror)

  torch.manual_seed(args.seed)
  np.random.seed(args.seed)
  G, D = build(networks, c, args)
  G.train().requires_grad_(False)
  D.train().requires_grad_(False)
  G_ema = copy.deepcopy(G).eval()
  trainer = trainer_lib.AdversarialTraining(G, D)
  adam = dict(lr=args.lr, betas=(0.0, args.b2), eps=1e-8)
  opt_d, opt_g = torch.optim.Adam(D.parameters(), **adam), torch.optim.Adam(G.parameters(), **adam)

  import jax

  from jaxgan import data
  from jaxgan.metrics.evaluator import Evaluator

  where = dict(data_dir=args.data_dir, source_dir=args.source_dir)
  src = data.load_source(c.data.name, split=c.data.split, **where)
  loader = data.make_loader(src, batch_size=args.batch, seed=args.seed, pad_to=c.data.pad_to)
  evaluator = Evaluator.create(
    metrics='modes', dataset=c.data.name, reference_split=c.eval.reference_split,
    num_samples=args.num_samples, **where,
  )  # fmt: skip

  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  ckpt_path = os.path.join(os.path.dirname(os.path.abspath(args.out)), 'checkpoint.pt')
  hparams = {k: getattr(args, k) for k in DEFINING}
  step, wall0, cpu0 = 0, 0.0, 0.0
  if os.path.exists(ckpt_path):
    ck = torch.load(ckpt_path, weights_only=False)
    if ck['hparams'] != hparams:
      raise ValueError(f'{ckpt_path} was written with {ck["hparams"]}; now {hparams}')
    for module, name in ((G, 'G'), (D, 'D'), (G_ema, 'G_ema'), (opt_g, 'opt_g'), (opt_d, 'opt_d')):
      module.load_state_dict(ck[name])
    torch.set_rng_state(ck['torch_rng'])
    loader.set_state(ck['loader'])
    step, wall0, cpu0 = ck['step'], ck['wall'], ck['cpu']
    print(f'resumed from {ckpt_path} at step {step}')
  if os.path.exists(args.out):  # rows after the checkpoint are redone
    with open(args.out) as f:
      rows = [line for line in f if line.strip() and json.loads(line)['step'] <= step]
    with open(args.out, 'w') as f:
      f.writelines(rows)
  print('hyperparameters', json.dumps(hparams), flush=True)

  sums, count = np.zeros(4), 0
  t_wall, t_cpu, t_window = time.time() - wall0, time.process_time() - cpu0, time.time()
  while step < args.steps:
    d_real, g_real = to_torch(next(loader)), to_torch(next(loader))
    d_z, g_z = torch.randn(args.batch, args.latent), torch.randn(args.batch, args.latent)
    # D phase, then G phase, as the official training loop.
    opt_d.zero_grad(set_to_none=True)
    D.requires_grad_(True)
    d_adv, _, r1, r2 = trainer.AccumulateDiscriminatorGradients(d_z, d_real, None, args.gamma)
    D.requires_grad_(False)
    opt_d.step()
    opt_g.zero_grad(set_to_none=True)
    G.requires_grad_(True)
    g_adv, _ = trainer.AccumulateGeneratorGradients(g_z, g_real, None)
    G.requires_grad_(False)
    opt_g.step()
    with torch.no_grad():
      for p_ema, p_g in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p_g.lerp(p_ema, args.ema_decay))
    step += 1
    sums += [float(x.mean()) for x in (d_adv, g_adv, r1, r2)]
    count += 1
    is_eval = step % args.eval_every == 0 or step == args.steps
    if not (is_eval or step % args.log_every == 0):
      continue
    row = dict(zip(('d_loss', 'g_loss', 'r1', 'r2'), (sums / count).tolist(), strict=True))
    row = dict(step=step, **row, sec_per_step=(time.time() - t_window) / count)
    if is_eval:
      t0 = time.time()
      key = jax.random.fold_in(jax.random.PRNGKey(args.seed), step)  # as jaxgan's loop
      result = evaluator.evaluate(make_sampler(G_ema, args.latent), key=key)
      row.update({k.rsplit('/', 1)[1]: v for k, v in result.items()})
      row['eval_seconds'] = time.time() - t0
    row.update(wall=time.time() - t_wall, cpu=time.process_time() - t_cpu)
    with open(args.out, 'a') as f:
      f.write(json.dumps(row) + '\n')
    print(json.dumps(row), flush=True)
    if is_eval:
      ck = dict(
        step=step, G=G.state_dict(), D=D.state_dict(), G_ema=G_ema.state_dict(),
        opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), torch_rng=torch.get_rng_state(),
        loader=loader.get_state(), wall=row['wall'], cpu=row['cpu'], hparams=hparams,
      )  # fmt: skip
      torch.save(ck, ckpt_path + '.tmp')
      os.replace(ckpt_path + '.tmp', ckpt_path)
    sums, count, t_window = np.zeros(4), 0, time.time()
  loader.close()


if __name__ == '__main__':
  main()
