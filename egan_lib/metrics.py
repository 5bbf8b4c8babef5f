r"""Mode statistics for mixtures with known modes (chapters 2-7).

The VEEGAN (Srivastava et al., 2017) / PacGAN (Lin et al., 2018) protocol, per member:

* a sample is **high quality** if it lies within 3 standard deviations of its nearest mode;
* a mode is **captured** if it is the nearest mode of at least one high-quality sample;
* **reverse KL** is :math:`\mathrm{KL}(\hat p \,\|\, u) = \sum_m \hat p_m \log(M \hat p_m)`, where
  :math:`\hat p` is the histogram of the nearest modes of the high-quality samples and u is
  uniform over the M modes. A member with no high-quality sample gets :math:`\log M`, the value
  of a complete collapse onto one mode (the largest the KL can be).

The published numbers use 2,500 samples per run; so do the presets.

For images (chapter 8) the modes are named by a classifier instead of a nearest centre: a digit
classifier (``digit_classifier``, trained by the library on scikit-learn's digits and cached)
reads each channel of a stacked-digit image, and ``stacked_mode_stats`` counts the 1,000 modes of
the StackedMNIST protocol; ``frechet_distance`` compares real and generated images in that
classifier's feature space, and ``inception_fid`` is the usual FID for CIFAR-10 through
torchmetrics when it and its weights are available.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from . import _validate

__all__ = ["ModeStats", "mode_stats", "nearest_mode", "summarize", "Landing", "landing", "Flatness",
           "flatness", "SamplingSpread", "sampling_spread",
           "histogram_entropy", "PitMoves", "pit_moves", "train_classifier", "classifier_accuracy",
           "cache_dir", "digit_classifier", "mnist_classifier", "classify_channels", "StackedModeStats",
           "stacked_mode_stats", "classifier_features", "frechet", "frechet_distance", "inception_fid"]


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



# --- images: a digit classifier as the measuring instrument (chapter 8) ---------------------------

def train_classifier(train_data, *, epochs: int = 40, batch: int = 64, lr: float = 4e-3, seed: int = 0,
                     shift: int = 1, device: torch.device | str = "cpu", **net_kwargs):
    """Train a ``nets.DigitClassifier`` on ``train_data`` (an ``ImageData`` of one-channel digits). Chapter 8.

    Adam with a cosine learning-rate decay, cross-entropy, and random shifts of up to ``shift``
    pixels (padding with the background) as the only augmentation. Returns the net in eval mode.
    """
    from .nets import DigitClassifier

    _validate.positive("epochs", epochs, integer=True)
    _validate.positive("batch", batch, integer=True)
    torch.manual_seed(seed)
    net = DigitClassifier(train_data.n_classes, **net_kwargs).to(device)
    x, y = train_data.images.to(device), train_data.labels.to(device)
    g = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / batch)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch):
            xb = x[idx.to(device)]
            if shift > 0:  # a random translation of each batch, the background (-1) flowing in
                dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=g))
                xb = torch.nn.functional.pad(xb, (shift,) * 4, value=-1.0)
                H, W = x.shape[-2:]
                xb = xb[..., shift + dy:shift + dy + H, shift + dx:shift + dx + W]
            loss = torch.nn.functional.cross_entropy(net(xb), y[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def classifier_accuracy(classifier, test_data, *, chunk: int = 4096) -> float:
    """Fraction of ``test_data`` (an ``ImageData``) that ``classifier`` labels correctly. Chapter 8."""
    dev = next(classifier.parameters()).device
    correct = sum(int((classifier(xb.to(dev)).argmax(1).cpu() == yb).sum())
                  for xb, yb in zip(test_data.images.split(chunk), test_data.labels.split(chunk)))
    return correct / len(test_data)


_CLASSIFIER_FORMAT = 1  # bump when DigitClassifier or its training changes: old cache files are retrained


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """Where trained measuring instruments are kept: ``cache``, else ``$EGAN_CACHE``, else
    ``~/.cache/egan_lib`` (chapter 8)."""
    return Path(cache or os.environ.get("EGAN_CACHE") or Path.home() / ".cache" / "egan_lib").expanduser()


def _cached_classifier(name: str, make_data, cache, retrain: bool, verbose: bool, train_kwargs: dict):
    from .nets import DigitClassifier

    path = cache_dir(cache) / f"{name}.pt"
    if path.exists() and not retrain:
        try:
            try:
                blob = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:
                raise ValueError(f"not a readable checkpoint ({type(err).__name__})") from None
            if not isinstance(blob, dict) or blob.get("format") != _CLASSIFIER_FORMAT:
                found = blob.get("format") if isinstance(blob, dict) else "none"
                raise ValueError(f"written by another version (format {found}, expected {_CLASSIFIER_FORMAT})")
            net = DigitClassifier(**blob["config"])
            net.load_state_dict(blob["state_dict"])
            net.eval()
            net.test_accuracy, net.n_test, net.cache_path = float(blob["test_accuracy"]), int(blob["n_test"]), path
            return net
        except Exception as err:  # unreadable, truncated or from another version: train a new one
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            warnings.warn(f"the cached classifier {path} cannot be used: {reason}; training a new one",
                          RuntimeWarning, stacklevel=3)
    train_data, test_data = make_data()
    t0 = time.perf_counter()
    net = train_classifier(train_data, **train_kwargs).cpu()
    acc = classifier_accuracy(net, test_data)
    config = dict(n_classes=net.n_classes, width=net.width, feature_dim=net.feature_dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": _CLASSIFIER_FORMAT, "config": config, "state_dict": net.state_dict(),
                "test_accuracy": acc, "n_test": len(test_data)}, tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written cache file
    if verbose:
        print(f"trained {name} in {time.perf_counter() - t0:.1f} s: {100 * acc:.2f} % on {len(test_data)} "
              f"held-out images; cached in {path}")
    net.test_accuracy, net.n_test, net.cache_path = acc, len(test_data), path
    return net


def digit_classifier(cache: str | os.PathLike | None = None, *, retrain: bool = False, verbose: bool = True,
                     **train_kwargs):
    """The digit classifier for 8x8 digits, trained on ``data.digits("train")`` (chapter 8).

    Loaded from ``cache_dir(cache) / "digit_classifier.pt"`` when that file is there and readable;
    trained (a few seconds on a CPU) and saved there when it is missing, from another version of
    the library, or corrupt (with a warning saying so), or when ``retrain=True``. The returned net
    is in eval mode on the CPU and carries ``test_accuracy``, its accuracy on the held-out
    ``data.digits("test")`` split, and ``n_test``.
    """
    from . import data

    return _cached_classifier("digit_classifier", lambda: (data.digits("train"), data.digits("test")),
                              cache, retrain, verbose, train_kwargs)


def mnist_classifier(root="~/data", cache: str | os.PathLike | None = None, *, retrain: bool = False,
                     verbose: bool = True, **train_kwargs):
    """The same classifier for 28x28 MNIST (stacked MNIST under the full preset), trained on MNIST's
    training set and tested on its test set; cached as ``mnist_classifier.pt``. Raises
    ``data.DataUnavailable`` when MNIST cannot be loaded (chapter 8)."""
    from . import data

    train_kwargs.setdefault("epochs", 3)
    train_kwargs.setdefault("batch", 256)
    return _cached_classifier("mnist_classifier", lambda: (data.mnist(root, train=True), data.mnist(root, train=False)),
                              cache, retrain, verbose, train_kwargs)


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


def classifier_features(images: Tensor, classifier, *, chunk: int = 8192) -> Tensor:
    """The classifier's penultimate features of every channel, concatenated: ``[K, N, C * F]`` (chapter 8)."""
    _check_images("images", images)
    f = _per_channel(classifier, images.detach(), lambda net, x: net.features(x), chunk)  # [K, N, C, F]
    return f.flatten(2).double()


def _sqrtm_psd(a: Tensor) -> Tensor:
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp_min(0).sqrt().unsqueeze(-2)) @ v.transpose(-1, -2)


def frechet(mu1, cov1, mu2, cov2) -> Tensor:
    r"""The Fréchet (2-Wasserstein) distance between two Gaussians, squared (chapter 8):

    .. math:: d^2 = \|\mu_1 - \mu_2\|^2 + \operatorname{tr}\Big(\Sigma_1 + \Sigma_2
              - 2\big(\Sigma_1^{1/2}\,\Sigma_2\,\Sigma_1^{1/2}\big)^{1/2}\Big).

    Means ``[..., F]`` and covariances ``[..., F, F]`` (a leading members dimension is allowed);
    computed in float64 with symmetric eigendecompositions, which is exact for positive
    semi-definite covariances (the trace of :math:`(\Sigma_1\Sigma_2)^{1/2}` is that of the symmetric
    form above). This is the formula of FID (Heusel et al., 2017), in whichever feature space the
    Gaussians were fitted.
    """
    mu1, mu2, cov1, cov2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2, cov1, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape + mu1.shape[-1:]:
        raise ValueError(f"mu1, mu2 must be [..., F] and cov1, cov2 [..., F, F] with matching shapes, got "
                         f"{tuple(mu1.shape)}, {tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}")
    s1 = _sqrtm_psd(cov1)
    cross = torch.linalg.eigvalsh(s1 @ cov2 @ s1).clamp_min(0).sqrt().sum(-1)
    tr = torch.diagonal(cov1, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov2, dim1=-2, dim2=-1).sum(-1)
    return (mu1 - mu2).pow(2).sum(-1) + tr - 2 * cross


def _mean_cov(f: Tensor) -> tuple[Tensor, Tensor]:
    mu = f.mean(1)
    d = f - mu.unsqueeze(1)
    return mu, d.transpose(1, 2) @ d / (f.shape[1] - 1)


def frechet_distance(x_real: Tensor, x_fake: Tensor, classifier, *, chunk: int = 8192) -> np.ndarray:
    r"""Fréchet distance between real and generated images in the digit classifier's feature space,
    per member: ``[K, N, C, H, W]`` twice -> ``[K]`` (chapter 8).

    Gaussians are fitted to ``classifier_features`` of each set and compared with ``frechet``; the
    same idea as FID, with our small classifier in place of Inception (so the numbers are on their
    own scale and comparable only with each other). ``x_real`` may have one member, which is then
    used for every member of ``x_fake``. Like FID it is biased upwards at small N: compare runs with
    the same number of samples.
    """
    fr, ff = classifier_features(x_real, classifier, chunk=chunk), classifier_features(x_fake, classifier, chunk=chunk)
    if x_real.shape[2:] != x_fake.shape[2:] or fr.shape[0] not in (1, ff.shape[0]):
        raise ValueError(f"x_real must be [K or 1, N, C, H, W] with the images of x_fake, got {tuple(x_real.shape)} "
                         f"and {tuple(x_fake.shape)}")
    for name, f in (("x_real", fr), ("x_fake", ff)):
        if f.shape[1] < 2:
            raise ValueError(f"{name} must hold at least 2 samples per member, got {f.shape[1]}")
    mu_r, cov_r = _mean_cov(fr)
    mu_f, cov_f = _mean_cov(ff)
    K = ff.shape[0]
    return frechet(mu_r.expand(K, -1), cov_r.expand(K, -1, -1), mu_f, cov_f).numpy()


def inception_fid(x_real: Tensor, x_fake: Tensor, *, device: torch.device | str | None = None,
                  chunk: int = 500) -> np.ndarray:
    """FID with the Inception-v3 features of torchmetrics, per member (CIFAR-10, full preset; chapter 8).

    ``x_real`` ``[N, 3, H, W]`` (or ``[1, N, ...]``) and ``x_fake`` ``[K, N, 3, H, W]`` in [-1, 1]. The
    package is imported only here: without torchmetrics (``pip install torchmetrics torch-fidelity``) or
    without its Inception weights (downloaded on first use) this raises ``data.DataUnavailable``
    with that message, so a chapter can print it and go on.
    """
    from .data import DataUnavailable

    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError:
        raise DataUnavailable("inception_fid needs torchmetrics with its image extra: "
                              "pip install torchmetrics torch-fidelity") from None
    if x_real.ndim == 5:
        x_real = x_real[0]
    _check_images("x_fake", x_fake)
    device = device or x_fake.device
    to_uint8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    out = []
    try:
        fid = FrechetInceptionDistance(feature=2048, reset_real_features=False).to(device)
        for part in x_real.split(chunk):
            fid.update(to_uint8(part.to(device)), real=True)
        for k in range(x_fake.shape[0]):
            fid.reset()
            for part in x_fake[k].split(chunk):
                fid.update(to_uint8(part.to(device)), real=False)
            out.append(float(fid.compute()))
    except (RuntimeError, OSError, ModuleNotFoundError) as err:
        raise DataUnavailable(f"inception_fid could not run torchmetrics' FID ({type(err).__name__}: {err}); its "
                              f"Inception weights are downloaded on first use, which needs the network") from None
    return np.asarray(out)
