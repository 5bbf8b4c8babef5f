"""The chapters' live controls (one parameter that is the point of the chapter, turned by hand).

* ``DiracControl`` (chapter 3): penalty, gamma, step size -> phase portrait and eigenvalues, at once.
* ``MomentumControl`` (chapter 5): heavy ball / Adam, momentum, step size -> particle paths on pits.
* ``DiggingControl`` (chapter 1): how long to dig and gamma -> the energy dug against fixed fakes.
* ``MarginControl`` (chapter 4): the margin m of EBGAN's loss -> the autoencoder energy it digs.
* ``EntropyControl`` (chapter 7): the entropy weight lambda -> a short GAN run from a bunched start.

Each is a ``widgets.Control``: display it in a notebook, or drive it from code with ``set(...)`` and
read the numbers behind its drawing in ``result`` (the tests do).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from . import data, dirac, entropy, gan, losses, metrics, nets, particles, penalties, plot, train
from .widgets import Canvas, Control, RunControl, _choice, _slider, ipywidgets

__all__ = ["DiracControl", "MomentumControl", "DiggingControl", "MarginControl", "EntropyControl"]


class DiracControl(Control):
    """Chapter 3's Dirac-GAN, live: the penalty, its weight gamma, the step size h and the update order
    redraw the phase portrait (a simulated path over the time 50) and the eigenvalues at (0, 0) at once.

    ``result``: ``eigenvalues`` of the flow, ``radius`` (spectral radius of one discrete update: below 1
    the path converges), ``distance`` of the path's end from the equilibrium.
    """

    PENALTIES = {"none": None, "R1 (zero-centred)": dirac.R1, "WGAN-GP (1-centred)": dirac.WGAN_GP}

    def __init__(self, *, penalty: str = "R1 (zero-centred)", gamma: float = 2.0, h: float = 0.05,
                 time: float = 50.0):
        w = ipywidgets()
        if penalty not in self.PENALTIES:
            raise ValueError(f"penalty must be one of {list(self.PENALTIES)}, got {penalty!r}")
        self.time = float(time)
        super().__init__({
            "penalty": w.Dropdown(options=list(self.PENALTIES), value=penalty, description="penalty"),
            "gamma": _slider("float", gamma, 0.0, 10.0, 0.1, "γ"),
            "h": _choice([0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8], h, "step size h"),
            "updates": w.ToggleButtons(options=["alternating", "simultaneous"], value="alternating"),
        }, Canvas((10.0, 4.2)))
        self.update()

    def update(self) -> None:
        v = self.values()
        penalty = self.PENALTIES[v["penalty"]]
        gamma = 0.0 if penalty is None else float(v["gamma"])
        rule = dirac.Rule(dirac.LINEAR, penalty, gamma)
        h, alternating = float(v["h"]), v["updates"] == "alternating"
        steps = max(1, min(20000, round(self.time / h)))
        path = dirac.simulate(rule, theta0=1.0, psi0=1.0, h=h, steps=steps, alternating=alternating)
        path = np.clip(path, -1e3, 1e3)
        smooth = penalty is None or gamma == 0 or penalty.curvature is not None
        eig = dirac.eigenvalues(rule).numpy() if smooth else None
        step_eig = torch.linalg.eigvals(dirac.update_matrix(rule, h, alternating=alternating)).numpy() if smooth else None
        self.result = dict(eigenvalues=eig, step_eigenvalues=step_eig, distance=float(np.hypot(*path[-1])),
                           radius=None if step_eig is None else float(np.abs(step_eig).max()), path=path)
        fig = self.canvas.fig
        fig.clear()
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
        plot.dirac_phase(rule, path=path, ax=ax1, res=15,
                         title=f"{v['penalty']}, γ = {gamma:g}: distance after t = {self.time:g}: "
                               f"{self.result['distance']:.1e}")
        t = np.linspace(0, 2 * np.pi, 200)
        ax2.plot(np.cos(t), np.sin(t), color="0.6", lw=1, label="|λ| = 1 (one step)")
        ax2.axvline(0, color="0.8", lw=1)
        if smooth:
            ax2.scatter(eig.real, eig.imag, s=60, marker="x", color="C3", label="flow: λ of the Jacobian")
            ax2.scatter(step_eig.real, step_eig.imag, s=40, facecolors="none", edgecolors="C0",
                        label=f"one update of size h: ρ = {self.result['radius']:.4f}")
            ax2.set_title("eigenvalues at (0, 0)", fontsize=10)
        else:
            ax2.set_title("no eigenvalues: WGAN-GP's P'' jumps at ψ = 0", fontsize=10)
        ax2.set_xlim(-2.2, 1.6)
        ax2.set_ylim(-1.6, 1.6)
        ax2.set_aspect("equal")
        ax2.set_xlabel("real part")
        ax2.set_ylabel("imaginary part")
        ax2.legend(fontsize=8, loc="lower left")
        fig.tight_layout()
        self.canvas.draw()


class MomentumControl(Control):
    """Chapter 5's particles, live: the optimiser (heavy ball or Adam), its momentum (mu or beta1) and
    its step size roll ``x0`` down the frozen pits ``energy``; the paths of one member redraw.

    ``result``: ``not_nearest`` (per member: the share of particles that end outside the pit they
    started in), ``deeper`` (the share that end in a deeper pit than their nearest).
    """

    def __init__(self, energy, x0: torch.Tensor, *, extent, steps: int = 150, member: int = 0,
                 show: int = 64, optimizer: str = "heavy ball", momentum: float = 0.9, lr: float = 0.1,
                 res: int = 60):
        w = ipywidgets()
        if optimizer not in ("heavy ball", "Adam"):
            raise ValueError(f"optimizer must be 'heavy ball' or 'Adam', got {optimizer!r}")
        if not 0 <= member < x0.shape[0]:
            raise ValueError(f"member must be in [0, {x0.shape[0]}), got {member!r}")
        self.energy, self.x0, self.steps, self.member, self.show = energy, x0, steps, member, show
        self.extent = extent
        self.start_pit, _ = energy.pit_of(x0)
        self.xs, self.ys, E = nets.energy_on_grid(energy, extent, res)
        self.E = E[member].clamp(max=1.5)
        super().__init__({
            "optimizer": w.ToggleButtons(options=["heavy ball", "Adam"], value=optimizer),
            "momentum": _slider("float", momentum, 0.0, 0.99, 0.01, "momentum (μ or β1)", continuous_update=False),
            "lr": _choice([0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8], lr, "step size", continuous_update=False),
        }, Canvas((9.0, 4.4)))
        self.update()

    def update(self) -> None:
        v = self.values()
        mu, lr = float(v["momentum"]), float(v["lr"])
        if v["optimizer"] == "heavy ball":
            opt, kw = torch.optim.SGD, {"momentum": mu}
        else:
            opt, kw = torch.optim.Adam, {"betas": (mu, 0.9)}
        r = particles.roll(self.energy, self.x0, steps=self.steps, lr=lr, optimizer=opt, optimizer_kwargs=kw,
                           record_every=2)
        end_pit, _ = self.energy.pit_of(r.final)
        moves = particles.pit_moves(self.start_pit, end_pit, self.energy.n_pits, depths=self.energy.depths)
        self.result = dict(not_nearest=moves.not_nearest, deeper=moves.deeper)
        fig = self.canvas.fig
        fig.clear()
        ax = fig.subplots()
        plot.draw_landscape(ax, self.xs, self.ys, self.E, levels=20)
        paths = r.path[:, self.member, :self.show].cpu()
        plot.trajectories(paths, ax=ax, every=1)
        x0, x1, y0, y1 = self.extent
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        k = self.member
        ax.set_title(f"{v['optimizer']}, momentum {mu:.2f}, step {lr:.3g}: "
                     f"{100 * moves.not_nearest[k]:.0f} % of member {k}'s particles leave their nearest pit "
                     f"(mean over members {100 * moves.not_nearest.mean():.0f} %)", fontsize=10)
        fig.tight_layout()
        self.canvas.draw()


def _landscapes(fig, energy, extent, *, real, fake, members, clip=None, title=""):
    """Member landscapes side by side, reals and fakes on top (the short-run controls' figure)."""
    xs, ys, E = nets.energy_on_grid(energy, extent, 60)
    axes = fig.subplots(1, members, squeeze=False)[0]
    for k, ax in enumerate(axes):
        e = E[k] if clip is None else E[k].clamp(max=clip)
        plot.draw_landscape(ax, xs, ys, e, real=real[k, :300], fake=fake[k, :300], levels=20,
                            title=f"member {k}{title}")
    fig.tight_layout()


class DiggingControl(RunControl):
    """Chapter 1, live: dig an energy against fixed fakes for ``steps`` steps with eq. (1) plus R1 at
    weight gamma (0: eq. (1) alone). ``result``: ``gap`` = E_fake U - E_real U and ``slope_real`` =
    mean |grad U| at the reals, per member."""

    def __init__(self, real, fake, *, members: int = 2, steps: int = 500, max_steps: int = 4000,
                 gamma: float = 0.0, width: int = 64, depth: int = 3, lr: float = 1e-4, batch: int = 256,
                 extent=(-2.5, 2.5, -2.5, 2.5)):
        g = torch.Generator().manual_seed(3)
        x_real, x_fake = real.sample(1000, g, members=members), fake.sample(1000, g, members=members)

        def run(v, callbacks):
            gamma = float(v["gamma"])
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # every run digs from the same initial energy
                U = nets.MLPEnergy(members, width=width, depth=depth)
            recipe = train.Recipe(penalty=penalties.on_real(penalties.r1) if gamma > 0 else None, gamma=gamma)
            train.train(U, fake, real, steps=int(v["steps"]), batch=batch, opt_g=None, recipe=recipe, seed=0,
                        opt_e=torch.optim.Adam(U.parameters(), lr=lr, betas=(0.5, 0.9)), callbacks=callbacks,
                        progress=False)
            return U

        def draw(fig, U, v):
            _landscapes(fig, U, extent, real=x_real, fake=x_fake, members=members,
                        title=f": {v['steps']} steps, γ = {v['gamma']:g}")
            with torch.no_grad():
                gap = (U(x_fake).mean(1) - U(x_real).mean(1)).numpy()
            return dict(gap=gap, slope_real=metrics.slopes(U, x_real).mean(1).detach().numpy())

        super().__init__({"steps": _slider("int", steps, 50, max_steps, 50, "digging steps"),
                          "gamma": _slider("float", gamma, 0.0, 10.0, 0.1, "R1 weight γ")},
                         run, draw, figsize=(4.3 * members, 4.0))


class MarginControl(RunControl):
    """Chapter 4, live: EBGAN's autoencoder energy dug with the margin loss
    E U_real + E max(0, m - U_fake) against fixed fakes. ``result``: ``real_over_m`` and
    ``fake_over_m`` (E U / m on the reals and the fakes, per member)."""

    def __init__(self, real, fake, *, margin: float = 0.3, members: int = 2, steps: int = 500,
                 width: int = 64, lr: float = 1e-3, batch: int = 256, extent=(-2.5, 2.5, -2.5, 2.5)):
        g = torch.Generator().manual_seed(3)
        x_real, x_fake = real.sample(1000, g, members=members), fake.sample(1000, g, members=members)

        def run(v, callbacks):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(1)
                U = nets.AutoencoderEnergy(members, latent_dim=2, width=width, depth=1)
            recipe = train.Recipe(energy_loss=functools.partial(losses.energy_margin, margin=float(v["margin"])))
            train.train(U, fake, real, steps=int(v["steps"]), batch=batch, recipe=recipe, seed=0, progress=False,
                        opt_e=torch.optim.Adam(U.parameters(), lr=lr, betas=(0.0, 0.9)), callbacks=callbacks)
            return U

        def draw(fig, U, v):
            m = float(v["margin"])
            _landscapes(fig, U, extent, real=x_real, fake=x_fake, members=members, clip=3 * m,
                        title=f": m = {m:g} (U clipped at 3m)")
            with torch.no_grad():
                return dict(real_over_m=(U(x_real).mean(1) / m).numpy(), fake_over_m=(U(x_fake).mean(1) / m).numpy())

        super().__init__({"margin": _slider("float", margin, 0.05, 2.0, 0.05, "margin m"),
                          "steps": _slider("int", steps, 50, 3000, 50, "digging steps")},
                         run, draw, figsize=(4.3 * members, 4.0))


class EntropyControl(RunControl):
    """Chapter 7, live: the book's default GAN on ``mixture`` with the k-NN entropy term at weight
    lambda (0: none), for ``steps`` steps, from a generator bunched at one mode or from a normal start.
    ``result``: ``stats`` (modes, high quality, reverse KL per member) and ``entropy`` of the fakes (nats)."""

    def __init__(self, mixture=None, *, weight: float = 0.0, members: int = 2, steps: int = 600,
                 bunched: bool = True, set_up: gan.GAN2D | None = None):
        w = ipywidgets()
        mixture = mixture if mixture is not None else data.ring()
        base = (set_up or gan.GAN2D()).replace(members=members)
        extent = mixture.extent(0.6)
        x_real = mixture.sample(1000, torch.Generator().manual_seed(3), members=members)

        def run(v, callbacks):
            run_ = base.replace(steps=int(v["steps"])).with_entropy(float(v["weight"])).build()
            if v["start"] == "bunched at one mode":
                nets.bunch_generator(run_.generator, mixture.centers[0], 0.01)
            run_.train(mixture, callbacks=callbacks, progress=False)
            return run_

        def draw(fig, run_, v):
            x = run_.sample(1000, torch.Generator().manual_seed(4))
            _landscapes(fig, run_.energy, extent, real=x_real, fake=x, members=members,
                        title=f": λ = {v['weight']:g}")
            return dict(stats=metrics.mode_stats(x, mixture), entropy=entropy.sample_entropy(x).numpy())

        super().__init__({"weight": _slider("float", weight, 0.0, 0.1, 0.0025, "entropy weight λ",
                                            readout_format=".4f"),
                          "steps": _slider("int", steps, 100, 4000, 100, "steps"),
                          "start": w.ToggleButtons(options=["bunched at one mode", "normal"],
                                                   value="bunched at one mode" if bunched else "normal")},
                         run, draw, figsize=(4.3 * members, 4.0))
