r"""Sampling from the pits (chapter 9): Langevin MCMC on a density :math:`\pi \propto e^{\log \pi}`.

Read as a density, an energy is :math:`p(x) \propto \exp(-U(x)/T)` (lower energy, more likely; the
temperature T > 1 flattens it, T < 1 sharpens it). Two targets:

* ``x_target(U, T)``: :math:`\log \pi(x) = -U(x)/T` (plus a constant), chains in data space;
* ``latent_target(U, G, T)``: :math:`\log \pi(z) = -U(G(z))/T - \lVert z \rVert^2/2`, chains in the
  generator's latent space with its N(0, I) prior kept. Pushed through G this samples
  :math:`q_G(x)\,e^{-U(x)/T}` (the generator's density reweighted by the energy), not
  :math:`e^{-U(x)/T}` itself: that would need the Jacobian of G (chapter 9 shows the difference).

One proposal for both samplers, with step size :math:`\varepsilon` and :math:`\xi \sim N(0, I)`:

.. math:: y = x + \varepsilon\,\nabla \log \pi(x) + \sqrt{2\varepsilon}\,\xi .

``ula`` (unadjusted Langevin) always moves to y, which is biased for any :math:`\varepsilon > 0`.
``mala`` (Metropolis-adjusted) accepts y with probability
:math:`\min\big(1, \frac{\pi(y)\,q(x \mid y)}{\pi(x)\,q(y \mid x)}\big)`,
:math:`\log q(y \mid x) = -\lVert y - x - \varepsilon \nabla \log \pi(x)\rVert^2 / (4\varepsilon)`
(a squared norm), which leaves :math:`\pi` exactly invariant. Chains are batched as
``[K, C, d]`` (members x chains x dimensions); each member has its own step size, adapted during
``adapt_steps`` warm-up steps towards ``target_accept`` and then frozen.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

from . import _validate

__all__ = ["Chain", "x_target", "latent_target", "langevin", "mala", "ula", "ReplayBuffer", "grid_sample"]

LogDensity = Callable[[Tensor], Tensor]  # [K, C, d] -> [K, C]


class Chain(NamedTuple):
    """What a run of chains returns."""

    final: Tensor  # [K, C, d] the last states, without a graph
    path: Tensor  # [T, K, C, d] on the CPU: the start and every record_every-th sampling step
    acceptance: Tensor  # [K] mean acceptance rate over the sampling steps (1 for ULA)
    step_size: Tensor  # [K] the step size of the sampling steps


def x_target(energy, temperature: float = 1.0, *, box=None) -> LogDensity:
    """:math:`\\log \\pi(x) = -U(x)/T`: the energy as a density in data space; with ``box`` =
    ``(xmin, xmax, ymin, ymax)`` the density lives on that box only (log density -inf outside, so MALA
    rejects every proposal that leaves it). A ReLU energy grows at most linearly far from the data and
    may fall in some direction, where :math:`e^{-U}` has no finite integral: the box makes it a density."""
    _validate.positive("temperature", temperature)
    if box is None:
        return lambda x: -energy(x) / temperature
    lo, hi = _box_bounds(box)

    def logp(x: Tensor) -> Tensor:
        inside = ((x >= lo.to(x)) & (x <= hi.to(x))).all(-1)
        return torch.where(inside, -energy(x) / temperature, torch.full_like(x[..., 0], -torch.inf))
    return logp


def _box_bounds(box) -> tuple[Tensor, Tensor]:
    box = tuple(float(b) for b in box)
    if len(box) % 2 or any(a >= b for a, b in zip(box[0::2], box[1::2])):
        raise ValueError(f"box must be (min, max) pairs with min < max, e.g. (xmin, xmax, ymin, ymax), got {box!r}")
    return torch.tensor(box[0::2]), torch.tensor(box[1::2])


def latent_target(energy, generator, temperature: float = 1.0) -> LogDensity:
    """:math:`\\log \\pi(z) = -U(G(z))/T - \\lVert z\\rVert^2 / 2`: the energy of G(z) and the N(0, I) prior."""
    _validate.positive("temperature", temperature)
    return lambda z: -energy(generator(z)) / temperature - 0.5 * z.pow(2).sum(-1)


@torch.no_grad()
def grid_sample(energy, box, n: int, rng: torch.Generator | None = None, *, res: int = 600,
                temperature: float = 1.0) -> Tensor:
    """``n`` samples per member of :math:`e^{-U/T}` on ``box`` with no Markov chain at all (2D only):
    the density on a ``res x res`` grid of cells, cells drawn in proportion to it, a uniform point
    within each cell. Exact up to the cell's size, so it tells the energy's own error from a
    sampler's. Returns ``[K, n, 2]`` on the energy's device."""
    from .nets import energy_on_grid
    _validate.positive("n", n, integer=True)
    _validate.positive("temperature", temperature)
    lo, hi = _box_bounds(box)
    if lo.numel() != 2:
        raise ValueError(f"grid_sample is for 2D energies: box must be (xmin, xmax, ymin, ymax), got {box!r}")
    xs, ys, E = energy_on_grid(energy, tuple(float(b) for b in box), res)  # E[k, iy, ix] at the cell centres
    logits = (-E / temperature).flatten(1).double().cpu()
    p = torch.softmax(logits, dim=1)
    cell = torch.multinomial(p, n, replacement=True, generator=rng)  # [K, n]
    iy, ix = cell // res, cell % res
    step = (hi - lo) / (res - 1)
    centre = torch.stack([xs.cpu()[ix], ys.cpu()[iy]], dim=-1)
    jitter = (torch.rand(*cell.shape, 2, generator=rng) - 0.5) * step
    x = (centre + jitter).to(E.dtype)
    return torch.maximum(torch.minimum(x, hi), lo).to(E.device)


def _value_and_grad(logp: LogDensity, x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():  # the nets' parameters get no gradient: only x is differentiated
        x = x.detach().requires_grad_(True)
        lp = logp(x)
        (g,) = torch.autograd.grad(lp.sum(), x)
    return lp.detach(), g.detach()


def langevin(logp: LogDensity, x0: Tensor, *, steps: int, step_size, metropolis: bool = True,
             adapt_steps: int = 0, target_accept: float = 0.574, noise: float | None = None,
             record_every: int = 0, rng: torch.Generator | None = None) -> Chain:
    """Langevin chains from ``x0`` (``[K, C, d]``): ``adapt_steps`` warm-up steps (MALA only: the step
    size of each member follows its acceptance rate), then ``steps`` sampling steps.

    ``noise=None`` draws the correct :math:`\\sqrt{2\\varepsilon}\\,\\xi`; a number instead gives the
    noisy gradient descent of short-run EBM training, :math:`x - \\varepsilon \\nabla U + \\text{noise}\\,\\xi`
    with ``logp = -U`` (ULA only: it has no stationary law that Metropolis could correct towards).
    ``record_every``: keep the states every this many sampling steps in ``path`` (0: start and end).
    """
    _validate.positive("steps", steps, integer=True)
    if isinstance(adapt_steps, bool) or not isinstance(adapt_steps, int) or adapt_steps < 0:
        raise ValueError(f"adapt_steps must be an int >= 0, got {adapt_steps!r}")
    if x0.dim() != 3:
        raise ValueError(f"x0 must be [K, C, d] (members, chains, dimensions), got shape {tuple(x0.shape)}")
    if not metropolis and adapt_steps:
        raise ValueError("adapt_steps needs metropolis=True: ULA has no acceptance rate to adapt to")
    if noise is not None and metropolis:
        raise ValueError("noise is the short-run update without a Metropolis test: use metropolis=False")
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    K = x0.shape[0]
    eps = torch.as_tensor(step_size, dtype=x0.dtype, device=x0.device).expand(K).clone()
    if not (eps > 0).all():
        raise ValueError(f"step_size must be positive, got {step_size!r}")
    x = x0.detach().clone()
    lp, g = _value_and_grad(logp, x)
    path, accepted = [x.cpu()], torch.zeros(K, dtype=x0.dtype, device=x0.device)
    for t in range(adapt_steps + steps):
        e = eps.view(K, 1, 1)
        xi = torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)
        y = x + e * g + (e.mul(2).sqrt() if noise is None else noise) * xi
        lp_y, g_y = _value_and_grad(logp, y)
        if metropolis:
            log_q_fwd = -(y - x - e * g).pow(2).sum(-1) / (4 * e.view(K, 1))
            log_q_back = -(x - y - e * g_y).pow(2).sum(-1) / (4 * e.view(K, 1))
            log_alpha = (lp_y + log_q_back - lp - log_q_fwd).clamp(max=0.0)
            u = torch.rand(lp.shape, generator=rng, device=x.device, dtype=x.dtype)
            take = (u.log() < log_alpha) & torch.isfinite(lp_y)
            rate = take.to(x.dtype).mean(1)
            x, lp, g = torch.where(take[..., None], y, x), torch.where(take, lp_y, lp), torch.where(take[..., None], g_y, g)
        else:
            x, lp, g, rate = y, lp_y, g_y, torch.ones(K, dtype=x.dtype, device=x.device)
        if t < adapt_steps:  # Robbins-Monro on log(step): up when accepting too often, down when too rarely
            eps = eps * torch.exp(0.1 * (rate - target_accept))
            continue
        accepted += rate
        s = t - adapt_steps + 1
        if (record_every and s % record_every == 0) or s == steps:
            path.append(x.cpu())
    return Chain(x, torch.stack(path), accepted / steps, eps)


def mala(logp: LogDensity, x0: Tensor, **kwargs) -> Chain:
    """Metropolis-adjusted Langevin: ``langevin(..., metropolis=True)``; leaves the target invariant."""
    return langevin(logp, x0, metropolis=True, **kwargs)


def ula(logp: LogDensity, x0: Tensor, **kwargs) -> Chain:
    """Unadjusted Langevin: ``langevin(..., metropolis=False)``; biased by its step size."""
    return langevin(logp, x0, metropolis=False, **kwargs)


class ReplayBuffer:
    r"""Negative samples for an energy model without a generator (Du & Mordatch, 2019): each call takes
    ``n`` states per member from a buffer (``restart`` of them fresh, uniform in ``box``), runs
    ``steps`` Langevin steps on ``energy`` as it is now, writes them back and returns them.

    It has the ``sample(n, rng, members=K)`` of a fixed sampler, so ``train.train`` digs against it
    with no generator: ``train.train(energy, buffer, real, opt_g=None, ...)``. ``noise=None`` is
    correct Langevin at ``temperature``; a number gives the short-run noisy descent of the papers.
    ``metropolis=True`` runs MALA instead of ULA (the step size fixed, no adaptation): the negatives
    then carry no step-size bias; ``acceptance`` holds each member's rate of the last call. The chains
    never leave ``box``: the density they sample is the energy's on the box (``x_target(..., box=...)``).

    ``jump=tau`` adds one move per call that lets a chain cross between pits, which Langevin steps of
    the data's size never do: propose the place of another chain of the buffer plus N(0, tau^2 I)
    noise, an independence proposal :math:`q(y) = \frac1N\sum_j N(y; x_j, \tau^2 I)` over N = 256
    chains drawn from the buffer as it was before the call, accepted with probability
    :math:`\min\big(1, \frac{\pi(y)\,q(x)}{\pi(x)\,q(y)}\big)`; ``jump_acceptance`` holds its rate.
    ``jump`` may also be one width per member (0: that member's chains never jump).
    """

    def __init__(self, energy, box, *, members: int, dim: int = 2, size: int = 10_000, steps: int = 60,
                 step_size: float = 1e-3, noise: float | None = None, restart: float = 0.05,
                 temperature: float = 1.0, metropolis: bool = False, jump: float | None = None,
                 seed: int = 0):
        _validate.positive("size", size, integer=True)
        if jump is not None:  # one width for every member, or one per member (0: that member does not jump)
            jump = torch.as_tensor(jump, dtype=torch.float32).expand(members).clone()
            if not (jump >= 0).all() or not torch.isfinite(jump).all():
                raise ValueError(f"jump must be a width >= 0, or one per member, got {jump.tolist()!r}")
        if metropolis and noise is not None:
            raise ValueError("noise is the short-run update without a Metropolis test: use metropolis=False")
        _validate.positive("steps", steps, integer=True)
        if not 0.0 <= restart <= 1.0:
            raise ValueError(f"restart must be in [0, 1], got {restart!r}")
        self.energy, self.box, self.members, self.dim = energy, tuple(box), members, dim
        self.steps, self.step_size, self.noise, self.restart = steps, step_size, noise, restart
        self.metropolis, self.acceptance = bool(metropolis), torch.ones(members)
        self.jump, self.jump_acceptance = jump, torch.zeros(members)
        self.logp = x_target(energy, temperature, box=self.box)  # the chains live in the box
        self.rng = torch.Generator().manual_seed(seed)
        self.states = self._uniform(members, size)

    JUMP_CENTRES = 256  # chains of the buffer the jump proposal is built on (enough for every pit)

    def _jump(self, x: Tensor) -> Tensor:
        K, n, d = x.shape
        on = (self.jump > 0).to(x.device)  # [K] members that jump
        tau = torch.where(on, self.jump.to(x.device), torch.ones_like(on, dtype=x.dtype)).view(K, 1, 1)
        pick = torch.randperm(self.states.shape[1], generator=self.rng)[: self.JUMP_CENTRES]
        others = self.states[:, pick].to(x.device)  # the proposal's centres: chains of the buffer before this call
        j = torch.randint(others.shape[1], (K, n), generator=self.rng).to(x.device)
        xi = torch.randn(x.shape, generator=self.rng).to(x.device)
        y = torch.gather(others, 1, j[..., None].expand(K, n, d)) + tau * xi

        def log_q(p: Tensor) -> Tensor:  # log of the mixture of Gaussians round the buffer's states, up to a constant
            return torch.logsumexp(-torch.cdist(p, others).pow(2) / (2 * tau ** 2), dim=-1)

        with torch.no_grad():
            log_alpha = self.logp(y) - self.logp(x) + log_q(x) - log_q(y)
        u = torch.rand(K, n, generator=self.rng).to(x.device)
        take = (u.log() < log_alpha) & torch.isfinite(log_alpha) & on[:, None]
        self.jump_acceptance = take.float().mean(1).cpu()
        return torch.where(take[..., None], y, x)

    def _uniform(self, *shape) -> Tensor:
        lo, hi = _box_bounds(self.box)  # (x0, y0), (x1, y1)
        return lo + (hi - lo) * torch.rand(*shape, self.dim, generator=self.rng)

    def sample(self, n: int, rng=None, *, members: int | None = None) -> Tensor:
        if members is not None and members != self.members:
            raise ValueError(f"the buffer holds {self.members} members, asked for {members}")
        K, size = self.members, self.states.shape[1]
        idx = torch.randint(size, (K, n), generator=self.rng)
        x = torch.gather(self.states, 1, idx[..., None].expand(K, n, self.dim))
        fresh = torch.rand(K, n, generator=self.rng) < self.restart
        x = torch.where(fresh[..., None], self._uniform(K, n), x)
        device = next(self.energy.parameters()).device
        rng = self.rng if device.type == "cpu" else None  # the buffer's own stream: a run repeats exactly
        chain = langevin(self.logp, x.to(device), steps=self.steps, step_size=self.step_size,
                         metropolis=self.metropolis, noise=self.noise, rng=rng)
        x, self.acceptance = chain.final.cpu(), chain.acceptance.cpu()
        if self.jump is not None:
            x = self._jump(x.to(device)).cpu()
        lo, hi = _box_bounds(self.box)
        x = torch.maximum(torch.minimum(x, hi), lo)  # ULA's chains have no test: held at the walls
        self.states.scatter_(1, idx[..., None].expand(K, n, self.dim), x)
        return x
