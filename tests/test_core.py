"""Analytic checks of the core library: presets, data, member-batched nets, eq. (1)/(3), R1,
the training loop and its divergence guard, and mode statistics."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from egan_lib import data, gan, losses, metrics, nets, penalties, presets, train


# --- presets -------------------------------------------------------------------------------

def test_preset_from_env(monkeypatch):
    monkeypatch.setenv("EGAN_PRESET", "full")
    assert presets.current() is presets.full
    monkeypatch.setenv("EGAN_PRESET", "Quick ")
    assert presets.current() is presets.quick


def test_unknown_preset_lists_valid_ones(monkeypatch):
    monkeypatch.setenv("EGAN_PRESET", "huge")
    with pytest.raises(ValueError, match=r"EGAN_PRESET.*\['full', 'quick'\]"):
        presets.current()


def test_default_preset_follows_cuda(monkeypatch):
    monkeypatch.delenv("EGAN_PRESET", raising=False)
    expected = presets.full if torch.cuda.is_available() else presets.quick
    assert presets.current() is expected


def test_preset_rejects_bad_field():
    with pytest.raises(ValueError, match="members"):
        presets.quick.replace(members=0)


# --- data ----------------------------------------------------------------------------------

def test_ring_and_grid_follow_pacgan():
    r = data.ring()
    assert r.n_modes == 8 and r.std == 0.01
    assert torch.allclose(r.centers.norm(dim=1), torch.ones(8))
    g = data.grid()
    assert g.n_modes == 25 and g.std == 0.05
    assert sorted(set(g.centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_sample_shapes_and_seed():
    r = data.ring()
    a = r.sample(100, torch.Generator().manual_seed(3), members=4)
    b = r.sample(100, torch.Generator().manual_seed(3), members=4)
    assert a.shape == (4, 100, 2) and torch.equal(a, b)
    assert r.sample(10).shape == (10, 2)
    # every sample lies within 6 std of some centre (a 6-sigma event has probability ~1e-9)
    _, dist = metrics.nearest_mode(a, r.centers)
    assert dist.max() < 6 * r.std


@pytest.mark.parametrize("kwargs, name", [({"n": 0}, "n"), ({"n": 5, "members": -1}, "members")])
def test_sample_rejects_bad_counts(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.ring().sample(**kwargs)


def test_mixture_rejects_bad_centers():
    with pytest.raises(ValueError, match="centers"):
        data.GaussianMixture2D([1.0, 2.0], std=0.1)
    with pytest.raises(ValueError, match="std"):
        data.GaussianMixture2D([[0.0, 0.0]], std=0)


# --- member-batched nets -------------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs", [(nets.MLPEnergy, {}), (nets.MLPGenerator, {"latent_dim": 3})])
def test_members_equal_separate_nets(cls, kwargs):
    torch.manual_seed(0)
    K = 5
    net = cls(K, 2, width=16, depth=2, **kwargs)
    in_dim = net.in_dim
    x = torch.randn(K, 7, in_dim)
    out = net(x)
    for k in range(K):
        single = net.member(k)
        ref = single(x[k])
        ref = ref.squeeze(-1) if cls is nets.MLPEnergy else ref
        torch.testing.assert_close(out[k], ref, rtol=1e-5, atol=1e-6)


def test_summed_loss_trains_members_independently():
    """The gradient of the summed loss for member k equals the gradient of member k alone."""
    torch.manual_seed(1)
    K = 3
    E = nets.MLPEnergy(K, 2, width=8, depth=2)
    xr, xf = torch.randn(K, 16, 2), torch.randn(K, 16, 2) + 1
    losses.energy_wgan(E(xr), E(xf)).total.sum().backward()
    for k in range(K):
        single = E.member(k)
        loss = single(xr[k]).mean() - single(xf[k]).mean()
        loss.backward()
        grads = [p.grad for p in single.parameters()]
        # nn.Linear stores weight as [out, in]; MemberLinear as [K, in, out]
        lin_layers = [m for m in E.layers if isinstance(m, nets.MemberLinear)]
        for lin, (gw, gb) in zip(lin_layers, zip(grads[0::2], grads[1::2])):
            torch.testing.assert_close(lin.weight.grad[k], gw.T, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(lin.bias.grad[k, 0], gb, rtol=1e-5, atol=1e-6)


def test_net_rejects_bad_input():
    E = nets.MLPEnergy(3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \[K, B, D\]"):
        E(torch.randn(10, 2))
    with pytest.raises(ValueError, match="K=3"):
        E(torch.randn(2, 10, 2))
    with pytest.raises(ValueError, match="last dimension 2"):
        E(torch.randn(3, 10, 5))
    with pytest.raises(ValueError, match="floating"):
        E(torch.ones(3, 10, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="width"):
        nets.MLPEnergy(3, 2, width=0)
    with pytest.raises(ValueError, match="activation"):
        nets.MLPEnergy(3, 2, activation="relu")


def test_energy_on_grid_matches_direct_evaluation():
    torch.manual_seed(0)
    E = nets.MLPEnergy(2, 2, width=8, depth=1)
    xs, ys, G = nets.energy_on_grid(E, (-1, 1, -2, 2), 5)
    assert G.shape == (2, 5, 5)
    pt = torch.tensor([[xs[3], ys[1]]]).expand(2, 1, 2).contiguous()
    torch.testing.assert_close(G[:, 1, 3], E(pt)[:, 0])


# --- losses and R1 -------------------------------------------------------------------------

def test_energy_wgan_is_eq1():
    er = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    ef = torch.tensor([[5.0, 7.0], [-1.0, 1.0]])
    out = losses.energy_wgan(er, ef)
    torch.testing.assert_close(out.total, torch.tensor([2.0 - 6.0, 0.0]))
    torch.testing.assert_close(out.real, torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(out.fake, torch.tensor([-6.0, 0.0]))


def test_generator_energy_is_eq3():
    torch.testing.assert_close(losses.generator_energy(torch.tensor([[1.0, 2.0], [3.0, 5.0]])),
                               torch.tensor([1.5, 4.0]))


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(2, 3, 1), torch.zeros(2, 3, dtype=torch.long)])
def test_losses_reject_bad_energies(bad):
    with pytest.raises(ValueError, match="e_real"):
        losses.energy_wgan(bad, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="e_fake"):
        losses.generator_energy(bad)


def test_losses_reject_member_mismatch():
    with pytest.raises(ValueError, match="same number of members"):
        losses.energy_wgan(torch.zeros(2, 3), torch.zeros(3, 3))


def test_r1_of_linear_energy_is_squared_norm():
    """U(x) = w_k . x has gradient w_k everywhere, so R1 = ||w_k||^2 for each member."""
    w = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    x = torch.randn(3, 50, 2, requires_grad=True)
    e = torch.einsum("kbd,kd->kb", x, w)
    torch.testing.assert_close(penalties.r1(x, e), torch.tensor([25.0, 1.0, 0.0]))


def test_r1_of_quadratic_energy():
    """U(x) = ||x||^2 / 2 has gradient x, so R1 = E||x||^2."""
    x = torch.randn(2, 64, 3, requires_grad=True)
    e = 0.5 * x.pow(2).sum(-1)
    torch.testing.assert_close(penalties.r1(x, e), x.detach().pow(2).sum(-1).mean(1))


def test_r1_needs_a_graph_to_x():
    x = torch.randn(2, 4, 2)
    with pytest.raises(ValueError, match="requires_grad"):
        penalties.r1(x, x.sum(-1))
    x.requires_grad_(True)
    with pytest.raises(ValueError, match=r"\[K, B\]"):
        penalties.r1(x, x.sum(-1)[:, :2])


# --- training ------------------------------------------------------------------------------

def _gan(**changes) -> gan.GAN:
    """A small run of the book's default set-up: 2 members, width 16, depth 2, latent size 2."""
    return gan.GAN2D(**{"members": 2, "width": 16, "depth": 2, "latent_dim": 2, **changes}).build()


def _small(K=2, seed=0):
    run = _gan(members=K, init_seed=seed)
    return run.energy, run.generator


def test_dig_step_widens_the_gap_between_fake_and_real():
    """A small gradient step on eq. (1) lowers E U(real) - E U(fake) for every member."""
    E, _ = _small()
    opt = torch.optim.SGD(E.parameters(), lr=1e-3)
    xr, xf = torch.zeros(2, 32, 2), torch.ones(2, 32, 2)
    gap = lambda: (E(xf).mean(1) - E(xr).mean(1)).detach()
    before = gap()
    out = train.dig_step(E, opt, xr, xf, train.Recipe())
    torch.testing.assert_close(out["loss_e"], -before)
    assert (gap() > before).all()


def test_penalty_weight_convention():
    """The step adds (gamma/2) * N * penalty: with SGD on a zero energy loss the update equals it."""
    lin = nets.MLPEnergy(1, 2, width=4, depth=1)
    zero_loss = lambda er, ef: 0.0 * (er.mean(1) + ef.mean(1))  # no energy gradient, graph kept
    for every in (1, 4):
        E = nets.MLPEnergy(1, 2, width=4, depth=1)
        E.load_state_dict(lin.state_dict())
        opt = torch.optim.SGD(E.parameters(), lr=0.1)
        rec = train.Recipe(energy_loss=zero_loss, penalty=penalties.on_real(penalties.r1), gamma=3.0,
                           penalty_every=every)
        x = torch.randn(1, 8, 2)
        ref = nets.MLPEnergy(1, 2, width=4, depth=1)
        ref.load_state_dict(lin.state_dict())
        xr = x.clone().requires_grad_(True)
        (1.5 * every * penalties.r1(xr, ref(xr))).sum().backward()
        out = train.dig_step(E, opt, x, torch.randn(1, 8, 2), rec, step=0)
        assert "penalty" in out
        for p, q in zip(E.parameters(), ref.parameters()):
            g = torch.zeros_like(q) if q.grad is None else q.grad  # R1 does not depend on the last bias
            torch.testing.assert_close(p.detach(), q.detach() - 0.1 * g)
        # off the lazy schedule the penalty is skipped
        out = train.dig_step(E, opt, x, x, rec, step=1)
        assert ("penalty" in out) == (every == 1)


def test_jump_step_lowers_fake_energy_and_leaves_energy_frozen():
    E, G = _small()
    opt = torch.optim.SGD(G.parameters(), lr=1e-2)
    z = G.noise(64, torch.Generator().manual_seed(0))
    before = E(G(z)).mean(1).detach()
    e_params = [p.clone() for p in E.parameters()]
    train.jump_step(E, G, opt, z, train.Recipe())
    assert (E(G(z)).mean(1) < before).all()
    assert all(torch.equal(a, b) for a, b in zip(e_params, E.parameters()))
    assert all(p.grad is None for p in E.parameters()) and all(p.requires_grad for p in E.parameters())


def test_train_records_history_and_snapshots():
    run = _gan(recipe=train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=1.0), steps=20, batch=32)
    h = run.train(data.ring(), log_every=5, progress=False,
                  callbacks=[train.Snapshots(10, samples=16, grid=((-1, 1, -1, 1), 8))])
    assert h.steps == [5, 10, 15, 20] and h.stopped is None
    assert h["e_real"].shape == (4, 2) and h["penalty"].shape == (4, 2) and h["loss_g"].shape == (4, 2)
    assert [s.step for s in h.snapshots] == [0, 10, 20]
    assert h.snapshots[1].fakes.shape == (2, 16, 2) and h.snapshots[1].energy.shape == (2, 8, 8)


def test_train_with_fixed_fakes_only_digs():
    E, _ = _small()
    fixed = data.GaussianMixture2D([[0.0, 0.0]], std=1.0)
    h = train.train(E, fixed, data.ring(), steps=30, batch=32, progress=False,
                    opt_e=torch.optim.Adam(E.parameters(), 1e-2))
    assert "loss_g" not in h.keys()
    assert (h["e_fake"][-1] - h["e_real"][-1] > h["e_fake"][0] - h["e_real"][0]).all()


def test_train_is_reproducible():
    runs = []
    for _ in range(2):
        run = _gan(init_seed=4, seed=7, steps=10, batch=16)
        run.train(data.ring(), progress=False)
        runs.append([p.detach().clone() for p in list(run.energy.parameters()) + list(run.generator.parameters())])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_divergence_guard_stops_and_keeps_last_finite_state():
    run = _gan(steps=100, batch=16)
    blowup_at = 25

    class Exploding:  # real data that turns into NaN at a known step
        calls = 0

        def sample(self, n, generator=None, members=1):
            Exploding.calls += 1
            x = data.ring().sample(n, generator, members=members)
            return x * float("nan") if Exploding.calls >= blowup_at else x

    with pytest.warns(RuntimeWarning, match=r"stopped at step 25: non-finite .*e_real"):
        h = run.train(Exploding(), log_every=5, progress=False)
    assert h.steps[-1] == 20 and "restored to their state at step 20" in h.stopped
    assert all(torch.isfinite(p).all() for p in list(run.energy.parameters()) + list(run.generator.parameters()))


def test_train_rejects_bad_arguments():
    E, G = _small()
    opt_e = torch.optim.Adam(E.parameters())
    with pytest.raises(ValueError, match="steps"):
        train.train(E, G, data.ring(), steps=0, batch=8, opt_e=opt_e, opt_g=opt_e)
    with pytest.raises(ValueError, match="opt_g"):
        train.train(E, G, data.ring(), steps=1, batch=8, opt_e=opt_e)
    with pytest.raises(ValueError, match="real"):
        train.train(E, G, torch.zeros(3), steps=1, batch=8, opt_e=opt_e, opt_g=opt_e)
    with pytest.raises(ValueError, match="gamma"):
        train.Recipe(gamma=1.0)
    with pytest.raises(ValueError, match="penalty_every"):
        train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=1.0, penalty_every=0)
    with pytest.raises(ValueError, match="energy_loss"):
        train.Recipe(energy_loss="hinge")


# --- mode statistics -----------------------------------------------------------------------

def test_mode_stats_on_exact_samples():
    r = data.ring()
    # member 0: all 8 modes equally; member 1: only mode 0; member 2: nothing near any mode
    m0 = r.centers.repeat(10, 1)
    m1 = r.centers[:1].repeat(80, 1)
    m2 = torch.zeros(80, 2)
    s = metrics.mode_stats(torch.stack([m0, m1, m2]), r)
    np.testing.assert_array_equal(s.modes, [8, 1, 0])
    np.testing.assert_allclose(s.high_quality, [100, 100, 0])
    np.testing.assert_allclose(s.reverse_kl, [0.0, math.log(8), math.log(8)], atol=1e-12)


def test_mode_stats_quality_threshold_and_kl():
    r = data.ring()
    c = r.centers
    # 3 samples at mode 0, 1 at mode 1 (all high quality), 4 at 4 std from mode 2 (low quality)
    off = c[2] + torch.tensor([4 * r.std, 0.0])
    s = torch.stack([c[0], c[0], c[0], c[1], off, off, off, off])[None]
    st = metrics.mode_stats(s, r)
    assert st.modes[0] == 2 and st.high_quality[0] == 50.0
    p = np.array([0.75, 0.25])
    np.testing.assert_allclose(st.reverse_kl[0], np.sum(p * np.log(p * 8)))


def test_mode_stats_rejects_bad_input():
    with pytest.raises(ValueError, match="samples"):
        metrics.mode_stats(torch.zeros(10, 2), data.ring())
    with pytest.raises(ValueError, match="NaN"):
        metrics.mode_stats(torch.full((1, 3, 2), float("nan")), data.ring())
    with pytest.raises(ValueError, match="mixture"):
        metrics.mode_stats(torch.zeros(1, 3, 2), object())


def test_summary_over_members():
    assert metrics.summarize([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert metrics.summarize([5.0]) == (5.0, 0.0)


def test_use_cpu_threads_sets_the_preset_threads():
    before = torch.get_num_threads()
    try:
        n = presets.use_cpu_threads(presets.quick)
        assert n == (presets.quick.cpu_threads if not torch.cuda.is_available() else before)
    finally:
        torch.set_num_threads(before)
