r"""Fixed analytic energies, member-batched: landscapes whose every slope is known in closed form.

Nothing here is learned. These energies stand where a trained net would, so that an answer can be
checked by hand:

* ``PitsEnergy`` (chapter 5): M parabolic pits of chosen depths, smoothly joined; the frozen
  landscape on which chapter 5 lets optimisers roll particles (``particles.roll``);
* ``LinearEnergy`` (chapter 3): :math:`U_k(x) = \langle w_k, x\rangle + b_k`, the same slope
  :math:`\nabla_x U = w_k` everywhere, so R1 is :math:`\|w_k\|^2` and WGAN-GP
  :math:`(\|w_k\| - 1)^2` exactly; with one dimension it is the Dirac-GAN's :math:`U(x) = \psi x`;
* ``QuadraticEnergy`` (chapters 2 and 3): one bowl :math:`U_k(x) = \tfrac{a_k}{2}\|x - c_k\|^2`,
  :math:`\nabla_x U = a_k (x - c_k)`, on which plain gradient descent is an exact geometric sequence.

Each takes ``[K, N, ...]`` and returns ``[K, N]`` like every energy of the book; sample shapes other
than 2D points (images ``[C, H, W]``) work for the linear and quadratic energies, whose norms run
over all of a sample's dimensions. Their numbers are stored as parameters, fixed by default
(``requires_grad=False``): ``.to(device)`` moves them, and ``requires_grad=True`` lets a test check
that a gradient reaches the energy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import _validate

__all__ = ["PitsEnergy", "LinearEnergy", "QuadraticEnergy"]


def _per_member(name: str, value, members: int | None) -> Tensor:
    """``value`` as a floating tensor ``[K, *S]``: dim 0 is K, or with ``members`` one ``[*S]`` for all."""
    t = torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if members is not None:
        _validate.positive("members", members, integer=True)
        return t.unsqueeze(0).expand(members, *t.shape).clone()
    if t.ndim < 2:
        raise ValueError(f"{name} must be [K, ...] with one entry per member (dim 0), or give members=K to "
                         f"share one {name} among them, got shape {tuple(t.shape)}")
    return t.clone()


def _per_member_number(name: str, value, K: int, like: Tensor) -> Tensor:
    t = torch.as_tensor(value, dtype=like.dtype)
    if t.ndim == 0:
        t = t.expand(K)
    if tuple(t.shape) != (K,) or not torch.isfinite(t).all():
        raise ValueError(f"{name} must be a finite number or [K={K}] numbers, got {value!r}")
    return t.clone()


class _FixedEnergy(nn.Module):
    """Shared input check of the analytic energies: ``x`` is ``[K, N, *sample_shape]``."""

    members: int
    sample_shape: tuple

    def _check(self, x: Tensor) -> Tensor:
        if (not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim != 2 + len(self.sample_shape)
                or x.shape[0] != self.members or tuple(x.shape[2:]) != self.sample_shape):
            want = ", ".join(str(s) for s in self.sample_shape)
            raise ValueError(f"x must be a floating tensor [K={self.members}, N, {want}], "
                             f"got {tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        return x


class LinearEnergy(_FixedEnergy):
    r"""A linear energy :math:`U_k(x) = \langle w_k, x\rangle + b_k`, ``[K, N, *S] -> [K, N]`` (chapter 3).

    The inner product runs over all of a sample's dimensions, so :math:`\nabla_x U_k = w_k` at every
    x: the penalties of chapter 3 have closed forms on it (R1 :math:`= \|w_k\|^2`), and with
    ``S = (1,)`` it is the Dirac-GAN's energy :math:`U(x) = \psi x`.

    Args:
        weight: :math:`w`, ``[K, *S]`` (one per member), or ``[*S]`` shared by ``members`` members.
        bias: :math:`b`, a number or ``[K]``.
        members: K, when ``weight`` is one ``[*S]`` for every member.
        requires_grad: make ``weight`` and ``bias`` trainable (default: fixed).
    """

    def __init__(self, weight, bias=0.0, *, members: int | None = None, requires_grad: bool = False):
        super().__init__()
        w = _per_member("weight", weight, members)
        if not torch.isfinite(w).all():
            raise ValueError("weight must be finite")
        self.members, self.sample_shape = w.shape[0], tuple(w.shape[1:])
        self.weight = nn.Parameter(w, requires_grad=requires_grad)  # [K, *S]
        self.bias = nn.Parameter(_per_member_number("bias", bias, self.members, w), requires_grad=requires_grad)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check(x)
        return (x * self.weight.unsqueeze(1)).flatten(2).sum(-1) + self.bias.unsqueeze(1)

    def extra_repr(self) -> str:
        return f"members={self.members}, sample_shape={self.sample_shape}"


class QuadraticEnergy(_FixedEnergy):
    r"""One bowl :math:`U_k(x) = \tfrac{a_k}{2}\,\|x - c_k\|^2`, ``[K, N, *S] -> [K, N]`` (chapters 2 and 3).

    :math:`\nabla_x U_k = a_k (x - c_k)`: zero only at the bottom :math:`c_k`, and plain gradient
    descent with step :math:`\eta` is the geometric sequence
    :math:`x_t - c_k = (1 - \eta a_k)^t (x_0 - c_k)`. The norm runs over all of a sample's dimensions.

    Args:
        center: :math:`c`, ``[K, *S]`` (one per member), or ``[*S]`` shared by ``members`` members.
        curvature: :math:`a > 0`, a number or ``[K]``.
        members: K, when ``center`` is one ``[*S]`` for every member.
        requires_grad: make ``center`` and ``curvature`` trainable (default: fixed).
    """

    def __init__(self, center, curvature=1.0, *, members: int | None = None, requires_grad: bool = False):
        super().__init__()
        c = _per_member("center", center, members)
        if not torch.isfinite(c).all():
            raise ValueError("center must be finite")
        self.members, self.sample_shape = c.shape[0], tuple(c.shape[1:])
        a = _per_member_number("curvature", curvature, self.members, c)
        if not (a > 0).all():
            raise ValueError(f"curvature must be positive, got {curvature!r}")
        self.center = nn.Parameter(c, requires_grad=requires_grad)  # [K, *S]
        self.curvature = nn.Parameter(a, requires_grad=requires_grad)  # [K]

    def forward(self, x: Tensor) -> Tensor:
        x = self._check(x)
        return 0.5 * self.curvature.unsqueeze(1) * (x - self.center.unsqueeze(1)).pow(2).flatten(2).sum(-1)

    def extra_repr(self) -> str:
        return f"members={self.members}, sample_shape={self.sample_shape}"


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
    ``particles.roll``.

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
               rng: torch.Generator | None = None) -> "PitsEnergy":
        """A different 2D layout for each member: a ``side x side`` grid of pits ``spacing`` apart
        and centred on 0, every centre moved by up to ``jitter`` along each axis and every pit given
        a depth drawn uniformly from ``depths = (low, high)``; all pits of one ``width``.

        The ranges must keep every pit a pit: at its centre each neighbour's bowl must lie at least
        ``5 * temperature`` above its bottom even for the closest, deepest neighbour, i.e.
        ``(spacing - 2 jitter)^2 / (2 width^2) - (high - low) >= 5 temperature``; otherwise a
        ``ValueError`` says so. The jitter and the depths are drawn from ``rng`` on its device; the
        energy is built on the CPU (``.to(device)`` moves it).
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
        dev = rng.device if rng is not None else None
        c = grid + jitter * (2 * torch.rand(members, grid.shape[0], 2, generator=rng, device=dev).cpu() - 1)
        d = depths[0] + (depths[1] - depths[0]) * torch.rand(members, grid.shape[0], generator=rng, device=dev).cpu()
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
