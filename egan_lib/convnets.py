"""Member-batched convolutional nets for images (chapter 8).

Images travel as ``[K, B, C, H, W]``. Inside a conv net the members are folded into the channels,
``[B, K*C, H, W]`` (``to_grouped``), and every convolution is a *grouped* convolution with
``groups=K``: group k sees only member k's channels and uses only member k's weights, so the members
never mix (the same guarantee as ``nets.MemberLinear``'s batched matmul). ``MemberConv2d`` is that
convolution, optionally spectrally normalised; ``ConvEnergy`` and ``ConvGenerator`` are the small
DCGAN-like energy and generator of chapter 8.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate
from .nets import MemberLinear, _make_activation, _standard_normal

__all__ = ["MemberConv2d", "ConvEnergy", "ConvGenerator", "to_grouped", "from_grouped"]


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

    def noise(self, n: int, rng: torch.Generator | None = None, *, device: torch.device | str | None = None) -> Tensor:
        """Standard normal z of shape ``[K, n, latent_dim]``, on ``device`` (default: the net's device);
        drawn on ``rng``'s device, as ``nets.MLPGenerator.noise``."""
        _validate.positive("n", n, integer=True)
        return _standard_normal((self.members, n, self.latent_dim), rng, device, self.layers[0].weight.device)

    def forward(self, z: Tensor) -> Tensor:
        self._check("z", z, (self.latent_dim,))
        return from_grouped(self.layers(z), self.members)

    @torch.no_grad()
    def sample(self, n: int, rng: torch.Generator | None = None, *, chunk: int = 2048) -> Tensor:
        """``n`` fakes per member, ``[K, n, C, H, W]``, without a graph (in chunks of ``chunk``; the noise
        drawn as in ``noise``)."""
        z = self.noise(n, rng)
        return torch.cat([self(part) for part in z.split(chunk, dim=1)], dim=1)
