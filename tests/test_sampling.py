"""The samplers against targets whose law is known in closed form: the sampled mean, covariance and
mode weights agree within their sampling error; MALA keeps the target invariant where ULA is biased
by exactly the amount its step size predicts."""

import math

import pytest
import torch
from torch import nn

from egan_lib import data, gan, metrics, nets, sampling, train

torch.set_num_threads(1)


def gaussian_logp(mean, precision):
    """log N(x; mean, precision^-1) up to a constant, for x [K, C, d]."""
    def logp(x):
        d = x - mean
        return -0.5 * torch.einsum("kci,ij,kcj->kc", d, precision, d)
    return logp


def _moments(x):  # x [K, C, d] -> mean [d], covariance [d, d] over all members and chains
    flat = x.reshape(-1, x.shape[-1]).double()
    return flat.mean(0), torch.cov(flat.T)


def test_mala_samples_a_correlated_gaussian_at_a_temperature():
    mean = torch.tensor([1.0, -2.0])
    A = torch.tensor([[2.0, 0.6], [0.6, 1.0]])  # U(x) = (x - mean)' A (x - mean) / 2
    T = 2.0  # p(x) ~ exp(-U/T): covariance T A^-1
    energy = lambda x: 0.5 * torch.einsum("kci,ij,kcj->kc", x - mean, A, x - mean)
    g = torch.Generator().manual_seed(0)
    chain = sampling.mala(sampling.x_target(energy, T), torch.zeros(2, 2000, 2), steps=300, step_size=0.1,
                          adapt_steps=200, rng=g)
    m, c = _moments(chain.final)
    cov = T * torch.linalg.inv(A).double()
    n = chain.final.shape[0] * chain.final.shape[1]
    assert torch.allclose(m, mean.double(), atol=5 * math.sqrt(cov.diagonal().max() / n)), m
    # the standard error of a covariance entry is about sqrt((s_ii s_jj + s_ij^2) / n)
    se = torch.sqrt((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov ** 2) / n)
    assert ((c - cov).abs() < 5 * se).all(), (c, cov)
    assert ((chain.acceptance - 0.574).abs() < 0.1).all(), chain.acceptance  # adapted to the target rate


@pytest.mark.parametrize("eps", [0.2, 0.5])
def test_mala_is_exact_and_ula_is_biased_as_predicted(eps):
    # N(0, 1) in each of 2 dimensions, chains started from the target itself: an invariant sampler keeps
    # variance 1; ULA moves it to 1 / (1 - eps/2), its own stationary variance (x' = (1 - eps) x + sqrt(2 eps) xi)
    logp = gaussian_logp(torch.zeros(2), torch.eye(2))
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 4000, 2, generator=g)
    n = x0.numel()
    mala = sampling.mala(logp, x0, steps=60, step_size=eps, rng=g).final
    ula = sampling.ula(logp, x0, steps=60, step_size=eps, rng=g).final
    tol = 5 * math.sqrt(2 / n)  # standard error of a variance estimate
    assert abs(mala.var().item() - 1.0) < tol, mala.var()
    predicted = 1 / (1 - eps / 2)
    assert abs(ula.var().item() - predicted) < tol * predicted, (ula.var(), predicted)
    assert ula.var().item() - 1.0 > tol  # the bias is far outside the sampling error


def test_noisy_descent_is_not_langevin():
    # Short-run EBM updates x - eps grad U + sigma xi with a small sigma: on U = x^2/2 the stationary
    # variance is sigma^2 / (1 - (1 - eps)^2), a hundredth of the target's 1 here
    logp = gaussian_logp(torch.zeros(1), torch.eye(1))
    g = torch.Generator().manual_seed(2)
    x = sampling.ula(logp, torch.randn(1, 20000, 1, generator=g), steps=2000, step_size=0.01, noise=0.005, rng=g).final
    predicted = 0.005 ** 2 / (1 - 0.99 ** 2)
    assert abs(x.var().item() - predicted) < 0.1 * predicted and predicted < 0.01


class LinearGenerator(nn.Module):
    """G(z) = z W + b for every member: a latent map whose pushforward is known."""

    def __init__(self, W, b):
        super().__init__()
        self.W, self.b = nn.Parameter(W), nn.Parameter(b)

    def forward(self, z):
        return z @ self.W + self.b


def test_latent_mala_keeps_the_prior_and_matches_the_closed_form():
    # U(x) = |x - mu|^2 / (2 s^2), G(z) = z W + b, z ~ N(0, I): pi(z) ~ exp(-U(G(z))/T - |z|^2/2) is Gaussian
    # with precision P = W W' / (s^2 T) + I and mean P^-1 W (mu - b) / (s^2 T)
    W = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, -1.0]])  # latent 2 -> data 3
    b, mu, s2, T = torch.tensor([0.5, 0.0, -0.5]), torch.tensor([1.0, 2.0, 0.0]), 0.5, 1.5
    G = LinearGenerator(W, b)
    energy = lambda x: (x - mu).pow(2).sum(-1) / (2 * s2)
    g = torch.Generator().manual_seed(3)
    chain = sampling.mala(sampling.latent_target(energy, G, T), torch.randn(2, 3000, 2, generator=g), steps=200,
                          step_size=0.2, adapt_steps=100, rng=g)
    P = (W @ W.T / (s2 * T) + torch.eye(2)).double()
    cov = torch.linalg.inv(P)
    mean = cov @ (W @ (mu - b)).double() / (s2 * T)
    m, c = _moments(chain.final)
    n = chain.final.shape[0] * chain.final.shape[1]
    assert torch.allclose(m, mean, atol=5 * math.sqrt(cov.diagonal().max() / n)), (m, mean)
    se = torch.sqrt((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov ** 2) / n)
    assert ((c - cov).abs() < 5 * se).all(), (c, cov)
    assert G.W.grad is None  # the generator is only read, never trained


def test_mala_keeps_mode_weights_of_a_mixture():
    # p = 0.7 N(-1.5, 0.5^2) + 0.3 N(1.5, 0.5^2) in 1D, chains started from p itself: after many large
    # MALA steps the share right of 0 is still 0.3 within its sampling error
    w, m, s = torch.tensor([0.7, 0.3]), torch.tensor([-1.5, 1.5]), 0.5

    def logp(x):
        comp = -0.5 * ((x - m) / s) ** 2 + w.log()  # [K, C, 2] (x broadcasts over the components)
        return torch.logsumexp(comp, dim=-1)

    g = torch.Generator().manual_seed(4)
    n = 20000
    which = (torch.rand(1, n, 1, generator=g) < w[1]).float()
    x0 = m[0] + which * (m[1] - m[0]) + s * torch.randn(1, n, 1, generator=g)
    chain = sampling.mala(logp, x0, steps=200, step_size=0.5, rng=g)
    right = (chain.final > 0).float().mean().item()
    assert abs(right - 0.3) < 5 * math.sqrt(0.3 * 0.7 / n), right
    assert (chain.final != x0).float().mean() > 0.3  # the chains did move


def test_replay_buffer_trains_an_energy_with_the_books_loop():
    U = nets.MLPEnergy(2, width=16, depth=2)
    buffer = sampling.ReplayBuffer(U, (-2, 2, -2, 2), members=2, size=200, steps=5, step_size=1e-3)
    before = buffer.states.clone()
    x = buffer.sample(32, members=2)
    assert x.shape == (2, 32, 2) and not torch.equal(buffer.states, before)
    hist = train.train(U, buffer, data.ring(), steps=5, batch=32, opt_e=torch.optim.Adam(U.parameters(), 1e-3),
                       progress=False, log_every=1)
    assert hist.steps_run == 5
    with pytest.raises(ValueError, match="members"):
        buffer.sample(4, members=3)


class _Quadratic(torch.nn.Module):
    """U(x) = |x|^2 / (2 s^2) for every member: the density N(0, s^2 I)."""

    def __init__(self, s: float):
        super().__init__()
        self.s, self.dummy, self.members = s, torch.nn.Parameter(torch.zeros(())), 1

    def forward(self, x):
        return x.pow(2).sum(-1) / (2 * self.s ** 2) + 0 * self.dummy


def test_metropolis_buffer_samples_a_fixed_energy():
    # chains that start uniform in a box and are drawn, moved and written back many times end up as
    # samples of N(0, s^2 I): mean 0 and variance s^2 within 5 standard errors; ULA at the same large
    # step would be too wide by its 1/(1 - eps/(2 s^2)) = 1.25
    s, n = 0.5, 2000
    buffer = sampling.ReplayBuffer(_Quadratic(s), (-2, 2, -2, 2), members=2, size=n, steps=10, step_size=0.1,
                                   restart=0.0, metropolis=True, seed=3)
    for _ in range(40):
        buffer.sample(n, members=2)
    x = buffer.states
    assert (x.mean(1).abs() < 5 * s / math.sqrt(n)).all(), x.mean(1)
    var = x.var(1)
    assert ((var - s ** 2).abs() < 5 * s ** 2 * math.sqrt(2 / n)).all(), var
    assert ((0.3 < buffer.acceptance) & (buffer.acceptance < 1)).all(), buffer.acceptance
    ula = sampling.ReplayBuffer(_Quadratic(s), (-2, 2, -2, 2), members=2, size=n, steps=10, step_size=0.1,
                                restart=0.0, seed=3)
    for _ in range(40):
        ula.sample(n, members=2)
    wide = s ** 2 / (1 - 0.1 / (2 * s ** 2))
    assert ((ula.states.var(1) - wide).abs() < 5 * wide * math.sqrt(2 / n)).all(), ula.states.var(1)
    with pytest.raises(ValueError, match="noise"):
        sampling.ReplayBuffer(_Quadratic(s), (-2, 2, -2, 2), members=2, metropolis=True, noise=0.005)
    with pytest.raises(ValueError, match="jump"):
        sampling.ReplayBuffer(_Quadratic(s), (-2, 2, -2, 2), members=2, jump=[0.1, -0.1])


def test_bad_arguments_are_named():
    logp = gaussian_logp(torch.zeros(2), torch.eye(2))
    x0 = torch.zeros(1, 4, 2)
    with pytest.raises(ValueError, match="x0"):
        sampling.mala(logp, torch.zeros(4, 2), steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="adapt_steps"):
        sampling.ula(logp, x0, steps=1, step_size=0.1, adapt_steps=5)
    with pytest.raises(ValueError, match="noise"):
        sampling.mala(logp, x0, steps=1, step_size=0.1, noise=0.01)
    with pytest.raises(ValueError, match="step_size"):
        sampling.mala(logp, x0, steps=1, step_size=0.0)
    with pytest.raises(ValueError, match="target_accept"):
        sampling.mala(logp, x0, steps=1, step_size=0.1, target_accept=1.5)
    with pytest.raises(ValueError, match="temperature"):
        sampling.x_target(lambda x: x.sum(-1), temperature=0)


def test_sampling_bench_writes_its_table(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "bench"
    out = subprocess.run([sys.executable, "sampling_full.py", "--members", "1", "--ring-steps", "3", "--mixtures", "ring",
                          "--mcmc-steps", "2", "--digit-steps", "2", "--out", str(tmp_path)], capture_output=True, text=True, cwd=bench,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    d = json.loads((tmp_path / "sampling_full.json").read_text())["mixtures"]["ring"]
    assert set(d) == {"default", "standard GAN"} and len(d["default"]["latent MALA, T=1"]["high_quality"]) == 1
    assert "AUROC" in out.stdout
    digits = json.loads((tmp_path / "sampling_full.json").read_text())["digits_auroc"]
    assert set(digits) == {"untrained", "default", "standard GAN"}  # the control beside the two trained energies
    assert set(digits["standard GAN"]) == {"noise", "occlude", "shuffle"} and len(digits["untrained"]["shuffle"]) == 1


def test_energy_model_set_up_builds_trains_and_samples():
    cfg = gan.EnergyModel2D(members=2, width=16, depth=2, steps=3, batch=16, chain_steps=2, buffer_size=50)
    ring = data.ring()
    model = cfg.build(ring)
    assert model.buffer.step_size == pytest.approx(ring.std ** 2)  # default step: the data's variance
    assert model.buffer.metropolis and model.buffer.members == 2
    assert torch.allclose(model.buffer.jump, torch.full((2,), ring.std))  # jumps of the data's width
    assert cfg.replace(step_size=0.5).build(ring).buffer.step_size == 0.5
    hist = model.train(ring, progress=False, log_every=1)
    assert hist.steps_run == 3
    chain = model.sample(10, torch.Generator().manual_seed(0), steps=3, adapt_steps=2)
    assert chain.final.shape == (2, 10, 2) and torch.isfinite(chain.final).all()
    assert "EnergyModel2D" in repr(model) and "0x" not in repr(model)
    for bad in (dict(members=0), dict(restart=1.5), dict(step_size=-1.0), dict(chain_steps=0),
                dict(opt_e="adam"), dict(buffer_size=2.5), dict(jump=(True, False, True)), dict(jump=0.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            gan.EnergyModel2D(**bad)
    with pytest.raises(ValueError, match="step_size"):
        cfg.build(object())


def test_energy_model_learns_two_modes_as_a_density():
    # two modes at (+-1, 0), std 0.1; the energy alone, trained against its own MALA chains, puts
    # both modes in every member and its samples near them
    mix = data.GaussianMixture2D([[-1.0, 0.0], [1.0, 0.0]], std=0.1)
    model = gan.EnergyModel2D(members=2, width=32, depth=2, steps=300).build(mix)
    model.train(mix, progress=False)
    s = metrics.mode_stats(model.sample(1000, torch.Generator().manual_seed(1)).final, mix)
    assert (s.modes == 2).all() and (s.high_quality > 85).all() and (s.reverse_kl < 0.05).all(), s


def test_grid_sample_draws_a_known_density_without_a_chain():
    # N(0, s^2 I) on a box of +-6 s: mean 0 and variance s^2 within 5 standard errors (the grid's cells
    # are s/50 wide, far below the sampling error)
    s, n = 0.5, 20000
    x = sampling.grid_sample(_Quadratic(s), (-3, 3, -3, 3), n, torch.Generator().manual_seed(0))
    assert x.shape == (1, n, 2)
    assert (x.mean(1).abs() < 5 * s / math.sqrt(n)).all(), x.mean(1)
    assert ((x.var(1) - s ** 2).abs() < 5 * s ** 2 * math.sqrt(2 / n)).all(), x.var(1)
    with pytest.raises(ValueError, match="box"):
        sampling.grid_sample(_Quadratic(s), (1, -1, -1, 1), 10)


def test_a_box_keeps_mala_inside_and_samples_the_truncated_density():
    # a flat energy on the unit square: MALA confined to it samples the uniform law there
    flat = sampling.x_target(lambda x: 0.0 * x.sum(-1), box=(0, 1, 0, 1))
    x0 = torch.rand(2, 4000, 2, generator=torch.Generator().manual_seed(1))
    chain = sampling.mala(flat, x0, steps=50, step_size=0.05, rng=torch.Generator().manual_seed(2))
    x = chain.final
    assert ((x >= 0) & (x <= 1)).all()
    n = x.shape[1]
    assert ((x.mean(1) - 0.5).abs() < 5 * math.sqrt(1 / 12 / n)).all(), x.mean(1)
    assert ((x.var(1) - 1 / 12).abs() < 5 * math.sqrt(1 / 180 / n)).all(), x.var(1)
    assert (chain.acceptance < 0.99).all()  # proposals out of the box were refused


def test_jumps_move_chains_between_wells_and_keep_the_target():
    # two wells N(-+1.5, 0.1^2) with weights 0.8 / 0.2 (U = -log of the mixture); every chain starts in the
    # left well. Steps of the wells' width never cross the gap, so without jumps the right well stays
    # empty; with jumps between the buffer's chains (whose proposal covers the right well only once a chain
    # is there: one chain starts there) the shares come to 0.8 / 0.2 within 5 standard errors.
    class Wells(torch.nn.Module):
        members = 2

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            w = torch.tensor([0.8, 0.2]).log()
            m = torch.tensor([[-1.5, 0.0], [1.5, 0.0]])
            d2 = (x[..., None, :] - m).pow(2).sum(-1)  # [..., 2]
            return -torch.logsumexp(w - d2 / (2 * 0.1 ** 2), dim=-1) + 0 * self.dummy

    n = 1000
    shares = {}
    for jump in (None, 0.1):
        buffer = sampling.ReplayBuffer(Wells(), (-3, 3, -3, 3), members=2, size=n, steps=5, step_size=0.005,
                                       restart=0.0, metropolis=True, jump=jump, seed=5)
        buffer.states = torch.tensor([-1.5, 0.0]) + 0.1 * torch.randn(2, n, 2, generator=torch.Generator().manual_seed(6))
        buffer.states[:, 0] = torch.tensor([1.5, 0.0])
        for _ in range(150):
            buffer.sample(n, members=2)
        shares[jump] = (buffer.states[..., 0] > 0).float().mean(1)
    assert (shares[None] < 0.01).all(), shares[None]
    assert ((shares[0.1] - 0.2).abs() < 5 * math.sqrt(0.2 * 0.8 / n)).all(), shares[0.1]
