r"""Energy ("digging") and generator ("jumping") losses as pure functions of energies.

One sign convention, everywhere in the book: an energy ``e`` has shape ``[K, B]`` and **lower
means more data-like**; ``e_real`` comes before ``e_fake``. Every loss returns one value per
member, shape ``[K]`` (the batch mean); a training step sums them over the members, which
trains the K members independently. Equation numbers are those of the article
(Su Jianlin, "GAN = digging pits + jumping into pits", 2019).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from . import _validate

__all__ = ["EnergyLoss", "energy_wgan", "energy_hinge", "energy_margin", "energy_logistic", "generator_energy",
           "generator_nonsaturating"]


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


def energy_hinge(e_real: Tensor, e_fake: Tensor) -> EnergyLoss:
    r"""The hinge, eq. (4): :math:`\min_U \; \mathbb{E}_{x\sim p}\max(0, 1 + U(x)) + \mathbb{E}_{x\sim q}\max(0, 1 - U(x))`.

    Eq. (1) with the pushing switched off once it has gone far enough: a real sample stops
    being pushed down once :math:`U \le -1`, a fake stops being pushed up once :math:`U \ge 1`.
    So the energies stay bounded without a penalty (chapter 4). This is the hinge loss of
    Geometric GAN (Lim & Ye, 2017), used by SNGAN (Miyato et al., 2018), SAGAN (Zhang et al.,
    2019) and BigGAN (Brock et al., 2019), written for an energy: their discriminator is high
    on real data, :math:`D = -U`, and their
    :math:`\mathbb{E}_p\max(0, 1 - D) + \mathbb{E}_q\max(0, 1 + D)` is exactly this. Their
    generator loss :math:`-\mathbb{E}_z D(G(z))` is eq. (3), ``generator_energy``. No deviation.

    Returns ``EnergyLoss(total, real=E max(0, 1 + U(real)), fake=E max(0, 1 - U(fake)))``, each
    ``[K]``; both terms are zero where the margins hold.
    """
    _check_pair(e_real, e_fake)
    real = torch.relu(1 + e_real).mean(dim=1)
    fake = torch.relu(1 - e_fake).mean(dim=1)
    return EnergyLoss(real + fake, real, fake)


def energy_margin(e_real: Tensor, e_fake: Tensor, margin: float = 1.0) -> EnergyLoss:
    r"""The margin loss for a non-negative energy, eq. (5): :math:`\min_U \; \mathbb{E}_{x\sim p}U(x) + \mathbb{E}_{x\sim q}\max(0, m - U(x))`.

    EBGAN's discriminator loss (Zhao et al., 2017), whose energy is an autoencoder's
    reconstruction error (``nets.AutoencoderEnergy``): reals are pulled down to 0, fakes pushed
    up only until they reach the margin :math:`m`. Chapter 4 shows what :math:`m` does. EBGAN's
    generator loss is eq. (3), ``generator_energy``.

    Args:
        e_real, e_fake: energies ``[K, B]``; U should be non-negative (with an energy that can go
            below 0 the real term has no minimum). This is not checked, to keep the training
            step free of device synchronisation.
        margin: :math:`m > 0`. In a recipe: ``functools.partial(energy_margin, margin=m)``.

    Deviation: EBGAN's repelling regulariser (the pull-away term, EBGAN-PT) acts on the
    generator and is not part of this loss. Returns
    ``EnergyLoss(total, real=E U(real), fake=E max(0, m - U(fake)))``, each ``[K]``.
    """
    _validate.positive("margin", margin)
    _check_pair(e_real, e_fake)
    real = e_real.mean(dim=1)
    fake = torch.relu(margin - e_fake).mean(dim=1)
    return EnergyLoss(real + fake, real, fake)


def energy_logistic(e_real: Tensor, e_fake: Tensor) -> EnergyLoss:
    r"""The standard GAN's discriminator loss (Goodfellow et al., 2014) for an energy:
    :math:`\min_U \; \mathbb{E}_{x\sim p}\,\mathrm{softplus}(U(x)) + \mathbb{E}_{x\sim q}\,\mathrm{softplus}(-U(x))`.

    With :math:`D(x) = \sigma(-U(x))` (the probability of "real") this is
    :math:`-\mathbb{E}_p \log D - \mathbb{E}_q \log(1 - D)`: U is minus the discriminator's logit.
    Chapter 9 compares its U as an anomaly score with the book's energy. Returns
    ``EnergyLoss(total, real=E softplus(U(real)), fake=E softplus(-U(fake)))``, each ``[K]``.
    """
    _check_pair(e_real, e_fake)
    real = torch.nn.functional.softplus(e_real).mean(dim=1)
    fake = torch.nn.functional.softplus(-e_fake).mean(dim=1)
    return EnergyLoss(real + fake, real, fake)


def generator_energy(e_fake: Tensor) -> Tensor:
    r"""Jumping, eq. (3): :math:`\min_G \; \mathbb{E}_{z\sim q(z)}[U(G(z))]` with U frozen.

    The fakes roll downhill on the energy; ``e_fake = U(G(z))`` must keep its graph to G.
    Returns ``[K]``.
    """
    _validate.energies("e_fake", e_fake)
    return e_fake.mean(dim=1)


def generator_nonsaturating(e_fake: Tensor) -> Tensor:
    r"""The standard GAN's non-saturating generator loss, :math:`\min_G -\mathbb{E}_z \log D(G(z)) =
    \mathbb{E}_z\,\mathrm{softplus}(U(G(z)))` with :math:`D = \sigma(-U)`. Returns ``[K]``."""
    _validate.energies("e_fake", e_fake)
    return torch.nn.functional.softplus(e_fake).mean(dim=1)
