r"""The Dirac-GAN (Mescheder et al., 2018): the smallest GAN that shows why the penalty is zero-centred (chapter 3).

The data is a point mass at 0, the generator a point mass at :math:`\theta` (:math:`\delta_\theta`),
and the energy is linear, :math:`U_\psi(x) = \psi x`. The only equilibrium is
:math:`(\theta, \psi) = (0, 0)`: the fake sits on the real sample and the energy is flat.

**The game, in this book's sign convention** (an energy is low on data). For a loss profile
:math:`f` with :math:`f'(0) > 0`,

.. math::

    L_U(\psi) &= f(U_\psi(0)) + f(-U_\psi(\theta)) + \tfrac{\gamma}{2} P(\psi)
               = f(0) + f(-\psi\theta) + \tfrac{\gamma}{2} P(\psi)
               \quad\text{(the energy digs)} \\
    L_G(\theta) &= -f(-U_\psi(\theta)) = -f(-\psi\theta)
               \quad\text{(the generator jumps)}

* ``LINEAR``, :math:`f(t) = t`: :math:`L_U = \psi\cdot 0 - \psi\theta`, the digging loss of
  eq. (1), and :math:`L_G = \psi\theta = U(\theta)`, the jumping loss of eq. (3); :math:`f'(0) = 1`.
* ``STANDARD``, :math:`f(t) = \log(1 + e^t)` (softplus): :math:`L_U` is the binary
  cross-entropy of the standard GAN with :math:`\sigma(U)` the probability of "fake", and
  :math:`L_G = \log\sigma(U(\theta))` its minimax (saturating) generator; :math:`f'(0) = \tfrac12`.

The game is zero-sum up to the penalty (:math:`L_G = -L_U` + terms free of :math:`\theta`), as
in Mescheder et al.; that is what their closed forms assume. (A non-saturating generator,
:math:`\min_\theta f(U(\theta))`, has :math:`v_\theta = -f'(\psi\theta)\psi` and so the same
Jacobian at the equilibrium; eq. (3) with the ``STANDARD`` energy loss has
:math:`v_\theta = -\psi`, a different one, and is not modelled here.)

**Sign mapping to Mescheder et al.** Their eq. (1) is
:math:`L(\theta,\psi) = \mathbb{E}_z f_M(D_\psi(G_\theta(z))) + \mathbb{E}_x f_M(-D_\psi(x))`,
maximised by the discriminator and minimised by the generator, with :math:`f_M(t) = -\log(1 +
e^{-t})` (standard GAN) or :math:`f_M(t) = t` (WGAN); the Dirac-GAN gives
:math:`L = f_M(\psi\theta) + f_M(0)`. With :math:`f_M(t) = -f(-t)`: :math:`L_U = -L` and
:math:`L_G = L - f_M(0)`, **with the same** :math:`\psi` (:math:`D_\psi = U_\psi`), and
:math:`f_M'(0) = f'(0)`. So the paper's eq. (1) already gives its :math:`D` the energy's sign
(high on fakes). Code that uses the other sign (``D`` high on real, as most GAN code does,
including the authors' GAN_stability, which trains D towards 1 on real data) has
:math:`D = -U`, i.e. :math:`\psi_D = -\psi`; the
change of variables :math:`(\theta, \psi) \mapsto (\theta, -\psi)` conjugates the Jacobian by
:math:`\mathrm{diag}(1, -1)`, so eigenvalues, convergence and distances to :math:`(0, 0)` are
the same either way.

**The vector field** of simultaneous gradient descent on the two losses is

.. math::

    v(\theta, \psi) = \Big(-\partial_\theta L_G,\; -\partial_\psi L_U\Big)
    = \Big(-f'(-\psi\theta)\,\psi,\;\; f'(-\psi\theta)\,\theta - \tfrac{\gamma}{2} P'(\psi)\Big)

which is Mescheder's :math:`(-f_M'(\psi\theta)\psi,\, f_M'(\psi\theta)\theta)` plus the penalty.
Because :math:`\nabla_x U_\psi = \psi` at every :math:`x`, every gradient penalty of
``egan_lib.penalties`` is a function :math:`P(\psi)` here (``Penalty``): R1 = R2 = zero-centred
on interpolates = :math:`\psi^2`, WGAN-GP = :math:`(|\psi| - 1)^2`, WGAN-div =
:math:`|\psi|^p`. At the equilibrium the Jacobian is

.. math::

    J = \begin{pmatrix} 0 & -f'(0) \\ f'(0) & -\tfrac{\gamma}{2}P''(0) \end{pmatrix},
    \qquad \lambda = -\tfrac{a}{2} \pm \sqrt{\tfrac{a^2}{4} - f'(0)^2},\quad a = \tfrac{\gamma}{2}P''(0)

so for R1 (:math:`P'' = 2`, :math:`a = \gamma`): :math:`\lambda = -\gamma/2 \pm
\sqrt{\gamma^2/4 - f'(0)^2}`, critically damped at :math:`\gamma = 2|f'(0)|` (1 for
``STANDARD``, 2 for ``LINEAR``); with no penalty :math:`\lambda = \pm i f'(0)`, a rotation that
never converges. WGAN-GP has no Jacobian at the equilibrium: :math:`P'(\psi) = 2(|\psi| - 1)
\operatorname{sign}\psi` jumps from :math:`+2` (just below 0) to :math:`-2` (just above), so the
penalty pushes :math:`\psi` away from 0 (towards :math:`\pm 1`) with a force of about
:math:`\gamma`, and the trajectory cannot settle at :math:`(0, 0)`.

Nothing here imports ``train`` or ``plot``; everything is float64 torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import _validate

__all__ = [
    "Profile", "LINEAR", "STANDARD", "Penalty", "R1", "R2", "ZERO_CENTRED_INTERPOLATES", "WGAN_GP",
    "wgan_div", "Rule", "energy_loss", "generator_loss", "vector_field", "jacobian",
    "jacobian_autograd", "eigenvalues", "update_matrix", "simulate",
]

DTYPE = torch.float64


class Profile(NamedTuple):
    """A loss profile f: the energy loss is ``f(U(real)) + f(-U(fake))``; ``df`` is f'."""

    name: str
    f: Callable[[Tensor], Tensor]
    df: Callable[[Tensor], Tensor]

    @property
    def slope(self) -> float:
        """f'(0), the coupling of the two players at the equilibrium."""
        return float(self.df(torch.zeros((), dtype=DTYPE)))


LINEAR = Profile("linear, eq. (1)", lambda t: t, torch.ones_like)
STANDARD = Profile("standard GAN", F.softplus, torch.sigmoid)


class Penalty(NamedTuple):
    r"""A gradient penalty on the Dirac-GAN as a function of :math:`\psi` (:math:`\nabla_x U = \psi` everywhere).

    ``value`` is P(ψ), ``grad`` is P'(ψ); ``curvature`` is P''(0), or None where P is not twice
    differentiable at 0 (then the equilibrium has no Jacobian). It enters as (γ/2)·P.
    """

    name: str
    value: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]
    curvature: float | None


def _square(name: str) -> Penalty:
    return Penalty(name, lambda psi: psi ** 2, lambda psi: 2 * psi, 2.0)


R1 = _square("R1 (zero-centred, on reals)")
R2 = _square("R2 (zero-centred, on fakes)")
ZERO_CENTRED_INTERPOLATES = _square("zero-centred, on interpolates")
WGAN_GP = Penalty("WGAN-GP (1-centred, on interpolates)",
                  lambda psi: (psi.abs() - 1) ** 2,
                  lambda psi: 2 * (psi.abs() - 1) * torch.sign(psi),
                  None)


def wgan_div(p: float = 6.0) -> Penalty:
    r"""WGAN-div's penalty on the Dirac-GAN: :math:`P(\psi) = |\psi|^p` (``penalties.wgan_div``; p >= 2).

    :math:`P''(0) = 0` for :math:`p > 2`, so at the equilibrium it damps nothing: the
    eigenvalues are :math:`\pm i f'(0)`, as without a penalty (and :math:`p = 2` is R1).
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 2:
        raise ValueError(f"p must be a number >= 2, got {p!r}")
    return Penalty(f"WGAN-div (p={p:g})",
                   lambda psi: psi.abs() ** p,
                   lambda psi: p * psi.abs() ** (p - 1) * torch.sign(psi),
                   2.0 if p == 2 else 0.0)


@dataclass(frozen=True)
class Rule:
    """A training rule of the Dirac-GAN: the loss profile, the penalty and its weight (γ/2)."""

    profile: Profile = LINEAR  # LINEAR (eq. (1) and (3)) or STANDARD (the standard GAN)
    penalty: Penalty | None = None  # R1, R2, WGAN_GP, wgan_div(p), ...; None for no penalty
    gamma: float = 0.0  # the penalty enters the energy loss as (gamma / 2) * P(psi)

    def __post_init__(self) -> None:
        if not isinstance(self.profile, Profile):
            raise ValueError(f"profile must be a dirac.Profile (LINEAR or STANDARD), got {self.profile!r}")
        if self.penalty is not None and not isinstance(self.penalty, Penalty):
            raise ValueError(f"penalty must be a dirac.Penalty (R1, WGAN_GP, ...) or None, got {self.penalty!r}")
        _validate.non_negative("gamma", self.gamma)
        if self.gamma > 0 and self.penalty is None:
            raise ValueError(f"gamma={self.gamma} is set but penalty is None: give a penalty or gamma=0")

    @property
    def damping(self) -> float:
        """a = (γ/2)·P''(0), the damping of ψ at the equilibrium (ValueError where P'' is undefined)."""
        if self.penalty is None or self.gamma == 0:
            return 0.0
        if self.penalty.curvature is None:
            raise ValueError(f"penalty {self.penalty.name} is not twice differentiable at psi = 0: "
                             "the equilibrium (0, 0) has no Jacobian")
        return self.gamma / 2 * self.penalty.curvature


def _as(v) -> Tensor:
    return torch.as_tensor(v, dtype=DTYPE)


def _check_rule(rule) -> Rule:
    if not isinstance(rule, Rule):
        raise ValueError(f"rule must be a dirac.Rule, got {type(rule).__name__}")
    return rule


def energy_loss(theta, psi, rule: Rule) -> Tensor:
    r""":math:`L_U = f(0) + f(-\psi\theta) + \tfrac{\gamma}{2}P(\psi)`, elementwise over broadcast θ, ψ."""
    _check_rule(rule)
    theta, psi = _as(theta), _as(psi)
    f = rule.profile.f
    loss = f(torch.zeros_like(psi * theta)) + f(-psi * theta)
    if rule.penalty is not None and rule.gamma > 0:
        loss = loss + rule.gamma / 2 * rule.penalty.value(psi)
    return loss


def generator_loss(theta, psi, rule: Rule) -> Tensor:
    r""":math:`L_G = -f(-\psi\theta)` (for ``LINEAR``: :math:`\psi\theta = U(\theta)`, eq. (3))."""
    _check_rule(rule)
    theta, psi = _as(theta), _as(psi)
    return -rule.profile.f(-psi * theta)


def vector_field(theta, psi, rule: Rule) -> Tensor:
    r"""The update direction :math:`v = (-\partial_\theta L_G, -\partial_\psi L_U)`, ``[..., 2]``.

    .. math:: v(\theta,\psi) = \big(-f'(-\psi\theta)\,\psi,\;\; f'(-\psi\theta)\,\theta - \tfrac{\gamma}{2}P'(\psi)\big)

    ``theta`` and ``psi`` are numbers or broadcastable tensors (a grid, for a quiver plot); the
    result stacks the two components in its last dimension. The tests check it against
    autograd of ``generator_loss`` and ``energy_loss``.
    """
    _check_rule(rule)
    theta, psi = torch.broadcast_tensors(_as(theta), _as(psi))
    slope = rule.profile.df(-psi * theta)
    v_theta = -slope * psi
    v_psi = slope * theta
    if rule.penalty is not None and rule.gamma > 0:
        v_psi = v_psi - rule.gamma / 2 * rule.penalty.grad(psi)
    return torch.stack([v_theta, v_psi], dim=-1)


def jacobian(rule: Rule) -> Tensor:
    r"""The Jacobian of ``vector_field`` at the equilibrium, analytic, ``[2, 2]``:

    .. math:: J = \begin{pmatrix} 0 & -f'(0) \\ f'(0) & -\tfrac{\gamma}{2}P''(0) \end{pmatrix}

    Raises ValueError for a penalty with no P''(0) (WGAN-GP).
    """
    _check_rule(rule)
    c, a = rule.profile.slope, rule.damping
    return torch.tensor([[0.0, -c], [c, -a]], dtype=DTYPE)


def jacobian_autograd(rule: Rule, theta: float = 0.0, psi: float = 0.0) -> Tensor:
    """The Jacobian of ``vector_field`` at (θ, ψ) by ``torch.autograd.functional.jacobian``, ``[2, 2]``.

    The numerical cross-check of ``jacobian``. At ψ = 0 it refuses a penalty with no P''(0)
    (autograd would silently use the subgradient 0 of sign(ψ) and report no damping).
    """
    _check_rule(rule)
    if psi == 0 and rule.penalty is not None and rule.gamma > 0 and rule.penalty.curvature is None:
        raise ValueError(f"penalty {rule.penalty.name} is not differentiable in psi at psi = 0; "
                         "give a point with psi != 0")
    point = torch.tensor([theta, psi], dtype=DTYPE)
    return torch.autograd.functional.jacobian(lambda z: vector_field(z[0], z[1], rule), point)


def eigenvalues(rule: Rule) -> Tensor:
    r"""The eigenvalues of ``jacobian(rule)`` in closed form, complex ``[2]`` (``+`` root first):

    .. math:: \lambda_\pm = -\tfrac{a}{2} \pm \sqrt{\tfrac{a^2}{4} - f'(0)^2},\qquad a = \tfrac{\gamma}{2}P''(0)

    For R1 this is Mescheder et al.'s :math:`-\gamma/2 \pm \sqrt{\gamma^2/4 - f'(0)^2}`.
    Continuous-time training converges locally iff both real parts are negative.
    """
    _check_rule(rule)
    c, a = rule.profile.slope, rule.damping
    root = complex(a * a / 4 - c * c) ** 0.5
    return torch.tensor([-a / 2 + root, -a / 2 - root], dtype=torch.complex128)


def update_matrix(rule: Rule, h: float, *, alternating: bool = False) -> Tensor:
    r"""The linearisation at (0, 0) of one training step with step size h, ``[2, 2]``.

    Simultaneous steps: :math:`M = I + hJ`. Alternating steps, in the order of
    ``train.train`` (first the energy, then the generator against the new energy): with
    :math:`c = f'(0)`, :math:`a = \tfrac{\gamma}{2}P''(0)`,

    .. math:: M = \begin{pmatrix} 1 - h^2c^2 & -hc(1 - ha) \\ hc & 1 - ha \end{pmatrix}

    Training converges locally iff the spectral radius of M is below 1; for simultaneous steps
    :math:`|1 + h\lambda|^2 = 1 - h a + h^2 c^2` for complex :math:`\lambda`, so a small enough h
    is needed (:math:`h < a / c^2`).
    """
    _check_rule(rule)
    _validate.positive("h", h)
    c, a = rule.profile.slope, rule.damping
    if alternating:
        return torch.tensor([[1 - h * h * c * c, -h * c * (1 - h * a)], [h * c, 1 - h * a]], dtype=DTYPE)
    return torch.eye(2, dtype=DTYPE) + h * jacobian(rule)


def simulate(rule: Rule, *, theta0: float = 1.0, psi0: float = 1.0, h: float = 0.1, steps: int = 500,
             alternating: bool = False) -> np.ndarray:
    r"""The trajectory of (θ, ψ) under gradient steps of size h: a numpy array ``[steps + 1, 2]``.

    Row t is :math:`(\theta_t, \psi_t)`, row 0 the start. Simultaneous steps (default):
    :math:`(\theta, \psi) \leftarrow (\theta, \psi) + h\,v(\theta, \psi)`. Alternating steps
    (``alternating=True``), in the order of ``train.train``: first the energy,
    :math:`\psi \leftarrow \psi + h\,v_\psi(\theta, \psi)`, then the generator against the new
    energy, :math:`\theta \leftarrow \theta + h\,v_\theta(\theta, \psi)`. Plain gradient descent,
    no momentum.
    """
    _check_rule(rule)
    _validate.positive("h", h)
    _validate.positive("steps", steps, integer=True)
    for name, v in (("theta0", theta0), ("psi0", psi0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    out = torch.empty(steps + 1, 2, dtype=DTYPE)
    z = torch.tensor([float(theta0), float(psi0)], dtype=DTYPE)
    out[0] = z
    for t in range(1, steps + 1):
        if alternating:
            psi = z[1] + h * vector_field(z[0], z[1], rule)[1]
            theta = z[0] + h * vector_field(z[0], psi, rule)[0]
            z = torch.stack([theta, psi])
        else:
            z = z + h * vector_field(z[0], z[1], rule)
        out[t] = z
    return out.numpy()
