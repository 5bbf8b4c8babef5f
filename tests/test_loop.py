"""The training loop and its callbacks (chapter 2 shows the loop; chapter 8 resumes a run), the set-up
object ``gan.GAN2D``, and the regression tests of bugs found by trying the library as a new user."""

import functools
import inspect
import time

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from egan_lib import callbacks, data, gan, losses, nets, penalties, train

SMALL = gan.GAN2D(members=2, width=16, depth=2, latent_dim=3, steps=60, batch=32, seed=3)


def test_the_loop_fits_on_one_screen():
    src = inspect.getsource(train.train)
    body = src.split('"""')[2]  # after the docstring
    assert len(body.strip().splitlines()) <= 40


# ---- bugs found by a new user, each with the test that failed before the fix ----

def test_jump_step_leaves_a_frozen_energy_frozen():
    g = SMALL.build()
    g.energy.requires_grad_(False)
    train.jump_step(g.energy, g.generator, g.opt_g, g.generator.noise(8), SMALL.recipe)
    assert not any(p.requires_grad for p in g.energy.parameters())


def test_jump_step_restores_each_parameters_own_flag():
    g = SMALL.build()
    first = next(g.energy.parameters())
    first.requires_grad_(False)  # a caller that froze one layer only
    train.jump_step(g.energy, g.generator, g.opt_g, g.generator.noise(8), SMALL.recipe)
    flags = [p.requires_grad for p in g.energy.parameters()]
    assert flags[0] is False and all(flags[1:])


@pytest.mark.parametrize("change", [
    dict(energy_loss=losses.energy_hinge),
    dict(penalty=penalties.on_real(penalties.r2)),
    dict(penalty=penalties.on_fake(penalties.r1)),
])
def test_a_checkpoint_of_another_recipe_is_refused(tmp_path, change):
    cfg = SMALL.replace(steps=20)
    cfg.build().train(data.ring(), progress=False, callbacks=[train.Checkpoints(tmp_path, 10)])
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    other = cfg.replace(recipe=train.Recipe(**{"penalty": penalties.on_real(penalties.r1), "gamma": 2.0, **change}))
    with pytest.raises(train.CheckpointError, match="different run set-up.*recipe"):
        other.build().train(data.ring(), progress=False, callbacks=[train.Checkpoints(tmp_path, 10)])
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before


def test_the_same_recipe_rebuilt_is_accepted(tmp_path):
    SMALL.replace(steps=20).build().train(data.ring(), progress=False, callbacks=[train.Checkpoints(tmp_path, 10)])
    h = SMALL.replace(steps=30).build().train(data.ring(), progress=False,
                                              callbacks=[train.Checkpoints(tmp_path, 10, verbose=False)])
    assert h.steps[-1] == 30


class _Clock:
    """A fake clock for the loop: every generator step takes 10 ms."""

    def __init__(self, monkeypatch):
        self.t = 0.0
        monkeypatch.setattr(time, "perf_counter", lambda: self.t)
        real = train.jump_step

        def timed(*a, **kw):
            self.t += 0.01
            return real(*a, **kw)
        monkeypatch.setattr(train, "jump_step", timed)


class _Interrupt(Exception):
    pass


def test_steps_per_second_is_right_after_a_resume(tmp_path, monkeypatch):
    _Clock(monkeypatch)
    h = SMALL.build().train(data.ring(), progress=False)
    assert h.steps_per_second == pytest.approx(100.0)

    class Crash(data.GaussianMixture2D):
        calls = 0

        def sample(self, n, rng=None, *, members=None):
            Crash.calls += 1
            if Crash.calls == 50:
                raise _Interrupt
            return super().sample(n, rng, members=members)

    ring = data.ring()
    with pytest.raises(_Interrupt):
        SMALL.build().train(Crash(ring.centers, ring.std), progress=False, callbacks=[train.Checkpoints(tmp_path, 20)])
    h = SMALL.build().train(ring, progress=False, callbacks=[train.Checkpoints(tmp_path, 20, verbose=False)])
    assert h.steps_run == 60  # 40 before the checkpoint, 20 after the resume
    assert h.steps_per_second == pytest.approx(100.0)


# ---- schedules and the moving average resume exactly ----

def _run_with_extras(directory, cfg, crash_at=None):
    g = cfg.build()
    ring = data.ring()

    class Crashing:
        calls = 0

        def sample(self, n, rng=None, *, members=None):
            Crashing.calls += 1
            if Crashing.calls == crash_at:
                raise _Interrupt
            return ring.sample(n, rng, members=members)

    h = g.train(ring if crash_at is None else Crashing(), progress=False, log_every=5,
                callbacks=[train.Snapshots(30, samples=8), train.Checkpoints(directory, 20, verbose=False)])
    return h, g


def test_schedules_and_ema_resume_bitwise(tmp_path):
    cfg = SMALL.replace(schedule=gan.LinearDecay(0.5, 0.1), ema=0.9)
    h_a, a = _run_with_extras(tmp_path / "a", cfg)
    with pytest.raises(_Interrupt):
        _run_with_extras(tmp_path / "b", cfg, crash_at=47)
    h_b, b = _run_with_extras(tmp_path / "b", cfg.replace(init_seed=99))  # other initial nets: all restored
    objs = lambda g: (g.energy, g.generator, g.opt_e, g.opt_g, g.ema.generator)  # noqa: E731
    assert all(torch.equal(x, y) for x, y in zip(train.state_tensors(*objs(a)), train.state_tensors(*objs(b)),
                                                 strict=True))
    lr = lambda g: [o.param_groups[0]["lr"] for o in (g.opt_e, g.opt_g)]  # noqa: E731
    assert lr(a) == lr(b) and lr(a)[0] == pytest.approx(0.1 * cfg.opt_e.lr)  # decayed to 10 % by the last step
    assert h_a.steps == h_b.steps and all((h_a[k] == h_b[k]).all() for k in h_a.keys())
    assert [s.step for s in h_b.snapshots] == [0, 30, 60]


def test_linear_decay_holds_then_falls():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = gan.LinearDecay(start=0.5, to=0.01)(opt, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == lrs[50] == 1.0 and lrs[75] == pytest.approx(0.505) and lrs[100] == pytest.approx(0.01)


def test_ema_averages_the_weights():
    G = nets.MLPGenerator(1, width=4, depth=1)
    ema = callbacks.EMA(G, 0.5)
    with torch.no_grad():
        before = [p.clone() for p in G.parameters()]
        for p in G.parameters():
            p.add_(1.0)

    class R:
        step = 1
    ema.on_step(R)
    assert all(torch.allclose(a, b + 0.5) for a, b in zip(ema.generator.parameters(), before))


def test_ema_starts_from_the_weights_a_fresh_run_trains_from():
    g = SMALL.replace(ema=0.9).build()
    with torch.no_grad():  # a chapter's own initial generator, set after build (chapter 6's bunched start)
        for p in g.generator.parameters():
            p.mul_(0.5)
    assert g.sampler is g.generator  # before training, an average of no steps is the generator itself
    changed = [p.clone() for p in g.generator.parameters()]
    g.train(data.ring(), steps=1, progress=False)
    step = [p.clone() for p in g.generator.parameters()]
    assert g.sampler is g.ema.generator  # 0.9 * the changed weights + 0.1 * those after one step
    for avg, a, b in zip(g.ema.generator.parameters(), changed, step, strict=True):
        assert torch.allclose(avg, 0.9 * a + 0.1 * b, atol=1e-6)


def test_ema_carries_on_over_a_run_trained_in_parts():
    g = SMALL.replace(ema=0.9).build()
    g.train(data.ring(), steps=1, progress=False)
    first = [p.clone() for p in g.ema.generator.parameters()]
    g.train(data.ring(), steps=1, seed=1, progress=False)  # the next part (the playground trains frame by frame)
    for avg, a, b in zip(g.ema.generator.parameters(), first, g.generator.parameters(), strict=True):
        assert torch.allclose(avg, 0.9 * a + 0.1 * b, atol=1e-6)  # not restarted at the live weights


# ---- the set-up object ----

def test_a_set_up_trains_any_mixture_in_two_lines():
    mix = data.GaussianMixture2D([[0.0, 3.0], [2.0, -1.0], [-2.5, -2.0]], std=0.1, name="three")
    g = SMALL.replace(steps=5).build()
    h = g.train(mix, progress=False)
    assert h.steps == [5] and g.sample(7).shape == (2, 7, 2)


def test_a_set_up_is_reproducible_and_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a, b = SMALL.build(), SMALL.build()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(train.state_tensors(a.energy, a.generator),
                                                 train.state_tensors(b.energy, b.generator)))
    c = SMALL.replace(init_seed=1).build()
    assert not torch.equal(next(c.energy.parameters()), next(a.energy.parameters()))


def test_a_set_up_without_init_seed_draws_from_the_global_state():
    torch.manual_seed(5)
    a = SMALL.replace(init_seed=None).build()
    torch.manual_seed(5)
    E = nets.MLPEnergy(2, width=16, depth=2)
    assert torch.equal(next(a.energy.parameters()), next(E.parameters()))


@pytest.mark.parametrize("field, value", [("members", 0), ("width", 2.5), ("activation", "relu"), ("ema", 1.0),
                                          ("opt_e", torch.optim.Adam), ("schedule", 3), ("recipe", "eq1")])
def test_a_bad_set_up_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SMALL.replace(**{field: value})


def test_bad_optimiser_settings_are_refused():
    with pytest.raises(ValueError, match="kind"):
        gan.Opt(kind="adam")
    with pytest.raises(ValueError, match="lr"):
        gan.Opt(lr=0)


# ---- device hygiene: nothing of a training step is made on another device ----

class _Devices(TorchDispatchMode):
    """Records the device of every tensor that any operation makes."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.seen.add(t.device.type)
        return out


def test_every_tensor_of_a_training_step_is_made_on_the_nets_device():
    # With `meta` as the default device, any tensor made without naming a device (a randn for the
    # noise, a randint for the data) lands on `meta`; the nets live on the CPU, so such a tensor would
    # be a host/device mix-up on a GPU machine.
    cfg = SMALL.replace(steps=3, schedule=gan.LinearDecay(), ema=0.9)
    g, ring = cfg.build("cpu"), data.ring()
    torch.set_default_device("meta")
    try:
        with _Devices() as seen:
            g.train(ring, progress=False, callbacks=[train.Snapshots(2, samples=4, grid=((-1, 1, -1, 1), 4))])
    finally:
        torch.set_default_device(None)
    assert seen.seen == {"cpu"}, seen.seen


def test_change_recipe_switches_the_entropy_term_off_and_resumes(tmp_path):
    from egan_lib import entropy
    cfg = SMALL.replace(steps=30, recipe=train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=2.0,
                                                      entropy=entropy.KNNEntropy(), entropy_weight=0.1))
    h = cfg.build().train(data.ring(), progress=False, log_every=5, callbacks=[train.ChangeRecipe(21, entropy_weight=0.0)])
    straight = cfg.build()
    straight.train(data.ring(), progress=False, steps=20)
    assert h.steps[-1] == 30
    # resumed after the switch: the checkpoint compares the recipe the run started with
    cb = lambda: [train.ChangeRecipe(21, entropy_weight=0.0), train.Checkpoints(tmp_path, 25, verbose=False)]  # noqa: E731
    a = cfg.build()
    a.train(data.ring(), progress=False, callbacks=cb())
    b = cfg.build()
    b.train(data.ring(), progress=False, callbacks=cb(), steps=30)
    assert all(torch.equal(x, y) for x, y in zip(train.state_tensors(a.generator), train.state_tensors(b.generator)))


def test_set_ups_print_without_memory_addresses():
    text = repr(SMALL.replace(activation=functools.partial(nn.LeakyReLU, 0.2), schedule=gan.LinearDecay()))
    assert "0x" not in text and "nn.LeakyReLU" in text and "losses.energy_wgan" in text and "penalties.r1" in text
    assert "0x" not in repr(gan.ImageGAN()) and "0x" not in repr(SMALL.recipe)
