"""Figures of the book: energy landscapes with samples, particles rolling downhill, training
curves with the spread over members, and ``to_jshtml`` animations that work in static HTML.

Every function draws on a given ``ax`` (or makes one) and returns what it drew on, so a
chapter can compose figures.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from . import _validate
from .nets import energy_on_grid

__all__ = ["landscape", "draw_landscape", "trajectories", "curves", "animate_training", "dirac_phase",
           "image_grid", "panels", "REAL", "FAKE"]

REAL = dict(c="#d62728", s=10, marker="o", label="real", zorder=3, linewidths=0)
FAKE = dict(c="white", s=8, marker="o", label="fake", zorder=4, edgecolors="black", linewidths=0.4)


def _plt():
    import matplotlib.pyplot as plt
    return plt


def _ax(ax, size=(4.2, 4)):
    if ax is None:
        _, ax = _plt().subplots(figsize=size)
    return ax


def panels(n: int, *, cols: int = 2, size: float = 4.2):
    """A figure of ``n`` square panels, at most ``cols`` a row so each is legible at page width
    (spare cells switched off); returns the figure and a list of the ``n`` axes."""
    _validate.positive("n", n, integer=True)
    _validate.positive("cols", cols, integer=True)
    cols = min(n, cols)
    rows = -(-n // cols)
    fig, axes = _plt().subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, list(axes.flat[:n])


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def draw_landscape(ax, xs, ys, E, *, real=None, fake=None, levels: int = 30, cmap: str = "viridis",
                   colorbar: bool = False, title: str | None = None):
    """Filled contours of one member's energy ``E`` (``[res, res]``, rows = y) with samples on top."""
    E = _np(E)
    cs = ax.contourf(_np(xs), _np(ys), E, levels=levels, cmap=cmap)
    ax.contour(_np(xs), _np(ys), E, levels=levels, colors="k", linewidths=0.2, alpha=0.4)
    if real is not None:
        r = _np(real)
        ax.scatter(r[:, 0], r[:, 1], **REAL)
    if fake is not None:
        f = _np(fake)
        ax.scatter(f[:, 0], f[:, 1], **FAKE)
    ax.set_xlim(float(xs[0]), float(xs[-1]))
    ax.set_ylim(float(ys[0]), float(ys[-1]))
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        ax.figure.colorbar(cs, ax=ax, shrink=0.8, label="U(x)  (low = data-like)")
    return cs


def landscape(energy, extent, *, member: int = 0, real: Tensor | None = None, fake: Tensor | None = None,
              res: int = 100, ax=None, colorbar: bool = True, title: str | None = None, levels: int = 30):
    """Draw member ``member`` of a 2D energy over ``extent`` with real (red) and fake (white) samples.

    ``real`` and ``fake`` are ``[N, 2]`` (one member's samples) or ``[K, N, 2]`` (the member is
    picked). Returns the axes.
    """
    ax = _ax(ax)
    if not (isinstance(member, int) and 0 <= member < energy.members):
        raise ValueError(f"member must be an int in [0, {energy.members}), got {member!r}")
    pick = lambda s: None if s is None else (s[member] if s.ndim == 3 else s)
    xs, ys, E = energy_on_grid(energy, extent, res)
    draw_landscape(ax, xs, ys, E[member], real=pick(real), fake=pick(fake), colorbar=colorbar,
                   title=title, levels=levels)
    return ax


def trajectories(paths, *, ax=None, color="white", every: int = 1, alpha: float = 0.8, lw: float = 0.8,
                 start_marker: bool = True):
    """Draw particle paths ``[T, N, 2]`` (time first) as lines with a dot at the start and a cross at the end."""
    ax = _ax(ax)
    p = _np(paths)
    if p.ndim != 3 or p.shape[2] != 2:
        raise ValueError(f"paths must have shape [T, N, 2], got {p.shape}")
    _validate.positive("every", every, integer=True)
    p = p[:, ::every]
    ax.plot(p[:, :, 0], p[:, :, 1], color=color, lw=lw, alpha=alpha, zorder=4)
    if start_marker:
        ax.scatter(p[0, :, 0], p[0, :, 1], s=10, c=color, edgecolors="k", linewidths=0.4, zorder=5, label="start")
    ax.scatter(p[-1, :, 0], p[-1, :, 1], s=22, c="#ff7f0e", marker="X", edgecolors="k", linewidths=0.4,
               zorder=6, label="end")
    return ax


def curves(steps, values, *, ax=None, label: str | None = None, color=None, log: bool = False,
           spread: str = "minmax", members: bool = False):
    """A metric over training: the mean over members with the spread shaded.

    ``values`` is ``[T, K]`` (e.g. ``history["e_real"]``). ``spread`` is ``"minmax"`` (the range
    over members) or ``"std"`` (mean ± one standard deviation); ``members=True`` also draws each
    member thinly.
    """
    ax = _ax(ax, size=(5, 3.2))
    v = _np(values)
    s = _np(steps)
    if v.ndim != 2 or v.shape[0] != s.shape[0]:
        raise ValueError(f"values must have shape [T, K] with T = len(steps) = {s.shape[0]}, got {v.shape}")
    if spread not in ("minmax", "std"):
        raise ValueError(f"spread must be 'minmax' or 'std', got {spread!r}")
    mean = v.mean(axis=1)
    lo, hi = (v.min(axis=1), v.max(axis=1)) if spread == "minmax" else (mean - v.std(axis=1), mean + v.std(axis=1))
    (line,) = ax.plot(s, mean, color=color, label=label, lw=1.6)
    ax.fill_between(s, lo, hi, color=line.get_color(), alpha=0.25, lw=0)
    if members:
        ax.plot(s, v, color=line.get_color(), lw=0.5, alpha=0.5)
    if log:
        ax.set_yscale("symlog")
    ax.set_xlabel("step")
    return ax


def animate_training(history, *, member=0, real: Tensor | None = None, interval: int = 150,
                     title="step {step}", size=(4.2, 4), fakes: int | None = None):
    """An animation of the landscape and the fakes over a run's snapshots.

    Needs a history recorded with ``snapshot_every`` and ``snapshot_grid``. Returns the HTML
    string of ``FuncAnimation.to_jshtml()`` (display it with ``IPython.display.HTML``): it
    plays in the static book, no kernel needed.

    Args:
        member: the member to show, or a sequence of members shown side by side (chapter 6 puts
            a bunched start next to a normal one).
        real: real samples drawn in every frame, ``[N, 2]`` or ``[K, N, 2]`` (the member's own).
        title: a format string with the fields ``{step}`` and ``{member}``, or a function
            ``title(i, member) -> str`` of the snapshot index ``i`` (to print a statistic per frame).
        size: the size of one panel.
        fakes: draw only the first ``fakes`` samples of each snapshot (``None``: all of them), so a
            snapshot can hold enough samples for statistics while the frames stay light.
    """
    from matplotlib import animation

    plt = _plt()
    snaps = history.snapshots
    if not snaps or snaps[0].energy is None or history.grid is None:
        raise ValueError("history has no landscape snapshots: train with snapshot_every and snapshot_grid")
    K = snaps[0].fakes.shape[0]
    panels = [member] if isinstance(member, int) else list(member)
    if not panels or not all(isinstance(k, int) and 0 <= k < K for k in panels):
        raise ValueError(f"member must be an int in [0, {K}) or a non-empty sequence of them, got {member!r}")
    if fakes is not None:
        _validate.positive("fakes", fakes, integer=True)
    if not (isinstance(title, str) or callable(title)):
        raise ValueError(f"title must be a format string or a function (i, member) -> str, got {title!r}")
    xs, ys = history.grid
    fig, axes = plt.subplots(1, len(panels), figsize=(size[0] * len(panels), size[1]), squeeze=False)
    reals = [None if real is None else (real[k] if real.ndim == 3 else real) for k in panels]

    def frame(i):
        s = snaps[i]
        for ax, k, r in zip(axes[0], panels, reals):
            ax.clear()
            label = title(i, k) if callable(title) else title.format(step=s.step, member=k)
            draw_landscape(ax, xs, ys, s.energy[k], real=r, fake=s.fakes[k, :fakes], title=label)
        return []

    frame(0)
    fig.tight_layout()  # once, on the first frame's titles
    anim = animation.FuncAnimation(fig, frame, frames=len(snaps), interval=interval, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return html


def dirac_phase(rule, *, path=None, extent=(-2.5, 2.5, -2.5, 2.5), res: int = 25, ax=None,
                title: str | None = None, color: str = "#1f77b4"):
    r"""The phase plane of a Dirac-GAN training rule (chapter 3): the flow of
    ``dirac.vector_field(θ, ψ, rule)`` as stream lines, the equilibrium (0, 0) as a star, and
    optionally a simulated trajectory.

    ``rule`` is a ``dirac.Rule``; ``path`` is ``[T, 2]`` rows of (θ, ψ), e.g. from
    ``dirac.simulate(rule, ...)``, drawn as a line from a dot (start) to a cross (end). The
    horizontal axis is the generator's position θ, the vertical one the energy's slope ψ
    (:math:`U_\psi(x) = \psi x`). Returns the axes.
    """
    from . import dirac

    ax = _ax(ax, size=(3.6, 3.4))
    if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(f"extent must be (θmin, θmax, ψmin, ψmax) with min < max, got {extent!r}")
    _validate.positive("res", res, integer=True)
    th = np.linspace(extent[0], extent[1], res)
    ps = np.linspace(extent[2], extent[3], res)
    T, S = np.meshgrid(th, ps)  # rows are ψ, as streamplot expects
    v = dirac.vector_field(torch.from_numpy(T), torch.from_numpy(S), rule).numpy()
    ax.streamplot(th, ps, v[..., 0], v[..., 1], color="0.65", density=0.8, linewidth=0.6, arrowsize=0.7)
    if path is not None:
        p = _np(path)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"path must have shape [T, 2] (rows of θ, ψ), got {p.shape}")
        ax.plot(p[:, 0], p[:, 1], color=color, lw=1.2, zorder=3)
        ax.scatter(p[:1, 0], p[:1, 1], s=20, c=color, zorder=4)
        ax.scatter(p[-1:, 0], p[-1:, 1], s=40, c=color, marker="X", edgecolors="k", linewidths=0.4, zorder=5)
    ax.scatter([0], [0], s=90, marker="*", c="#d62728", edgecolors="k", linewidths=0.4, zorder=6)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(r"$\theta$ (generator)")
    ax.set_ylabel(r"$\psi$ (energy slope)")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def image_grid(images: Tensor, *, ax=None, nrow: int = 8, title: str | None = None):
    """Images ``[n, C, H, W]`` with values in [-1, 1] as one picture, ``nrow`` per row (chapter 8).

    One channel is drawn dark on white (ink on paper); three channels as red, green and blue
    (a stacked digit's three digits in three colours). At most ``nrow * nrow`` images are shown,
    separated by one-pixel gaps.
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be a tensor [n, C, H, W] with C = 1 or 3, "
                         f"got {tuple(getattr(images, 'shape', ())) or type(images).__name__}")
    _validate.positive("nrow", nrow, integer=True)
    x = (images[: nrow * nrow].detach().float().cpu().clamp(-1, 1) + 1) / 2
    n, C, H, W = x.shape
    rows, cols = -(-n // nrow), min(n, nrow)
    gap = 0.0 if C == 1 else 1.0  # white between images: 0 on the inverted grey map, 1 in RGB
    canvas = torch.full((C, rows * (H + 1) + 1, cols * (W + 1) + 1), gap)
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[:, 1 + r * (H + 1): (r + 1) * (H + 1), 1 + c * (W + 1): (c + 1) * (W + 1)] = x[i]
    ax = _ax(ax, (4, 4))
    if C == 1:
        ax.imshow(canvas[0].numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(canvas.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax
