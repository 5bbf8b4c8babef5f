"""Data with known modes: 2D Gaussian mixtures (chapters 1-7) and images (chapter 8).

A mixture knows its ``centers`` and ``std``, so mode statistics (``egan_lib.metrics``) can be
computed exactly under the VEEGAN/PacGAN protocol. Every ``sample(n, rng, members=K)`` draws from
the ``torch.Generator`` ``rng`` on that generator's device (a CUDA generator draws on the GPU, with
no copy); without one, a mixture draws on ``device`` and image data where its images are. ``ring()`` and ``grid()`` are the PacGAN
settings (Lin et al., 2018): 8 modes on the unit circle with std 0.01, and 25 modes at
{-4,-2,0,2,4}^2 with std 0.05.

Images (chapter 8) are ``ImageData``: a tensor ``[N, C, H, W]`` scaled to [-1, 1] with a label per
image, sampled as ``[K, n, C, H, W]``. ``digits()`` and ``stacked_digits()`` use scikit-learn's
8x8 digits, which ship with scikit-learn (nothing is downloaded); ``mnist()``, ``stacked_mnist()``
and ``cifar10()`` load through torchvision for the full preset on a GPU, and raise
``DataUnavailable`` with what to do when torchvision or the files are missing.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import Tensor

from . import _validate

__all__ = ["GaussianMixture2D", "ring", "grid", "DataUnavailable", "ImageData", "StackedImages", "digits",
           "stacked_digits", "to_unit_range", "mnist", "stacked_mnist", "cifar10"]


class GaussianMixture2D:
    """An equal-weight mixture of isotropic Gaussians in the plane.

    ``sample(n)`` gives ``[n, 2]``; ``sample(n, members=K)`` gives ``[K, n, 2]`` (an independent
    batch for each member, drawn from one ``rng`` so a seed fixes all of them).
    """

    def __init__(self, centers, std: float, name: str = "mixture"):
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.ndim != 2 or centers.shape[1] != 2 or centers.shape[0] < 1:
            raise ValueError(f"centers must have shape [M, 2] with M >= 1, got {tuple(centers.shape)}")
        _validate.positive("std", std)
        self.centers = centers
        self.std = float(std)
        self.name = name
        self._centers_on = centers  # the centres on the device of the latest draw

    def _centers(self, device: torch.device) -> Tensor:
        if self._centers_on.device != device:
            self._centers_on = self.centers.to(device)
        return self._centers_on

    @property
    def n_modes(self) -> int:
        return self.centers.shape[0]

    dim = 2

    def extent(self, margin: float = 0.5) -> tuple[float, float, float, float]:
        """A square ``(xmin, xmax, ymin, ymax)`` around all modes, for plots."""
        lo = float(self.centers.min()) - margin
        hi = float(self.centers.max()) + margin
        return (lo, hi, lo, hi)

    def sample(self, n: int, rng: torch.Generator | None = None, *, members: int | None = None,
               device: torch.device | str | None = None) -> Tensor:
        """``n`` points (per member): ``[n, 2]``, or ``[K, n, 2]`` with ``members=K``.

        Drawn from ``rng`` on its device, or without one from torch's global stream on ``device``
        (default the CPU); the result is on ``device`` when given, else where it was drawn.
        """
        _validate.positive("n", n, integer=True)
        if members is not None:
            _validate.positive("members", members, integer=True)
        lead = (n,) if members is None else (members, n)
        dev = _draw_device(rng, device, torch.device("cpu"))
        idx = torch.randint(self.n_modes, lead, generator=rng, device=dev)
        noise = torch.randn(*lead, 2, generator=rng, device=dev)
        x = self._centers(dev)[idx] + self.std * noise
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


def rings(counts=(8, 12, 16), radii=(1.0, 2.0, 3.0), std: float = 0.02) -> GaussianMixture2D:
    """Several concentric rings at once: ``counts[i]`` modes on the circle of radius ``radii[i]``."""
    if len(counts) != len(radii) or not counts:
        raise ValueError(f"counts and radii must be non-empty and of one length, got {counts!r} and {radii!r}")
    centers = torch.cat([ring(n, radius=r).centers for n, r in zip(counts, radii)])
    return GaussianMixture2D(centers, std, name=f"{sum(counts)} modes on {len(counts)} rings")


def _draw_device(rng: torch.Generator | None, device, default: torch.device) -> torch.device:
    """Where random numbers are drawn: on ``rng``'s device, else on ``device``, else on ``default``."""
    if rng is not None:
        if not isinstance(rng, torch.Generator):
            raise ValueError(f"rng must be a torch.Generator or None, got {type(rng).__name__}")
        return rng.device
    return torch.device(device) if device is not None else default


# --- images (chapter 8) --------------------------------------------------------------------------

class DataUnavailable(RuntimeError):
    """A data set (or the package that loads it) is not available here; the message says what to do."""


def to_unit_range(images, *, channels_last: bool = False) -> Tensor:
    """Pixels from 0..255 (``uint8``) to floats in [-1, 1], laid out ``[N, C, H, W]`` (chapter 8).

    ``images`` is ``[N, H, W]`` (one channel, as MNIST's ``data``), ``[N, C, H, W]``, or with
    ``channels_last=True`` ``[N, H, W, C]`` (as CIFAR-10's ``data``); a numpy array or a tensor.
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if x.dtype != torch.uint8:
        raise ValueError(f"images must hold uint8 pixels 0..255, got dtype {x.dtype}")
    if x.ndim == 3 and not channels_last:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and channels_last:
        x = x.permute(0, 3, 1, 2)
    elif x.ndim != 4:
        raise ValueError(f"images must have shape [N, H, W], [N, C, H, W] or (channels_last) [N, H, W, C], "
                         f"got {tuple(x.shape)}")
    return (x.float() / 127.5 - 1.0).contiguous()


class ImageData:
    """Labelled images ``[N, C, H, W]`` in [-1, 1], sampled uniformly with replacement (chapter 8).

    ``sample(n, rng, members=K)`` gives ``[K, n, C, H, W]`` (an independent batch per member,
    from one ``rng`` so a seed fixes all of them); without ``members`` it gives ``[n, C, H, W]``.
    ``sample_with_labels`` also returns the labels, ``[K, n]``. The indices are drawn on ``rng``'s
    device (without one, where the images are) and the batch is gathered where the images are, then
    moved to ``device`` if one is given: ``to(device)`` gives a copy with its images on a GPU, so that
    with a CUDA ``rng`` nothing crosses between the devices.
    """

    def __init__(self, images: Tensor, labels: Tensor, *, n_classes: int, name: str = "images"):
        if not isinstance(images, Tensor) or not images.is_floating_point() or images.ndim != 4:
            raise ValueError(f"images must be a floating tensor [N, C, H, W], got {getattr(images, 'shape', images)!r}")
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape [N={images.shape[0]}], got {tuple(labels.shape)}")
        _validate.positive("n_classes", n_classes, integer=True)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes}), got [{int(labels.min())}, {int(labels.max())}]")
        self.images, self.labels, self.n_classes, self.name = images, labels, n_classes, name

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])

    @property
    def n_modes(self) -> int:
        return self.n_classes

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "ImageData":
        """A copy holding its images and labels on ``device`` (the original is left where it is)."""
        return ImageData(self.images.to(device), self.labels.to(device), n_classes=self.n_classes, name=self.name)

    def _index(self, n, rng, members, extra: tuple = ()):
        """Random image indices ``[K, n, *extra]`` (``[n, *extra]`` without ``members``), on the images' device."""
        _validate.positive("n", n, integer=True)
        if members is not None:
            _validate.positive("members", members, integer=True)
        lead = (n,) if members is None else (members, n)
        dev = _draw_device(rng, None, self.images.device)
        return torch.randint(len(self), lead + tuple(extra), generator=rng, device=dev).to(self.images.device)

    def sample_with_labels(self, n: int, rng: torch.Generator | None = None, *, members: int | None = None,
                           device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Images ``[K, n, C, H, W]`` (``[n, C, H, W]`` without ``members``) and their labels ``[K, n]``,
        on ``device`` when given, else on the images' device."""
        idx = self._index(n, rng, members)
        x, y = self.images[idx], self.labels[idx]
        return (x, y) if device is None else (x.to(device), y.to(device))

    def sample(self, n: int, rng: torch.Generator | None = None, *, members: int | None = None,
               device: torch.device | str | None = None) -> Tensor:
        return self.sample_with_labels(n, rng, members=members, device=device)[0]

    def __repr__(self) -> str:
        return f"ImageData({self.name!r}, n={len(self)}, shape={self.shape}, classes={self.n_classes})"


class StackedImages:
    r"""``channels`` independent one-channel images stacked as the channels of one image (chapter 8).

    The StackedMNIST protocol (Metz et al., 2017; VEEGAN; PacGAN; MEG): each channel holds a digit
    drawn independently, so with 3 channels there are :math:`10^3 = 1000` modes, labelled
    :math:`100a + 10b + c` for the digits a, b, c of channels 0, 1, 2. Samples are ``[K, n, C, H, W]``.
    """

    def __init__(self, base: ImageData, channels: int = 3, name: str | None = None):
        if not isinstance(base, ImageData) or base.shape[0] != 1:
            raise ValueError(f"base must be a one-channel ImageData, got {base!r}")
        _validate.positive("channels", channels, integer=True)
        self.base, self.channels = base, channels
        self.n_classes = base.n_classes ** channels
        self.name = name or f"stacked {base.name}"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels,) + tuple(self.base.shape[1:])

    @property
    def n_modes(self) -> int:
        return self.n_classes

    def to(self, device: torch.device | str) -> "StackedImages":
        """A copy whose one-channel images and labels are on ``device`` (see ``ImageData.to``)."""
        return StackedImages(self.base.to(device), self.channels, name=self.name)

    def sample_with_labels(self, n: int, rng: torch.Generator | None = None, *, members: int | None = None,
                           device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Stacked images ``[K, n, C, H, W]`` and their modes ``[K, n]`` (``sum_c digit_c * 10^(C-1-c)``),
        drawn and placed as in ``ImageData.sample_with_labels``."""
        idx = self.base._index(n, rng, members, extra=(self.channels,))
        x = self.base.images[idx].squeeze(-3)  # [..., channels, H, W]
        digits_ = self.base.labels[idx]  # [..., channels]
        weights = self.base.n_classes ** torch.arange(self.channels - 1, -1, -1, device=digits_.device)
        y = (digits_ * weights).sum(-1)
        return (x, y) if device is None else (x.to(device), y.to(device))

    def sample(self, n: int, rng: torch.Generator | None = None, *, members: int | None = None,
               device: torch.device | str | None = None) -> Tensor:
        return self.sample_with_labels(n, rng, members=members, device=device)[0]

    def __repr__(self) -> str:
        return f"StackedImages({self.name!r}, channels={self.channels}, modes={self.n_classes})"


def _split(n: int, split: str, test_fraction: float, seed: int) -> Tensor:
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * n))
    return {"train": perm[n_test:], "test": perm[:n_test], "all": torch.arange(n)}[split]


def digits(split: str = "all", *, test_fraction: float = 0.25, seed: int = 0) -> ImageData:
    """scikit-learn's 1,797 handwritten digits, 8x8 with 17 grey levels, as ``[N, 1, 8, 8]`` in [-1, 1].

    ``split`` is ``"train"``, ``"test"`` (a fixed random ``test_fraction`` of the images, drawn with
    ``seed``; the held-out set on which the digit classifier of ``metrics`` reports its accuracy) or
    ``"all"``. The data ship with scikit-learn: nothing is downloaded. Chapter 8.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataUnavailable("digits() needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    images = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0  # 0..16 -> [-1, 1]
    labels = torch.as_tensor(d.target, dtype=torch.long)
    idx = _split(images.shape[0], split, test_fraction, seed)
    return ImageData(images[idx].contiguous(), labels[idx], n_classes=10, name=f"digits ({split})")


def stacked_digits(split: str = "all", *, channels: int = 3, test_fraction: float = 0.25, seed: int = 0) -> StackedImages:
    """Three 8x8 digits as the three channels of one image: 1,000 modes, on data that need no download.

    The StackedMNIST protocol (``StackedImages``) on ``digits(split)``; labels ``100a + 10b + c``. Chapter 8.
    """
    return StackedImages(digits(split, test_fraction=test_fraction, seed=seed), channels, name=f"stacked digits ({split})")


_TORCHVISION_HINT = (
    "install a torchvision build that matches your torch (on Colab it is already there; elsewhere see "
    "https://pytorch.org/get-started/locally/), or run the chapter under the quick preset, which uses "
    "scikit-learn's digits"
)


def _torchvision_dataset(cls_name: str, root, train: bool, download: bool):
    try:
        import torchvision  # noqa: F401  (optional: only the full preset's image data need it)
        from torchvision import datasets
    except ImportError:
        raise DataUnavailable(f"{cls_name} is loaded through torchvision, which is not installed: "
                              f"{_TORCHVISION_HINT}") from None
    if root is None:
        raise ValueError("root must be a folder for the data, e.g. '~/data', got None")
    root = os.path.expanduser(str(root))
    try:
        return getattr(datasets, cls_name)(root, train=train, download=download)
    except (RuntimeError, OSError) as err:
        how = ("pass download=True (it needs the network), or copy the files there yourself"
               if not download else "check the network connection and the folder's permissions")
        raise DataUnavailable(f"{cls_name} ({'train' if train else 'test'} split) could not be loaded from "
                              f"{root!r} with download={download}: {err}. To get it: {how}.") from None


def mnist(root="~/data", *, train: bool = True, download: bool = False) -> ImageData:
    """MNIST through torchvision: ``[N, 1, 28, 28]`` in [-1, 1], 10 classes (chapter 8, full preset).

    Nothing is downloaded unless ``download=True``. Raises ``DataUnavailable`` with instructions when
    torchvision is not installed or the files are not in ``root``.
    """
    ds = _torchvision_dataset("MNIST", root, train, download)
    return ImageData(to_unit_range(ds.data), torch.as_tensor(ds.targets), n_classes=10,
                     name=f"MNIST ({'train' if train else 'test'})")


def stacked_mnist(root="~/data", *, train: bool = True, download: bool = False, channels: int = 3) -> StackedImages:
    """StackedMNIST (Metz et al., 2017): three MNIST digits as the channels of one 28x28 image, 1,000
    modes (chapter 8, full preset). See ``mnist`` for ``root`` and ``download``."""
    base = mnist(root, train=train, download=download)
    return StackedImages(base, channels, name=f"stacked MNIST ({'train' if train else 'test'})")


def cifar10(root="~/data", *, train: bool = True, download: bool = False) -> ImageData:
    """CIFAR-10 through torchvision: ``[N, 3, 32, 32]`` in [-1, 1], 10 classes (chapter 8, full preset).

    See ``mnist`` for ``root``, ``download`` and the ``DataUnavailable`` error.
    """
    ds = _torchvision_dataset("CIFAR10", root, train, download)
    return ImageData(to_unit_range(ds.data, channels_last=True), torch.as_tensor(ds.targets), n_classes=10,
                     name=f"CIFAR-10 ({'train' if train else 'test'})")
