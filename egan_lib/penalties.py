r"""Gradient penalties as bare expectations (chapter 3).

Each function returns one value per member, shape ``[K]``: the plain expectation, with no
weight. The weight is written where the penalty is added, always in one convention:

.. math:: L_U = L_{\text{energy}} + \frac{\gamma}{2}\, \text{penalty}

(``egan_lib.train.dig_step`` shows it). With this convention the Dirac-GAN is critically
damped at :math:`\gamma = 2|f'(0)|` (Mescheder et al., 2018).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from . import _validate

__all__ = ["PenaltyInputs", "on_real", "on_fake", "grad_sq_norm", "r1"]


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


def grad_sq_norm(x: Tensor, e: Tensor) -> Tensor:
    r""":math:`\|\nabla_x U(x)\|^2` per sample, ``[K, B]``, with a graph for the double backward.

    ``x`` is ``[K, B, ...]`` with ``requires_grad``; ``e = U(x)`` is ``[K, B]``. The norm runs
    over every dimension of a sample (all pixels and channels of an image). Because members
    and samples never mix, the gradient of ``e.sum()`` gives each sample its own gradient.
    """
    if not isinstance(x, Tensor) or x.ndim < 3:
        raise ValueError(f"x must be a tensor [K, B, ...], got {getattr(x, 'shape', type(x).__name__)}")
    _validate.energies("e", e)
    if tuple(e.shape) != tuple(x.shape[:2]):
        raise ValueError(f"e must have shape [K, B] = {tuple(x.shape[:2])} to match x, got {tuple(e.shape)}")
    if not x.requires_grad:
        raise ValueError("x must have requires_grad=True and e must be computed from it")
    (g,) = torch.autograd.grad(e.sum(), x, create_graph=True)
    return g.pow(2).flatten(2).sum(dim=2)


def r1(x_real: Tensor, e_real: Tensor) -> Tensor:
    r"""Zero-centred penalty on real samples, eq. (2): :math:`\mathbb{E}_{x\sim p}\|\nabla_x U(x)\|^2`.

    Real samples should sit at the bottoms of pits, where the gradient vanishes; this asks for
    exactly that. (Mescheder et al., 2018, call it R1 and add it as (γ/2)·R1; so do we.)
    Returns ``[K]``.
    """
    return grad_sq_norm(x_real, e_real).mean(dim=1)
