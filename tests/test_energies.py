"""The fixed analytic energies of ``egan_lib.energies`` (chapters 2, 3 and 5): linear and quadratic
energies against their closed-form gradients, member-batched and on image-shaped samples.
(``PitsEnergy`` has its own file, test_pits.py.)"""

import pytest
import torch

from egan_lib import energies


def _grad(U, x):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(U(x).sum(), x)
    return g


@pytest.mark.parametrize("shape", [(2,), (3, 4, 4)], ids=["points", "images"])
def test_linear_energy_has_the_same_slope_everywhere(shape):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    b = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    U = energies.LinearEnergy(w, b)
    x = torch.randn(3, 7, *shape, generator=g, dtype=torch.float64)
    e = U(x)
    assert e.shape == (3, 7)
    torch.testing.assert_close(e, torch.einsum("kn...,k...->kn", x, w) + b[:, None])
    torch.testing.assert_close(_grad(U, x), w[:, None].expand_as(x))


def test_quadratic_energy_is_one_bowl():
    c = torch.tensor([[1.0, -2.0], [0.0, 3.0]], dtype=torch.float64)
    a = torch.tensor([0.5, 4.0], dtype=torch.float64)
    U = energies.QuadraticEnergy(c, a)
    x = torch.randn(2, 9, 2, dtype=torch.float64)
    torch.testing.assert_close(U(x), 0.5 * a[:, None] * (x - c[:, None]).pow(2).sum(-1))
    torch.testing.assert_close(_grad(U, x), a[:, None, None] * (x - c[:, None]))
    assert torch.equal(U(c[:, None]), torch.zeros(2, 1, dtype=torch.float64))  # the bottom of the bowl


def test_shared_parameters_and_members():
    lin = energies.LinearEnergy([1.0, 0.0], members=3)
    quad = energies.QuadraticEnergy(torch.zeros(3, 4, 4), members=2)
    assert lin.members == 3 and lin.weight.shape == (3, 2) and lin.sample_shape == (2,)
    assert quad.members == 2 and quad.sample_shape == (3, 4, 4)
    x = torch.randn(3, 5, 2)
    torch.testing.assert_close(lin(x), x[..., 0])
    assert lin.weight.dtype == torch.get_default_dtype()


def test_fixed_unless_asked():
    U = energies.QuadraticEnergy([[0.0, 0.0]])
    assert not any(p.requires_grad for p in U.parameters())
    V = energies.LinearEnergy([[1.0, 2.0]], requires_grad=True)
    V(torch.ones(1, 4, 2)).sum().backward()
    torch.testing.assert_close(V.weight.grad, torch.full((1, 2), 4.0))
    torch.testing.assert_close(V.bias.grad, torch.tensor([4.0]))


@pytest.mark.parametrize("make, match", [
    (lambda: energies.LinearEnergy([1.0, 0.0]), "members"),  # one weight for all: members= is needed
    (lambda: energies.LinearEnergy([[1.0, float("nan")]]), "weight"),
    (lambda: energies.LinearEnergy([[1.0, 0.0]], bias=[1.0, 2.0]), "bias"),
    (lambda: energies.QuadraticEnergy([[0.0, 0.0]], curvature=0.0), "curvature"),
    (lambda: energies.QuadraticEnergy([[0.0, 0.0]], curvature=[1.0, 1.0]), "curvature"),
    (lambda: energies.QuadraticEnergy([0.0, 0.0], members=0), "members"),
])
def test_bad_arguments_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_input_is_rejected():
    U = energies.QuadraticEnergy(torch.zeros(2, 2))
    for x in (torch.zeros(3, 4, 2), torch.zeros(2, 4, 3), torch.zeros(2, 4), torch.zeros(2, 4, 2, dtype=torch.long)):
        with pytest.raises(ValueError, match="x must"):
            U(x)
