r"""Gradient penalties as bare expectations (chapter 3).

Each function returns one value per member, shape ``[K]``: the plain expectation, with no
weight. The weight is written where the penalty is added, always in one convention:

.. math:: L_U = L_{\text{energy}} + \frac{\gamma}{2}\, \text{penalty}

(``egan_lib.train.dig_step`` shows it). With this convention the Dirac-GAN is critically
damped at :math:`\gamma = 2|f'(0)|` (Mescheder et al., 2018; ``egan_lib.dirac``).

Where each penalty looks (chapter 3); :math:`\hat x` is a random interpolate of a real and a fake:

* ``r1(x_real, e_real)``: :math:`\mathbb{E}_{x\sim p}\|\nabla U(x)\|^2`, on real samples;
* ``r2(x_fake, e_fake)``: :math:`\mathbb{E}_{x\sim q}\|\nabla U(x)\|^2`, on fakes;
* ``wgan_gp(energy, x_real, x_fake)``: :math:`\mathbb{E}_{\hat x}(\|\nabla U(\hat x)\| - 1)^2`, 1-centred;
* ``zero_centred_interpolates(energy, x_real, x_fake)``: :math:`\mathbb{E}_{\hat x}\|\nabla U(\hat x)\|^2`;
* ``wgan_div(x_real, e_real, x_fake, e_fake, p=6)``:
  :math:`\tfrac12(\mathbb{E}_{x\sim p}\|\nabla U\|^p + \mathbb{E}_{x\sim q}\|\nabla U\|^p)`;
* ``energy_l2(x_real, e_real, x_fake, e_fake)``: :math:`\mathbb{E}_{x\sim p} U^2 + \mathbb{E}_{x\sim q} U^2`,
  no gradient at all: it only pins the level of U (the energy model of chapter 9).

In a training recipe (``egan_lib.train.Recipe``) a penalty is a function of
``PenaltyInputs``; the adapters below turn the pure functions into one, and the weight stays
visible at the call site::

    from functools import partial
    Recipe(penalty=on_real(r1), gamma=10.0)                       # + (10/2) * R1
    Recipe(penalty=on_fake(r2), gamma=10.0)                       # + (10/2) * R2
    Recipe(penalty=on_interpolates(wgan_gp), gamma=2 * 10.0)      # + 10 * GP: WGAN-GP's lambda = 10
    Recipe(penalty=on_both(partial(wgan_div, p=6)), gamma=2 * 2)  # + 2 * div: WGAN-div's k = 2
    Recipe(penalty=on_both(energy_l2), gamma=2 * 0.01)            # + 0.01 * (E U_real^2 + E U_fake^2)

Lazy application (StyleGAN2): compute the penalty only every N-th energy step and multiply it
by N, so its average weight is unchanged. ``train.dig_step`` does exactly this when the recipe
says ``penalty_every=N``, e.g. ``Recipe(penalty=on_real(r1), gamma=10.0, penalty_every=16)``;
written out, one energy step is::

    loss = energy_loss(e_real, e_fake).total
    if step % N == 0:                                   # lazy: every N-th step ...
        loss = loss + (gamma / 2) * N * r1(x_real, e_real)  # ... weighted N times as much
    loss.sum().backward()

Every gradient norm runs over *all* of a sample's dimensions: for images ``[K, B, C, H, W]``
that is every channel and pixel, as in the papers (not a norm per channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from . import _validate

__all__ = [
    "PenaltyInputs", "on_real", "on_fake", "on_both", "on_interpolates", "grad_sq_norm", "grad_norm",
    "interpolates", "r1", "r2", "wgan_gp", "zero_centred_interpolates", "wgan_div",
    "energy_l2",
]


class PenaltyInputs(NamedTuple):
    """What an energy step hands to a penalty: the energy and both batches with their energies.

    ``x_real`` and ``x_fake`` have ``requires_grad`` set, and ``e_real = energy(x_real)``,
    ``e_fake = energy(x_fake)`` keep their graphs, so a penalty on either batch costs no extra
    forward pass.
    """

    energy: nn.Module
    x_real: Tensor
    e_real: Tensor
    x_fake: Tensor
    e_fake: Tensor


@dataclass(frozen=True)
class on_real:
    """Use a pure penalty ``fn(x, e)`` on the real batch inside a training recipe."""

    fn: Callable[[Tensor, Tensor], Tensor]

    def __call__(self, b: PenaltyInputs) -> Tensor:
        return self.fn(b.x_real, b.e_real)


@dataclass(frozen=True)
class on_fake:
    """Use a pure penalty ``fn(x, e)`` on the fake batch inside a training recipe."""

    fn: Callable[[Tensor, Tensor], Tensor]

    def __call__(self, b: PenaltyInputs) -> Tensor:
        return self.fn(b.x_fake, b.e_fake)


@dataclass(frozen=True)
class on_both:
    """Use a pure penalty ``fn(x_real, e_real, x_fake, e_fake)`` (e.g. ``wgan_div``) in a recipe.

    Options go in with ``functools.partial``: ``on_both(partial(wgan_div, p=6))``.
    """

    fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]

    def __call__(self, b: PenaltyInputs) -> Tensor:
        return self.fn(b.x_real, b.e_real, b.x_fake, b.e_fake)


@dataclass(frozen=True)
class on_interpolates:
    """Use a penalty on random interpolates, ``fn(energy, x_real, x_fake, rng=...)``, in a recipe.

    For ``wgan_gp`` and ``zero_centred_interpolates``. It costs one extra forward pass of the
    energy on the interpolates (the penalties on reals or fakes reuse the step's energies).
    ``rng`` (a ``torch.Generator``) makes the interpolation weights reproducible.
    """

    fn: Callable[..., Tensor]
    rng: torch.Generator | None = None

    def __call__(self, b: PenaltyInputs) -> Tensor:
        return self.fn(b.energy, b.x_real.detach(), b.x_fake.detach(), rng=self.rng)


def grad_sq_norm(x: Tensor, e: Tensor) -> Tensor:
    r""":math:`\|\nabla_x U(x)\|^2` per sample, ``[K, B]``, with a graph for the double backward.

    ``x`` is ``[K, B, ...]`` with ``requires_grad``; ``e = U(x)`` is ``[K, B]``. The norm runs
    over every dimension of a sample (all pixels and channels of an image). Because members
    and samples never mix, the gradient of ``e.sum()`` gives each sample its own gradient.
    """
    return _input_grad(x, e).pow(2).flatten(2).sum(dim=2)


def _input_grad(x: Tensor, e: Tensor) -> Tensor:
    r""":math:`\nabla_x U(x)` with the shape of ``x`` and a graph (after the checks of ``grad_sq_norm``)."""
    if not isinstance(x, Tensor) or x.ndim < 3:
        raise ValueError(f"x must be a tensor [K, B, ...], got {getattr(x, 'shape', type(x).__name__)}")
    _validate.energies("e", e)
    if tuple(e.shape) != tuple(x.shape[:2]):
        raise ValueError(f"e must have shape [K, B] = {tuple(x.shape[:2])} to match x, got {tuple(e.shape)}")
    if not x.requires_grad:
        raise ValueError("x must have requires_grad=True and e must be computed from it")
    (g,) = torch.autograd.grad(e.sum(), x, create_graph=True)
    return g


def grad_norm(x: Tensor, e: Tensor) -> Tensor:
    r""":math:`\|\nabla_x U(x)\|` per sample, ``[K, B]``, over every dimension of a sample.

    Same inputs as ``grad_sq_norm``. Its backward is finite where the gradient vanishes (torch
    takes the subgradient 0 of the norm at 0), which ``grad_sq_norm(...).sqrt()`` would not be.
    Chapter 3 uses it to measure how flat the energy is at the real samples.
    """
    return _input_grad(x, e).flatten(2).norm(dim=2)


def r1(x_real: Tensor, e_real: Tensor) -> Tensor:
    r"""Zero-centred penalty on real samples, eq. (2): :math:`\mathbb{E}_{x\sim p}\|\nabla_x U(x)\|^2`.

    Real samples should sit at the bottoms of pits, where the gradient vanishes; this asks for
    exactly that. (Mescheder et al., 2018, call it R1 and add it as (γ/2)·R1; so do we.) A
    piecewise-linear (ReLU) energy can only shrink its slopes there, not round its kinks: its pit
    bottoms are points (chapter 3 measures it).
    Returns ``[K]``.
    """
    return grad_sq_norm(x_real, e_real).mean(dim=1)


def r2(x_fake: Tensor, e_fake: Tensor) -> Tensor:
    r"""Zero-centred penalty on fakes: :math:`\mathbb{E}_{x\sim q}\|\nabla_x U(x)\|^2`.

    Mescheder et al. (2018) call it R2 and prove local convergence for it as for R1 (chapter 3
    shows both on the Dirac-GAN). Add it as (γ/2)·R2, with ``on_fake(r2)`` in a recipe.
    Returns ``[K]``.
    """
    return grad_sq_norm(x_fake, e_fake).mean(dim=1)


def _check_real_fake(x_real, x_fake) -> None:
    for name, x in (("x_real", x_real), ("x_fake", x_fake)):
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 3:
            raise ValueError(f"{name} must be a floating tensor [K, B, ...], got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
    if x_real.shape != x_fake.shape:
        raise ValueError(f"x_real and x_fake must have the same shape [K, B, ...], got "
                         f"{tuple(x_real.shape)} and {tuple(x_fake.shape)}")


def interpolates(x_real: Tensor, x_fake: Tensor, rng: torch.Generator | None = None) -> Tensor:
    r"""Random points on the segments between reals and fakes: :math:`\hat x = \epsilon x_\text{real} + (1-\epsilon) x_\text{fake}`.

    One :math:`\epsilon \sim U[0, 1]` per member and sample, shared by all of that sample's
    dimensions (Gulrajani et al., 2017). ``x_real`` and ``x_fake`` are ``[K, B, ...]`` of one
    shape; they are detached, and the result is a new leaf with ``requires_grad`` set, ready
    for ``grad_sq_norm``. With an ``rng``, :math:`\epsilon` is drawn on its device and moved
    to the data's.
    """
    _check_real_fake(x_real, x_fake)
    if rng is not None and not isinstance(rng, torch.Generator):
        raise ValueError(f"rng must be a torch.Generator or None, got {type(rng).__name__}")
    shape = tuple(x_real.shape[:2]) + (1,) * (x_real.ndim - 2)
    dev = rng.device if rng is not None else x_real.device
    eps = torch.rand(shape, generator=rng, device=dev, dtype=x_real.dtype).to(x_real.device)
    x_hat = eps * x_real.detach() + (1 - eps) * x_fake.detach()
    return x_hat.requires_grad_(True)


def _energy_at(energy, x_hat: Tensor) -> Tensor:
    if not callable(energy):
        raise ValueError(f"energy must be a callable energy net [K, B, ...] -> [K, B], got {energy!r}")
    return energy(x_hat)


def wgan_gp(energy: nn.Module, x_real: Tensor, x_fake: Tensor,
            rng: torch.Generator | None = None) -> Tensor:
    r"""1-centred penalty on interpolates (WGAN-GP): :math:`\mathbb{E}_{\hat x}\big(\|\nabla_x U(\hat x)\| - 1\big)^2`.

    Gulrajani et al. (2017) ask the critic to be 1-Lipschitz by pushing its gradient norm to 1
    on random interpolates :math:`\hat x` (``interpolates``); they add :math:`\lambda` times this,
    :math:`\lambda = 10`, which in this book's convention is ``gamma = 2 * lambda = 20``. The
    sign of U does not matter here (the norm of :math:`\nabla U` and of :math:`\nabla(-U)` agree).
    Chapter 3 contrasts it with the zero-centred penalties: a 1-centred penalty asks for slopes
    everywhere, also at the real samples, so reals cannot sit at pit bottoms, and on the
    Dirac-GAN it does not converge (``egan_lib.dirac``).

    Costs one forward pass of ``energy`` on the interpolates. Returns ``[K]``.
    """
    x_hat = interpolates(x_real, x_fake, rng)
    return (grad_norm(x_hat, _energy_at(energy, x_hat)) - 1).pow(2).mean(dim=1)


def zero_centred_interpolates(energy: nn.Module, x_real: Tensor, x_fake: Tensor,
                              rng: torch.Generator | None = None) -> Tensor:
    r"""Zero-centred penalty on interpolates: :math:`\mathbb{E}_{\hat x}\|\nabla_x U(\hat x)\|^2`.

    WGAN-GP's points with R1's centre, as in Thanh-Tung et al. (2019) ("zero-centered gradient
    penalty", 0-GP). Chapter 3 compares it with R1 on reals. Costs one forward pass of
    ``energy`` on the interpolates. Returns ``[K]``.
    """
    x_hat = interpolates(x_real, x_fake, rng)
    return grad_sq_norm(x_hat, _energy_at(energy, x_hat)).mean(dim=1)


def wgan_div(x_real: Tensor, e_real: Tensor, x_fake: Tensor, e_fake: Tensor, *, p: float = 6.0) -> Tensor:
    r"""The Wasserstein-divergence penalty (WGAN-div, Wu et al., 2018), bare:

    .. math:: \tfrac12\Big(\mathbb{E}_{x\sim p}\|\nabla_x U(x)\|^p + \mathbb{E}_{x\sim q}\|\nabla_x U(x)\|^p\Big)

    The paper adds :math:`k\,\mathbb{E}_{x\sim P_u}\|\nabla f(x)\|^p` with :math:`k = 2`,
    :math:`p = 6`, and in its experiments takes :math:`P_u` to be the real and the fake samples
    (the authors' code adds :math:`\tfrac k2(\mathbb{E}_\text{real} + \mathbb{E}_\text{fake})`).
    We evaluate it on exactly those points: the real batch and the fake batch, in equal parts,
    so this is the expectation over :math:`P_u` = the even mixture of reals and fakes, and it
    reuses the step's energies (no extra forward pass). The paper's weight :math:`k` is written
    at the call site; in this book's :math:`\frac{\gamma}{2}` convention it is ``gamma = 2 * k``
    (``gamma = 4`` for :math:`k = 2`). Zero-centred like R1, but with :math:`p = 6` it is flat
    near :math:`\nabla U = 0`, so it does not damp the Dirac-GAN at its equilibrium (chapter 3).

    Deviation: the paper allows any :math:`p > 1`; we require :math:`p \ge 2`, because for
    :math:`p < 2` the double backward through :math:`\|\nabla U\|^p` is not finite where the
    gradient vanishes. Returns ``[K]``.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 2:
        raise ValueError(f"p must be a number >= 2, got {p!r}")
    real = grad_sq_norm(x_real, e_real).pow(p / 2).mean(dim=1)
    fake = grad_sq_norm(x_fake, e_fake).pow(p / 2).mean(dim=1)
    return 0.5 * (real + fake)


def energy_l2(x_real: Tensor, e_real: Tensor, x_fake: Tensor, e_fake: Tensor) -> Tensor:
    r"""The energies' own size, :math:`\mathbb{E}_{x\sim p} U(x)^2 + \mathbb{E}_{x\sim q} U(x)^2`
    (Du & Mordatch, 2019, add it with weight :math:`\alpha`; here ``gamma = 2 * alpha``).

    Not a gradient penalty: eq. (1) read as maximum likelihood fixes U only up to a constant, and this
    keeps that constant near 0 without touching the slopes, which an energy model of sharp data needs
    (chapter 9; R1 there would cost :math:`\gamma/\sigma^2` at the data's own density). The inputs
    ``x_real``, ``x_fake`` are unused; they keep the signature of ``on_both``. Returns ``[K]``.
    """
    return e_real.pow(2).mean(dim=1) + e_fake.pow(2).mean(dim=1)
