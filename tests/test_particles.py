"""Particles rolling down a frozen energy (chapter 2): ``particles.roll`` and ``particles.landing``.

The energies here are analytic (``energies.QuadraticEnergy``, ``energies.LinearEnergy`` and a double
well written out by hand) so the answers are known.
"""

import pytest
import torch
from torch import nn

from egan_lib import energies, nets, particles


class DoubleWell(nn.Module):
    r"""U(x) = (x_1^2 - 1)^2 + x_2^2 / 2: two pits, at (-1, 0) and (1, 0), with a ridge at x_1 = 0."""

    def __init__(self, members=2):
        super().__init__()
        self.members = members
        self.scale = nn.Parameter(torch.ones(members))

    def forward(self, x):
        return self.scale[:, None] * ((x[..., 0] ** 2 - 1) ** 2 + 0.5 * x[..., 1] ** 2)


def test_plain_gd_on_a_quadratic_is_exactly_geometric():
    c = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    U = energies.QuadraticEnergy(c)
    x0 = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0))
    lr, steps = 0.1, 40
    r = particles.roll(U, x0, steps=steps, lr=lr, record_every=1)
    assert r.path.shape == (steps + 1, 2, 5, 2)
    assert r.steps == list(range(steps + 1))
    t = torch.arange(steps + 1, dtype=torch.float32)[:, None, None, None]
    expected = c[None, :, None, :] + (1 - lr) ** t * (x0 - c[:, None, :])[None]
    torch.testing.assert_close(r.path, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(r.final, r.path[-1])


def test_gd_converges_to_the_centre():
    c = torch.tensor([[1.0, -2.0]])
    r = particles.roll(energies.QuadraticEnergy(c), torch.zeros(1, 3, 2), steps=200, lr=0.2, record_every=50)
    torch.testing.assert_close(r.final, c[:, None, :].expand(1, 3, 2), atol=1e-6, rtol=0)
    assert r.steps == [0, 50, 100, 150, 200]


def test_record_every_keeps_the_start_and_the_last_step():
    r = particles.roll(energies.QuadraticEnergy([[0.0, 0.0]]), torch.ones(1, 2, 2), steps=7, lr=0.1, record_every=3)
    assert r.steps == [0, 3, 6, 7]
    assert r.path.shape == (4, 1, 2, 2)
    torch.testing.assert_close(r.path[0], torch.ones(1, 2, 2))


def test_double_well_particles_end_in_the_well_on_their_starting_side():
    U = DoubleWell(members=2)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 64, 2, generator=g) * 3 - 1.5
    x0[..., 0] = x0[..., 0].sign() * x0[..., 0].abs().clamp(min=0.05)  # keep clear of the ridge
    r = particles.roll(U, x0, steps=500, lr=0.05)
    side = x0[..., 0].sign()
    torch.testing.assert_close(r.final[..., 0], side, atol=1e-4, rtol=0)
    torch.testing.assert_close(r.final[..., 1], torch.zeros(2, 64), atol=1e-4, rtol=0)
    land = particles.landing(U, x0, r.final, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), radius=0.05)
    assert (land.nearest == 1).all() and (land.sub_true == 0).all()
    assert land.modes.tolist() == [2, 2]


def test_a_pit_without_a_real_sample_is_sub_true():
    U = DoubleWell(members=1)
    x0 = torch.tensor([[[-0.5, 0.3], [-1.3, -0.2], [0.4, 0.1], [1.2, 0.5]]])
    r = particles.roll(U, x0, steps=500, lr=0.05)
    # only the right pit holds a real sample: the two particles in the left pit are "sub-true"
    land = particles.landing(U, x0, r.final, torch.tensor([[1.0, 0.0]]), radius=0.05)
    assert land.sub_true.tolist() == [0.5] and land.nearest.tolist() == [0.5]
    assert land.stationary.all() and land.at_mode.tolist() == [[False, False, True, True]]
    assert land.modes.tolist() == [1]


def test_a_slope_without_pits_keeps_particles_moving():
    slope = energies.LinearEnergy([1.0, 0.0], members=1)  # U(x) = x_1: no pit anywhere, particles roll off for ever
    x0 = torch.zeros(1, 3, 2)
    r = particles.roll(slope, x0, steps=10, lr=0.5)
    torch.testing.assert_close(r.final[..., 0], torch.full((1, 3), -5.0))
    land = particles.landing(slope, x0, r.final, torch.tensor([[0.0, 0.0]]), radius=0.1)
    assert land.moving.tolist() == [1.0]


def test_landing_fractions_add_up_to_one():
    U = nets.MLPEnergy(3, width=16, depth=2)
    x0 = torch.randn(3, 50, 2, generator=torch.Generator().manual_seed(2))
    r = particles.roll(U, x0, steps=20, lr=0.05)
    land = particles.landing(U, x0, r.final, torch.tensor([[0.0, 0.0], [1.0, 1.0]]), radius=0.3)
    total = land.nearest + land.other + land.sub_true + land.moving
    assert total == pytest.approx([1.0, 1.0, 1.0])


def test_the_energy_stays_frozen():
    U = nets.MLPEnergy(2, width=16, depth=2)
    U.layers[0].bias.requires_grad_(False)  # a flag set by the caller must survive
    before = [p.detach().clone() for p in U.parameters()]
    flags = [p.requires_grad for p in U.parameters()]
    particles.roll(U, torch.randn(2, 8, 2), steps=5, lr=0.1)
    for p, b in zip(U.parameters(), before):
        assert torch.equal(p, b) and p.grad is None
    assert [p.requires_grad for p in U.parameters()] == flags


def test_members_roll_independently_like_separate_nets():
    U = nets.MLPEnergy(3, width=16, depth=2)
    x0 = torch.randn(3, 10, 2, generator=torch.Generator().manual_seed(3))
    r = particles.roll(U, x0, steps=15, lr=0.05)
    for k in range(3):
        net, x = U.member(k), x0[k].clone()
        for _ in range(15):  # plain gradient descent on one ordinary net, by hand
            xr = x.requires_grad_(True)
            (g,) = torch.autograd.grad(net(xr).sum(), xr)
            x = (x - 0.05 * g).detach()
        torch.testing.assert_close(r.final[k], x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer, kwargs", [(torch.optim.SGD, {"momentum": 0.5}), (torch.optim.Adam, {})])
def test_the_optimizer_is_a_parameter(optimizer, kwargs):
    c = torch.tensor([[2.0, -1.0]])
    r = particles.roll(energies.QuadraticEnergy(c), torch.zeros(1, 4, 2), steps=400, lr=0.05, optimizer=optimizer,
                   optimizer_kwargs=kwargs)
    torch.testing.assert_close(r.final, c[:, None, :].expand(1, 4, 2), atol=1e-3, rtol=0)


def test_momentum_changes_the_path():
    U, x0 = energies.QuadraticEnergy([[0.0, 0.0]]), torch.ones(1, 1, 2)
    plain = particles.roll(U, x0, steps=3, lr=0.1)
    heavy = particles.roll(U, x0, steps=3, lr=0.1, optimizer_kwargs={"momentum": 0.9})
    assert not torch.allclose(plain.path[2], heavy.path[2])


@pytest.mark.parametrize("kwargs, name", [
    ({"x0": torch.zeros(4, 2)}, "x0"),
    ({"x0": torch.zeros(2, 4, 2, dtype=torch.long)}, "x0"),
    ({"x0": torch.zeros(3, 4, 2)}, "x0"),  # 3 members for a 2-member energy
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -1e-2}, "lr"),
    ({"record_every": 0}, "record_every"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"optimizer": torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)}, "optimizer"),
    ({"optimizer_kwargs": [("momentum", 0.9)]}, "optimizer_kwargs"),
])
def test_roll_rejects_bad_input(kwargs, name):
    args = dict(x0=torch.zeros(2, 4, 2), steps=3, lr=0.1)
    args.update(kwargs)
    x0 = args.pop("x0")
    with pytest.raises(ValueError, match=name):
        particles.roll(DoubleWell(members=2), x0, **args)


def test_roll_rejects_an_energy_without_members():
    with pytest.raises(ValueError, match="energy"):
        particles.roll(nn.Linear(2, 1), torch.zeros(1, 4, 2), steps=3, lr=0.1)


@pytest.mark.parametrize("kwargs, name", [
    ({"x_end": torch.zeros(1, 5, 2)}, "x0 and x_end"),
    ({"centers": torch.zeros(3)}, "centers"),
    ({"centers": torch.zeros(3, 3)}, "centers"),
    ({"radius": 0}, "radius"),
    ({"grad_tol": -1.0}, "grad_tol"),
    ({"grad_scale": torch.tensor([1.0, 2.0, 3.0])}, "grad_scale"),
    ({"grad_scale": 0.0}, "grad_scale"),
])
def test_landing_rejects_bad_input(kwargs, name):
    args = dict(x0=torch.zeros(2, 4, 2), x_end=torch.zeros(2, 4, 2), centers=torch.zeros(1, 2), radius=0.1)
    args.update(kwargs)
    x0, x_end, centers = args.pop("x0"), args.pop("x_end"), args.pop("centers")
    with pytest.raises(ValueError, match=name):
        particles.landing(DoubleWell(members=2), x0, x_end, centers, **args)
