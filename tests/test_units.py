"""The nets' units (egan_lib.units, ``GAN2D(standardise=True)``): the identity by default, fitted to the
data once, and training in them is training on the standardised data with gamma in those units."""

import pytest
import torch

from egan_lib import data, gan, nets, train, units

SMALL = gan.GAN2D(members=2, width=16, depth=2, latent_dim=3, steps=30, batch=32, seed=3)


def test_unfitted_units_leave_every_output_bit_for_bit_as_the_bare_layers_give_it():
    E, G = nets.MLPEnergy(2, width=8), nets.MLPGenerator(2, width=8, latent_dim=3)
    x, z = torch.randn(2, 50, 2), torch.randn(2, 50, 3)
    assert not E.units.fitted and not G.units.fitted
    assert torch.equal(E(x), E.layers(x).squeeze(-1)) and torch.equal(G(z), G.layers(z))


def test_a_mixture_is_standardised_by_its_exact_moments_and_only_once():
    E, G = nets.MLPEnergy(1), nets.MLPGenerator(1)
    grid = data.grid()  # centres {-4,-2,0,2,4}^2: variance 8 per coordinate, plus the modes' 0.05^2
    s = units.standardise(E, G, grid)
    assert s == pytest.approx((8 + 0.05 ** 2) ** 0.5, rel=1e-6)
    assert torch.allclose(E.units.shift, torch.zeros(2)) and torch.equal(G.units.scale, E.units.scale)
    assert units.standardise(E, G, data.ring()) == s  # a second call keeps the first fit


class _Shifted:
    """Data without centres: a unit Gaussian times 3 plus (5, -1), drawn by sample(n, rng, members)."""

    def sample(self, n, rng=None, *, members=1):
        return torch.randn(members, n, 2, generator=rng) * 3 + torch.tensor([5.0, -1.0])


def test_other_data_are_standardised_from_a_sample_and_the_nets_see_mean_0_spread_1():
    E, G = nets.MLPEnergy(1), nets.MLPGenerator(1)
    s = units.standardise(E, G, _Shifted())
    assert s == pytest.approx(3.0, rel=0.03)
    assert torch.allclose(E.units.shift, torch.tensor([5.0, -1.0]), atol=0.1)
    u = E.units.to_net(_Shifted().sample(20000, torch.Generator().manual_seed(1))[0])
    assert u.mean(0).abs().max() < 0.05 and (u.var(0).mean() - 1).abs() < 0.05
    x = torch.randn(100, 2)  # the two maps are each other's inverse
    assert torch.allclose(G.units.to_data(E.units.to_net(x)), x, atol=1e-5)


class _Constant:
    def sample(self, n, rng=None, *, members=1):
        return torch.ones(members, n, 2)


def test_data_without_spread_and_bad_roles_are_value_errors():
    with pytest.raises(ValueError, match="real"):
        units.standardise(nets.MLPEnergy(1), nets.MLPGenerator(1), _Constant())
    with pytest.raises(ValueError, match="role"):
        units.Units(2, "both")
    with pytest.raises(ValueError, match="standardise"):
        SMALL.replace(standardise=1)


def test_standardised_training_is_plain_training_on_the_standardised_data():
    """Inside the nets the two runs see the same numbers (up to rounding): the data divided by their
    scale, R1 weighed by gamma in those units. So the fakes of one are the other's times the scale."""
    mix = data.grid(side=3, spacing=3.0, std=0.1)
    a = SMALL.replace(standardise=True).build()
    a.train(mix, progress=False)
    s = float(a.energy.units.scale)
    small = data.GaussianMixture2D(mix.centers / s, std=mix.std / s)
    b = SMALL.build()
    b.train(small, progress=False)
    rng = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.allclose(a.sample(200, rng()), b.sample(200, rng()) * s, atol=1e-3 * s)
    x = torch.randn(2, 100, 2) * s
    assert torch.allclose(a.energy(x), b.energy(x / s), atol=1e-4)


def test_the_units_travel_with_members_the_average_and_checkpoints(tmp_path):
    cfg = SMALL.replace(standardise=True, ema=0.9)
    g = cfg.build()
    g.train(data.grid(), progress=False, callbacks=[train.Checkpoints(tmp_path, 30)])
    x = torch.randn(2, 20, 2) * 4
    # one member's nets against the batched ones: float32 sums in another order, so an absolute tolerance
    assert torch.allclose(g.energy.member(1)(x[1]).squeeze(-1), g.energy(x)[1], atol=1e-5)
    z = g.generator.noise(20, torch.Generator().manual_seed(0))
    assert torch.allclose(g.generator.member(0)(z[0]), g.generator(z)[0], atol=1e-5)
    assert torch.equal(g.sampler.units.scale, g.energy.units.scale)  # the average samples in the data's units
    resumed = cfg.build()
    resumed.train(data.grid(), progress=False, callbacks=[train.Checkpoints(tmp_path, 30)])
    assert resumed.energy.units.fitted and torch.equal(resumed.energy.units.scale, g.energy.units.scale)


def test_a_bunch_is_placed_in_the_data_units():
    G = nets.MLPGenerator(2, width=8)
    G.units.fit(torch.tensor([1.0, 2.0]), 4.0)
    nets.bunch_generator(G, center=(3.0, -1.0), scale=0.0)
    assert torch.allclose(G.sample(5), torch.tensor([3.0, -1.0]).expand(2, 5, 2), atol=1e-6)
