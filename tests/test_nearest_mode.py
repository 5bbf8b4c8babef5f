"""``metrics.nearest_mode`` at the 3-sigma border (chapters 2-7): a sample is high quality exactly when
its float32 coordinates lie within 3 standard deviations of its mode, as float64 arithmetic says.

``torch.cdist``'s fast path (``|x|^2 + |c|^2 - 2 x.c`` in float32) errs by some 1e-6 at the border
and moved thousands of these samples across it."""

import math

import pytest
import torch

from egan_lib import data, metrics


def _on_the_border(mixture, n=10_000, rel=1e-6, seed=0):
    """``n`` float32 samples at radius 3 sigma (1 -/+ rel), alternately, around random modes."""
    g = torch.Generator().manual_seed(seed)
    mode = torch.randint(mixture.n_modes, (n,), generator=g)
    angle = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    radius = 3 * mixture.std * (1 + rel * torch.where(torch.arange(n) % 2 == 0, -1.0, 1.0).double())
    x = mixture.centers.double()[mode] + radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
    return x.float()


@pytest.mark.parametrize("mixture", [data.ring(), data.grid()], ids=["ring", "grid"])
def test_the_3_sigma_border_is_exact(mixture):
    x = _on_the_border(mixture)
    d64 = (x.double()[:, None, :] - mixture.centers.double()).norm(dim=-1)  # [N, M], the reference
    ref_dist, ref_idx = d64.min(dim=1)
    ref_good = ref_dist <= 3 * mixture.std
    assert 0.4 < ref_good.double().mean() < 0.6  # both sides of the border are well represented

    idx, dist = metrics.nearest_mode(x[None], mixture.centers)
    assert torch.equal(idx[0], ref_idx)
    assert torch.equal(dist[0] <= 3 * mixture.std, ref_good)  # every one of the 10,000 samples
    torch.testing.assert_close(dist[0], ref_dist, rtol=1e-12, atol=0)

    stats = metrics.mode_stats(x[None], mixture)
    assert stats.high_quality[0] == pytest.approx(100 * ref_good.double().mean().item(), abs=1e-9)
    assert stats.histogram.sum() == ref_good.sum()


def test_members_and_chunks_give_the_same_answer(monkeypatch):
    ring = data.ring()
    x = _on_the_border(ring, n=3000).reshape(3, 1000, 2)
    idx, dist = metrics.nearest_mode(x, ring.centers)
    monkeypatch.setattr(metrics, "_PAIRS_PER_CHUNK", 7 * 3 * 16)  # chunks of 7 samples
    idx_c, dist_c = metrics.nearest_mode(x, ring.centers)
    assert torch.equal(idx, idx_c) and torch.equal(dist, dist_c)
    for k in range(3):
        i_k, d_k = metrics.nearest_mode(x[k:k + 1], ring.centers)
        assert torch.equal(i_k[0], idx[k]) and torch.equal(d_k[0], dist[k])
