"""Member-batched networks: K independent models in one set of stacked tensors.

Every parameter carries a leading members dimension K (``weight: [K, in, out]``) and every
input and output is ``[K, B, ...]``. Members never mix, so summing the members' losses and
stepping one elementwise optimiser (Adam, SGD, RMSprop) trains K independent models at once:
that is how every chapter states its claims over several seeds (introduction, "Seeds are a
batch dimension"). ``K = 1`` is the ordinary single model.

Used from chapter 1 (the energy U) and chapter 2 (the generator G) on; EBGAN's autoencoder
energy in chapter 4; ``bunch_generator`` in chapter 6. ``frozen`` holds a net fixed while something
else moves against it (the particles of chapter 2, the generator step, an estimator's statistics
network). The convolutional nets for images are in ``convnets``, the fixed analytic energies in
``energies``.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from . import _validate
from .units import Units

__all__ = ["MemberLinear", "MLPEnergy", "MLPGenerator", "AutoencoderEnergy", "energy_on_grid",
           "bunch_generator", "frozen"]


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Hold a module's parameters fixed for the duration of a ``with`` block (chapters 2 and 7).

    Inside the block every parameter has ``requires_grad=False``, so a backward pass through the
    module gives its parameters no gradient; on leaving the block, also when it raises, each
    parameter gets back its own earlier flag (one the caller had switched off stays off)::

        with nets.frozen(U):
            (g,) = torch.autograd.grad(U(x).sum(), x)  # only the particles x get a gradient
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class MemberLinear(nn.Module):
    """K affine maps applied side by side: ``y[k] = x[k] @ weight[k] + bias[k]``.

    Initialised like ``torch.nn.Linear`` (uniform in ±1/sqrt(in_features)), each member drawn
    independently.
    """

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        _validate.positive("members", members, integer=True)
        _validate.positive("in_features", in_features, integer=True)
        _validate.positive("out_features", out_features, integer=True)
        self.members, self.in_features, self.out_features = members, in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        # [K, B, in] @ [K, in, out] + [K, 1, out] -> [K, B, out]
        return torch.baddbmm(self.bias, x, self.weight)

    def member(self, k: int) -> nn.Linear:
        """Member ``k`` as a plain ``nn.Linear`` holding a copy of its parameters."""
        lin = nn.Linear(self.in_features, self.out_features)
        with torch.no_grad():
            lin.weight.copy_(self.weight[k].T)
            lin.bias.copy_(self.bias[k, 0])
        return lin

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


def _standard_normal(shape: tuple, rng: torch.Generator | None, device, default: torch.device) -> Tensor:
    """``torch.randn(shape)`` drawn on ``rng``'s device (else on ``device``, else ``default``) and
    returned on ``device`` (else ``default``): the noise of the generators."""
    if rng is not None and not isinstance(rng, torch.Generator):
        raise ValueError(f"rng must be a torch.Generator or None, got {type(rng).__name__}")
    target = torch.device(device) if device is not None else default
    z = torch.randn(shape, generator=rng, device=rng.device if rng is not None else target)
    return z.to(target)


def _make_activation(activation: Callable[[], nn.Module]) -> nn.Module:
    if not callable(activation):
        raise ValueError(f"activation must be a callable returning an nn.Module (e.g. nn.ReLU), got {activation!r}")
    act = activation()
    if not isinstance(act, nn.Module):
        raise ValueError(f"activation() must return an nn.Module, got {type(act).__name__}")
    return act


class _MemberMLP(nn.Module):
    def __init__(self, members, in_dim, out_dim, width, depth, activation, units: str | None = None):
        super().__init__()
        _validate.positive("width", width, integer=True)
        _validate.positive("depth", depth, integer=True)
        dims = [in_dim] + [width] * depth + [out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(MemberLinear(members, a, b))
            if i < depth:
                layers.append(_make_activation(activation))
        self.layers = nn.Sequential(*layers)
        self.members, self.in_dim, self.out_dim = members, in_dim, out_dim
        # data <-> net units (the identity unless fitted; None: none, as in the autoencoder's halves)
        self.units = None if units is None else Units(in_dim if units == "in" else out_dim, units)

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as an ordinary ``nn.Sequential`` of ``nn.Linear`` (a copy).

        ``net.member(k)(x[k])`` equals ``net(x)[k]``: the test suite checks it.
        """
        if not (isinstance(k, int) and 0 <= k < self.members):
            raise ValueError(f"k must be an int in [0, {self.members}), got {k!r}")
        mods = [m.member(k) if isinstance(m, MemberLinear) else m for m in self.layers]
        units = [copy.deepcopy(self.units)] if self.units is not None else []
        return nn.Sequential(*units, *mods) if self.units is None or self.units.role == "in" else nn.Sequential(*mods, *units)

    def _check_input(self, name: str, x: Tensor) -> Tensor:
        _validate.members_batch(name, x, dim=self.in_dim)
        if x.shape[0] != self.members:
            raise ValueError(f"{name} must have K={self.members} members in dim 0, got shape {tuple(x.shape)}")
        return x


class MLPEnergy(_MemberMLP):
    """The energy U(x) of chapter 1: ``[K, B, D] -> [K, B]``; lower means more data-like."""

    def __init__(self, members: int = 1, dim: int = 2, *, width: int = 64, depth: int = 3,
                 activation: Callable[[], nn.Module] = nn.ReLU):
        _validate.positive("dim", dim, integer=True)
        super().__init__(members, dim, 1, width, depth, activation, "in")

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.units(self._check_input("x", x))).squeeze(-1)


class MLPGenerator(_MemberMLP):
    """The generator G(z) of chapter 2: noise ``[K, B, latent_dim] -> [K, B, dim]``."""

    def __init__(self, members: int = 1, dim: int = 2, *, latent_dim: int = 4, width: int = 64,
                 depth: int = 3, activation: Callable[[], nn.Module] = nn.ReLU):
        _validate.positive("dim", dim, integer=True)
        _validate.positive("latent_dim", latent_dim, integer=True)
        super().__init__(members, latent_dim, dim, width, depth, activation, "out")
        self.latent_dim = latent_dim

    def noise(self, n: int, rng: torch.Generator | None = None, *, device: torch.device | str | None = None) -> Tensor:
        """Standard normal z of shape ``[K, n, latent_dim]``, on ``device`` (default: the net's device).

        Drawn from ``rng`` on its device (a CUDA ``rng`` draws on the GPU directly; a CPU one gives
        the same numbers on every machine), or without one from torch's global stream on ``device``.
        """
        _validate.positive("n", n, integer=True)
        return _standard_normal((self.members, n, self.latent_dim), rng, device, self.layers[0].weight.device)

    def forward(self, z: Tensor) -> Tensor:
        return self.units(self.layers(self._check_input("z", z)))

    @torch.no_grad()
    def sample(self, n: int, rng: torch.Generator | None = None) -> Tensor:
        """``n`` fakes per member, ``[K, n, dim]``, without a graph (the noise drawn as in ``noise``)."""
        return self(self.noise(n, rng))


class AutoencoderEnergy(nn.Module):
    r"""EBGAN's energy (chapter 4): the reconstruction error of an autoencoder, ``[K, B, D] -> [K, B]``.

    .. math:: U(x) = \frac{1}{D}\,\big\|x - \mathrm{Dec}(\mathrm{Enc}(x))\big\|^2

    the squared error *averaged* over the D dimensions (so a margin means the same for 2D points
    and for images flattened to D), hence :math:`U \ge 0`: the non-negative energy that the
    margin loss of eq. (5) (``losses.energy_margin``) needs. Low where the autoencoder
    reconstructs well, which training makes true on the data. Encoder and decoder are
    member-batched MLPs (``D -> latent_dim -> D``, ``depth`` hidden layers of ``width`` each).

    Deviation from EBGAN (Zhao et al., 2017): the paper's energy is the Euclidean norm
    :math:`\|x - \mathrm{Dec}(\mathrm{Enc}(x))\|`, not its square over D; the mean squared
    error is smooth where the reconstruction is exact (the norm is not differentiable there).
    A ``latent_dim`` below ``dim`` is a bottleneck, so U cannot be 0 everywhere;
    ``latent_dim >= dim`` is allowed too, and then only the margin on the fakes keeps the
    autoencoder from reconstructing everything.
    """

    def __init__(self, members: int = 1, dim: int = 2, *, latent_dim: int = 1, width: int = 64,
                 depth: int = 2, activation: Callable[[], nn.Module] = nn.ReLU):
        super().__init__()
        _validate.positive("members", members, integer=True)
        _validate.positive("dim", dim, integer=True)
        _validate.positive("latent_dim", latent_dim, integer=True)
        self.encoder = _MemberMLP(members, dim, latent_dim, width, depth, activation)
        self.decoder = _MemberMLP(members, latent_dim, dim, width, depth, activation)
        self.members, self.dim, self.latent_dim = members, dim, latent_dim

    def reconstruct(self, x: Tensor) -> Tensor:
        """``Dec(Enc(x))``, ``[K, B, D] -> [K, B, D]``."""
        x = self.encoder._check_input("x", x)
        return self.decoder.layers(self.encoder.layers(x))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.reconstruct(x)).pow(2).mean(dim=-1)

    def member(self, k: int) -> nn.Module:
        """Member ``k`` as an ordinary module ``[B, D] -> [B]`` (a copy); equals ``net(x)[k]``."""
        return _AutoencoderEnergyMember(self.encoder.member(k), self.decoder.member(k))

    def extra_repr(self) -> str:
        return f"members={self.members}, dim={self.dim}, latent_dim={self.latent_dim}"


class _AutoencoderEnergyMember(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.decoder(self.encoder(x))).pow(2).mean(dim=-1)


@torch.no_grad()
def energy_on_grid(energy: nn.Module, extent, res: int, *, chunk: int = 16384):
    """Evaluate a 2D energy on a ``res x res`` grid over ``extent = (xmin, xmax, ymin, ymax)``.

    Returns ``(xs, ys, E)`` with ``xs``, ``ys`` of shape ``[res]`` and ``E`` of shape
    ``[K, res, res]`` indexed ``E[k, iy, ix]`` (rows are y, as ``plt.contourf`` expects).
    """
    if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(f"extent must be (xmin, xmax, ymin, ymax) with min < max, got {extent!r}")
    _validate.positive("res", res, integer=True)
    param = next(energy.parameters())
    xs = torch.linspace(extent[0], extent[1], res, device=param.device)  # made where the energy lives
    ys = torch.linspace(extent[2], extent[3], res, device=param.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(param.dtype)
    members = energy.members
    out = [energy(p.expand(members, -1, -1)) for p in pts.split(chunk)]
    return xs.cpu(), ys.cpu(), torch.cat(out, dim=1).reshape(members, res, res).cpu()


@torch.no_grad()
def bunch_generator(generator: MLPGenerator, center, scale: float, *, members=None) -> MLPGenerator:
    r"""A bad start on purpose: squeeze a generator's fakes into a tight bunch at ``center`` (chapter 6).

    The generator's last layer computes :math:`G(z) = h(z)\,W + b` from its last hidden layer
    :math:`h(z)`. This sets :math:`W \leftarrow s\,W` and :math:`b \leftarrow c`, so that

    .. math:: G'(z) = c + s\,\big(G(z) - b\big),

    every fake is moved to ``center`` c and its spread around it is multiplied by ``scale`` s
    (``scale = 0`` puts all fakes on the one point c). With ``c`` at a real mode, the fakes start
    bunched in one pit: the situation the article describes for mode collapse (Su, 2019).

    Args:
        generator: a member-batched ``MLPGenerator``; changed in place and returned.
        center: where the fakes go, ``[D]`` (the same point for every chosen member) or ``[k, D]``
            (one point per chosen member).
        scale: :math:`s \ge 0`, the factor on the fakes' spread.
        members: indices of the members to bunch (a list, a range, a slice); ``None`` is all of
            them. The others are left untouched, so bunched and normal starts can train side by
            side in one run.
    """
    if not isinstance(generator, MLPGenerator):
        raise ValueError(f"generator must be an egan_lib.nets.MLPGenerator, got {type(generator).__name__}")
    _validate.non_negative("scale", scale)
    K, D = generator.members, generator.out_dim
    if members is None:
        idx = list(range(K))
    elif isinstance(members, slice):
        idx = list(range(K))[members]
    else:
        idx = [int(k) for k in members]
    if not idx or len(set(idx)) != len(idx) or not all(0 <= k < K for k in idx):
        raise ValueError(f"members must pick distinct members in [0, {K}), got {members!r}")
    last = generator.layers[-1]
    c = torch.as_tensor(center, dtype=last.bias.dtype, device=last.bias.device)
    if c.shape == (D,):
        c = c.expand(len(idx), D)
    elif c.shape != (len(idx), D):
        raise ValueError(f"center must have shape [{D}] or [{len(idx)}, {D}] (one point per chosen member), "
                         f"got {tuple(c.shape)}")
    index = torch.tensor(idx, device=last.weight.device)
    last.weight[index] = last.weight[index] * scale
    last.bias[index] = generator.units.to_net(c).unsqueeze(1)  # the centre in the net's units
    return generator
