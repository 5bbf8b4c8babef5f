"""Analytic checks of the gradient penalties (chapter 3): R1, R2, WGAN-GP, zero-centred on
interpolates and WGAN-div, on linear energies whose gradient is known, member-batched and on
image-shaped inputs, and their use in a training recipe."""

from functools import partial

import pytest
import torch

from egan_lib import energies, nets, penalties, train


def _batches(shape, K=3, B=5, seed=0):
    """A linear energy U_k(x) = <w_k, x> + b_k (grad U = w_k everywhere) and real and fake batches."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(K, *shape, generator=g, dtype=torch.float64)
    w[0] *= 0.1  # one member with ||w|| < 1, so |  ||w|| - 1 | is not ||w|| - 1 for all of them
    x_real = torch.randn(K, B, *shape, generator=g, dtype=torch.float64)
    x_fake = torch.randn(K, B, *shape, generator=g, dtype=torch.float64)
    b = torch.randn(K, generator=g, dtype=torch.float64)
    return energies.LinearEnergy(w, b, requires_grad=True), x_real, x_fake


def _with_energy(energy, x):
    x = x.clone().requires_grad_(True)
    return x, energy(x)


SHAPES = [(2,), (3, 4, 4)]  # 2D points and images [C, H, W]


@pytest.mark.parametrize("shape", SHAPES, ids=["points", "images"])
def test_linear_energy_penalties_are_analytic(shape):
    energy, x_real, x_fake = _batches(shape)
    norm = energy.weight.detach().flatten(1).norm(dim=1)  # ||w_k|| over ALL of a sample's dims, [K]
    xr, er = _with_energy(energy, x_real)
    xf, ef = _with_energy(energy, x_fake)
    g = torch.Generator().manual_seed(1)
    expected = {
        "r1": (penalties.r1(xr, er), norm ** 2),
        "r2": (penalties.r2(xf, ef), norm ** 2),
        "wgan_gp": (penalties.wgan_gp(energy, x_real, x_fake, rng=g), (norm - 1) ** 2),
        "zero_centred_interpolates": (penalties.zero_centred_interpolates(energy, x_real, x_fake), norm ** 2),
        "wgan_div": (penalties.wgan_div(xr, er, xf, ef), norm ** 6),
        "wgan_div p=2": (penalties.wgan_div(xr, er, xf, ef, p=2), norm ** 2),
        "grad_norm": (penalties.grad_norm(xr, er).mean(1), norm),
    }
    for name, (got, want) in expected.items():
        assert got.shape == (3,), name
        torch.testing.assert_close(got, want, msg=name)
    # K members with different w give K different values (members never mix)
    assert len(set(norm.tolist())) == 3


def test_image_norm_runs_over_channels_and_pixels():
    # a per-channel norm would give sum_c ||w_c|| or max_c ||w_c||, not ||w||
    energy, x_real, x_fake = _batches((3, 4, 4), K=1)
    w = energy.weight.detach()[0]
    xr, er = _with_energy(energy, x_real)
    r1 = penalties.r1(xr, er)
    torch.testing.assert_close(r1, (w ** 2).sum().reshape(1))
    per_channel = w.flatten(1).norm(dim=1)
    assert not torch.allclose(penalties.wgan_gp(energy, x_real, x_fake), (per_channel - 1).pow(2).mean().reshape(1))


def test_wgan_gp_gradient_reaches_the_energy():
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||, through the double backward
    energy, x_real, x_fake = _batches((2,))
    penalties.wgan_gp(energy, x_real, x_fake).sum().backward()
    w = energy.weight.detach()
    n = w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(energy.weight.grad, 2 * (n - 1) * w / n)


def test_wgan_gp_is_finite_where_the_gradient_vanishes():
    energy, x_real, x_fake = _batches((2,))
    with torch.no_grad():
        energy.weight.zero_()
    pen = penalties.wgan_gp(energy, x_real, x_fake)
    torch.testing.assert_close(pen, torch.ones(3, dtype=torch.float64))
    pen.sum().backward()
    assert torch.isfinite(energy.weight.grad).all()


def test_interpolates_lie_on_the_segments():
    g = torch.Generator().manual_seed(0)
    x_real, x_fake = torch.randn(2, 7, 3, 4, 4, generator=g), torch.randn(2, 7, 3, 4, 4, generator=g)
    x_hat = penalties.interpolates(x_real, x_fake, torch.Generator().manual_seed(5))
    again = penalties.interpolates(x_real, x_fake, torch.Generator().manual_seed(5))
    assert x_hat.requires_grad and x_hat.is_leaf and torch.equal(x_hat, again)
    # x_hat - x_fake = eps (x_real - x_fake) with one eps in [0, 1] per member and sample
    ratio = ((x_hat - x_fake) / (x_real - x_fake)).detach().flatten(2)
    eps = ratio[..., :1]
    torch.testing.assert_close(ratio, eps.expand_as(ratio), rtol=1e-4, atol=1e-4)
    assert (eps >= 0).all() and (eps <= 1).all() and eps.std() > 0.1


def test_quadratic_energy_on_interpolates():
    # U = ||x||^2 / 2 has grad U = x: the penalties see exactly the interpolates
    energy = energies.QuadraticEnergy(torch.zeros(2), members=2)
    g = torch.Generator().manual_seed(0)
    x_real, x_fake = torch.randn(2, 6, 2, generator=g), torch.randn(2, 6, 2, generator=g)
    x_hat = penalties.interpolates(x_real, x_fake, torch.Generator().manual_seed(9)).detach()
    gp = penalties.wgan_gp(energy, x_real, x_fake, rng=torch.Generator().manual_seed(9))
    zc = penalties.zero_centred_interpolates(energy, x_real, x_fake, rng=torch.Generator().manual_seed(9))
    torch.testing.assert_close(gp, (x_hat.norm(dim=2) - 1).pow(2).mean(1))
    torch.testing.assert_close(zc, x_hat.pow(2).sum(2).mean(1))


def test_adapters_hand_the_right_batches():
    energy, x_real, x_fake = _batches((2,))
    xr, er = _with_energy(energy, x_real)
    xf, ef = _with_energy(energy, x_fake)
    b = penalties.PenaltyInputs(energy, xr, er, xf, ef)
    norm = energy.weight.detach().norm(dim=1)
    torch.testing.assert_close(penalties.on_fake(penalties.r2)(b), norm ** 2)
    torch.testing.assert_close(penalties.on_both(partial(penalties.wgan_div, p=4))(b), norm ** 4)
    torch.testing.assert_close(penalties.on_interpolates(penalties.wgan_gp)(b), (norm - 1) ** 2)
    gp = penalties.on_interpolates(penalties.zero_centred_interpolates, rng=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gp(b), norm ** 2)


@pytest.mark.parametrize("penalty", [
    penalties.on_fake(penalties.r2),
    penalties.on_interpolates(penalties.wgan_gp),
    penalties.on_interpolates(penalties.zero_centred_interpolates),
    penalties.on_both(partial(penalties.wgan_div, p=6)),
    penalties.on_both(penalties.energy_l2),
], ids=["r2", "wgan_gp", "zero_centred_interpolates", "wgan_div", "energy_l2"])
def test_penalties_run_in_a_recipe(penalty):
    torch.manual_seed(0)
    energy = nets.MLPEnergy(2, width=8, depth=1)
    opt = torch.optim.SGD(energy.parameters(), lr=1e-2)
    recipe = train.Recipe(penalty=penalty, gamma=2.0)
    out = train.dig_step(energy, opt, torch.randn(2, 16, 2), torch.randn(2, 16, 2), recipe)
    assert out["penalty"].shape == (2,) and torch.isfinite(out["penalty"]).all()
    assert all(torch.isfinite(p.grad).all() for p in energy.parameters())


def test_energy_l2_is_the_energies_mean_square_and_ignores_slopes():
    e_real, e_fake = torch.tensor([[1.0, -3.0], [0.0, 2.0]]), torch.tensor([[2.0, 2.0], [-1.0, 1.0]])
    x = torch.zeros(2, 2, 2)
    torch.testing.assert_close(penalties.energy_l2(x, e_real, x, e_fake), torch.tensor([5.0 + 4.0, 2.0 + 1.0]))
    # a pure slope with U = 0 on both batches costs nothing, however steep
    energy = nets.MLPEnergy(1, width=4, depth=1)
    x_on_zero = torch.zeros(1, 3, 2)
    e0 = energy(x_on_zero) - energy(x_on_zero).detach()  # exactly 0, with a graph
    assert penalties.energy_l2(x_on_zero, e0, x_on_zero, e0).item() == 0.0


def test_penalties_reject_bad_input():
    energy, x_real, x_fake = _batches((2,))
    with pytest.raises(ValueError, match="x_real and x_fake"):
        penalties.wgan_gp(energy, x_real, x_fake[:, :3])
    with pytest.raises(ValueError, match="x_fake"):
        penalties.zero_centred_interpolates(energy, x_real, x_fake[0])
    with pytest.raises(ValueError, match="rng"):
        penalties.interpolates(x_real, x_fake, rng=0)
    with pytest.raises(ValueError, match="energy"):
        penalties.wgan_gp("not a net", x_real, x_fake)
    xr, er = _with_energy(energy, x_real)
    xf, ef = _with_energy(energy, x_fake)
    for p in (1.5, 0, True, "6"):
        with pytest.raises(ValueError, match="p must"):
            penalties.wgan_div(xr, er, xf, ef, p=p)
    with pytest.raises(ValueError, match="requires_grad"):
        penalties.r2(x_fake, energy(x_fake))
    with pytest.raises(ValueError, match=r"e must have shape"):
        penalties.r2(xf, ef[:, :2])
