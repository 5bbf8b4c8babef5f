"""Chapter 6's library pieces: a bunched generator start, and the sampling spread of mode statistics."""

import math

import numpy as np
import pytest
import torch

from egan_lib import data, metrics, nets


# --- nets.bunch_generator -------------------------------------------------------------------------

def _generator(K=3):
    torch.manual_seed(0)
    return nets.MLPGenerator(K, latent_dim=4, width=16, depth=2)


def test_bunch_generator_moves_and_shrinks_the_fakes_exactly():
    G = _generator()
    z = G.noise(500, torch.Generator().manual_seed(1))
    before = G(z).detach()
    b = G.layers[-1].bias.detach().clone()  # [K, 1, 2]
    center, s = torch.tensor([1.0, -2.0]), 0.1
    out = nets.bunch_generator(G, center, s)
    assert out is G
    after = G(z).detach()
    # G'(z) = c + s (G(z) - b)
    torch.testing.assert_close(after, center + s * (before - b), rtol=1e-5, atol=1e-6)
    # the spread around the centre shrinks by s
    torch.testing.assert_close(after.std(dim=1), s * before.std(dim=1), rtol=1e-4, atol=1e-7)


def test_bunch_generator_scale_zero_is_one_point():
    G = nets.bunch_generator(_generator(), [0.5, 0.5], 0.0)
    x = G.sample(100)
    assert torch.equal(x, torch.full_like(x, 0.5))


def test_bunch_generator_only_touches_the_chosen_members():
    G = _generator(K=4)
    z = G.noise(200, torch.Generator().manual_seed(2))
    before = G(z).detach()
    centers = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    nets.bunch_generator(G, centers, 0.0, members=[1, 3])
    after = G(z).detach()
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]])
    assert torch.equal(after[1], centers[0].expand(200, 2))
    assert torch.equal(after[3], centers[1].expand(200, 2))
    nets.bunch_generator(G, [0.0, 0.0], 0.0, members=slice(0, 1))
    assert torch.equal(G(z)[0].detach(), torch.zeros(200, 2))


def test_bunch_generator_is_still_trainable():
    G = nets.bunch_generator(_generator(), [0.0, 0.0], 0.0)
    G(G.noise(8)).sum().backward()  # d/dW of sum h(z) W is sum h(z), not 0
    assert G.layers[-1].weight.grad is not None and G.layers[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(center=[0.0, 0.0, 0.0], scale=0.1), "center"),
    (dict(center=[[0.0, 0.0]] * 2, scale=0.1), "center"),
    (dict(center=[0.0, 0.0], scale=-1.0), "scale"),
    (dict(center=[0.0, 0.0], scale=0.1, members=[0, 0]), "members"),
    (dict(center=[0.0, 0.0], scale=0.1, members=[5]), "members"),
])
def test_bunch_generator_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nets.bunch_generator(_generator(), **kwargs)


def test_bunch_generator_rejects_an_energy():
    with pytest.raises(ValueError, match="generator"):
        nets.bunch_generator(nets.MLPEnergy(2), [0.0, 0.0], 0.1)


# --- metrics.sampling_spread ----------------------------------------------------------------------

@pytest.mark.parametrize("mixture", [data.ring(), data.grid()], ids=lambda m: m.name)
def test_sampling_spread_of_the_true_mixture_matches_the_analytic_values(mixture):
    K, R, n = 2, 200, 2500
    sp = metrics.sampling_spread(lambda m, g: mixture.sample(m, g, members=K), mixture, repeats=R, n=n)
    assert sp.modes.shape == sp.high_quality.shape == sp.reverse_kl.shape == (R, K)
    # every draw captures every mode
    assert (sp.modes == mixture.n_modes).all()
    # high quality: P(|eps| <= 3 sigma) in 2D is 1 - exp(-9/2) (Rayleigh radius), not the 1D 99.7 %
    p = 1 - math.exp(-4.5)
    sd = 100 * math.sqrt(p * (1 - p) / n)  # binomial standard deviation, in percentage points
    mean, std = sp.mean(), sp.std()
    # the mean of R draws is within 4 standard errors; the spread within 20 % of the binomial one
    assert np.all(np.abs(mean["high_quality"] - 100 * p) < 4 * sd / math.sqrt(R)), mean["high_quality"]
    assert np.all(np.abs(std["high_quality"] / sd - 1) < 0.2), std["high_quality"]
    # reverse KL of a sample from the uniform histogram: 2 N KL ~ chi^2_{M-1}, mean (M-1)/(2N),
    # standard deviation sqrt(2 (M-1)) / (2N)
    M, N = mixture.n_modes, p * n
    assert np.all(np.abs(mean["reverse_kl"] / ((M - 1) / (2 * N)) - 1) < 0.15), mean["reverse_kl"]
    assert np.all(np.abs(std["reverse_kl"] / (math.sqrt(2 * (M - 1)) / (2 * N)) - 1) < 0.3), std["reverse_kl"]


def test_sampling_spread_of_a_fixed_sample_is_zero():
    ring = data.ring()
    x = ring.sample(300, torch.Generator().manual_seed(0), members=2)
    sp = metrics.sampling_spread(lambda n, g: x, ring, repeats=5, n=300)
    for v in sp.std().values():
        assert np.all(v == 0)
    s = metrics.mode_stats(x, ring)
    np.testing.assert_array_equal(sp.modes[0], s.modes)
    np.testing.assert_allclose(sp.reverse_kl[3], s.reverse_kl)


def test_sampling_spread_of_a_collapsed_generator():
    ring = data.ring()
    G = nets.bunch_generator(_generator(K=2), ring.centers[0], 0.0)
    sp = metrics.sampling_spread(lambda n, g: G.sample(n, g), ring, repeats=3, n=100)
    assert (sp.modes == 1).all() and (sp.high_quality == 100).all()
    np.testing.assert_allclose(sp.reverse_kl, math.log(8))


@pytest.mark.parametrize("kwargs, match", [
    (dict(sample_fn="ring"), "sample_fn"),
    (dict(repeats=1), "repeats"),
    (dict(n=0), "n"),
    (dict(sample_fn=lambda n, g: torch.zeros(2, n + 1, 2)), "n=10"),
    (dict(sample_fn=lambda n, g: torch.zeros(n, 2)), r"\[K, B, D\]"),
])
def test_sampling_spread_rejects_bad_arguments(kwargs, match):
    args = dict(sample_fn=lambda n, g: torch.zeros(2, n, 2), repeats=3, n=10) | kwargs
    fn = args.pop("sample_fn")
    with pytest.raises(ValueError, match=match):
        metrics.sampling_spread(fn, data.ring(), **args)


# --- plot.animate_training with several panels ----------------------------------------------------

def test_animate_training_side_by_side_with_a_title_per_frame():
    import matplotlib
    matplotlib.use("Agg")
    from egan_lib import gan, plot, train

    ring = data.ring()
    run = gan.GAN2D(members=2, width=8, depth=1, steps=4, batch=8).build()
    hist = run.train(ring, progress=False, callbacks=[train.Snapshots(2, samples=50, grid=(ring.extent(), 10))])
    seen = []
    html = plot.animate_training(hist, member=[1, 0], fakes=10,
                                 title=lambda i, k: seen.append((i, k)) or f"frame {i}, member {k}")
    assert "<script" in html
    assert {(i, k) for i in range(len(hist.snapshots)) for k in (0, 1)} <= set(seen)
    assert "<script" in plot.animate_training(hist, member=1, title="step {step} of member {member}")
    for bad in ([], [2], "0"):
        with pytest.raises(ValueError, match="member"):
            plot.animate_training(hist, member=bad)
    with pytest.raises(ValueError, match="fakes"):
        plot.animate_training(hist, fakes=0)
