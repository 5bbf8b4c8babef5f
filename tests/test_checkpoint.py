"""Checkpoints of ``train.train`` (chapter 8): an interrupted and resumed run ends exactly where an
uninterrupted one does, and a checkpoint that cannot be used stops the run with a clear error and
is left untouched."""

import pytest
import torch

from egan_lib import data, entropy, gan, penalties, train

STEPS, EVERY, BATCH = 60, 20, 32
# zero-centred penalty on interpolates: its mixing weights come from torch's global random state,
# so an exact resume needs that state back too
RECIPE = train.Recipe(penalty=penalties.on_interpolates(penalties.zero_centred_interpolates), gamma=1.0,
                      entropy=entropy.KNNEntropy(), entropy_weight=0.01)


OPT = gan.Opt(torch.optim.Adam, 1e-3, {"betas": (0.5, 0.9)})  # momentum: the optimisers' state must resume too


def _setup(init_seed=0, **changes) -> gan.GAN:
    """A small 2D GAN; ``init_seed`` seeds its initial nets and torch's global random state (a session)."""
    torch.manual_seed(init_seed)
    cfg = gan.GAN2D(members=2, width=16, depth=2, latent_dim=3, opt_e=OPT, opt_g=OPT, recipe=RECIPE,
                    batch=BATCH, seed=3, init_seed=init_seed)
    return cfg.replace(**changes).build()


def _run(directory, setup=None, steps=STEPS, keep=2):
    run = setup or _setup()
    h = run.train(data.ring(), steps=steps, log_every=5, progress=False,
                  callbacks=[train.Snapshots(30, samples=8), train.Checkpoints(directory, EVERY, keep=keep)])
    return h, run.energy, run.generator, run.opt_e, run.opt_g


class _Interrupt(Exception):
    pass


def test_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, monkeypatch):
    h_a, *objs_a = _run(tmp_path / "a")

    calls = {"n": 0}
    real_jump = train.jump_step

    def jump_then_crash(*args, **kw):  # Colab disconnects in the middle of step 47
        calls["n"] += 1
        if calls["n"] == 47:
            raise _Interrupt
        return real_jump(*args, **kw)

    monkeypatch.setattr(train, "jump_step", jump_then_crash)
    with pytest.raises(_Interrupt):
        _run(tmp_path / "b")
    monkeypatch.setattr(train, "jump_step", real_jump)
    assert [f.name for f in sorted((tmp_path / "b").iterdir())] == ["step-00000020.pt", "step-00000040.pt"]

    torch.manual_seed(12345)  # a fresh session: other global random state, other initial nets
    h_b, *objs_b = _run(tmp_path / "b", setup=_setup(init_seed=99))
    for a, b in zip(train.state_tensors(*objs_a), train.state_tensors(*objs_b), strict=True):
        assert torch.equal(a, b)
    assert h_b.steps == h_a.steps
    for k in h_a.keys():
        assert (h_a[k] == h_b[k]).all(), k
    assert [s.step for s in h_b.snapshots] == [0, 30, 60]
    assert torch.equal(h_a.snapshots[-1].fakes, h_b.snapshots[-1].fakes)


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    _run(tmp_path, keep=2)
    assert [f.name for f in sorted(tmp_path.iterdir())] == ["step-00000040.pt", "step-00000060.pt"]


def test_a_finished_run_resumes_to_more_steps(tmp_path):
    _run(tmp_path, steps=40)
    h, *_ = _run(tmp_path, setup=_setup(init_seed=5), steps=STEPS)
    assert h.steps[0] == 5 and h.steps[-1] == STEPS  # the history of the first 40 steps came back too


def test_a_corrupt_checkpoint_is_a_clear_error_and_is_not_overwritten(tmp_path):
    _run(tmp_path, steps=40)
    latest = tmp_path / "step-00000040.pt"
    latest.write_bytes(b"half a checkpoint")
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    with pytest.raises(train.CheckpointError, match=r"step-00000040\.pt cannot be read.*left as it is"):
        _run(tmp_path)
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before


@pytest.mark.parametrize("change, match", [
    (dict(members=3), r"different run set-up \(members: checkpoint 2, this run 3\)"),
    (dict(width=8), r"does not fit these nets"),
])
def test_an_incompatible_checkpoint_is_a_clear_error_and_is_not_overwritten(tmp_path, change, match):
    _run(tmp_path, steps=20)
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    with pytest.raises(train.CheckpointError, match=match):
        _run(tmp_path, setup=_setup(**change))
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before


def test_checkpoint_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="every"):
        train.Checkpoints(tmp_path, 0)
    with pytest.raises(ValueError, match="keep"):
        train.Checkpoints(tmp_path, 2, keep=0)
    with pytest.raises(ValueError, match="directory"):
        train.Checkpoints(None, 2)


def test_an_estimator_with_state_but_no_state_dict_is_refused(tmp_path):
    class Stateful:  # trains a net of its own, but cannot save it
        def __init__(self):
            self.net = torch.nn.Linear(2, 1)

        def update(self, z, x):
            pass

        def estimate(self, z, x):
            return x.new_zeros(x.shape[0])

    run = _setup(recipe=train.Recipe(entropy=Stateful(), entropy_weight=0.1), batch=8)
    with pytest.raises(ValueError, match="no state_dict"):
        run.train(data.ring(), steps=5, progress=False, callbacks=[train.Checkpoints(tmp_path, 5)])


def test_the_statistics_network_of_the_mi_term_resumes_exactly(tmp_path, monkeypatch):
    def run(directory, init_seed, crash_at=None):
        est = entropy.MIEntropy(2, 2, 3, width=8, seed=init_seed)
        recipe = train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=1.0, entropy=est, entropy_weight=1.0)
        gan_run = _setup(init_seed=init_seed, recipe=recipe, batch=16, seed=1)
        ring = data.ring()
        real = ring
        if crash_at is not None:
            class Crash:
                calls = 0

                def sample(self, n, generator=None, members=None):
                    Crash.calls += 1
                    if Crash.calls == crash_at:
                        raise _Interrupt
                    return ring.sample(n, generator, members=members)
            real = Crash()
        gan_run.train(real, steps=30, progress=False, callbacks=[train.Checkpoints(directory, 10, verbose=False)])
        return train.state_tensors(gan_run.energy, gan_run.generator, est.net, est.opt)

    straight = run(tmp_path / "a", 0)
    with pytest.raises(_Interrupt):
        run(tmp_path / "b", 0, crash_at=25)
    assert sorted(f.name for f in (tmp_path / "b").iterdir()) == ["step-00000010.pt", "step-00000020.pt"]
    resumed = run(tmp_path / "b", 7)  # other initial nets and another shuffle seed: all restored
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))
