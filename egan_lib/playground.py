"""The playground: one energy GAN (several members side by side) trained live, with every knob.

``Playground()`` builds the book's default set-up (``gan.GAN2D``) from its controls and trains it with
the book's loop (``GAN.train``, i.e. ``train.train``) a few steps per frame; after every frame the
energy landscape of each shown member, the real samples, the fakes (always from the same noise, so
they visibly move) and the mode statistics redraw. Start / Pause run it in a background thread (the
notebook stays responsive); Step trains one frame; Reset rebuilds the nets from the controls.

The loss, the penalty, gamma and the entropy weight act at once on the running nets; the data, the
members, the optimisers and the run length act at the next Reset (a switch to or from the margin
loss resets by itself: it needs the autoencoder energy). Headless use (tests, ``bench/playground.py``)::

    pg = Playground(members=2)
    pg.step()             # one frame: train, sample, draw
    pg.set(gamma=10.0)    # as if the slider were moved
"""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import torch

from . import data, entropy, gan, losses, metrics, nets, penalties, train
from .widgets import Canvas, Control, _choice, _slider, ipywidgets

__all__ = ["Playground", "parse_points"]

DATA = {"ring of 8": data.ring, "grid of 25": data.grid, "three rings": data.rings, "points typed in": None}
LOSSES = {"eq. (1)": losses.energy_wgan, "hinge": losses.energy_hinge, "margin (autoencoder)": losses.energy_margin}
PENALTIES = {"R1 (on reals)": penalties.on_real(penalties.r1), "R2 (on fakes)": penalties.on_fake(penalties.r2),
             "WGAN-GP (interpolates)": penalties.on_interpolates(penalties.wgan_gp), "none": None}
LIVE = ("loss", "margin", "penalty", "gamma", "entropy")  # act on the running nets


def parse_points(text: str, std: float = 0.05) -> data.GaussianMixture2D:
    """Modes typed one per line as ``x, y`` (or ``x y``) -> a mixture with standard deviation ``std``."""
    rows = []
    for i, line in enumerate(text.strip().splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        try:
            x, y = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"points: line {i} must be two numbers 'x, y', got {line!r}") from None
        rows.append((x, y))
    if not rows:
        raise ValueError("points: type at least one mode as 'x, y'")
    return data.GaussianMixture2D(torch.tensor(rows), std, name=f"{len(rows)} typed points")


class Playground(Control):
    """A live energy GAN. ``steps_done``, ``frames``, ``result`` (the last frame's fakes, energies on
    the grid and mode statistics) and ``fps()`` say what it did."""

    def __init__(self, *, data: str = "ring of 8", members: int = 4, show: int = 4, frame_steps: int = 5,
                 steps: int = 2000, points: str = "-1, 0\n1, 0\n0, 1.5", res: int = 64, n_fakes: int = 400,
                 seed: int = 0):
        w = ipywidgets()
        if data not in DATA:
            raise ValueError(f"data must be one of {list(DATA)}, got {data!r}")
        for name, v in (("members", members), ("show", show), ("frame_steps", frame_steps), ("steps", steps)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        d = gan.GAN2D()
        self.res, self.n_fakes, self.seed, self.show = res, n_fakes, seed, show
        adam_b1 = d.opt_e.options["betas"][0]
        controls = {
            "data": w.Dropdown(options=list(DATA), value=data, description="data"),
            "points": w.Textarea(value=points, description="points (x, y)", rows=3),
            "members": _slider("int", members, 1, 8, 1, "members"),
            "loss": w.Dropdown(options=list(LOSSES), value="eq. (1)", description="energy loss"),
            "margin": _slider("float", 1.0, 0.05, 3.0, 0.05, "margin m"),
            "penalty": w.Dropdown(options=list(PENALTIES), value="R1 (on reals)", description="penalty"),
            "gamma": _slider("float", d.recipe.gamma, 0.0, 20.0, 0.1, "γ"),
            "entropy": _slider("float", 0.0, 0.0, 0.3, 0.005, "entropy λ (k-NN)"),
            "frame_steps": _slider("int", frame_steps, 1, 100, 1, "steps per frame"),
            "opt_e": w.Dropdown(options=["Adam", "SGD"], value="Adam", description="U's optimiser"),
            "mom_e": _slider("float", adam_b1, 0.0, 0.99, 0.01, "U: β1 or μ"),
            "lr_e": _choice([1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 0.1], d.opt_e.lr, "U: lr"),
            "opt_g": w.Dropdown(options=["Adam", "SGD"], value="Adam", description="G's optimiser"),
            "mom_g": _slider("float", adam_b1, 0.0, 0.99, 0.01, "G: β1 or μ"),
            "lr_g": _choice([1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 0.1], d.opt_g.lr, "G: lr"),
            "steps": _slider("int", steps, 100, 20000, 100, "run length (lr decay)"),
        }
        self.buttons = {name: w.Button(description=name) for name in ("Start", "Pause", "Step", "Reset")}
        for name, fn in (("Start", self.start), ("Pause", self.pause), ("Step", self.step), ("Reset", self.reset)):
            self.buttons[name].on_click(lambda _b, fn=fn: self._safely(fn))
        self._lock, self._stop, self._thread = threading.Lock(), threading.Event(), None
        super().__init__(controls, Canvas((2.6 * min(show, members) + 0.4, 3.0)), buttons=list(self.buttons.values()))
        self.reset()

    # --- building and training -------------------------------------------------------------------
    def mixture(self) -> data.GaussianMixture2D:
        v = self.values()
        return parse_points(v["points"]) if DATA[v["data"]] is None else DATA[v["data"]]()

    def recipe(self) -> train.Recipe:
        v = self.values()
        loss = LOSSES[v["loss"]]
        if loss is losses.energy_margin:
            loss = functools.partial(losses.energy_margin, margin=float(v["margin"]))
        penalty = PENALTIES[v["penalty"]]
        gamma = float(v["gamma"]) if penalty is not None else 0.0
        lam = float(v["entropy"])
        return train.Recipe(energy_loss=loss, penalty=penalty if gamma > 0 else None, gamma=gamma,
                            entropy=entropy.KNNEntropy(k=1) if lam > 0 else None, entropy_weight=lam)

    def config(self) -> gan.GAN2D:
        """The set-up the controls describe: the book's default with what they change."""
        v = self.values()
        opts = {}
        for net in ("e", "g"):
            mom = float(v[f"mom_{net}"])
            opts[f"opt_{net}"] = (gan.Opt(torch.optim.Adam, float(v[f"lr_{net}"]), {"betas": (mom, 0.9)})
                                  if v[f"opt_{net}"] == "Adam" else
                                  gan.Opt(torch.optim.SGD, float(v[f"lr_{net}"]), {"momentum": mom}))
        return gan.GAN2D(members=int(v["members"]), recipe=self.recipe(), steps=int(v["steps"]),
                         seed=self.seed, init_seed=self.seed, **opts)

    def reset(self) -> None:
        """Stop, rebuild the nets from the controls, draw the start."""
        self.pause()
        with self._lock:
            self.mix = self.mixture()
            cfg = self.config()
            built = cfg.build()
            if self.values()["loss"] == "margin (autoencoder)":  # EBGAN's non-negative energy for the margin loss
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    energy = nets.AutoencoderEnergy(cfg.members, latent_dim=2, width=cfg.width, depth=1,
                                                    activation=cfg.activation)
                built = gan.GAN(cfg, energy, built.generator)
            self.gan, self.steps_done, self.frames, self._times = built, 0, 0, []
            self.extent = self.mix.extent(0.6)
            g = torch.Generator().manual_seed(self.seed + 1)
            self.real = self.mix.sample(300, g)
            self._layout()
            self._frame()

    def _changed(self, change) -> None:
        if self._hold:
            return
        key = None if change is None else next(k for k, c in self.controls.items() if c is change["owner"])
        if key is None or key in LIVE:  # the others act at the next Reset
            self._apply_live()

    def _apply_live(self) -> None:
        margin_now = self.values()["loss"] == "margin (autoencoder)"
        if margin_now != isinstance(self.gan.energy, nets.AutoencoderEnergy):  # the energy must change too
            self.reset()
            return
        with self._lock:
            self.gan.config = self.gan.config.replace(recipe=self.recipe())

    def _safely(self, fn) -> None:  # a button: a bad value (a typo in the points) is said, not raised
        try:
            fn()
        except ValueError as exc:
            self.status.value = f"<b>{exc}</b>"

    def step(self) -> None:
        """One frame: ``steps per frame`` steps of the book's loop, then sample and draw."""
        with self._lock:
            todo = min(int(self.controls["frame_steps"].value), self.gan.config.steps - self.steps_done)
            if todo > 0:
                self.gan.train(self.mix, steps=todo, seed=self.seed * 100_003 + self.steps_done,
                               log_every=todo, progress=False)
                self.steps_done += todo
            self._frame()

    def start(self) -> None:
        """Train frame after frame in a background thread until Pause or the end of the run."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._times = []  # frames/s of this stretch, not across a pause
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set() and self.steps_done < self.gan.config.steps:
            self.step()

    def pause(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.pause()
        super().close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def fps(self) -> float:
        """Frames per second over the last (up to) 20 frames."""
        t = self._times[-21:]
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else float("nan")

    # --- drawing -----------------------------------------------------------------------------------
    def _layout(self) -> None:
        fig = self.canvas.fig
        fig.clear()
        k = min(self.show, self.gan.config.members)
        fig.set_size_inches(2.6 * k + 0.4, 3.0)
        self.axes = fig.subplots(1, k, squeeze=False)[0]
        x0, x1, y0, y1 = self.extent
        self.artists = []
        r = self.real.cpu().numpy()
        for ax in self.axes:
            im = ax.imshow(np.zeros((self.res, self.res)), origin="lower", extent=self.extent, cmap="viridis",
                           aspect="equal", interpolation="nearest")  # smoothing costs frames
            # markers as Line2D and no axis machinery: a frame draws in two thirds of the time
            ax.plot(r[:, 0], r[:, 1], "o", ms=2.2, mew=0, color="white", alpha=0.9)
            (fk,) = ax.plot([], [], "o", ms=2.2, mew=0, color="#ff7f0e")
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ax.set_axis_off()
            self.artists.append((im, fk, ax.set_title("", fontsize=9)))
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.04)

    def _frame(self) -> None:
        g = self.gan
        fakes = g.sample(self.n_fakes, torch.Generator().manual_seed(self.seed + 2))
        _, _, E = nets.energy_on_grid(g.energy, self.extent, self.res)
        stats = metrics.mode_stats(fakes, self.mix)
        self.result = dict(fakes=fakes.cpu(), energy=E.cpu(), stats=stats, step=self.steps_done)
        for k, (im, fk, title) in enumerate(self.artists):
            e = E[k].cpu().numpy()
            lo, hi = float(e.min()), float(np.quantile(e, 0.9))
            im.set_data(e)
            im.set_clim(lo, hi if hi > lo else lo + 1e-6)
            fk.set_data(*fakes[k].cpu().numpy().T)
            title.set_text(f"member {k}: {stats.modes[k]}/{self.mix.n_modes} modes, "
                           f"{stats.high_quality[k]:.0f} % HQ")
        self.canvas.fig.suptitle(f"{self.mix.name}, step {self.steps_done} of {g.config.steps}", fontsize=10)
        self.canvas.draw()
        self.frames += 1
        self._times.append(time.perf_counter())
        rate = f"{self.fps():.1f} frames/s" if len(self._times) > 1 else "press Start or Step"
        self.status.value = (f"step {self.steps_done}: modes {np.mean(stats.modes):.1f}, high quality "
                             f"{np.mean(stats.high_quality):.0f} % (mean over {g.config.members} members); {rate}")
