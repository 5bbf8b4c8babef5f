"""Member-batched networks: K independent models in one set of stacked tensors.

Every parameter carries a leading members dimension K (``weight: [K, in, out]``) and every
input and output is ``[K, B, ...]``. Members never mix, so summing the members' losses and
stepping one elementwise optimiser (Adam, SGD, RMSprop) trains K independent models at once:
that is how every chapter states its claims over several seeds (introduction, "Seeds are a
batch dimension"). ``K = 1`` is the ordinary single model.

Used from chapter 1 (the energy U) and chapter 2 (the generator G) on; the convolutional nets
for images (``MemberConv2d``, ``ConvEnergy``, ``ConvGenerator``) and the digit classifier of the
mode counts (``DigitClassifier``) in chapter 8.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate

__all__ = ["MemberLinear", "MLPEnergy", "MLPGenerator", "AutoencoderEnergy", "energy_on_grid",
           "bunch_generator", "PitsEnergy", "MemberConv2d", "ConvEnergy", "ConvGenerator",
           "DigitClassifier", "to_grouped", "from_grouped"]


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


def _make_activation(activation: Callable[[], nn.Module]) -> nn.Module:
    if not callable(activation):
        raise ValueError(f"activation must be a callable returning an nn.Module (e.g. nn.SiLU), got {activation!r}")
    act = activation()
    if not isinstance(act, nn.Module):
        raise ValueError(f"activation() must return an nn.Module, got {type(act).__name__}")
    return act


class _MemberMLP(nn.Module):
    def __init__(self, members, in_dim, out_dim, width, depth, activation):
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

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as an ordinary ``nn.Sequential`` of ``nn.Linear`` (a copy).

        ``net.member(k)(x[k])`` equals ``net(x)[k]``: the test suite checks it.
        """
        if not (isinstance(k, int) and 0 <= k < self.members):
            raise ValueError(f"k must be an int in [0, {self.members}), got {k!r}")
        mods = [m.member(k) if isinstance(m, MemberLinear) else m for m in self.layers]
        return nn.Sequential(*mods)

    def _check_input(self, name: str, x: Tensor) -> Tensor:
        _validate.members_batch(name, x, dim=self.in_dim)
        if x.shape[0] != self.members:
            raise ValueError(f"{name} must have K={self.members} members in dim 0, got shape {tuple(x.shape)}")
        return x


class MLPEnergy(_MemberMLP):
    """The energy U(x) of chapter 1: ``[K, B, D] -> [K, B]``; lower means more data-like."""

    def __init__(self, members: int = 1, dim: int = 2, *, width: int = 64, depth: int = 3,
                 activation: Callable[[], nn.Module] = nn.SiLU):
        _validate.positive("dim", dim, integer=True)
        super().__init__(members, dim, 1, width, depth, activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self._check_input("x", x)).squeeze(-1)


class MLPGenerator(_MemberMLP):
    """The generator G(z) of chapter 2: noise ``[K, B, latent_dim] -> [K, B, dim]``."""

    def __init__(self, members: int = 1, dim: int = 2, *, latent_dim: int = 4, width: int = 64,
                 depth: int = 3, activation: Callable[[], nn.Module] = nn.SiLU):
        _validate.positive("dim", dim, integer=True)
        _validate.positive("latent_dim", latent_dim, integer=True)
        super().__init__(members, latent_dim, dim, width, depth, activation)
        self.latent_dim = latent_dim

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal z of shape ``[K, n, latent_dim]`` on the generator's device."""
        _validate.positive("n", n, integer=True)
        dev = self.layers[0].weight.device
        z = torch.randn(self.members, n, self.latent_dim, generator=generator)
        return z.to(dev)

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(self._check_input("z", z))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` fakes per member, ``[K, n, dim]``, without a graph."""
        return self(self.noise(n, generator))


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
                 depth: int = 2, activation: Callable[[], nn.Module] = nn.SiLU):
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
    xs = torch.linspace(extent[0], extent[1], res)
    ys = torch.linspace(extent[2], extent[3], res)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(param.device, param.dtype)
    members = energy.members
    out = [energy(p.expand(members, -1, -1)) for p in pts.split(chunk)]
    return xs, ys, torch.cat(out, dim=1).reshape(members, res, res).cpu()


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
    last.bias[index] = c.unsqueeze(1)
    return generator


class PitsEnergy(nn.Module):
    r"""A fixed landscape of M pits with chosen depths, member-batched (chapter 5).

    Pit m is a parabolic bowl whose bottom, at the centre :math:`c_m`, lies at depth :math:`-d_m`,

    .. math:: u_m(x) = \frac{\lVert x - c_m\rVert^2}{2 w_m^2} - d_m ,

    and the landscape is the smooth minimum of the bowls at temperature :math:`\tau`:

    .. math:: U(x) = -\tau \log \sum_{m=1}^{M} e^{-u_m(x)/\tau},
              \qquad \min_m u_m(x) - \tau \log M \;\le\; U(x) \;\le\; \min_m u_m(x).

    Where the pits are well separated (at each centre every other bowl lies many :math:`\tau`
    above the pit's own bottom), U has a minimum at every centre with :math:`U(c_m) \approx -d_m`,
    so a deeper pit is lower. Neighbouring bowls meet in ridges, rounded over a distance of order
    :math:`\tau`, and far out U rises like a parabola, so no particle can roll away for ever.
    Nothing is learned: this is the frozen energy on which chapter 5 compares optimisers with
    ``train.roll``.

    ``pit_of(x)`` names the pit whose bowl is lowest at x. For pits of one width that is the pit
    that plain gradient descent with vanishing steps reaches from x (gradient flow on the hard
    minimum): the region where one bowl is lowest is convex and holds that bowl's centre, and
    inside it the flow runs straight to the centre. Chapter 5 calls it the particle's *nearest*
    pit. A deeper pit owns a larger region: the border between two pits of one width lies closer
    to the shallower one, so the nearest pit in this sense need not be the nearest centre.

    Args:
        centers: ``[M, D]`` (one layout for every member; give ``members``) or ``[K, M, D]``
            (a layout per member).
        depths: :math:`d_m`: a number, ``[M]`` or ``[K, M]``; larger is deeper.
        widths: :math:`w_m > 0`: a number, ``[M]`` or ``[K, M]``.
        members: K, when ``centers`` is ``[M, D]``.
        temperature: :math:`\tau > 0`, how much the ridges are rounded.

    The layout is stored as frozen parameters (``requires_grad=False``): ``.to(device)`` moves
    it, and helpers that look for a parameter (``energy_on_grid``, ``plot.landscape``) work.
    ``PitsEnergy.random`` draws a different jittered grid of pits for every member.
    """

    def __init__(self, centers, depths, widths=0.5, *, members: int | None = None, temperature: float = 0.05):
        super().__init__()
        c = torch.as_tensor(centers, dtype=torch.get_default_dtype())
        if c.ndim == 2:
            c = c.unsqueeze(0)
        if c.ndim != 3 or c.shape[1] < 1 or c.shape[2] < 1:
            raise ValueError(f"centers must have shape [M, D] or [K, M, D], got {tuple(torch.as_tensor(centers).shape)}")
        if members is not None:
            _validate.positive("members", members, integer=True)
            if c.shape[0] == 1:
                c = c.expand(members, -1, -1)
            elif c.shape[0] != members:
                raise ValueError(f"centers has {c.shape[0]} members in dim 0 but members={members}")
        K, M, D = c.shape

        def per_pit(name, v):
            t = torch.as_tensor(v, dtype=c.dtype)
            if t.ndim == 0 or (t.ndim == 1 and t.shape[0] == M):
                return t.expand(K, M)
            if t.ndim == 2 and tuple(t.shape) == (K, M):
                return t
            raise ValueError(f"{name} must be a number, [M={M}] or [K={K}, M={M}], got shape {tuple(t.shape)}")

        d, w = per_pit("depths", depths), per_pit("widths", widths)
        if not (torch.isfinite(c).all() and torch.isfinite(d).all()):
            raise ValueError("centers and depths must be finite")
        if not (torch.isfinite(w).all() and (w > 0).all()):
            raise ValueError("widths must be positive and finite")
        _validate.positive("temperature", temperature)
        self.centers = nn.Parameter(c.clone(), requires_grad=False)  # [K, M, D]
        self.depths = nn.Parameter(d.clone(), requires_grad=False)  # [K, M]
        self.widths = nn.Parameter(w.clone(), requires_grad=False)  # [K, M]
        self.temperature = float(temperature)
        self.members, self.n_pits, self.dim = K, M, D

    @classmethod
    def random(cls, members: int = 1, *, side: int = 3, spacing: float = 2.0, jitter: float = 0.2,
               depths: tuple[float, float] = (0.25, 2.5), width: float = 0.7, temperature: float = 0.05,
               generator: torch.Generator | None = None) -> "PitsEnergy":
        """A different 2D layout for each member: a ``side x side`` grid of pits ``spacing`` apart
        and centred on 0, every centre moved by up to ``jitter`` along each axis and every pit given
        a depth drawn uniformly from ``depths = (low, high)``; all pits of one ``width``.

        The ranges must keep every pit a pit: at its centre each neighbour's bowl must lie at least
        ``5 * temperature`` above its bottom even for the closest, deepest neighbour, i.e.
        ``(spacing - 2 jitter)^2 / (2 width^2) - (high - low) >= 5 temperature``; otherwise a
        ``ValueError`` says so.
        """
        _validate.positive("members", members, integer=True)
        _validate.positive("side", side, integer=True)
        _validate.positive("spacing", spacing)
        _validate.non_negative("jitter", jitter)
        _validate.positive("width", width)
        _validate.positive("temperature", temperature)
        if not (len(depths) == 2 and all(isinstance(v, (int, float)) for v in depths) and depths[0] <= depths[1]):
            raise ValueError(f"depths must be a (low, high) range with low <= high, got {depths!r}")
        if 2 * jitter >= spacing:
            raise ValueError(f"jitter must be below spacing / 2 = {spacing / 2}, got {jitter}")
        margin = (spacing - 2 * jitter) ** 2 / (2 * width**2) - (depths[1] - depths[0])
        if margin < 5 * temperature:
            raise ValueError(f"pits are not well separated (margin {margin:.3g} < 5 * temperature): give a smaller "
                             f"width, jitter or depth range, or a larger spacing")
        ticks = (torch.arange(side, dtype=torch.get_default_dtype()) - (side - 1) / 2) * spacing
        gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # [M, 2]
        c = grid + jitter * (2 * torch.rand(members, grid.shape[0], 2, generator=generator) - 1)
        d = depths[0] + (depths[1] - depths[0]) * torch.rand(members, grid.shape[0], generator=generator)
        return cls(c, d, width, temperature=temperature)

    def bowls(self, x: Tensor) -> Tensor:
        """Every bowl at every point, :math:`u_m(x)`: ``[K, N, D] -> [K, N, M]``."""
        _validate.members_batch("x", x, dim=self.dim)
        if x.shape[0] != self.members:
            raise ValueError(f"x must have K={self.members} members in dim 0, got shape {tuple(x.shape)}")
        sq = (x.unsqueeze(2) - self.centers.unsqueeze(1)).pow(2).sum(-1)  # [K, N, M]
        return sq / (2 * self.widths.unsqueeze(1) ** 2) - self.depths.unsqueeze(1)

    def forward(self, x: Tensor) -> Tensor:
        """``[K, N, D] -> [K, N]``; lower means deeper in a pit."""
        return -self.temperature * torch.logsumexp(-self.bowls(x) / self.temperature, dim=-1)

    @torch.no_grad()
    def pit_of(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The pit whose bowl is lowest at each point, and the distance to that pit's centre.

        Returns ``(index, distance)``, each ``[K, N]``. For pits of one width the index is the pit
        that gradient flow reaches from the point (see the class docstring).
        """
        idx = self.bowls(x).argmin(dim=-1)
        c = self.centers.gather(1, idx.unsqueeze(-1).expand(-1, -1, self.dim))  # [K, N, D]
        return idx, (x - c).norm(dim=-1)

    def extra_repr(self) -> str:
        return f"members={self.members}, pits={self.n_pits}, dim={self.dim}, temperature={self.temperature}"


# --- convolutional nets for images (chapter 8) ---------------------------------------------------
#
# Images travel as [K, B, C, H, W]. Inside a conv net the members are folded into the channels,
# [B, K*C, H, W], and every convolution is a *grouped* convolution with groups=K: group k sees only
# member k's channels and uses only member k's weights, so the members never mix (the same
# guarantee as MemberLinear's batched matmul).

def to_grouped(x: Tensor) -> Tensor:
    """``[K, B, C, H, W] -> [B, K*C, H, W]``: the layout of grouped convolutions (chapter 8)."""
    K, B, C, H, W = x.shape
    return x.transpose(0, 1).reshape(B, K * C, H, W)


def from_grouped(x: Tensor, members: int) -> Tensor:
    """``[B, K*C, H, W] -> [K, B, C, H, W]``, the inverse of ``to_grouped`` (chapter 8)."""
    B, KC, H, W = x.shape
    return x.reshape(B, members, KC // members, H, W).transpose(0, 1)


class MemberConv2d(nn.Module):
    r"""K 2D convolutions side by side, as one grouped convolution (chapter 8).

    Acts on the grouped layout ``[B, K*in, H, W] -> [B, K*out, H', W']`` (``to_grouped``); the
    weights are ``[K, out, in, k, k]``, initialised like ``nn.Conv2d`` (uniform in
    :math:`\pm 1/\sqrt{\text{in}\cdot k^2}`), each member independently.

    With ``spectral=True`` the kernel of each member is divided by an estimate of its largest
    singular value :math:`\sigma_k` (spectral normalisation, Miyato et al., 2018): one power
    iteration per forward pass in training mode on the kernel reshaped to ``[out, in*k*k]``, as
    ``torch.nn.utils.spectral_norm`` does; in eval mode the stored vectors are used unchanged.
    """

    def __init__(self, members: int, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 stride: int = 1, padding: int = 0, spectral: bool = False):
        super().__init__()
        for name, v in (("members", members), ("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride)):
            _validate.positive(name, v, integer=True)
        if not (isinstance(padding, int) and padding >= 0):
            raise ValueError(f"padding must be a non-negative int, got {padding!r}")
        self.members, self.in_channels, self.out_channels = members, in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.spectral = kernel_size, stride, padding, bool(spectral)
        bound = 1.0 / math.sqrt(in_channels * kernel_size**2)
        shape = (members, out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, out_channels).uniform_(-bound, bound))
        if self.spectral:
            self.register_buffer("u", F.normalize(torch.randn(members, out_channels), dim=1))

    def kernel(self) -> Tensor:
        """The kernels in use, ``[K, out, in, k, k]``: divided by :math:`\\sigma_k` when spectral."""
        if not self.spectral:
            return self.weight
        w = self.weight.flatten(2)  # [K, out, in*k*k]
        if self.training:
            with torch.no_grad():  # one power iteration, as torch.nn.utils.spectral_norm
                v = F.normalize(torch.einsum("ko,koi->ki", self.u, w), dim=1)
                self.u.copy_(F.normalize(torch.einsum("koi,ki->ko", w, v), dim=1))
        u = self.u.clone()
        v = F.normalize(torch.einsum("ko,koi->ki", u, w), dim=1).detach()
        sigma = torch.einsum("ko,koi,ki->k", u, w, v)
        return self.weight / sigma.view(-1, 1, 1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        K = self.members
        if x.ndim != 4 or x.shape[1] != K * self.in_channels:
            raise ValueError(f"x must be grouped [B, K*in = {K * self.in_channels}, H, W], got {tuple(x.shape)}")
        w = self.kernel().reshape(K * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        return F.conv2d(x, w, self.bias.reshape(-1), stride=self.stride, padding=self.padding, groups=K)

    @torch.no_grad()
    def member(self, k: int) -> nn.Conv2d:
        """Member ``k`` as a plain ``nn.Conv2d`` holding a copy of its (normalised) kernel."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                         padding=self.padding).to(self.weight.device)
        training = self.training
        self.eval()  # no power-iteration step: the copy uses the current estimate of sigma
        conv.weight.copy_(self.kernel()[k])
        self.train(training)
        conv.bias.copy_(self.bias[k])
        return conv

    def extra_repr(self) -> str:
        return (f"members={self.members}, {self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, spectral={self.spectral}")


class _GroupedToFeatures(nn.Module):
    """``[B, K*C, H, W] -> [K, B, C*H*W]``; member ``k``: ``nn.Flatten()``."""

    def __init__(self, members: int):
        super().__init__()
        self.members = members

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], self.members, -1).transpose(0, 1)

    def member(self, k: int) -> nn.Module:
        return nn.Flatten()


class _FeaturesToGrouped(nn.Module):
    """``[K, B, C*H*W] -> [B, K*C, H, W]``; member ``k``: ``nn.Unflatten(1, (C, H, W))``."""

    def __init__(self, members: int, shape: tuple[int, int, int]):
        super().__init__()
        self.members, self.shape = members, tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        C, H, W = self.shape
        return x.transpose(0, 1).reshape(x.shape[1], self.members * C, H, W)

    def member(self, k: int) -> nn.Module:
        return nn.Unflatten(1, self.shape)


def _image_shape(shape) -> tuple[int, int, int]:
    if not (isinstance(shape, (tuple, list)) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise ValueError(f"shape must be (C, H, W) of positive ints, e.g. (1, 8, 8), got {shape!r}")
    if shape[1] != shape[2]:
        raise ValueError(f"shape must be square images (H == W), got {tuple(shape)}")
    return tuple(shape)


def _halvings(size: int) -> int:
    """How often a side is halved on the way down: while it is even and above 4 (8 -> 4, 28 -> 7, 32 -> 4)."""
    n = 0
    while size % 2 == 0 and size > 4:
        size //= 2
        n += 1
    return n


class _MemberConvNet(nn.Module):
    def __init__(self, members: int):
        super().__init__()
        _validate.positive("members", members, integer=True)
        self.members = members

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as an ordinary ``nn.Sequential`` of ``nn.Conv2d`` / ``nn.Linear`` (a copy) on
        ``[B, ...]``; ``net.member(k)(x[k])`` equals ``net(x)[k]`` (the test suite checks it)."""
        if not (isinstance(k, int) and 0 <= k < self.members):
            raise ValueError(f"k must be an int in [0, {self.members}), got {k!r}")
        return nn.Sequential(*[m.member(k) if hasattr(m, "member") else copy.deepcopy(m) for m in self.layers])

    def _check(self, name: str, x: Tensor, shape: tuple) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point() or tuple(x.shape[2:]) != tuple(shape) \
                or x.ndim != 2 + len(shape) or x.shape[0] != self.members:
            want = ", ".join(str(s) for s in shape)
            raise ValueError(f"{name} must be a floating tensor [K={self.members}, B, {want}], "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        return x


class ConvEnergy(_MemberConvNet):
    r"""A DCGAN-like convolutional energy U(x) for small images: ``[K, B, C, H, W] -> [K, B]`` (chapter 8).

    A 3x3 convolution to ``width`` channels, then 4x4 stride-2 convolutions that halve the side
    while it is even and above 4 and double the channels (8 -> 4, 28 -> 14 -> 7, 32 -> 16 -> 8 -> 4),
    then a linear map to one number; lower means more data-like. There is no batch normalisation:
    the gradient penalties are per sample, and a batch statistic would make each sample's energy
    depend on the rest of its batch. ``spectral=True`` normalises every convolution and the last
    linear map's input scale is left to it (the linear layer itself is not normalised).
    """

    def __init__(self, members: int = 1, shape=(1, 8, 8), *, width: int = 32, spectral: bool = False,
                 activation: Callable[[], nn.Module] = lambda: nn.LeakyReLU(0.2)):
        super().__init__(members)
        C, H, _ = self.shape = _image_shape(shape)
        _validate.positive("width", width, integer=True)
        layers: list[nn.Module] = [MemberConv2d(members, C, width, 3, padding=1, spectral=spectral),
                                   _make_activation(activation)]
        ch, side = width, H
        for _ in range(_halvings(H)):
            layers += [MemberConv2d(members, ch, 2 * ch, 4, stride=2, padding=1, spectral=spectral),
                       _make_activation(activation)]
            ch, side = 2 * ch, side // 2
        layers += [_GroupedToFeatures(members), MemberLinear(members, ch * side * side, 1)]
        self.layers = nn.Sequential(*layers)
        self.width, self.spectral = width, bool(spectral)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(to_grouped(self._check("x", x, self.shape))).squeeze(-1)

    def member(self, k: int) -> nn.Sequential:
        seq = super().member(k)
        seq.append(nn.Flatten(0))  # [B, 1] -> [B]
        return seq


class ConvGenerator(_MemberConvNet):
    r"""A DCGAN-like convolutional generator: noise ``[K, B, latent_dim] -> [K, B, C, H, W]`` in (-1, 1) (chapter 8).

    A linear map from z to a small ``[c0, s, s]`` feature map (s = 4 for 8x8 and 32x32 images, 7 for
    28x28), then, as many times as ``ConvEnergy`` halves the side, nearest-neighbour upsampling by 2
    and a 3x3 convolution that halves the channels, and a last 3x3 convolution to C channels with
    ``tanh``. Upsampling + convolution stands in for DCGAN's transposed convolutions (no
    checkerboard artefacts); like the energy, there is no batch normalisation.
    """

    def __init__(self, members: int = 1, shape=(1, 8, 8), *, latent_dim: int = 16, width: int = 32,
                 activation: Callable[[], nn.Module] = nn.ReLU):
        super().__init__(members)
        C, H, _ = self.shape = _image_shape(shape)
        _validate.positive("latent_dim", latent_dim, integer=True)
        _validate.positive("width", width, integer=True)
        n_up = _halvings(H)
        side, ch = H // 2**n_up, width * 2**n_up
        layers: list[nn.Module] = [MemberLinear(members, latent_dim, ch * side * side), _make_activation(activation),
                                   _FeaturesToGrouped(members, (ch, side, side))]
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       MemberConv2d(members, ch, ch // 2, 3, padding=1), _make_activation(activation)]
            ch //= 2
        layers += [MemberConv2d(members, ch, C, 3, padding=1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.latent_dim, self.width = latent_dim, width

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal z of shape ``[K, n, latent_dim]`` on the generator's device."""
        _validate.positive("n", n, integer=True)
        z = torch.randn(self.members, n, self.latent_dim, generator=generator)
        return z.to(self.layers[0].weight.device)

    def forward(self, z: Tensor) -> Tensor:
        self._check("z", z, (self.latent_dim,))
        return from_grouped(self.layers(z), self.members)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, chunk: int = 2048) -> Tensor:
        """``n`` fakes per member, ``[K, n, C, H, W]``, without a graph (in chunks of ``chunk``)."""
        z = self.noise(n, generator)
        return torch.cat([self(part) for part in z.split(chunk, dim=1)], dim=1)


class DigitClassifier(nn.Module):
    """A small CNN that names the digit in a one-channel image, ``[N, 1, S, S] -> [N, 10]`` logits (chapter 8).

    Not member-batched: it is one fixed measuring instrument, trained once by
    ``metrics.digit_classifier`` and used to count the modes of stacked digits (each channel is
    classified on its own) and for the Fréchet distance in its feature space (``features``, the
    ``feature_dim`` activations before the last layer). Two 3x3 convolutions, a 2x2 max-pool, a
    third convolution, an adaptive average pool to 4x4, then ``feature_dim`` hidden units.
    """

    def __init__(self, n_classes: int = 10, *, width: int = 16, feature_dim: int = 64):
        super().__init__()
        for name, v in (("n_classes", n_classes), ("width", width), ("feature_dim", feature_dim)):
            _validate.positive(name, v, integer=True)
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(2 * width * 16, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)
        self.n_classes, self.width, self.feature_dim = n_classes, width, feature_dim

    def features(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must be one-channel images [N, 1, S, S], got {tuple(getattr(x, 'shape', ()))}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
