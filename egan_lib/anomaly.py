"""The energy as an anomaly score (chapter 9, as in MEG): how well does U tell held-out data from
points that are not data?

``auroc(scores_anomalous, scores_normal)`` is the area under the ROC curve of a score that should be
higher on anomalies (an energy is: lower means more data-like), per member, computed exactly from
ranks (the Mann-Whitney statistic; ties count one half). ``off_data`` draws points of a 2D mixture's
box that lie far from every mode; ``corrupt`` damages images in three plain ways.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _validate, metrics

__all__ = ["auroc", "off_data", "corrupt"]


def auroc(anomalous: Tensor, normal: Tensor) -> Tensor:
    """AUROC of ``anomalous`` ``[K, A]`` against ``normal`` ``[K, N]`` scores: the probability that an
    anomaly scores higher than a normal point (1: perfect, 0.5: chance). Returns ``[K]``."""
    if anomalous.dim() != 2 or normal.dim() != 2 or anomalous.shape[0] != normal.shape[0]:
        raise ValueError(f"anomalous and normal must be [K, A] and [K, N] with one K, got "
                         f"{tuple(anomalous.shape)} and {tuple(normal.shape)}")
    A, N = anomalous.shape[1], normal.shape[1]
    both = torch.cat([anomalous, normal], dim=1).double()
    # average ranks (1-based), ties sharing the mean of their ranks
    order = both.argsort(dim=1)
    ranks = torch.empty_like(both)
    ranks.scatter_(1, order, torch.arange(1, A + N + 1, dtype=both.dtype).expand_as(both).contiguous())
    sorted_vals = both.gather(1, order)
    for k in range(both.shape[0]):  # ties: a few per member at most, so a plain loop is fine
        vals, inverse, counts = torch.unique_consecutive(sorted_vals[k], return_inverse=True, return_counts=True)
        if (counts > 1).any():
            ends = counts.cumsum(0).double()
            mean_rank = ends - (counts.double() - 1) / 2
            ranks[k, order[k]] = mean_rank[inverse]
    u = ranks[:, :A].sum(1) - A * (A + 1) / 2
    return (u / (A * N)).float()


def off_data(mixture, n: int, rng: torch.Generator | None = None, *, members: int = 1, min_std: float = 10.0,
             margin: float = 0.5) -> Tensor:
    """``n`` points per member, uniform in ``mixture.extent(margin)`` and at least ``min_std``
    standard deviations from every mode: ``[K, n, 2]``."""
    _validate.positive("n", n, integer=True)
    x0, x1, y0, y1 = mixture.extent(margin)
    out = []
    while sum(len(o) for o in out) < members * n:
        u = torch.rand(4 * members * n, 2, generator=rng)
        pts = torch.stack([x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]], dim=1)
        _, dist = metrics.nearest_mode(pts[None], mixture.centers)
        out.append(pts[dist[0] >= min_std * mixture.std])
    return torch.cat(out)[: members * n].reshape(members, n, 2)


def corrupt(images: Tensor, kind: str, rng: torch.Generator | None = None, *, amount: float = 0.5) -> Tensor:
    """Damaged copies of images in [-1, 1] (any leading shape, then C, H, W):

    * ``"noise"``: Gaussian noise of standard deviation ``amount`` added, clipped to [-1, 1];
    * ``"occlude"``: a square of side ``amount`` x the image side set to the background (-1), at a random place;
    * ``"shuffle"``: the pixels of each image permuted at random (same histogram, no shape).
    """
    *lead, C, H, W = images.shape
    x = images.reshape(-1, C, H, W).clone()
    if kind == "noise":
        x = (x + amount * torch.randn(x.shape, generator=rng)).clamp(-1, 1)
    elif kind == "occlude":
        side = max(1, round(amount * H))
        for i in range(x.shape[0]):
            r, c = (int(v) for v in torch.randint(0, H - side + 1, (2,), generator=rng))
            x[i, :, r:r + side, c:c + side] = -1.0
    elif kind == "shuffle":
        flat = x.reshape(x.shape[0], C, H * W)
        perm = torch.stack([torch.randperm(H * W, generator=rng) for _ in range(x.shape[0])])
        x = flat.gather(2, perm[:, None, :].expand(-1, C, -1)).reshape(x.shape)
    else:
        raise ValueError(f"kind must be 'noise', 'occlude' or 'shuffle', got {kind!r}")
    return x.reshape(*lead, C, H, W)
