r"""Free particles on a frozen energy, and what became of them (chapters 2 and 5).

"Jumping into pits" without a generator: every particle descends the energy on its own,

.. math:: x \leftarrow x - \eta\, \nabla_x U(x),

with U held fixed (``roll``; chapter 5 swaps plain gradient descent for momentum or Adam). Then
``landing`` sorts the particles of chapter 2 by where they came to rest (their own real mode,
another one, a "sub-true" pit no real sample sits in, or still moving), and ``pit_moves`` counts,
on the landscape of ``energies.PitsEnergy``, how many passed their nearest pit by (chapter 5).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from . import _validate
from .metrics import histogram_entropy, nearest_mode, slopes
from .nets import frozen

__all__ = ["Rollout", "roll", "Landing", "landing", "PitMoves", "pit_moves"]


class Rollout(NamedTuple):
    """Particles rolled down a frozen energy by ``roll``."""

    path: Tensor  # [T, K, N, D] on the CPU: x0, every record_every-th step, and the last step
    steps: list[int]  # the step of each recorded position (length T; starts at 0, ends at `steps`)
    final: Tensor  # [K, N, D] the last positions, on the particles' device, without a graph


def roll(energy: nn.Module, x0: Tensor, *, steps: int, lr: float,
         optimizer: type[torch.optim.Optimizer] = torch.optim.SGD, optimizer_kwargs: dict | None = None,
         record_every: int = 1) -> Rollout:
    r"""Free particles descend a frozen energy ("jumping into pits" without a generator; chapter 2).

    With the default optimiser (plain SGD) every particle takes ``steps`` gradient steps

    .. math:: x \leftarrow x - \eta\, \nabla_x U(x), \qquad \eta = \texttt{lr},

    each on its own member's energy (``x0[k]`` rolls on ``energy`` member ``k``). Chapter 5 passes
    another optimiser class (SGD with ``momentum``, Adam) and its keyword arguments, e.g.
    ``roll(U, x0, steps=500, lr=0.01, optimizer=torch.optim.SGD, optimizer_kwargs={"momentum": 0.9})``;
    the optimiser treats the particles' coordinates as its parameters.

    Args:
        energy: a member-batched energy ``[K, N, D] -> [K, N]``; it is frozen (its parameters get
            no gradient and are left unchanged).
        x0: starting positions ``[K, N, D]``.
        steps: number of descent steps.
        lr: the step size :math:`\eta` given to the optimiser.
        optimizer: a ``torch.optim.Optimizer`` class (not an instance, not a string).
        optimizer_kwargs: extra keyword arguments for ``optimizer`` (momentum, betas, ...).
        record_every: keep the positions every this many steps in ``path`` (the start and the last
            step are always kept).

    Returns:
        ``Rollout(path [T, K, N, D], steps [T], final [K, N, D])``.
    """
    if not isinstance(energy, nn.Module) or not hasattr(energy, "members"):
        raise ValueError(f"energy must be a member-batched nn.Module (e.g. nets.MLPEnergy), got {type(energy).__name__}")
    _validate.members_batch("x0", x0)
    if x0.shape[0] != energy.members:
        raise ValueError(f"x0 must have K={energy.members} members in dim 0 (one per energy member), "
                         f"got shape {tuple(x0.shape)}")
    _validate.positive("steps", steps, integer=True)
    _validate.positive("lr", lr)
    _validate.positive("record_every", record_every, integer=True)
    if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer class such as torch.optim.SGD, got {optimizer!r}")
    if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, dict):
        raise ValueError(f"optimizer_kwargs must be a dict or None, got {type(optimizer_kwargs).__name__}")

    x = x0.detach().clone().requires_grad_(True)
    opt = optimizer([x], lr=lr, **(optimizer_kwargs or {}))
    path, recorded = [x.detach().cpu().clone()], [0]
    with frozen(energy):  # U is frozen: only the particles move
        for step in range(1, steps + 1):
            # particles never interact, so the gradient of the sum is each particle's own gradient
            (g,) = torch.autograd.grad(energy(x).sum(), x)
            x.grad = g
            opt.step()
            if step % record_every == 0 or step == steps:
                path.append(x.detach().cpu().clone())
                recorded.append(step)
    return Rollout(torch.stack(path), recorded, x.detach())


class Landing(NamedTuple):
    """Where rolled particles came to rest (``landing``). Fractions are numpy arrays ``[K]``."""

    nearest: np.ndarray  # fraction at rest at the real mode that was nearest to their start
    other: np.ndarray  # fraction at rest at some other real mode
    sub_true: np.ndarray  # fraction at rest (stationary) far from every real mode: a "sub-true" pit
    moving: np.ndarray  # fraction neither at a real mode nor stationary (still rolling, or gone)
    modes: np.ndarray  # number of distinct real modes that at least one particle ended at
    at_mode: Tensor  # [K, N] bool: the particle ended within `radius` of a real mode
    stationary: Tensor  # [K, N] bool: its final gradient is small (see `grad_tol`)
    grad_ratio: Tensor  # [K, N] final |grad U| over the member's median |grad U| at the start


def landing(energy, x0: Tensor, x_end: Tensor, centers: Tensor, *, radius: float,
            grad_tol: float = 1e-2, grad_scale: Tensor | float | None = None) -> Landing:
    r"""Classify where particles that rolled down a frozen energy came to rest (chapter 2).

    A particle that started at ``x0`` and ended at ``x_end`` (each ``[K, N, D]``, member ``k`` on
    energy member ``k``) is

    * **at a real mode** if it ended within ``radius`` of one of ``centers`` (``[M, D]``), either
      the one nearest to where it started (``nearest``: it fell into its own pit) or another one;
    * **stationary** if :math:`\|\nabla_x U(x_\text{end})\| \le \texttt{grad\_tol}\cdot s_k`,
      where :math:`s_k` (``grad_scale``: ``[K]`` or one number) defaults to the member's median
      :math:`\|\nabla_x U(x_0)\|`: its slope has all but vanished compared with the typical slope
      where the particles started. The energy's overall scale is arbitrary (eq. (1) is linear in
      U), so the tolerance is relative to it;
    * in a **sub-true pit** if it is stationary but not at a real mode: a local minimum of U that
      no real sample sits in (the article's "sub-true" pit);
    * **moving** otherwise (not at rest yet, or running off).

    ``nearest + other + sub_true + moving = 1`` for every member; ``modes`` counts the distinct
    real modes reached. The same classification applies to a generator's fakes before and after
    it is trained on a frozen U (``x0 = G_0(z)``, ``x_end = G(z)`` for the same noise z).
    """
    _validate.members_batch("x0", x0)
    _validate.members_batch("x_end", x_end)
    if x0.shape != x_end.shape:
        raise ValueError(f"x0 and x_end must have the same shape [K, N, D], got {tuple(x0.shape)} and {tuple(x_end.shape)}")
    centers = torch.as_tensor(centers)
    if centers.ndim != 2 or centers.shape[1] != x0.shape[2]:
        raise ValueError(f"centers must have shape [M, {x0.shape[2]}], got {tuple(centers.shape)}")
    _validate.positive("radius", radius)
    _validate.positive("grad_tol", grad_tol)

    if grad_scale is None:
        scale = slopes(energy, x0).median(dim=1, keepdim=True).values.clamp_min(torch.finfo(x0.dtype).tiny)
    else:
        scale = torch.as_tensor(grad_scale, dtype=x0.dtype, device=x0.device).reshape(-1, 1)
        if scale.shape[0] == 1:
            scale = scale.expand(x0.shape[0], 1)
        if scale.shape[0] != x0.shape[0] or not bool((scale > 0).all()):
            raise ValueError(f"grad_scale must hold {x0.shape[0]} positive values (one per member), "
                             f"got {tuple(scale.flatten().tolist())}")
    ratio = slopes(energy, x_end) / scale
    start_mode, _ = nearest_mode(x0.detach(), centers)
    end_mode, dist = nearest_mode(x_end.detach(), centers)
    at_mode = dist <= radius
    stationary = ratio <= grad_tol
    frac = lambda m: m.float().mean(dim=1).cpu().numpy()
    reached = torch.zeros(x0.shape[0], centers.shape[0], dtype=torch.long, device=end_mode.device)
    reached.scatter_add_(1, end_mode, at_mode.long())
    return Landing(
        nearest=frac(at_mode & (end_mode == start_mode)),
        other=frac(at_mode & (end_mode != start_mode)),
        sub_true=frac(~at_mode & stationary),
        moving=frac(~at_mode & ~stationary),
        modes=(reached > 0).sum(dim=1).cpu().numpy(),
        at_mode=at_mode.cpu(), stationary=stationary.cpu(), grad_ratio=ratio.detach().cpu(),
    )


class PitMoves(NamedTuple):
    """Where particles ended, pit by pit, against where they started (``pit_moves``)."""

    not_nearest: np.ndarray  # [K] fraction that ended in a pit other than their nearest (start) pit
    deeper: np.ndarray  # [K] fraction that ended in a pit deeper than their nearest one (NaN without depths)
    entropy_start: np.ndarray  # [K] entropy (nats) of the histogram of nearest (start) pits
    entropy_end: np.ndarray  # [K] entropy (nats) of the histogram of end pits
    histogram: np.ndarray  # [K, M] particles ending in each pit


def pit_moves(start: Tensor, end: Tensor, n_pits: int, *, depths: Tensor | None = None) -> PitMoves:
    r"""Did particles land in their nearest pit, and how diverse are their landing places? (chapter 5)

    ``start`` and ``end`` (each ``[K, N]``, integers in ``[0, n_pits)``) name, for every particle,
    its nearest pit (the one whose basin it starts in, e.g. ``energies.PitsEnergy.pit_of(x0)``) and
    the pit it ended in (``pit_of`` of its last position). Per member:

    * ``not_nearest``: the fraction with ``end != start``, the particles that passed their nearest
      pit by;
    * ``deeper``: the fraction that ended in a pit deeper than their nearest one, given ``depths``
      (``[K, n_pits]``, larger is deeper, as in ``PitsEnergy.depths``);
    * ``entropy_end`` (and ``entropy_start``): ``histogram_entropy`` of how many particles end
      (start) in each pit. Gradient flow keeps every particle in its nearest pit, so
      ``entropy_end == entropy_start``; lower means the particles gathered in fewer pits.
    """
    for name, t in (("start", start), ("end", end)):
        if not isinstance(t, Tensor) or t.ndim != 2 or t.is_floating_point() or t.is_complex():
            raise ValueError(f"{name} must be an integer tensor [K, N], got {getattr(t, 'shape', type(t).__name__)}")
    if start.shape != end.shape:
        raise ValueError(f"start and end must have the same shape [K, N], got {tuple(start.shape)} and {tuple(end.shape)}")
    _validate.positive("n_pits", n_pits, integer=True)
    for name, t in (("start", start), ("end", end)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_pits):
            raise ValueError(f"{name} must hold pit indices in [0, {n_pits}), got values in [{int(t.min())}, {int(t.max())}]")
    K = start.shape[0]
    end = end.to(start.device)

    def hist(idx):
        h = torch.zeros(K, n_pits, dtype=torch.long, device=idx.device)
        return h.scatter_add_(1, idx, torch.ones_like(idx)).cpu().numpy()

    frac = lambda m: m.float().mean(dim=1).cpu().numpy()
    if depths is None:
        deeper = np.full(K, np.nan)
    else:
        depths = torch.as_tensor(depths).to(start.device)
        if tuple(depths.shape) != (K, n_pits):
            raise ValueError(f"depths must have shape [K={K}, n_pits={n_pits}], got {tuple(depths.shape)}")
        deeper = frac(depths.gather(1, end) > depths.gather(1, start))
    h_end = hist(end)
    return PitMoves(frac(end != start), deeper, histogram_entropy(hist(start)), histogram_entropy(h_end), h_end)
