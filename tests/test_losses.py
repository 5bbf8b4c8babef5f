"""Analytic checks of chapter 4: the hinge (eq. 4), the margin loss (eq. 5) and the autoencoder
energy it is used with."""

import pytest
import torch

from egan_lib import losses, nets


def test_hinge_is_zero_where_the_margins_hold():
    # reals at U <= -1 and fakes at U >= 1: nothing to push, no gradient
    e_real = torch.tensor([[-1.0, -3.0, -1.5], [-2.0, -1.0, -10.0]], requires_grad=True)
    e_fake = torch.tensor([[1.0, 4.0, 2.0], [1.5, 1.0, 7.0]], requires_grad=True)
    out = losses.energy_hinge(e_real, e_fake)
    assert isinstance(out, losses.EnergyLoss)
    for term in out:
        torch.testing.assert_close(term, torch.zeros(2))
    out.total.sum().backward()
    assert not e_real.grad.any() and not e_fake.grad.any()


def test_hinge_analytic_values():
    e_real = torch.tensor([[0.0, -2.0, 0.5, -0.5]])  # 1 + U: 1, -1 -> 0, 1.5, 0.5
    e_fake = torch.tensor([[0.0, 2.0, -1.0, 0.25]])  # 1 - U: 1, -1 -> 0, 2, 0.75
    out = losses.energy_hinge(e_real, e_fake)
    torch.testing.assert_close(out.real, torch.tensor([(1 + 0 + 1.5 + 0.5) / 4]))
    torch.testing.assert_close(out.fake, torch.tensor([(1 + 0 + 2 + 0.75) / 4]))
    torch.testing.assert_close(out.total, out.real + out.fake)
    # inside the margins it is eq. (1) shifted by 2: E U_real - E U_fake + 2
    inside_r, inside_f = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.1, -0.4]])
    torch.testing.assert_close(losses.energy_hinge(inside_r, inside_f).total,
                               losses.energy_wgan(inside_r, inside_f).total + 2)


def test_hinge_members_are_separate():
    e_real = torch.tensor([[-2.0, -2.0], [0.0, 1.0]])
    e_fake = torch.tensor([[2.0, 2.0], [0.0, -1.0]])
    torch.testing.assert_close(losses.energy_hinge(e_real, e_fake).total, torch.tensor([0.0, 1.5 + 1.5]))


def test_margin_fake_term_vanishes_beyond_the_margin():
    m = 2.0
    e_real = torch.tensor([[0.5, 0.0, 1.5]])
    e_fake = torch.tensor([[2.0, 3.0, 10.0]], requires_grad=True)  # all >= m
    out = losses.energy_margin(e_real, e_fake, margin=m)
    torch.testing.assert_close(out.fake, torch.zeros(1))
    torch.testing.assert_close(out.real, torch.tensor([2.0 / 3]))
    out.total.sum().backward()
    assert not e_fake.grad.any()


def test_margin_analytic_values():
    e_real = torch.tensor([[1.0, 3.0], [0.0, 0.5]])
    e_fake = torch.tensor([[0.0, 0.5], [4.0, 1.0]])
    out = losses.energy_margin(e_real, e_fake, margin=1.5)
    torch.testing.assert_close(out.real, torch.tensor([2.0, 0.25]))
    torch.testing.assert_close(out.fake, torch.tensor([(1.5 + 1.0) / 2, (0.0 + 0.5) / 2]))
    torch.testing.assert_close(out.total, out.real + out.fake)
    # default margin is 1
    torch.testing.assert_close(losses.energy_margin(e_real, e_fake).fake, torch.tensor([0.75, 0.0]))


@pytest.mark.parametrize("margin", [0, -1.0, float("nan"), "1", None])
def test_margin_rejects_bad_margin(margin):
    with pytest.raises(ValueError, match="margin"):
        losses.energy_margin(torch.zeros(1, 2), torch.zeros(1, 2), margin=margin)


@pytest.mark.parametrize("fn", [losses.energy_hinge, losses.energy_margin])
def test_new_losses_reject_bad_energies(fn):
    with pytest.raises(ValueError, match="e_real"):
        fn(torch.zeros(2, 3, 1), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="e_fake"):
        fn(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="members"):
        fn(torch.zeros(2, 3), torch.zeros(3, 3))


# --- the autoencoder energy (EBGAN) ---------------------------------------------------------

def test_autoencoder_energy_is_nonnegative_and_member_batched():
    torch.manual_seed(0)
    net = nets.AutoencoderEnergy(3, 2, latent_dim=1, width=16)
    x = 3 * torch.randn(3, 50, 2)
    e = net(x)
    assert e.shape == (3, 50) and (e >= 0).all()
    separate = torch.stack([net.member(k)(x[k]) for k in range(3)])
    torch.testing.assert_close(e, separate)
    # it is the mean squared reconstruction error
    torch.testing.assert_close(e, (x - net.reconstruct(x)).pow(2).mean(-1))
    with pytest.raises(ValueError, match="k must"):
        net.member(3)


def test_autoencoder_energy_trains_with_the_margin_loss():
    # one member per seed: the summed loss gives each member its own gradient
    torch.manual_seed(0)
    net = nets.AutoencoderEnergy(2, 4, latent_dim=2, width=8, depth=1)
    x_real, x_fake = torch.randn(2, 8, 4), torch.randn(2, 8, 4) + 3
    losses.energy_margin(net(x_real), net(x_fake), margin=1.0).total.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    for k in range(2):
        net.zero_grad()
        losses.energy_margin(net(x_real), net(x_fake), margin=1.0).total[k].backward()
        for p, g in zip(net.parameters(), grads):
            torch.testing.assert_close(p.grad[k], g[k])


def test_autoencoder_energy_rejects_bad_arguments():
    with pytest.raises(ValueError, match="latent_dim"):
        nets.AutoencoderEnergy(1, 2, latent_dim=0)
    with pytest.raises(ValueError, match="members"):
        nets.AutoencoderEnergy(0, 2)
    net = nets.AutoencoderEnergy(2, 2)
    with pytest.raises(ValueError, match="x must"):
        net(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="K=2"):
        net(torch.zeros(3, 5, 2))
