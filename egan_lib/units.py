r"""The data's units and the nets': a 2D mixture can be of any size, the nets start at one.

A freshly made MLP bends near the origin (its first layer's ReLU kinks lie within about one unit
of it) and its outputs are of order one, so a recipe tuned on the ring of radius 1 meets a grid
three units wide as a different problem. ``Units`` is an affine map that every ``nets.MLPEnergy``
(on its input) and ``nets.MLPGenerator`` (on its output) carries, the identity until fitted;
``standardise`` fits it to the data, so that inside the nets the data have mean 0 and spread 1
and outside everything stays in the data's units. ``gan.GAN2D(standardise=True)`` does it at the
first ``train`` (the full-size recipe, ``bench/full2d.py``); the book's quick default leaves it off.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Units", "standardise"]


class Units(nn.Module):
    r"""The map between the data's units and a net's, :math:`u = (x - \text{shift}) / \text{scale}`; the
    identity until ``fit``. An MLP energy applies ``to_net`` to its input (``role="in"``), an MLP
    generator ``to_data`` to its output (``role="out"``), so that outside the nets everything is in
    the data's units. ``standardise`` fits both to a data set."""

    def __init__(self, dim: int, role: str):
        super().__init__()
        if role not in ("in", "out"):
            raise ValueError(f"role must be 'in' or 'out', got {role!r}")
        self.role = role
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def to_net(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale

    def to_data(self, u: Tensor) -> Tensor:
        return u * self.scale + self.shift

    def forward(self, x: Tensor) -> Tensor:
        return self.to_net(x) if self.role == "in" else self.to_data(x)

    @torch.no_grad()
    def fit(self, shift, scale) -> None:
        self.shift.copy_(torch.as_tensor(shift, dtype=self.shift.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))
        self.fitted.fill_(True)

    def extra_repr(self) -> str:
        return f"role={self.role!r}, scale={float(self.scale):.4g}"


def standardise(energy: nn.Module, generator: nn.Module, real) -> float:
    """Fit the ``units`` of an MLP energy and generator to the data ``real`` once (a second call keeps
    them): the nets then see data of mean 0 and a spread (root mean variance per coordinate) of 1.
    A Gaussian mixture's moments are computed exactly, other data from 10,000 samples of a fixed
    seed. Returns the scale (the data's spread in their own units)."""
    if not bool(energy.units.fitted):
        if hasattr(real, "centers") and hasattr(real, "std"):
            c = torch.as_tensor(real.centers, dtype=torch.float64)
            shift, var = c.mean(0), c.var(0, unbiased=False) + float(real.std) ** 2
        else:
            x = real.sample(10000, torch.Generator().manual_seed(0), members=1)[0].double().cpu()
            shift, var = x.mean(0), x.var(0, unbiased=False)
        scale = float(var.mean().sqrt())
        if not scale > 0.0:
            raise ValueError(f"real has no spread to standardise by (scale {scale!r})")
        energy.units.fit(shift, scale), generator.units.fit(shift, scale)
    return float(energy.units.scale)
