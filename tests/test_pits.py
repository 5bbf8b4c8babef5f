"""The fixed multi-pit energy and the pit statistics of chapter 5: ``energies.PitsEnergy``,
``particles.pit_moves`` and ``metrics.histogram_entropy``, checked against analytic answers."""

import math

import numpy as np
import pytest
import torch

from egan_lib import energies, metrics, nets, particles


def grad(U, x):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(U(x).sum(), x)
    return g


TWO = dict(centers=[[-2.0, 0.0], [2.0, 0.0]], depths=[1.0, 2.0], widths=0.5)


def test_a_single_pit_is_its_parabola():
    U = energies.PitsEnergy([[1.0, -1.0]], depths=[0.7], widths=0.5, members=1)
    x = torch.randn(1, 20, 2, generator=torch.Generator().manual_seed(0))
    expected = (x - torch.tensor([1.0, -1.0])).pow(2).sum(-1) / (2 * 0.25) - 0.7
    torch.testing.assert_close(U(x), expected)


def test_minima_at_the_centres_and_the_deeper_pit_is_lower():
    U = energies.PitsEnergy(**TWO, members=1)
    c = U.centers.detach()  # [1, 2, 2]
    e = U(c)
    # each other bowl lies 30 above the bottom at a centre, so U(c_m) = -d_m up to tau * e^-600
    torch.testing.assert_close(e, torch.tensor([[-1.0, -2.0]]))
    assert e[0, 1] < e[0, 0]  # the deeper pit has the lower energy
    torch.testing.assert_close(grad(U, c), torch.zeros_like(c), atol=1e-6, rtol=0)
    # every nearby point is higher: the centres are minima
    for dx in ([0.1, 0.0], [0.0, -0.1], [-0.07, 0.07]):
        assert (U(c + torch.tensor(dx)) > e).all()
    # halfway between the pits U is far above both bottoms: a ridge
    assert U(torch.zeros(1, 1, 2)).item() > 0


def test_smooth_min_is_within_tau_log_m_of_the_hard_min():
    U = energies.PitsEnergy.random(3, rng=torch.Generator().manual_seed(1))
    x = 4 * torch.rand(3, 500, 2, generator=torch.Generator().manual_seed(2)) - 2
    hard = U.bowls(x).min(dim=-1).values
    e = U(x)
    assert (e <= hard + 1e-6).all() and (e >= hard - U.temperature * math.log(U.n_pits) - 1e-6).all()


def test_the_border_of_two_pits_of_one_width_sits_nearer_the_shallower_one():
    U = energies.PitsEnergy(**TWO, members=1)
    # on the axis, u_0 = u_1  <=>  ((x+2)^2 - (x-2)^2) / (2 * 0.5^2) = d_0 - d_1  <=>  16 x = -1
    x_border = -1 / 16
    xs = torch.tensor([[[x_border - 1e-3, 0.0], [x_border + 1e-3, 0.0]]])
    assert U.pit_of(xs)[0].tolist() == [[0, 1]]
    assert x_border < 0  # closer to the shallow pit on the left


def test_pit_of_gives_the_pit_that_small_gradient_steps_reach():
    U = energies.PitsEnergy.random(4, rng=torch.Generator().manual_seed(3))
    x0 = 8 * torch.rand(4, 400, 2, generator=torch.Generator().manual_seed(4)) - 4
    start, _ = U.pit_of(x0)
    r = particles.roll(U, x0, steps=400, lr=0.05)  # lr * curvature = 0.1: close to gradient flow
    end, dist = U.pit_of(r.final)
    assert (dist < 1e-3).all()  # at rest at a centre
    # the soft minimum rounds the borders, so a particle just on a border may go the other way
    assert (end == start).float().mean() > 0.99
    moves = particles.pit_moves(start, end, U.n_pits)
    assert (moves.not_nearest < 0.01).all() and (moves.histogram.sum(1) == 400).all()


def test_members_are_independent_layouts():
    U = energies.PitsEnergy.random(3, rng=torch.Generator().manual_seed(5))
    assert not torch.allclose(U.centers[0], U.centers[1]) and not torch.allclose(U.depths[0], U.depths[1])
    x = torch.randn(3, 50, 2, generator=torch.Generator().manual_seed(6))
    e = U(x)
    for k in range(3):
        single = energies.PitsEnergy(U.centers[k], U.depths[k], U.widths[k], members=1, temperature=U.temperature)
        torch.testing.assert_close(single(x[k:k + 1])[0], e[k])


def test_a_shared_layout_is_broadcast_over_members():
    U = energies.PitsEnergy(**TWO, members=3)
    assert U.centers.shape == (3, 2, 2) and U.depths.shape == (3, 2) and U.widths.shape == (3, 2)
    x = torch.randn(1, 10, 2).expand(3, -1, -1)
    e = U(x)
    torch.testing.assert_close(e[0], e[2])


def test_the_layout_is_frozen_and_moves_with_to():
    U = energies.PitsEnergy(**TWO, members=2)
    assert all(not p.requires_grad for p in U.parameters())
    U64 = U.to(torch.float64)
    assert U64.centers.dtype == torch.float64
    xs, ys, E = nets.energy_on_grid(energies.PitsEnergy(**TWO, members=2), (-3, 3, -1, 1), 11)
    assert E.shape == (2, 11, 11)


def test_random_layouts_are_well_separated_pits():
    U = energies.PitsEnergy.random(8, rng=torch.Generator().manual_seed(7))
    c = U.centers.detach()
    e = U(c)
    torch.testing.assert_close(e, -U.depths.detach(), atol=1e-4, rtol=0)  # U(c_m) = -d_m
    assert grad(U, c).norm(dim=-1).max() < 1e-3  # a stationary point at every centre
    assert U.pit_of(c)[0].tolist() == [list(range(9))] * 8  # every centre lies in its own pit


@pytest.mark.parametrize("kwargs, name", [
    (dict(centers=torch.zeros(3)), "centers"),
    (dict(centers=torch.zeros(2, 2), depths=torch.zeros(3)), "depths"),
    (dict(centers=torch.zeros(2, 2), widths=0.0), "widths"),
    (dict(centers=torch.zeros(2, 2), widths=[1.0, -1.0]), "widths"),
    (dict(centers=torch.zeros(2, 2), temperature=0.0), "temperature"),
    (dict(centers=torch.zeros(2, 2, 2), members=3), "members"),
])
def test_pits_energy_rejects_bad_input(kwargs, name):
    args = dict(depths=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        energies.PitsEnergy(**args)


def test_random_refuses_pits_that_swallow_each_other():
    with pytest.raises(ValueError, match="well separated"):
        energies.PitsEnergy.random(1, spacing=1.0, width=0.7, depths=(0.1, 3.0))
    with pytest.raises(ValueError, match="depths"):
        energies.PitsEnergy.random(1, depths=(2.0, 1.0))


def test_energy_rejects_wrong_members():
    with pytest.raises(ValueError, match="K=2"):
        energies.PitsEnergy(**TWO, members=2)(torch.zeros(3, 4, 2))


# --- pit statistics -------------------------------------------------------------------------

def test_histogram_entropy_known_values():
    h = metrics.histogram_entropy(np.array([[5, 0, 0, 0], [1, 1, 1, 1], [2, 2, 0, 0], [0, 0, 0, 0]]))
    np.testing.assert_allclose(h[:3], [0.0, math.log(4), math.log(2)])
    assert np.isnan(h[3])
    with pytest.raises(ValueError, match="counts"):
        metrics.histogram_entropy(np.array([1, 2]))


def test_pit_moves_counts_and_depths():
    start = torch.tensor([[0, 0, 1, 2], [1, 1, 1, 1]])
    end = torch.tensor([[0, 2, 1, 2], [2, 2, 0, 1]])
    depths = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    m = particles.pit_moves(start, end, 3, depths=depths)
    np.testing.assert_allclose(m.not_nearest, [0.25, 0.75])
    np.testing.assert_allclose(m.deeper, [0.25, 0.5])  # member 1: two moved to pit 2 (deeper), one to pit 0
    assert m.histogram.tolist() == [[1, 1, 2], [1, 1, 2]]
    np.testing.assert_allclose(m.entropy_start, [metrics.histogram_entropy(np.array([[2, 1, 1]]))[0], 0.0])
    np.testing.assert_allclose(m.entropy_end, metrics.histogram_entropy(np.array([[1, 1, 2], [1, 1, 2]])))
    assert np.isnan(particles.pit_moves(start, end, 3).deeper).all()


def test_pit_moves_staying_put_keeps_the_entropy():
    start = torch.randint(0, 5, (3, 100), generator=torch.Generator().manual_seed(0))
    m = particles.pit_moves(start, start.clone(), 5)
    assert (m.not_nearest == 0).all()
    np.testing.assert_allclose(m.entropy_end, m.entropy_start)


@pytest.mark.parametrize("start, end, n, depths, name", [
    (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), 2, None, "start"),
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long), 2, None, "same shape"),
    (torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), 2), 2, None, "end"),
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), 0, None, "n_pits"),
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), 2, torch.zeros(2), "depths"),
])
def test_pit_moves_rejects_bad_input(start, end, n, depths, name):
    with pytest.raises(ValueError, match=name):
        particles.pit_moves(start, end, n, depths=depths)
