"""Data with known modes: 2D Gaussian mixtures (chapters 1-7).

A mixture knows its ``centers`` and ``std``, so mode statistics (``egan_lib.metrics``) can be
computed exactly under the VEEGAN/PacGAN protocol. ``ring()`` and ``grid()`` are the PacGAN
settings (Lin et al., 2018): 8 modes on the unit circle with std 0.01, and 25 modes at
{-4,-2,0,2,4}^2 with std 0.05.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _validate

__all__ = ["GaussianMixture2D", "ring", "grid"]


class GaussianMixture2D:
    """An equal-weight mixture of isotropic Gaussians in the plane.

    ``sample(n)`` gives ``[n, 2]``; ``sample(n, members=K)`` gives ``[K, n, 2]`` (an independent
    batch for each member, drawn from one generator so a seed fixes all of them).
    """

    def __init__(self, centers, std: float, name: str = "mixture"):
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.ndim != 2 or centers.shape[1] != 2 or centers.shape[0] < 1:
            raise ValueError(f"centers must have shape [M, 2] with M >= 1, got {tuple(centers.shape)}")
        _validate.positive("std", std)
        self.centers = centers
        self.std = float(std)
        self.name = name

    @property
    def n_modes(self) -> int:
        return self.centers.shape[0]

    dim = 2

    def extent(self, margin: float = 0.5) -> tuple[float, float, float, float]:
        """A square ``(xmin, xmax, ymin, ymax)`` around all modes, for plots."""
        lo = float(self.centers.min()) - margin
        hi = float(self.centers.max()) + margin
        return (lo, hi, lo, hi)

    def sample(self, n: int, generator: torch.Generator | None = None, *, members: int | None = None,
               device: torch.device | str | None = None) -> Tensor:
        _validate.positive("n", n, integer=True)
        if members is not None:
            _validate.positive("members", members, integer=True)
        lead = (n,) if members is None else (members, n)
        idx = torch.randint(self.n_modes, lead, generator=generator)
        noise = torch.randn(*lead, 2, generator=generator)
        x = self.centers[idx] + self.std * noise
        return x if device is None else x.to(device)

    def __repr__(self) -> str:
        return f"GaussianMixture2D({self.name!r}, modes={self.n_modes}, std={self.std})"


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture2D:
    """``n_modes`` Gaussians evenly spaced on a circle (PacGAN: 8 on the unit circle, std 0.01)."""
    _validate.positive("n_modes", n_modes, integer=True)
    _validate.positive("radius", radius)
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    centers = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture2D(centers.float(), std, name=f"ring{n_modes}")


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    """A ``side x side`` grid centred on 0 (PacGAN: 5x5 at {-4,-2,0,2,4}^2, std 0.05)."""
    _validate.positive("side", side, integer=True)
    _validate.positive("spacing", spacing)
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    centers = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    return GaussianMixture2D(centers, std, name=f"grid{side * side}")
