"""Random streams: every argument that takes a ``torch.Generator`` is called ``rng`` (a GAN library has
another "generator"), draws happen on the rng's device, and the numbers are those of the plain calls.
The CUDA checks run only where a GPU is visible."""

import inspect

import pytest
import torch

from egan_lib import convnets, data, energies, entropy, metrics, nets, penalties

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _g(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("fn", [
    data.GaussianMixture2D.sample, data.ImageData.sample, data.ImageData.sample_with_labels,
    data.StackedImages.sample, data.StackedImages.sample_with_labels, nets.MLPGenerator.noise,
    nets.MLPGenerator.sample, convnets.ConvGenerator.noise, convnets.ConvGenerator.sample,
    energies.PitsEnergy.random, entropy.shuffle_within_batch, penalties.interpolates, penalties.wgan_gp,
    penalties.zero_centred_interpolates,
], ids=lambda f: f.__qualname__)
def test_the_generator_argument_is_called_rng(fn):
    params = inspect.signature(fn).parameters
    assert "rng" in params and "generator" not in params


def test_on_interpolates_holds_an_rng():
    assert "rng" in {f.name for f in penalties.on_interpolates.__dataclass_fields__.values()}


def test_mixture_draws_the_plain_calls_in_order():
    ring = data.ring()
    x = ring.sample(50, _g(1), members=3)
    g = _g(1)
    idx = torch.randint(8, (3, 50), generator=g)
    noise = torch.randn(3, 50, 2, generator=g)
    assert torch.equal(x, ring.centers[idx] + ring.std * noise)
    assert x.device.type == "cpu" and torch.equal(ring.sample(50, _g(1), members=3, device="cpu"), x)


def test_images_draw_the_plain_calls_and_move_as_a_copy():
    d = data.digits("test")
    x, y = d.sample_with_labels(9, _g(2), members=2)
    idx = torch.randint(len(d), (2, 9), generator=_g(2))
    assert torch.equal(x, d.images[idx]) and torch.equal(y, d.labels[idx])
    moved = d.to("cpu")
    assert moved is not d and moved.images.device.type == "cpu" and torch.equal(moved.sample(9, _g(2), members=2), x)
    s = data.stacked_digits("test")
    assert torch.equal(s.to("cpu").sample(4, _g(3), members=2), s.sample(4, _g(3), members=2))


def test_noise_draws_the_plain_call():
    torch.manual_seed(0)
    G = nets.MLPGenerator(3, latent_dim=5, width=8, depth=1)
    assert torch.equal(G.noise(7, _g(4)), torch.randn(3, 7, 5, generator=_g(4)))
    assert G.noise(7, _g(4), device="cpu").device.type == "cpu"
    C = convnets.ConvGenerator(2, (1, 8, 8), width=4, latent_dim=3)
    assert torch.equal(C.noise(6, _g(5)), torch.randn(2, 6, 3, generator=_g(5)))


@pytest.mark.parametrize("call", [
    lambda: data.ring().sample(4, rng=3),
    lambda: data.digits("test").sample(4, rng="seed"),
    lambda: nets.MLPGenerator(1).noise(4, rng=0),
    lambda: penalties.interpolates(torch.zeros(1, 2, 2), torch.ones(1, 2, 2), rng=0),
])
def test_an_rng_that_is_not_a_generator_is_rejected(call):
    with pytest.raises(ValueError, match="rng"):
        call()


def test_sampling_spread_hands_its_rng_to_the_sampler():
    seen = []
    ring = data.ring()

    def sample(n, rng):
        seen.append(rng)
        return ring.sample(n, rng, members=1)

    s = metrics.sampling_spread(sample, ring, repeats=2, n=100, seed=4)
    assert all(isinstance(r, torch.Generator) and r.device.type == "cpu" for r in seen) and s.modes.shape == (2, 1)


@CUDA
def test_a_cuda_rng_draws_on_the_gpu():
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    assert data.ring().sample(16, g, members=2).device.type == "cuda"
    G = nets.MLPGenerator(2).to(dev)
    assert G.noise(8, g).device.type == "cuda" and G.sample(8, g).device.type == "cuda"
    C = convnets.ConvGenerator(2, (1, 8, 8), width=4).to(dev)
    assert C.sample(4, g).device.type == "cuda"
    digits = data.digits("test").to(dev)
    x, y = digits.sample_with_labels(8, g, members=2)
    assert x.device.type == "cuda" and y.device.type == "cuda"
    assert data.stacked_digits("test").to(dev).sample(8, g, members=2).device.type == "cuda"
    z = torch.randn(2, 8, 3, device=dev)
    assert entropy.shuffle_within_batch(z, g).device.type == "cuda"
    est = entropy.MIEntropy(2, 2, 3, device=dev)
    assert est.rng.device.type == "cuda"
    assert energies.PitsEnergy.random(2, rng=g).centers.device.type == "cpu"
    # a CPU rng still gives the same numbers on a GPU machine: drawn on the CPU, then moved
    assert torch.equal(G.noise(5, _g(1)).cpu(), torch.randn(2, 5, G.latent_dim, generator=_g(1)))
