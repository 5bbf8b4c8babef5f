r"""Mode statistics for mixtures with known modes (chapters 2-7) and for stacked digits (chapter 8).

The VEEGAN (Srivastava et al., 2017) / PacGAN (Lin et al., 2018) protocol, per member:

* a sample is **high quality** if it lies within 3 standard deviations of its nearest mode;
* a mode is **captured** if it is the nearest mode of at least one high-quality sample;
* **reverse KL** is :math:`\mathrm{KL}(\hat p \,\|\, u) = \sum_m \hat p_m \log(M \hat p_m)`, where
  :math:`\hat p` is the histogram of the nearest modes of the high-quality samples and u is
  uniform over the M modes. A member with no high-quality sample gets :math:`\log M`, the value
  of a complete collapse onto one mode (the largest the KL can be).

The published numbers use 2,500 samples per run (``published``); so do the presets.
``sampling_spread`` measures how much the statistics move from one evaluation sample to the next,
``flatness`` whether the real samples sit at the bottoms of pits (chapter 3; ``slopes`` is the
per-sample :math:`\|\nabla_x U\|` it and ``particles.landing`` measure with).

For images (chapter 8) the modes are named by a classifier instead of a nearest centre:
``classify_channels`` reads each channel of a stacked-digit image with a classifier passed in (the
trained ones are in ``instruments``), and ``stacked_mode_stats`` counts the 1,000 modes of the
StackedMNIST protocol.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from . import _validate
from .nets import energy_on_grid

__all__ = ["ModeStats", "mode_stats", "nearest_mode", "summarize", "slopes", "Flatness", "flatness", "pit_bottoms",
           "SamplingSpread", "sampling_spread", "histogram_entropy", "classify_channels", "StackedModeStats",
           "stacked_mode_stats"]


class ModeStats(NamedTuple):
    """Per-member mode statistics, each a numpy array of shape ``[K]``."""

    modes: np.ndarray  # number of modes captured
    high_quality: np.ndarray  # percentage of high-quality samples, 0-100
    reverse_kl: np.ndarray  # KL(mode histogram of high-quality samples || uniform)
    histogram: np.ndarray  # [K, M] counts of high-quality samples per mode

    def summary(self) -> dict[str, tuple[float, float]]:
        """``{"modes": (mean, std), ...}`` over the members."""
        return {k: summarize(getattr(self, k)) for k in ("modes", "high_quality", "reverse_kl")}

    def __str__(self) -> str:
        s = self.summary()
        return (f"modes {s['modes'][0]:.1f} ± {s['modes'][1]:.1f} | high quality "
                f"{s['high_quality'][0]:.1f} ± {s['high_quality'][1]:.1f} % | reverse KL "
                f"{s['reverse_kl'][0]:.3f} ± {s['reverse_kl'][1]:.3f}  (mean ± std over {len(self.modes)} members)")


def summarize(values) -> tuple[float, float]:
    """Mean and standard deviation over members (std is 0 for a single member)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


_PAIRS_PER_CHUNK = 1 << 22  # sample-centre coordinate pairs held at once by nearest_mode (32 MB in float64)


def nearest_mode(samples: Tensor, centers: Tensor) -> tuple[Tensor, Tensor]:
    r"""Index of the nearest centre and the distance to it, each ``[K, N]``; the distances in float64.

    The distances come from the difference vectors :math:`x - c`, in float64, so they are exact for
    float32 samples (up to float64 rounding) and a sample right at the 3-sigma border is classified
    as its coordinates say. ``torch.cdist``'s fast path, :math:`\|x\|^2 + \|c\|^2 - 2\,x\cdot c` in
    float32, errs by some :math:`10^{-6}` there, which moved samples across the border. The samples
    are taken in chunks, so memory stays bounded for any N.
    """
    _validate.members_batch("samples", samples, dim=centers.shape[1])
    c = torch.as_tensor(centers).to(samples.device, torch.float64)  # [M, D]
    rows = max(1, _PAIRS_PER_CHUNK // (samples.shape[0] * c.numel()))
    idx, dist = [], []
    for part in samples.split(rows, dim=1):  # [K, n, D]
        sq = (part.double().unsqueeze(2) - c).pow(2).sum(-1)  # [K, n, M]
        d2, i = sq.min(dim=2)
        idx.append(i)
        dist.append(d2.sqrt())
    return torch.cat(idx, dim=1), torch.cat(dist, dim=1)


@torch.no_grad()
def mode_stats(samples: Tensor, mixture, *, n_std: float = 3.0) -> ModeStats:
    """Mode statistics of ``samples`` (``[K, N, D]``) against a mixture with ``centers`` and ``std``."""
    if not hasattr(mixture, "centers") or not hasattr(mixture, "std"):
        raise ValueError("mixture must have `centers` [M, D] and `std` (e.g. egan_lib.data.ring())")
    _validate.positive("n_std", n_std)
    samples = samples.detach()
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain NaN or inf")
    idx, dist = nearest_mode(samples, mixture.centers)
    good = dist <= n_std * mixture.std
    M = mixture.centers.shape[0]
    K = samples.shape[0]
    hist = torch.zeros(K, M, dtype=torch.long, device=samples.device)
    hist.scatter_add_(1, idx, good.long())
    hist = hist.cpu().numpy()
    n_good = hist.sum(axis=1)
    modes = (hist > 0).sum(axis=1)
    hq = 100.0 * n_good / samples.shape[1]
    kl = np.full(K, math.log(M))
    for k in range(K):
        if n_good[k] > 0:
            p = hist[k][hist[k] > 0] / n_good[k]
            kl[k] = float(np.sum(p * np.log(p * M)))
    return ModeStats(modes, hq, kl, hist)


def slopes(energy, x: Tensor) -> Tensor:
    r""":math:`\|\nabla_x U(x)\|` per sample, ``[K, N]``, over all of a sample's dimensions (chapters 2
    and 3: ``particles.landing``, ``flatness``). No graph is kept: these are measurements, not
    penalties (``penalties.grad_norm`` is the differentiable one)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(energy(x).sum(), x)
    return g.flatten(2).norm(dim=2)


class Flatness(NamedTuple):
    """How flat an energy is at the real samples (``flatness``); each a numpy array ``[K]``."""

    real: np.ndarray  # mean |grad U| over the real samples
    reference: np.ndarray  # mean |grad U| over the reference points (the typical slope)
    ratio: np.ndarray  # real / reference: 0 when every real sample sits at a stationary point


def _check_pair(energy, x_real, x_ref) -> None:
    K = getattr(energy, "members", None)
    for name, x in (("x_real", x_real), ("x_ref", x_ref)):
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 3:
            raise ValueError(f"{name} must be a floating tensor [K, N, ...], got {getattr(x, 'shape', type(x).__name__)}")
        if K is not None and x.shape[0] != K:
            raise ValueError(f"{name} must have K={K} members in dim 0 (one per energy member), got {tuple(x.shape)}")
    if x_real.shape[0] != x_ref.shape[0] or x_real.shape[2:] != x_ref.shape[2:]:
        raise ValueError(f"x_real and x_ref must agree in members and sample shape, got {tuple(x_real.shape)} "
                         f"and {tuple(x_ref.shape)}")


def flatness(energy, x_real: Tensor, x_ref: Tensor) -> Flatness:
    r"""Are the real samples at the bottoms of pits? The slope of U there against its typical slope (chapter 3).

    Per member :math:`k`,

    .. math:: \rho_k = \frac{\mathbb{E}_{x\sim p}\,\|\nabla_x U_k(x)\|}{\mathbb{E}_{x\sim r}\,\|\nabla_x U_k(x)\|}

    with ``x_real`` (``[K, N, D]``) drawn from the data p and ``x_ref`` (``[K, M, D]``) from a
    reference distribution r, e.g. uniform over the plotted box. The energy's scale is
    arbitrary (eq. (1) is linear in U), so the slope at the reals means something only next to
    the typical slope: :math:`\rho = 0` when every real sample is a stationary point (the
    article's picture, which R1 asks for), :math:`\rho \approx 1` when the reals sit on slopes
    as steep as anywhere else. The norms run over all of a sample's dimensions
    (as in ``penalties.grad_norm``). The energy's parameters get no gradient.
    """
    _check_pair(energy, x_real, x_ref)
    real = slopes(energy, x_real).mean(dim=1).cpu().numpy()
    ref = slopes(energy, x_ref).mean(dim=1).cpu().numpy()
    return Flatness(real, ref, real / ref)


@torch.no_grad()
def pit_bottoms(energy, centers, *, half_width: float = 0.2, res: int = 81) -> np.ndarray:
    """Is there a pit at each mode? The distance from each centre to the lowest point of U in the
    square of side ``2 * half_width`` around it, on a ``res x res`` grid (chapter 3): ``[K, M]``.
    A distance within the mode's 3 sigma means a pit with the mode at its bottom."""
    _validate.positive("half_width", half_width)
    d = []
    for cx, cy in torch.as_tensor(centers).tolist():
        xs, ys, E = energy_on_grid(energy, (cx - half_width, cx + half_width, cy - half_width, cy + half_width), res)
        lowest = E.flatten(1).argmin(dim=1)  # E[k, iy, ix] flattened: iy * res + ix
        d.append(torch.hypot(xs[lowest % res] - cx, ys[lowest // res] - cy))
    return torch.stack(d, dim=1).numpy()


class SamplingSpread(NamedTuple):
    """Mode statistics of ``R`` independent draws from one fixed sampler (``sampling_spread``).

    Each field is a numpy array ``[R, K]``: the statistic of draw ``r`` for member ``k``.
    """

    modes: np.ndarray
    high_quality: np.ndarray
    reverse_kl: np.ndarray

    def mean(self) -> dict[str, np.ndarray]:
        """``{"modes": [K], ...}``: each member's average over the draws."""
        return {k: getattr(self, k).mean(axis=0) for k in self._fields}

    def std(self) -> dict[str, np.ndarray]:
        """``{"modes": [K], ...}``: each member's standard deviation over the draws (the sampling error
        of one evaluation of that member)."""
        return {k: getattr(self, k).std(axis=0, ddof=1) for k in self._fields}


@torch.no_grad()
def sampling_spread(sample_fn, mixture, *, repeats: int = 100, n: int = 2500, seed: int = 0,
                    n_std: float = 3.0, device: torch.device | str = "cpu") -> SamplingSpread:
    r"""How much the mode statistics move from one evaluation sample to the next (chapter 6).

    The statistics of ``mode_stats`` are computed from a finite sample (2,500 in VEEGAN and
    PacGAN), so they are random even for a fixed generator. This draws ``repeats`` independent
    samples of ``n`` points from ``sample_fn`` and computes the statistics of each: the spread of
    the results over the draws is the sampling error of a single evaluation. For the true
    mixture itself the expected values are known: every mode is captured (each holds about
    ``n / M`` samples), the share of high-quality samples is
    :math:`P(\lVert \varepsilon \rVert \le 3\sigma) = 1 - e^{-9/2} \approx 98.9\,\%` in 2D (the
    radius of a 2D Gaussian follows a Rayleigh law), with a standard deviation of about
    :math:`100\sqrt{p(1-p)/n} \approx 0.2` percentage points, and the reverse KL is about
    :math:`(M - 1) / (2 N)` for :math:`N` high-quality samples (:math:`2N\,\mathrm{KL}` is the
    G-statistic of the mode histogram, close to :math:`\chi^2_{M-1}`), not 0.

    Args:
        sample_fn: ``sample_fn(n, rng) -> [K, n, D]``, e.g. ``lambda n, rng: G.sample(n, rng)``
            for a trained generator, or ``lambda n, rng: ring.sample(n, rng, members=K)`` for the data.
        mixture: the mixture with ``centers`` and ``std`` that the statistics refer to.
        repeats: number of independent draws R (at least 2).
        n: samples per draw and member.
        seed: seeds the ``torch.Generator`` ``rng`` handed to ``sample_fn`` (one stream for all draws).
        n_std: the high-quality radius in standard deviations, as in ``mode_stats``.
        device: where ``rng`` draws (the CPU by default, so the draws are the same on any machine).

    Returns:
        ``SamplingSpread(modes, high_quality, reverse_kl)``, each ``[R, K]``.
    """
    if not callable(sample_fn):
        raise ValueError(f"sample_fn must be a function (n, rng) -> [K, n, D], got {sample_fn!r}")
    _validate.positive("repeats", repeats, integer=True)
    if repeats < 2:
        raise ValueError(f"repeats must be at least 2 to measure a spread, got {repeats}")
    _validate.positive("n", n, integer=True)
    rng = torch.Generator(device=device).manual_seed(seed)
    rows = []
    for _ in range(repeats):
        x = sample_fn(n, rng)
        _validate.members_batch("sample_fn(n, rng)", x, dim=mixture.centers.shape[1])
        if x.shape[1] != n:
            raise ValueError(f"sample_fn(n, rng) must return n={n} samples per member, got shape {tuple(x.shape)}")
        s = mode_stats(x, mixture, n_std=n_std)
        rows.append((s.modes, s.high_quality, s.reverse_kl))
    modes, hq, kl = (np.stack(col) for col in zip(*rows))
    return SamplingSpread(modes, hq, kl)


def histogram_entropy(counts) -> np.ndarray:
    r"""Entropy in nats of each member's histogram: ``[K, M]`` counts -> ``[K]`` (chapter 5).

    .. math:: H = -\sum_m p_m \log p_m, \qquad p_m = \text{counts}_m / \textstyle\sum_j \text{counts}_j,

    with :math:`0 \log 0 = 0`: 0 when everything lies in one bin, :math:`\log M` when the counts
    are even. A member with no counts at all gets NaN.
    """
    c = np.asarray(counts.detach().cpu() if isinstance(counts, Tensor) else counts, dtype=float)
    if c.ndim != 2 or (c < 0).any():
        raise ValueError(f"counts must be a non-negative array [K, M], got shape {c.shape}")
    total = c.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = c / total
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h = terms.sum(axis=1)
    h[total[:, 0] == 0] = np.nan
    return h


def _check_images(name: str, x) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim != 5:
        raise ValueError(f"{name} must be a floating tensor of images [K, N, C, H, W], "
                         f"got {tuple(getattr(x, 'shape', ())) or type(x).__name__}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


@torch.no_grad()
def _per_channel(classifier, images: Tensor, fn, chunk: int) -> Tensor:
    """``fn(classifier, x)`` on every channel of ``[K, N, C, H, W]`` as its own image: ``[K, N, C, ...]``."""
    dev = next(classifier.parameters()).device
    K, N, C, H, W = images.shape
    flat = images.reshape(K * N * C, 1, H, W)
    out = torch.cat([fn(classifier, part.to(dev)).cpu() for part in flat.split(chunk)])
    return out.reshape(K, N, C, *out.shape[1:])


def classify_channels(images: Tensor, classifier, *, chunk: int = 8192) -> Tensor:
    """The digit the classifier reads in each channel: ``[K, N, C, H, W] -> [K, N, C]`` (chapter 8)."""
    _check_images("images", images)
    return _per_channel(classifier, images.detach(), lambda net, x: net(x).argmax(1), chunk)


class StackedModeStats(NamedTuple):
    """Per-member mode statistics of stacked digits (``stacked_mode_stats``), numpy arrays ``[K]``."""

    modes: np.ndarray  # number of the n_classes ** C modes that at least one sample falls in
    reverse_kl: np.ndarray  # KL(mode histogram of the samples || uniform over all modes)
    histogram: np.ndarray  # [K, M] samples per mode

    def summary(self) -> dict[str, tuple[float, float]]:
        return {k: summarize(getattr(self, k)) for k in ("modes", "reverse_kl")}

    def __str__(self) -> str:
        s = self.summary()
        return (f"modes {s['modes'][0]:.1f} ± {s['modes'][1]:.1f} of {self.histogram.shape[1]} | KL "
                f"{s['reverse_kl'][0]:.3f} ± {s['reverse_kl'][1]:.3f}  (mean ± std over {len(self.modes)} members)")


def stacked_mode_stats(images: Tensor, classifier, *, chunk: int = 8192) -> StackedModeStats:
    r"""Modes captured and KL to uniform for stacked digits, the StackedMNIST protocol (chapter 8).

    Each of the C channels of every sample is classified on its own; the digits
    :math:`(a_1, \dots, a_C)` name the mode :math:`\sum_c a_c\, 10^{C-c}` (for C = 3,
    :math:`100a + 10b + c`), one of :math:`M = 10^C`. Per member, with :math:`\hat p` the histogram
    of the samples' modes,

    * ``modes``: the number of modes with at least one sample;
    * ``reverse_kl``: :math:`\mathrm{KL}(\hat p \,\|\, u) = \sum_m \hat p_m \log(M \hat p_m)`, the
      divergence that VEEGAN, PacGAN and MEG report (with :math:`0 \log 0 = 0`).

    The published numbers use 26,000 samples per run (PacGAN, MEG). Unlike ``mode_stats`` there is
    no quality threshold: every sample counts, whatever the classifier's confidence.
    """
    _check_images("images", images)
    labels = classify_channels(images, classifier, chunk=chunk)  # [K, N, C]
    n_classes = classifier.n_classes
    C = labels.shape[2]
    weights = n_classes ** torch.arange(C - 1, -1, -1)
    mode = (labels * weights).sum(-1)  # [K, N]
    M = n_classes**C
    hist = torch.zeros(mode.shape[0], M, dtype=torch.long).scatter_add_(1, mode, torch.ones_like(mode)).numpy()
    kl = math.log(M) - histogram_entropy(hist)  # KL(p || uniform over M) = log M - H(p)
    return StackedModeStats((hist > 0).sum(axis=1), kl, hist)
