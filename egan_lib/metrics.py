r"""Mode statistics for mixtures with known modes (chapters 2-7).

The VEEGAN (Srivastava et al., 2017) / PacGAN (Lin et al., 2018) protocol, per member:

* a sample is **high quality** if it lies within 3 standard deviations of its nearest mode;
* a mode is **captured** if it is the nearest mode of at least one high-quality sample;
* **reverse KL** is :math:`\mathrm{KL}(\hat p \,\|\, u) = \sum_m \hat p_m \log(M \hat p_m)`, where
  :math:`\hat p` is the histogram of the nearest modes of the high-quality samples and u is
  uniform over the M modes. A member with no high-quality sample gets :math:`\log M`, the value
  of a complete collapse onto one mode (the largest the KL can be).

The published numbers use 2,500 samples per run; so do the presets.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from . import _validate

__all__ = ["ModeStats", "mode_stats", "nearest_mode", "summarize", "Landing", "landing", "Flatness",
           "flatness", "SamplingSpread", "sampling_spread",
           "histogram_entropy", "PitMoves", "pit_moves"]


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


def nearest_mode(samples: Tensor, centers: Tensor) -> tuple[Tensor, Tensor]:
    """Index of the nearest centre and the distance to it, each ``[K, N]``."""
    _validate.members_batch("samples", samples, dim=centers.shape[1])
    d = torch.cdist(samples.float(), centers.to(samples.device).float().expand(samples.shape[0], -1, -1))
    dist, idx = d.min(dim=2)
    return idx, dist


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


def _slopes(energy, x: Tensor) -> Tensor:
    r""":math:`\|\nabla_x U(x)\|` per sample, ``[K, N]``, over all of a sample's dimensions; no graph
    is kept (these are measurements, not penalties: ``penalties.grad_norm`` is the differentiable one)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(energy(x).sum(), x)
    return g.flatten(2).norm(dim=2)


class Landing(NamedTuple):
    """Where rolled particles came to rest (``landing``). Fractions are numpy arrays ``[K]``."""

    nearest: np.ndarray  # fraction at rest at the real mode that was nearest to their start
    other: np.ndarray  # fraction at rest at some other real mode
    sub_true: np.ndarray  # fraction at rest (stationary) far from every real mode: a "sub-true" pit
    moving: np.ndarray  # fraction neither at a real mode nor stationary (still rolling, or gone)
    modes: np.ndarray  # number of distinct real modes that at least one particle ended at
    at_mode: Tensor  # [K, N] bool: the particle ended within `radius` of a real mode
    stationary: Tensor  # [K, N] bool: its final gradient is small (see `grad_tol`)
    grad_ratio: Tensor  # [K, N] final |grad U| over the member's median |grad U| at the start


def landing(energy, x0: Tensor, x_end: Tensor, centers: Tensor, *, radius: float,
            grad_tol: float = 1e-2, grad_scale: Tensor | float | None = None) -> Landing:
    r"""Classify where particles that rolled down a frozen energy came to rest (chapter 2).

    A particle that started at ``x0`` and ended at ``x_end`` (each ``[K, N, D]``, member ``k`` on
    energy member ``k``) is

    * **at a real mode** if it ended within ``radius`` of one of ``centers`` (``[M, D]``), either
      the one nearest to where it started (``nearest``: it fell into its own pit) or another one;
    * **stationary** if :math:`\|\nabla_x U(x_\text{end})\| \le \texttt{grad\_tol}\cdot s_k`,
      where :math:`s_k` (``grad_scale``: ``[K]`` or one number) defaults to the member's median
      :math:`\|\nabla_x U(x_0)\|`: its slope has all but vanished compared with the typical slope
      where the particles started. The energy's overall scale is arbitrary (eq. (1) is linear in
      U), so the tolerance is relative to it;
    * in a **sub-true pit** if it is stationary but not at a real mode: a local minimum of U that
      no real sample sits in (the article's "sub-true" pit);
    * **moving** otherwise (not at rest yet, or running off).

    ``nearest + other + sub_true + moving = 1`` for every member; ``modes`` counts the distinct
    real modes reached. The same classification applies to a generator's fakes before and after
    it is trained on a frozen U (``x0 = G_0(z)``, ``x_end = G(z)`` for the same noise z).
    """
    _validate.members_batch("x0", x0)
    _validate.members_batch("x_end", x_end)
    if x0.shape != x_end.shape:
        raise ValueError(f"x0 and x_end must have the same shape [K, N, D], got {tuple(x0.shape)} and {tuple(x_end.shape)}")
    centers = torch.as_tensor(centers)
    if centers.ndim != 2 or centers.shape[1] != x0.shape[2]:
        raise ValueError(f"centers must have shape [M, {x0.shape[2]}], got {tuple(centers.shape)}")
    _validate.positive("radius", radius)
    _validate.positive("grad_tol", grad_tol)

    if grad_scale is None:
        scale = _slopes(energy, x0).median(dim=1, keepdim=True).values.clamp_min(torch.finfo(x0.dtype).tiny)
    else:
        scale = torch.as_tensor(grad_scale, dtype=x0.dtype, device=x0.device).reshape(-1, 1)
        if scale.shape[0] == 1:
            scale = scale.expand(x0.shape[0], 1)
        if scale.shape[0] != x0.shape[0] or not bool((scale > 0).all()):
            raise ValueError(f"grad_scale must hold {x0.shape[0]} positive values (one per member), "
                             f"got {tuple(scale.flatten().tolist())}")
    ratio = _slopes(energy, x_end) / scale
    start_mode, _ = nearest_mode(x0.detach(), centers)
    end_mode, dist = nearest_mode(x_end.detach(), centers)
    at_mode = dist <= radius
    stationary = ratio <= grad_tol
    frac = lambda m: m.float().mean(dim=1).cpu().numpy()
    reached = torch.zeros(x0.shape[0], centers.shape[0], dtype=torch.long, device=end_mode.device)
    reached.scatter_add_(1, end_mode, at_mode.long())
    return Landing(
        nearest=frac(at_mode & (end_mode == start_mode)),
        other=frac(at_mode & (end_mode != start_mode)),
        sub_true=frac(~at_mode & stationary),
        moving=frac(~at_mode & ~stationary),
        modes=(reached > 0).sum(dim=1).cpu().numpy(),
        at_mode=at_mode.cpu(), stationary=stationary.cpu(), grad_ratio=ratio.detach().cpu(),
    )


class Flatness(NamedTuple):
    """How flat an energy is at the real samples (``flatness``); each a numpy array ``[K]``."""

    real: np.ndarray  # mean |grad U| over the real samples
    reference: np.ndarray  # mean |grad U| over the reference points (the typical slope)
    ratio: np.ndarray  # real / reference: 0 when every real sample sits at a stationary point


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
    K = getattr(energy, "members", None)
    for name, x in (("x_real", x_real), ("x_ref", x_ref)):
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 3:
            raise ValueError(f"{name} must be a floating tensor [K, N, ...], got {getattr(x, 'shape', type(x).__name__)}")
        if K is not None and x.shape[0] != K:
            raise ValueError(f"{name} must have K={K} members in dim 0 (one per energy member), got {tuple(x.shape)}")
    if x_real.shape[0] != x_ref.shape[0] or x_real.shape[2:] != x_ref.shape[2:]:
        raise ValueError(f"x_real and x_ref must agree in members and sample shape, got {tuple(x_real.shape)} "
                         f"and {tuple(x_ref.shape)}")

    real = _slopes(energy, x_real).mean(dim=1).cpu().numpy()
    ref = _slopes(energy, x_ref).mean(dim=1).cpu().numpy()
    return Flatness(real, ref, real / ref)


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
                    n_std: float = 3.0) -> SamplingSpread:
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
        sample_fn: ``sample_fn(n, generator) -> [K, n, D]``, e.g. ``lambda n, g: G.sample(n, g)``
            for a trained generator, or ``lambda n, g: ring.sample(n, g, members=K)`` for the data.
        mixture: the mixture with ``centers`` and ``std`` that the statistics refer to.
        repeats: number of independent draws R (at least 2).
        n: samples per draw and member.
        seed: seeds the ``torch.Generator`` handed to ``sample_fn`` (one stream for all draws).
        n_std: the high-quality radius in standard deviations, as in ``mode_stats``.

    Returns:
        ``SamplingSpread(modes, high_quality, reverse_kl)``, each ``[R, K]``.
    """
    if not callable(sample_fn):
        raise ValueError(f"sample_fn must be a function (n, generator) -> [K, n, D], got {sample_fn!r}")
    _validate.positive("repeats", repeats, integer=True)
    if repeats < 2:
        raise ValueError(f"repeats must be at least 2 to measure a spread, got {repeats}")
    _validate.positive("n", n, integer=True)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(repeats):
        x = sample_fn(n, g)
        _validate.members_batch("sample_fn(n, generator)", x, dim=mixture.centers.shape[1])
        if x.shape[1] != n:
            raise ValueError(f"sample_fn(n, generator) must return n={n} samples per member, got shape {tuple(x.shape)}")
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


class PitMoves(NamedTuple):
    """Where particles ended, pit by pit, against where they started (``pit_moves``)."""

    not_nearest: np.ndarray  # [K] fraction that ended in a pit other than their nearest (start) pit
    deeper: np.ndarray  # [K] fraction that ended in a pit deeper than their nearest one (NaN without depths)
    entropy_start: np.ndarray  # [K] entropy (nats) of the histogram of nearest (start) pits
    entropy_end: np.ndarray  # [K] entropy (nats) of the histogram of end pits
    histogram: np.ndarray  # [K, M] particles ending in each pit


def pit_moves(start: Tensor, end: Tensor, n_pits: int, *, depths: Tensor | None = None) -> PitMoves:
    r"""Did particles land in their nearest pit, and how diverse are their landing places? (chapter 5)

    ``start`` and ``end`` (each ``[K, N]``, integers in ``[0, n_pits)``) name, for every particle,
    its nearest pit (the one whose basin it starts in, e.g. ``nets.PitsEnergy.pit_of(x0)``) and
    the pit it ended in (``pit_of`` of its last position). Per member:

    * ``not_nearest``: the fraction with ``end != start``, the particles that passed their nearest
      pit by;
    * ``deeper``: the fraction that ended in a pit deeper than their nearest one, given ``depths``
      (``[K, n_pits]``, larger is deeper, as in ``PitsEnergy.depths``);
    * ``entropy_end`` (and ``entropy_start``): ``histogram_entropy`` of how many particles end
      (start) in each pit. Gradient flow keeps every particle in its nearest pit, so
      ``entropy_end == entropy_start``; lower means the particles gathered in fewer pits.
    """
    for name, t in (("start", start), ("end", end)):
        if not isinstance(t, Tensor) or t.ndim != 2 or t.is_floating_point() or t.is_complex():
            raise ValueError(f"{name} must be an integer tensor [K, N], got {getattr(t, 'shape', type(t).__name__)}")
    if start.shape != end.shape:
        raise ValueError(f"start and end must have the same shape [K, N], got {tuple(start.shape)} and {tuple(end.shape)}")
    _validate.positive("n_pits", n_pits, integer=True)
    for name, t in (("start", start), ("end", end)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_pits):
            raise ValueError(f"{name} must hold pit indices in [0, {n_pits}), got values in [{int(t.min())}, {int(t.max())}]")
    K = start.shape[0]
    end = end.to(start.device)

    def hist(idx):
        h = torch.zeros(K, n_pits, dtype=torch.long, device=idx.device)
        return h.scatter_add_(1, idx, torch.ones_like(idx)).cpu().numpy()

    frac = lambda m: m.float().mean(dim=1).cpu().numpy()
    if depths is None:
        deeper = np.full(K, np.nan)
    else:
        depths = torch.as_tensor(depths).to(start.device)
        if tuple(depths.shape) != (K, n_pits):
            raise ValueError(f"depths must have shape [K={K}, n_pits={n_pits}], got {tuple(depths.shape)}")
        deeper = frac(depths.gather(1, end) > depths.gather(1, start))
    h_end = hist(end)
    return PitMoves(frac(end != start), deeper, histogram_entropy(hist(start)), histogram_entropy(h_end), h_end)
