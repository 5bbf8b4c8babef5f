"""The Dirac-GAN (chapter 3): closed-form eigenvalues, the vector field against autograd and
Mescheder et al.'s form, the penalties against egan_lib.penalties, and trajectories whose
thresholds come from the eigenvalues (no tuned constants)."""

import math

import numpy as np
import pytest
import torch

from egan_lib import dirac, energies, penalties

PROFILES = [dirac.LINEAR, dirac.STANDARD]
IDS = ["linear", "standard"]
H, N = 0.1, 500  # step size and number of steps of every simulated trajectory


def closed_form(gamma, c):
    root = complex(gamma ** 2 / 4 - c ** 2) ** 0.5
    return np.array([-gamma / 2 + root, -gamma / 2 - root])


def _sorted(z):
    z = np.asarray(z, dtype=complex)
    return z[np.lexsort((z.imag, z.real))]


def test_profiles_slopes():
    assert dirac.LINEAR.slope == 1.0 and dirac.STANDARD.slope == 0.5


@pytest.mark.parametrize("profile", PROFILES, ids=IDS)
@pytest.mark.parametrize("gamma_over_critical", [0.0, 0.25, 1.0, 3.0])
def test_r1_eigenvalues_match_the_closed_form(profile, gamma_over_critical):
    c = profile.slope
    gamma = gamma_over_critical * 2 * c  # 2|f'(0)| is critical: 1 (standard GAN), 2 (eq. (1))
    rule = dirac.Rule(profile, dirac.R1 if gamma else None, gamma)
    want = closed_form(gamma, c)
    np.testing.assert_allclose(dirac.eigenvalues(rule).numpy(), want, atol=1e-12)
    J = dirac.jacobian_autograd(rule)
    torch.testing.assert_close(J, dirac.jacobian(rule))
    # numerical eigenvalues (a defective matrix at critical damping: error ~ sqrt(machine eps))
    np.testing.assert_allclose(_sorted(torch.linalg.eigvals(J).numpy()), _sorted(want), atol=1e-6)
    if gamma == 0:  # no penalty: a pure rotation, +- i f'(0)
        np.testing.assert_allclose(want, [1j * c, -1j * c])
    if gamma_over_critical == 1.0:  # critical: a double real eigenvalue -gamma/2 = -|f'(0)|
        np.testing.assert_allclose(want, [-c, -c])


@pytest.mark.parametrize("penalty", [dirac.R2, dirac.ZERO_CENTRED_INTERPOLATES, dirac.wgan_div(2)])
def test_other_zero_centred_squares_equal_r1(penalty):
    for gamma in (0.5, 2.0):
        np.testing.assert_allclose(dirac.eigenvalues(dirac.Rule(dirac.LINEAR, penalty, gamma)).numpy(),
                                   closed_form(gamma, 1.0))


def test_wgan_div_does_not_damp_the_equilibrium():
    rule = dirac.Rule(dirac.STANDARD, dirac.wgan_div(6), 4.0)
    np.testing.assert_allclose(dirac.eigenvalues(rule).numpy(), [0.5j, -0.5j])
    torch.testing.assert_close(dirac.jacobian_autograd(rule), dirac.jacobian(rule))


def test_wgan_gp_has_no_jacobian_at_the_equilibrium():
    rule = dirac.Rule(dirac.LINEAR, dirac.WGAN_GP, 1.0)
    for fn in (dirac.jacobian, dirac.eigenvalues, dirac.jacobian_autograd):
        with pytest.raises(ValueError, match="WGAN-GP"):
            fn(rule)
    # away from psi = 0 the field is smooth: d v_psi / d psi = -(gamma/2) * 2 = -gamma
    J = dirac.jacobian_autograd(rule, theta=0.0, psi=0.5)
    torch.testing.assert_close(J, torch.tensor([[0.0, -1.0], [1.0, -1.0]], dtype=torch.float64))


RULES = [
    dirac.Rule(dirac.LINEAR),
    dirac.Rule(dirac.STANDARD, dirac.R1, 1.0),
    dirac.Rule(dirac.LINEAR, dirac.WGAN_GP, 3.0),
    dirac.Rule(dirac.STANDARD, dirac.wgan_div(6), 4.0),
]


@pytest.mark.parametrize("rule", RULES)
def test_vector_field_is_minus_each_players_gradient(rule):
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(7, generator=g, dtype=torch.float64).requires_grad_(True)
    psi = torch.randn(7, generator=g, dtype=torch.float64).requires_grad_(True)
    (d_theta,) = torch.autograd.grad(dirac.generator_loss(theta, psi, rule).sum(), theta)
    (d_psi,) = torch.autograd.grad(dirac.energy_loss(theta, psi, rule).sum(), psi)
    v = dirac.vector_field(theta.detach(), psi.detach(), rule)
    assert v.shape == (7, 2)
    torch.testing.assert_close(v, torch.stack([-d_theta, -d_psi], dim=-1))


@pytest.mark.parametrize("profile", PROFILES, ids=IDS)
def test_sign_mapping_to_mescheder(profile):
    # Mescheder et al. (2018): L = f_M(psi theta) + f_M(0), D maximises and G minimises, and
    # v = (-f_M'(psi theta) psi, f_M'(psi theta) theta); here f_M(t) = -f(-t) and D_psi = U_psi.
    f_m = lambda t: -profile.f(-t)
    theta = torch.tensor([0.7, -1.3, 2.0], dtype=torch.float64, requires_grad=True)
    psi = torch.tensor([0.4, 0.9, -1.1], dtype=torch.float64, requires_grad=True)
    L = (f_m(psi * theta) + f_m(torch.zeros(3, dtype=torch.float64))).sum()
    d_theta, d_psi = torch.autograd.grad(L, (theta, psi))
    rule = dirac.Rule(profile)
    torch.testing.assert_close(dirac.vector_field(theta.detach(), psi.detach(), rule),
                               torch.stack([-d_theta, d_psi], dim=-1))
    # and f_M'(0) is the f'(0) of the closed form: 1/2 for the standard GAN, 1 for WGAN / eq. (1)
    t0 = torch.zeros((), dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(f_m(t0), t0)
    assert float(slope) == profile.slope


def test_penalties_match_the_library_on_the_dirac_energy():
    # U(x) = psi x with the data at 0 and the fake at theta, K members = several (theta, psi)
    theta = torch.tensor([0.5, -1.0, 2.0, 0.3], dtype=torch.float64)
    psi = torch.tensor([0.2, -1.7, 3.0, -0.6], dtype=torch.float64)
    energy = energies.LinearEnergy(psi[:, None])
    x_real = torch.zeros(4, 3, 1, dtype=torch.float64, requires_grad=True)
    x_fake = theta[:, None, None].expand(4, 3, 1).clone().requires_grad_(True)
    e_real, e_fake = energy(x_real), energy(x_fake)
    got = {
        dirac.R1: penalties.r1(x_real, e_real),
        dirac.R2: penalties.r2(x_fake, e_fake),
        dirac.ZERO_CENTRED_INTERPOLATES: penalties.zero_centred_interpolates(energy, x_real, x_fake),
        dirac.WGAN_GP: penalties.wgan_gp(energy, x_real, x_fake),
    }
    for pen, value in got.items():
        torch.testing.assert_close(value, pen.value(psi), msg=pen.name)
    torch.testing.assert_close(penalties.wgan_div(x_real, e_real, x_fake, e_fake, p=6), dirac.wgan_div(6).value(psi))


@pytest.mark.parametrize("alternating", [False, True], ids=["simultaneous", "alternating"])
def test_linear_rules_simulate_the_update_matrix(alternating):
    # with f(t) = t and R1 the dynamics are exactly linear: the trajectory is M^t z0
    rule = dirac.Rule(dirac.LINEAR, dirac.R1, 0.7)
    M = dirac.update_matrix(rule, H, alternating=alternating).numpy()
    traj = dirac.simulate(rule, theta0=1.0, psi0=-0.5, h=H, steps=20, alternating=alternating)
    assert traj.shape == (21, 2)
    z = np.array([1.0, -0.5])
    for t in range(21):
        np.testing.assert_allclose(traj[t], z, atol=1e-12)
        z = M @ z


# --- trajectories: convergence or not, with thresholds from the eigenvalues ------------------

def power_bound(M: np.ndarray, n: int) -> float:
    """||M^n||_2 <= rho^n + n rho^(n-1) dep(M) for a 2x2 matrix (Schur form; dep = Henrici's
    departure from normality, sqrt(||M||_F^2 - sum |mu_i|^2)), so it also holds at critical
    damping, where M is defective."""
    mu = np.linalg.eigvals(M)
    rho = np.abs(mu).max()
    dep = math.sqrt(max((M ** 2).sum() - (np.abs(mu) ** 2).sum(), 0.0))
    return rho ** n + n * rho ** (n - 1) * dep


@pytest.mark.parametrize("alternating", [False, True], ids=["simultaneous", "alternating"])
@pytest.mark.parametrize("profile", PROFILES, ids=IDS)
@pytest.mark.parametrize("gamma_over_critical", [0.5, 1.0, 2.0])
def test_r1_converges(profile, gamma_over_critical, alternating):
    c = profile.slope
    rule = dirac.Rule(profile, dirac.R1, gamma_over_critical * 2 * c)
    M = dirac.update_matrix(rule, H, alternating=alternating).numpy()
    assert np.abs(np.linalg.eigvals(M)).max() < 1  # the linearised step contracts
    # f(t) = t: the dynamics are linear, the bound is exact math. Standard GAN: linearised
    # bound, started at r0 = 0.1 where the cubic remainder of sigmoid is ~r0^2 relative.
    r0 = 1.0 if profile is dirac.LINEAR else 0.1
    traj = dirac.simulate(rule, theta0=r0, psi0=r0, h=H, steps=N, alternating=alternating)
    dist = np.linalg.norm(traj, axis=1)
    assert dist[-1] <= dist[0] * power_bound(M, N)
    assert dist[-1] < 1e-3 * dist[0]


@pytest.mark.parametrize("profile", PROFILES, ids=IDS)
def test_no_penalty_does_not_converge_simultaneous(profile):
    # |1 + h lambda| = sqrt(1 + h^2 f'(0)^2) > 1; and since v is orthogonal to (theta, psi)
    # for any f', every step multiplies the distance by sqrt(1 + h^2 f'^2) >= 1.
    rule = dirac.Rule(profile)
    lam = dirac.eigenvalues(rule).numpy()
    assert np.all(np.abs(1 + H * lam) > 1)
    dist = np.linalg.norm(dirac.simulate(rule, h=H, steps=N), axis=1)
    assert np.all(np.diff(dist) >= -1e-12)
    assert dist[-1] >= dist[0]
    if profile is dirac.LINEAR:
        np.testing.assert_allclose(dist[-1], dist[0] * (1 + H ** 2) ** (N / 2))


def test_no_penalty_does_not_converge_alternating():
    # the alternating step is area-preserving (det M = 1) with eigenvalues on the unit circle:
    # it circles forever, and ||M^n z|| >= ||z|| / cond(V) with V its eigenvectors.
    rule = dirac.Rule(dirac.LINEAR)
    M = dirac.update_matrix(rule, H, alternating=True).numpy()
    mu, V = np.linalg.eig(M)
    np.testing.assert_allclose(np.abs(mu), 1.0)
    dist = np.linalg.norm(dirac.simulate(rule, h=H, steps=N, alternating=True), axis=1)
    assert dist[-1] >= dist[0] / np.linalg.cond(V)


@pytest.mark.parametrize("alternating", [False, True], ids=["simultaneous", "alternating"])
@pytest.mark.parametrize("profile", PROFILES, ids=IDS)
@pytest.mark.parametrize("gamma", [0.5, 2.0, 10.0])
def test_wgan_gp_does_not_converge(profile, gamma, alternating):
    # No eigenvalues at (0, 0), so the threshold comes from the field itself. In the box
    # |theta| < gamma/4, 0 < |psi| < 1/2, and with f' <= 1 (both profiles):
    #   sign(psi) v_psi = sign(psi) f' theta + gamma (1 - |psi|) > -gamma/4 + gamma/2 = gamma/4,
    # so every step moves |psi| out by more than h gamma/4 (never across 0), and a trajectory
    # cannot stay in the box for more than ceil(2 / (h gamma)) steps: among any that many + 1
    # consecutive points one is at distance >= min(gamma/4, 1/2) from (0, 0).
    rule = dirac.Rule(profile, dirac.WGAN_GP, gamma)
    traj = dirac.simulate(rule, h=H, steps=N, alternating=alternating)
    window = math.ceil(2 / (H * gamma)) + 1
    dist = np.linalg.norm(traj, axis=1)
    assert dist[-window:].max() >= min(gamma / 4, 0.5)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="gamma"):
        dirac.Rule(dirac.LINEAR, dirac.R1, -1.0)
    with pytest.raises(ValueError, match="penalty"):
        dirac.Rule(dirac.LINEAR, None, 1.0)
    with pytest.raises(ValueError, match="penalty"):
        dirac.Rule(dirac.LINEAR, "r1", 1.0)
    with pytest.raises(ValueError, match="profile"):
        dirac.Rule("linear")
    with pytest.raises(ValueError, match="p must"):
        dirac.wgan_div(1.5)
    rule = dirac.Rule()
    for kwargs, name in [({"h": 0}, "h"), ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"),
                         ({"theta0": float("nan")}, "theta0"), ({"psi0": "1"}, "psi0")]:
        with pytest.raises(ValueError, match=name):
            dirac.simulate(rule, **kwargs)
    with pytest.raises(ValueError, match="rule"):
        dirac.simulate("R1")
    with pytest.raises(ValueError, match="h"):
        dirac.update_matrix(rule, -0.1)
