"""The anomaly score's instruments (chapter 9) and the standard GAN's losses, on known answers."""

import pytest
import torch

from egan_lib import anomaly, data, losses, metrics


def _auroc_by_pairs(a, n):  # the definition: P(anomaly > normal) + P(tie) / 2
    diff = a[:, None] - n[None, :]
    return ((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean()).item()


def test_auroc_matches_the_pairwise_definition_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (2, 40), generator=g).float()  # many ties
    n = torch.randint(0, 5, (2, 55), generator=g).float()
    got = anomaly.auroc(a, n)
    for k in range(2):
        assert got[k].item() == pytest.approx(_auroc_by_pairs(a[k], n[k]), abs=1e-6)
    assert anomaly.auroc(torch.ones(1, 3), torch.zeros(1, 4)).item() == 1.0
    assert anomaly.auroc(torch.zeros(1, 3), torch.zeros(1, 4)).item() == 0.5


def test_auroc_of_gaussians_is_the_closed_form():
    # anomalies N(d, 1) against normals N(0, 1): AUROC = Phi(d / sqrt 2)
    g = torch.Generator().manual_seed(1)
    d = 1.0
    got = anomaly.auroc(d + torch.randn(1, 20000, generator=g), torch.randn(1, 20000, generator=g)).item()
    assert got == pytest.approx(float(torch.distributions.Normal(0, 1).cdf(torch.tensor(d / 2 ** 0.5))), abs=0.01)


def test_off_data_points_are_far_from_every_mode():
    ring = data.ring()
    x = anomaly.off_data(ring, 500, torch.Generator().manual_seed(2), members=3, min_std=10)
    assert x.shape == (3, 500, 2)
    _, dist = metrics.nearest_mode(x, ring.centers)
    assert (dist >= 10 * ring.std).all()
    x0, x1, y0, y1 = ring.extent(0.5)
    assert (x[..., 0] >= x0).all() and (x[..., 0] <= x1).all() and (x[..., 1] >= y0).all() and (x[..., 1] <= y1).all()


def test_corruptions():
    g = torch.Generator().manual_seed(3)
    img = torch.rand(2, 5, 1, 8, 8, generator=g) * 2 - 1
    sh = anomaly.corrupt(img, "shuffle", g)
    assert sh.shape == img.shape and torch.allclose(sh.flatten(-3).sort(-1).values, img.flatten(-3).sort(-1).values)
    occ = anomaly.corrupt(img, "occlude", g, amount=0.5)
    assert ((occ == -1).flatten(-3).sum(-1) >= 16).all()
    noisy = anomaly.corrupt(img, "noise", g)
    assert noisy.abs().max() <= 1 and not torch.equal(noisy, img)
    with pytest.raises(ValueError, match="kind"):
        anomaly.corrupt(img, "blur")


def test_standard_gan_losses():
    e_real, e_fake = torch.tensor([[0.0, 2.0]]), torch.tensor([[-1.0, 3.0]])
    out = losses.energy_logistic(e_real, e_fake)
    sp = torch.nn.functional.softplus
    assert torch.allclose(out.real, sp(e_real).mean(1)) and torch.allclose(out.fake, sp(-e_fake).mean(1))
    # D = sigmoid(-U): the loss is -E log D(real) - E log(1 - D(fake))
    D = lambda u: torch.sigmoid(-u)
    assert torch.allclose(out.total, -(D(e_real).log().mean(1) + (1 - D(e_fake)).log().mean(1)))
    assert torch.allclose(losses.generator_nonsaturating(e_fake), -D(e_fake).log().mean(1))
