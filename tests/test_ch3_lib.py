"""Chapter 3's additions to egan_lib: the Dirac-GAN phase plane (``plot.dirac_phase``) and the
flatness of an energy at the real samples (``metrics.flatness``), checked analytically."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from egan_lib import dirac, energies, metrics, nets, plot  # noqa: E402


def test_dirac_phase_draws_the_flow_the_path_and_the_equilibrium():
    rule = dirac.Rule(dirac.LINEAR, dirac.R1, 2.0)
    path = dirac.simulate(rule, h=0.1, steps=50)
    fig, ax = plt.subplots()
    out = plot.dirac_phase(rule, path=path, ax=ax, extent=(-2, 2, -1.5, 1.5), title="R1")
    assert out is ax
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1.5, 1.5)
    assert ax.get_title() == "R1"
    (line,) = ax.lines  # the trajectory, drawn through every simulated point
    np.testing.assert_allclose(line.get_xydata(), path)
    # start, end and the equilibrium star at (0, 0) are scatter collections
    offsets = [c.get_offsets() for c in ax.collections if c.get_offsets().shape == (1, 2)]
    assert any(np.allclose(o, [[0.0, 0.0]]) for o in offsets)
    assert any(np.allclose(o, [path[-1]]) for o in offsets)
    plt.close(fig)


def test_dirac_phase_flow_follows_the_vector_field():
    # with no penalty the flow is a rotation: at (theta, psi) = (1, 0) it points straight up (+psi)
    rule = dirac.Rule(dirac.LINEAR)
    v = dirac.vector_field(1.0, 0.0, rule).numpy()
    np.testing.assert_allclose(v, [0.0, 1.0])
    fig, ax = plt.subplots()
    plot.dirac_phase(rule, ax=ax, res=9)  # draws without a path
    assert not ax.lines
    plt.close(fig)


def test_dirac_phase_rejects_bad_input():
    rule = dirac.Rule()
    with pytest.raises(ValueError, match="path"):
        plot.dirac_phase(rule, path=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="extent"):
        plot.dirac_phase(rule, extent=(1, -1, 0, 1))
    with pytest.raises(ValueError, match="res"):
        plot.dirac_phase(rule, res=0)
    with pytest.raises(ValueError, match="rule"):
        plot.dirac_phase("R1")
    plt.close("all")


def test_flatness_of_a_bowl_is_analytic_and_scale_free():
    g = torch.Generator().manual_seed(0)
    K, N = 3, 400
    c = torch.tensor([0.5, -1.0], dtype=torch.float64)
    a = np.array([1.0, 10.0, 0.01])
    # U_k(x) = (a_k / 2) ||x - c||^2: grad U = a_k (x - c), zero only at the centre c
    energy = energies.QuadraticEnergy(c, torch.tensor(a), members=K, requires_grad=True)
    x_real = c + 0.01 * torch.randn(K, N, 2, generator=g, dtype=torch.float64)  # at the bottom
    x_ref = 4 * torch.rand(K, N, 2, generator=g, dtype=torch.float64) - 2
    f = metrics.flatness(energy, x_real, x_ref)
    np.testing.assert_allclose(f.real, a * (x_real - c).norm(dim=2).mean(1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(f.reference, a * (x_ref - c).norm(dim=2).mean(1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(f.ratio, f.real / f.reference)
    # the ratio does not depend on the energy's scale a_k (same points for every member here)
    same = metrics.flatness(energy, x_real[:1].expand(K, -1, -1), x_ref[:1].expand(K, -1, -1))
    np.testing.assert_allclose(same.ratio, same.ratio[0], rtol=1e-10)
    assert (f.ratio < 0.05).all()
    assert energy.curvature.grad is None and energy.center.grad is None  # the energy's parameters get no gradient


def test_flatness_of_a_linear_energy_is_one():
    lin = nets.MLPEnergy(2, width=4, depth=1, activation=nn.Identity)  # an affine U: the same slope everywhere
    x = torch.randn(2, 50, 2)
    f = metrics.flatness(lin, x, torch.randn(2, 70, 2))
    np.testing.assert_allclose(f.ratio, 1.0, rtol=1e-5)


def test_flatness_rejects_bad_input():
    energy = nets.MLPEnergy(2, width=4, depth=1)
    x = torch.randn(2, 5, 2)
    with pytest.raises(ValueError, match="x_real"):
        metrics.flatness(energy, torch.randn(5, 2), x)
    with pytest.raises(ValueError, match="x_ref"):
        metrics.flatness(energy, x, torch.randn(3, 5, 2))
    with pytest.raises(ValueError, match="agree"):
        metrics.flatness(energies.QuadraticEnergy(torch.zeros(3), members=2), x, torch.randn(2, 5, 3))


def test_pit_bottoms_finds_the_lowest_point_round_each_mode():
    bowls = energies.QuadraticEnergy(torch.tensor([[0.01, 0.0], [0.1, 0.05]]), requires_grad=True)
    d = metrics.pit_bottoms(bowls, torch.tensor([[0.0, 0.0], [3.0, 0.0]]), half_width=0.2, res=81)
    assert d.shape == (2, 2)
    assert d[0, 0] == pytest.approx(0.01, abs=1e-6) and d[1, 0] == pytest.approx(np.hypot(0.1, 0.05), abs=1e-6)
    assert (d[:, 1] > 0.2).all()  # the bowls' bottoms are far from the second mode: the edge of its square
    with pytest.raises(ValueError, match="half_width"):
        metrics.pit_bottoms(bowls, torch.zeros(1, 2), half_width=0.0)


def test_panels_lays_out_n_axes_at_most_cols_a_row():
    fig, axes = plot.panels(3)
    assert len(axes) == 3 and len(fig.axes) == 4 and not fig.axes[3].axison  # 2 x 2, the spare one off
    assert tuple(fig.get_size_inches()) == (8.4, 8.4)
    plt.close(fig)
    with pytest.raises(ValueError, match="cols"):
        plot.panels(2, cols=0)
