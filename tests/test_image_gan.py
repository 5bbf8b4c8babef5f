"""gan.ImageGAN, chapter 8's image set-up: what it builds, what it rejects, and that it trains."""

import dataclasses

import numpy as np
import pytest
import torch

from egan_lib import convnets, data, entropy, gan, losses, penalties, presets, train

TINY = gan.ImageGAN(members=2, width=4, latent_dim=3, steps=2, batch=8, seed=1, init_seed=1)


def test_defaults_are_chapter_8s_recipe():
    cfg = gan.ImageGAN()
    r = cfg.recipe
    assert r.energy_loss is losses.energy_wgan and r.generator_loss is losses.generator_energy  # eq. (1), eq. (3)
    assert isinstance(r.penalty, penalties.on_real) and r.penalty.fn is penalties.r1
    assert (r.gamma, r.penalty_every, r.dig_per_jump, r.entropy, r.entropy_weight) == (1.0, 4, 1, None, 0.0)
    for opt in (cfg.opt_e, cfg.opt_g):
        assert opt.kind is torch.optim.Adam and opt.lr == 2e-3 and opt.options == {"betas": (0.0, 0.9)}
    assert (cfg.spectral, cfg.schedule, cfg.ema) == (False, None, None)
    q = presets.quick  # the defaults are the quick preset's image size
    assert (cfg.members, cfg.width, cfg.latent_dim, cfg.steps, cfg.batch) == (
        q.image_members, q.image_width, q.image_latent_dim, q.image_steps, q.image_batch)


def test_image_default_reads_the_preset():
    cfg = gan.image_default(presets.full, torch.Size([3, 28, 28]), seed=4)
    f = presets.full
    assert cfg.shape == (3, 28, 28) and isinstance(cfg.shape, tuple) and cfg.seed == 4
    assert (cfg.members, cfg.width, cfg.latent_dim, cfg.steps, cfg.batch) == (
        f.image_members, f.image_width, f.image_latent_dim, f.image_steps, f.image_batch)


def test_build_makes_member_batched_conv_nets_and_optimisers():
    g = TINY.replace(shape=(3, 8, 8), spectral=True).build()
    assert isinstance(g.energy, convnets.ConvEnergy) and isinstance(g.generator, convnets.ConvGenerator)
    assert g.energy.members == g.generator.members == 2 and g.energy.spectral and g.generator.latent_dim == 3
    assert g.energy.layers[0].out_channels == 4
    assert g.opt_e.param_groups[0]["lr"] == 2e-3 and g.opt_g.param_groups[0]["betas"] == (0.0, 0.9)
    assert g.sample(5, torch.Generator().manual_seed(0)).shape == (2, 5, 3, 8, 8)


def test_init_seed_fixes_the_nets_and_leaves_the_global_stream_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = TINY.build(), TINY.replace(seed=9).build()
    assert torch.equal(torch.get_rng_state(), before)
    for p, q in zip(train.state_tensors(a.energy, a.generator), train.state_tensors(b.energy, b.generator)):
        assert torch.equal(p, q)
    # the same nets as building them right after torch.manual_seed(init_seed), energy first
    torch.manual_seed(1)
    U = convnets.ConvEnergy(2, (1, 8, 8), width=4)
    G = convnets.ConvGenerator(2, (1, 8, 8), latent_dim=3, width=4)
    for p, q in zip(train.state_tensors(U, G), train.state_tensors(a.energy, a.generator)):
        assert torch.equal(p, q)
    c = TINY.replace(init_seed=2).build()
    assert not torch.equal(c.energy.layers[0].weight, a.energy.layers[0].weight)
    torch.manual_seed(5)  # init_seed=None: the global stream, as an unseeded nn.Module would
    d = TINY.replace(init_seed=None).build()
    torch.manual_seed(5)
    assert torch.equal(d.energy.layers[0].weight, convnets.ConvEnergy(2, (1, 8, 8), width=4).layers[0].weight)


def test_with_entropy_sets_and_removes_the_term():
    on = TINY.with_entropy(0.5)
    assert isinstance(on.recipe.entropy, entropy.KNNEntropy) and on.recipe.entropy.k == 1
    assert on.recipe.entropy_weight == 0.5 and on.recipe.gamma == TINY.recipe.gamma
    off = on.with_entropy(0.0)
    assert off.recipe.entropy is None and off.recipe.entropy_weight == 0.0
    est = entropy.KNNEntropy(k=3)
    assert TINY.with_entropy(0.1, est).recipe.entropy is est
    with pytest.raises(ValueError, match="weight"):
        TINY.with_entropy(-1.0)


@pytest.mark.parametrize("field, value", [
    ("shape", (1, 8)), ("shape", (1, 8, 6)), ("shape", (0, 8, 8)), ("members", 0), ("width", 2.5),
    ("latent_dim", 0), ("steps", -1), ("batch", True), ("spectral", 1), ("opt_e", torch.optim.Adam),
    ("opt_g", None), ("recipe", "r1"), ("schedule", 0.7), ("ema", 1.0), ("seed", 1.5), ("init_seed", "0"),
])
def test_bad_fields_are_rejected_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        TINY.replace(**{field: value})


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.steps = 5


def test_a_two_step_run_on_digits_with_the_entropy_term():
    real = data.digits()
    g = TINY.with_entropy(0.03).build()
    h = g.train(real, log_every=1, progress=False)
    assert h.stopped is None and h.steps == [1, 2] and h["e_real"].shape == (2, 2)
    assert np.isfinite(h["entropy"]).all() and np.isfinite(h["penalty"][:1]).all()  # R1 on the first energy step
    # the same run by hand: train.train with the set-up's nets, optimisers and recipe
    ref = TINY.with_entropy(0.03).build()
    train.train(ref.energy, ref.generator, real, steps=2, batch=8, opt_e=ref.opt_e, opt_g=ref.opt_g,
                recipe=ref.config.recipe, seed=1, progress=False)
    for p, q in zip(train.state_tensors(g.energy, g.generator, g.opt_e, g.opt_g),
                    train.state_tensors(ref.energy, ref.generator, ref.opt_e, ref.opt_g), strict=True):
        assert torch.equal(p, q)


def test_schedule_and_ema_become_callbacks():
    g = TINY.replace(schedule=gan.LinearDecay(0.5, 0.1), ema=0.9).build()
    assert any(isinstance(c, train.Schedule) for c in g.callbacks) and g.sampler is g.generator  # not trained yet
    g.train(data.digits(), progress=False)
    assert g.sampler is g.ema.generator
    assert g.opt_e.param_groups[0]["lr"] == pytest.approx(2e-3 * 0.1)
