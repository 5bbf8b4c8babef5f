r"""Energy ("digging") and generator ("jumping") losses as pure functions of energies.

One sign convention, everywhere in the book: an energy ``e`` has shape ``[K, B]`` and **lower
means more data-like**; ``e_real`` comes before ``e_fake``. Every loss returns one value per
member, shape ``[K]`` (the batch mean); a training step sums them over the members, which
trains the K members independently. Equation numbers are those of the article
(Su Jianlin, "GAN = digging pits + jumping into pits", 2019).
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from . import _validate

__all__ = ["EnergyLoss", "energy_wgan", "generator_energy"]


class EnergyLoss(NamedTuple):
    """An energy loss split into its two terms; ``total = real + fake``, each of shape ``[K]``."""

    total: Tensor
    real: Tensor  # the term that acts on the real samples
    fake: Tensor  # the term that acts on the fakes


def _check_pair(e_real, e_fake) -> None:
    _validate.energies("e_real", e_real)
    _validate.energies("e_fake", e_fake)
    _validate.same_members("e_real", e_real, "e_fake", e_fake)


def energy_wgan(e_real: Tensor, e_fake: Tensor) -> EnergyLoss:
    r"""Digging, eq. (1): :math:`\min_U \; \mathbb{E}_{x\sim p}[U(x)] - \mathbb{E}_{x\sim q}[U(x)]`.

    Real samples are pushed down, fakes pushed up. This is the WGAN critic loss with the
    critic's sign flipped (a critic is high on real data, an energy low). Unconstrained it has
    no minimum: U(real) -> -inf and U(fake) -> +inf (chapter 1), which is what the gradient
    penalty (chapter 3) and the hinge (chapter 4) are for.

    Returns ``EnergyLoss(total, real=E[U(real)], fake=-E[U(fake)])``, each ``[K]``.
    """
    _check_pair(e_real, e_fake)
    real = e_real.mean(dim=1)
    fake = -e_fake.mean(dim=1)
    return EnergyLoss(real + fake, real, fake)


def generator_energy(e_fake: Tensor) -> Tensor:
    r"""Jumping, eq. (3): :math:`\min_G \; \mathbb{E}_{z\sim q(z)}[U(G(z))]` with U frozen.

    The fakes roll downhill on the energy; ``e_fake = U(G(z))`` must keep its graph to G.
    Returns ``[K]``.
    """
    _validate.energies("e_fake", e_fake)
    return e_fake.mean(dim=1)
