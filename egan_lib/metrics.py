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

__all__ = ["ModeStats", "mode_stats", "nearest_mode", "summarize"]


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
