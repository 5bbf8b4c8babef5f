"""``nets.frozen``: a module's parameters are held fixed inside the block, and every parameter gets
back its own ``requires_grad`` flag afterwards (chapters 2 and 7; used by ``particles.roll``,
``train.jump_step`` and ``entropy.MIEntropy``)."""

import pytest
import torch

from egan_lib import nets


def _flags(module):
    return [p.requires_grad for p in module.parameters()]


def test_frozen_inside_and_restored_after():
    U = nets.MLPEnergy(2, width=8, depth=2)
    x = torch.randn(2, 5, 2, requires_grad=True)
    with nets.frozen(U) as same:
        assert same is U and not any(_flags(U))
        U(x).sum().backward()
    assert all(_flags(U)) and all(p.grad is None for p in U.parameters())
    assert x.grad is not None  # the input still gets its gradient


def test_mixed_flags_are_each_restored():
    U = nets.MLPEnergy(2, width=8, depth=2)
    U.layers[0].bias.requires_grad_(False)  # the caller had frozen this one: it stays frozen
    U.layers[-1].weight.requires_grad_(False)
    before = _flags(U)
    assert any(before) and not all(before)
    with nets.frozen(U):
        assert not any(_flags(U))
    assert _flags(U) == before


def test_flags_are_restored_when_the_body_raises():
    U = nets.MLPEnergy(1, width=4, depth=1)
    U.layers[0].weight.requires_grad_(False)
    before = _flags(U)
    with pytest.raises(RuntimeError, match="boom"):
        with nets.frozen(U):
            raise RuntimeError("boom")
    assert _flags(U) == before


def test_nested_freezes_restore_in_order():
    U = nets.MLPEnergy(1, width=4, depth=1)
    with nets.frozen(U):
        with nets.frozen(U):
            assert not any(_flags(U))
        assert not any(_flags(U))  # the outer block still holds it
    assert all(_flags(U))


def test_frozen_rejects_a_non_module():
    with pytest.raises(ValueError, match="module"):
        with nets.frozen(torch.zeros(3)):
            pass
