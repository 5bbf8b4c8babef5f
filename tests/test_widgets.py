"""The live controls, driven from code as a reader would drive them: set a value, check that what is
drawn changed as it should (the numbers behind the drawing, and the PNG itself)."""

import time

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("ipywidgets")

from egan_lib import controls, data, energies, nets, playground, widgets  # noqa: E402

torch.set_num_threads(1)
RING = data.ring()
BROAD = data.GaussianMixture2D([[0.0, 0.0]], std=1.5, name="broad")
BLOB = data.GaussianMixture2D([[0.0, 0.0]], std=0.2, name="blob")


def test_a_control_shows_a_note_in_static_html_and_the_widget_in_a_live_front_end():
    c = controls.DiracControl()
    bundle = c._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == c.widget.model_id
    assert "Colab or Jupyter" in bundle["text/html"] and "egan-live" in bundle["text/html"]
    # the book ranks the note above the widget view, so a page without a kernel never shows an empty box
    config = yaml.safe_load(open(__import__("pathlib").Path(__file__).parents[1] / "_config.yml"))
    overrides = config["sphinx"]["config"]["nb_mime_priority_overrides"]
    assert ["html", "application/vnd.jupyter.widget-view+json", None] in overrides


def test_dirac_control_r1_converges_and_no_penalty_circles():
    c = controls.DiracControl(penalty="R1 (zero-centred)", gamma=2.0, h=0.05)
    first = c.canvas.png
    assert c.result["radius"] < 1 and c.result["distance"] < 1e-2
    assert (c.result["eigenvalues"].real < 0).all()
    c.set(gamma=0.0)
    assert c.canvas.png != first and c.canvas.frames == 2
    assert np.allclose(c.result["eigenvalues"].real, 0) and c.result["distance"] > 1.0
    c.set(penalty="WGAN-GP (1-centred)", gamma=2.0)
    assert c.result["eigenvalues"] is None  # P'' jumps at psi = 0: no Jacobian, said in the figure
    assert np.allclose(c.result["path"][-1], [-2.0, 0.0], atol=0.05)  # WGAN-GP settles gamma away


def test_dirac_control_rejects_unknown_names():
    with pytest.raises(ValueError, match="penalty"):
        controls.DiracControl(penalty="R3")
    c = controls.DiracControl()
    with pytest.raises(ValueError, match="unknown control"):
        c.set(lambda_=1.0)


def test_momentum_control_carries_particles_past_their_nearest_pit():
    U = energies.PitsEnergy.random(2, rng=torch.Generator().manual_seed(1))
    x0 = 4 * (2 * torch.rand(2, 128, 2, generator=torch.Generator().manual_seed(2)) - 1)
    c = controls.MomentumControl(U, x0, extent=(-4, 4, -4, 4), momentum=0.0, lr=0.1)
    still, png = c.result["not_nearest"], c.canvas.png
    c.set(momentum=0.9)
    assert c.canvas.png != png
    assert (c.result["not_nearest"] > still).all() and c.result["not_nearest"].mean() >= 0.1, c.result
    c.set(optimizer="Adam", momentum=0.0)
    assert c.result["not_nearest"].mean() < 0.1


def test_digging_control_digs_deeper_with_time_and_flattens_with_gamma():
    c = controls.DiggingControl(RING, BROAD, members=2, steps=100)
    assert c.runs == 0  # nothing trains before a reader asks
    c.set(steps=100, gamma=0.0)
    short = c.result
    c.set(steps=400)
    assert (c.result["gap"] > short["gap"]).all() and c.bar.value == 400
    plain = c.result
    c.set(gamma=10.0)  # the same 400 steps with R1: the reals' slopes shrink
    assert (c.result["slope_real"] < 0.5 * plain["slope_real"]).all(), (c.result, plain)
    assert c.runs == 3


def test_margin_control_pushes_fakes_to_the_margin_and_keeps_reals_near_zero():
    c = controls.MarginControl(RING, BLOB, members=2)
    for m in (0.1, 1.0):
        c.set(margin=m, steps=300)
        assert (c.result["fake_over_m"] >= 1.0).all() and (c.result["real_over_m"] < 0.1).all(), (m, c.result)


def test_entropy_control_spreads_the_fakes():
    c = controls.EntropyControl(RING, members=2, steps=200)
    c.set(weight=0.0)
    none = c.result["entropy"]
    c.button.click()  # the Run button runs the same setting again: the same numbers
    assert np.allclose(c.result["entropy"], none)
    c.set(weight=0.1)
    assert (c.result["entropy"] > none + 0.5).all(), (none, c.result["entropy"])


def test_playground_trains_a_few_steps_headless_and_redraws():
    pg = playground.Playground(members=2, frame_steps=3, steps=200)
    start = pg.result["fakes"].clone()
    assert pg.steps_done == 0 and pg.frames == 1
    pg.step()
    pg.buttons["Step"].click()
    assert pg.steps_done == 6 and pg.frames == 3
    assert not torch.equal(pg.result["fakes"], start)  # the same noise: the fakes moved
    assert pg.result["energy"].shape == (2, pg.res, pg.res)
    assert "step 6" in pg.status.value


def test_the_playgrounds_controls_start_at_the_books_default_set_up():
    from egan_lib import gan
    pg = playground.Playground(members=3, steps=700)
    assert pg.config() == gan.GAN2D(members=3, steps=700, seed=0, init_seed=0)
    pg.set(lr_g=1e-3, mom_g=0.5, opt_e="SGD", mom_e=0.9)  # exact values, not a log grid's neighbours
    cfg = pg.config()
    assert cfg.opt_g == gan.Opt(torch.optim.Adam, 1e-3, {"betas": (0.5, 0.9)})
    assert cfg.opt_e == gan.Opt(torch.optim.SGD, 4e-3, {"momentum": 0.9})


def test_playground_start_and_pause_run_in_the_background():
    pg = playground.Playground(members=1, frame_steps=2, steps=10_000)
    pg.buttons["Start"].click()
    time.sleep(1.5)
    assert pg.running
    pg.buttons["Pause"].click()
    done = pg.steps_done
    assert not pg.running and done > 0 and pg.frames > 1
    time.sleep(0.3)
    assert pg.steps_done == done  # paused means paused


def test_playground_live_and_reset_settings():
    pg = playground.Playground(members=2, frame_steps=2, steps=100)
    pg.step()
    pg.set(gamma=7.5, entropy=0.05)  # live: the running set-up's recipe changes, the nets stay
    assert pg.gan.config.recipe.gamma == 7.5 and pg.gan.config.recipe.entropy_weight == 0.05
    assert pg.steps_done == 2
    pg.set(loss="margin (autoencoder)")  # needs the autoencoder energy: resets by itself
    assert isinstance(pg.gan.energy, nets.AutoencoderEnergy) and pg.steps_done == 0
    pg.step()
    pg.set(members=3, data="points typed in", points="0, 0\n2, 2\n-2, 1", loss="hinge")
    pg.buttons["Reset"].click()
    assert pg.gan.config.members == 3 and pg.mix.n_modes == 3 and isinstance(pg.gan.energy, nets.MLPEnergy)
    pg.set(points="0, zero")
    pg.buttons["Reset"].click()  # a typo is said in the status line, nothing raised, nothing lost
    assert "line 1" in pg.status.value and pg.mix.n_modes == 3


def test_parse_points_and_bad_arguments():
    mix = playground.parse_points("1, 2\n\n3 4\n")
    assert mix.n_modes == 2 and torch.equal(mix.centers, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(ValueError, match="points"):
        playground.parse_points("")
    with pytest.raises(ValueError, match="members"):
        playground.Playground(members=0)
    with pytest.raises(ValueError, match="data"):
        playground.Playground(data="moons")


def test_progress_callback_follows_the_loop():
    w = widgets.ipywidgets()
    bar = w.IntProgress()
    U = nets.MLPEnergy(1, width=8, depth=1)
    from egan_lib import train
    train.train(U, BROAD, RING, steps=25, batch=8, opt_e=torch.optim.SGD(U.parameters(), lr=1e-3),
                callbacks=[widgets.Progress(bar, every=10)], progress=False)
    assert bar.max == 25 and bar.value == 25


def test_control_close_empties_the_picture():
    c = controls.DiracControl()
    assert c.canvas.image.value
    c.close()
    assert c.canvas.image.value == b""


def test_playground_bench_writes_its_table(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "bench"
    out = subprocess.run([sys.executable, "playground.py", "--frames", "2", "--members", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=bench, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads((tmp_path / "playground.json").read_text())["rows"][0]
    assert row["members"] == 1 and row["frames_per_second"] > 0 and "frames/s" in out.stdout
