r"""The small objects the training loop calls (the loop is shown in chapter 2; chapter 8 resumes a run).

``train.train`` hands each callback the loop's state, a ``train.Run`` (``run.energy``,
``run.generator``, the optimisers, the data stream ``run.rng``, ``run.history``, the step just
finished ``run.step`` and its per-member metrics ``run.out``). Callbacks run in the order of their
``order`` attribute: the divergence guard first, then the log, then yours, the progress bar and the
checkpoints last; they *start* in the reverse order, so that a checkpoint has restored the run
before anything else looks at it.

* ``DivergenceGuard`` stops at the first non-finite metric and restores the last finite state;
* ``Log`` records the per-member metrics into ``run.history``;
* ``Snapshots`` stores fakes (and the energy landscape) for figures and animations;
* ``Schedule`` steps learning-rate schedulers (any ``torch.optim.lr_scheduler``) once per step;
* ``EMA`` keeps an exponential moving average of the generator's weights;
* ``ChangeRecipe`` changes the recipe from a given step on;
* ``ProgressBar`` shows tqdm;
* ``checkpoints.Checkpoints`` (its own module) saves everything a run needs to resume exactly, and resumes.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from . import _validate
from .nets import energy_on_grid

__all__ = ["STOP", "Callback", "Snapshot", "History", "DivergenceGuard", "Log", "Snapshots", "Schedule",
           "EMA", "ChangeRecipe", "ProgressBar"]

STOP = "stop"  # what on_step returns to end the run


class Callback:
    """A hook of the training loop. Every method does nothing unless overridden."""

    order = 0  # the loop calls on_step in increasing order (and on_start in decreasing order)

    def on_start(self, run) -> None:
        """Before the first step (after a resume, ``run.step`` is the step it resumed from)."""

    def on_step(self, run):
        """After every step; return ``STOP`` to end the run."""

    def on_end(self, run) -> None:
        """After the last step, or after a ``STOP``."""


@dataclass
class Snapshot:
    """The state of training at one step, for figures and animations (on the CPU)."""

    step: int
    fakes: Tensor  # [K, n, D], generated from the same fixed noise at every snapshot
    energy: Tensor | None  # [K, res, res] on History.grid, or None when no grid was asked for


@dataclass
class History:
    """Per-member metrics of a run: ``history["e_real"]`` is a numpy array ``[T, K]``."""

    steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[Tensor]] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    grid: tuple | None = None  # (xs, ys) of the snapshot energies
    stopped: str | None = None  # why training ended early (divergence), else None
    seconds: float = 0.0  # wall time of the loop, summed over the sessions of a resumed run
    steps_run: int = 0  # steps taken in those seconds

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.metrics:
            raise KeyError(f"no metric {key!r}; recorded: {sorted(self.metrics)}")
        return torch.stack(self.metrics[key]).cpu().numpy()

    def keys(self):
        return self.metrics.keys()

    @property
    def steps_per_second(self) -> float:
        return self.steps_run / self.seconds if self.seconds else float("nan")


def _copy_into(dst, src):
    """A copy of the nested state ``src`` (dicts, lists of tensors and plain values), reusing the
    tensors of an earlier copy ``dst`` where shapes match, so the divergence guard allocates nothing
    once it has copied the state the first time."""
    if isinstance(src, Tensor):
        if (isinstance(dst, Tensor) and dst.shape == src.shape and dst.dtype == src.dtype
                and dst.device == src.device):
            return dst.copy_(src)
        return src.detach().clone()
    if isinstance(src, dict):
        dst = dst if isinstance(dst, dict) else {}
        return {k: _copy_into(dst.get(k), v) for k, v in src.items()}
    if isinstance(src, (list, tuple)):
        dst = dst if isinstance(dst, (list, tuple)) and len(dst) == len(src) else [None] * len(src)
        return type(src)(_copy_into(d, v) for d, v in zip(dst, src))
    return copy.deepcopy(src)


def _nets_state(run, into=None) -> dict:
    s = {"energy": run.energy.state_dict(), "opt_e": run.opt_e.state_dict()}
    if run.opt_g is not None:
        s["generator"], s["opt_g"] = run.generator.state_dict(), run.opt_g.state_dict()
    return _copy_into(into, s)


def _load_nets_state(run, s: dict) -> None:
    run.energy.load_state_dict(s["energy"])
    run.opt_e.load_state_dict(s["opt_e"])
    if run.opt_g is not None:
        run.generator.load_state_dict(s["generator"])
        run.opt_g.load_state_dict(s["opt_g"])


def _due(run, every: int) -> bool:
    return run.step % every == 0 or run.step == run.steps


class DivergenceGuard(Callback):
    """Stop at the first non-finite metric and put the nets and optimisers back to their state at
    the last step where the metrics were finite and due (every ``every`` steps)."""

    order = -20

    def __init__(self, every: int = 10):
        self.every = _validate.positive("every", every, integer=True)
        self.good = None

    def on_start(self, run) -> None:
        self.good = _nets_state(run, self.good)

    def on_step(self, run):
        bad = ~torch.isfinite(torch.stack(list(run.out.values())))  # [metrics, K]
        if bad.any():
            names = sorted({list(run.out)[i] for i in bad.nonzero()[:, 0].tolist()})
            members = sorted(set(bad.nonzero()[:, 1].tolist()))
            _load_nets_state(run, self.good)
            last = run.history.steps[-1] if run.history.steps else 0
            run.history.stopped = (f"stopped at step {run.step}: non-finite {', '.join(names)} in member(s) "
                                   f"{members}; the nets are restored to their state at step {last}")
            warnings.warn(run.history.stopped, RuntimeWarning, stacklevel=4)
            return STOP
        if _due(run, self.every):
            self.good = _nets_state(run, self.good)


class Log(Callback):
    """Record the per-member metrics of every ``every``-th step (and the last) into ``run.history``."""

    order = -10

    def __init__(self, every: int = 10):
        self.every = _validate.positive("every", every, integer=True)

    def on_step(self, run):
        if _due(run, self.every):
            run.history.steps.append(run.step)
            for k, v in run.out.items():
                run.history.metrics.setdefault(k, []).append(v.cpu())


class Snapshots(Callback):
    """Every ``every`` steps (and at steps 0 and the last), store ``samples`` fakes per member from
    fixed noise, and the energy on a ``grid=(extent, res)`` when one is given, for animations."""

    def __init__(self, every: int, *, samples: int = 256, grid: tuple | None = None):
        self.every = _validate.positive("every", every, integer=True)
        self.samples = _validate.positive("samples", samples, integer=True)
        if grid is not None and (not isinstance(grid, tuple) or len(grid) != 2):
            raise ValueError(f"grid must be (extent, res), e.g. ((-1.5, 1.5, -1.5, 1.5), 80), got {grid!r}")
        self.grid = grid

    def on_start(self, run) -> None:
        self.z = None if run.fixed_fakes else run.generator.noise(self.samples, run.make_rng(run.seed + 1))
        if run.step == 0:
            self.take(run)

    def on_step(self, run):
        if _due(run, self.every):
            self.take(run)

    @torch.no_grad()
    def take(self, run) -> None:
        grid_e = None
        if self.grid is not None:
            xs, ys, grid_e = energy_on_grid(run.energy, *self.grid)
            run.history.grid = (xs, ys)
        if run.fixed_fakes:
            fakes = run.generator.sample(self.samples, run.make_rng(run.seed + 1), members=run.members)
        else:
            fakes = run.generator(self.z)
        run.history.snapshots.append(Snapshot(run.step, fakes.cpu(), grid_e))


class Schedule(Callback):
    """Step learning-rate schedulers once per training step, e.g.
    ``Schedule(torch.optim.lr_scheduler.LinearLR(opt_e, 1.0, 0.01, total_iters=1000))``."""

    def __init__(self, *schedulers):
        for s in schedulers:
            if not (hasattr(s, "step") and hasattr(s, "state_dict")):
                raise ValueError(f"schedulers must be torch.optim.lr_scheduler objects, got {s!r}")
        self.schedulers = schedulers

    def on_step(self, run):
        for s in self.schedulers:
            s.step()

    def state_dict(self) -> dict:
        return {"schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict) -> None:
        for s, sd in zip(self.schedulers, state["schedulers"], strict=True):
            s.load_state_dict(sd)


class EMA(Callback):
    r"""An exponential moving average of the generator's weights, :math:`\bar\theta \leftarrow
    \beta\bar\theta + (1-\beta)\theta` after every step from step ``start`` on; ``ema.generator``
    is the averaged copy (sample from it after training). The first run starts the average from the
    weights it trains from, so a generator changed after the copy was made (a chapter's own initial
    weights, say) is averaged from those; a later run (the next part of a run trained in parts, as the
    playground does) carries the average on. ``started`` says whether a run has begun."""

    def __init__(self, generator: nn.Module, decay: float = 0.999, *, start: int = 0):
        if not isinstance(generator, nn.Module):
            raise ValueError(f"generator must be an nn.Module, got {type(generator).__name__}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.decay, self.start = decay, start
        self.source = generator
        self.generator = copy.deepcopy(generator).requires_grad_(False)
        self.started = False

    @torch.no_grad()
    def on_start(self, run) -> None:
        if not self.started:  # the first run: the average begins at the weights it trains from
            for avg, p in zip(self.generator.parameters(), self.source.parameters(), strict=True):
                avg.copy_(p)
        self.started = True

    @torch.no_grad()
    def on_step(self, run):
        beta = 0.0 if run.step <= self.start else self.decay  # before `start`: follow the weights
        for avg, p in zip(self.generator.parameters(), self.source.parameters(), strict=True):
            avg.lerp_(p, 1.0 - beta)
        for avg, b in zip(self.generator.buffers(), self.source.buffers(), strict=True):
            avg.copy_(b)

    def state_dict(self) -> dict:
        return {"generator": self.generator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.started = True


class ChangeRecipe(Callback):
    """From step ``at`` on, train with the recipe changed by ``changes`` (for example
    ``ChangeRecipe(7000, entropy_weight=0.0)`` switches the entropy term off for the last steps)."""

    def __init__(self, at: int, **changes):
        self.at = _validate.positive("at", at, integer=True)
        self.changes = changes

    def on_start(self, run) -> None:
        if run.step >= self.at:  # a run resumed after the change
            self.on_step(run)

    def on_step(self, run):
        if run.step >= self.at and run.recipe is run.initial_recipe:
            run.recipe = dataclasses.replace(run.recipe, **self.changes)


class ProgressBar(Callback):
    """A tqdm bar with the mean energies of the reals and the fakes."""

    order = 10

    def __init__(self, desc: str = "training", *, every: int = 10):
        self.desc, self.every = desc, every

    def on_start(self, run) -> None:
        from tqdm.auto import tqdm
        self.bar = tqdm(total=run.steps, initial=run.step, desc=self.desc, mininterval=0.5)

    def on_step(self, run):
        self.bar.update(1)
        if _due(run, self.every):
            self.bar.set_postfix(U_real=f"{run.out['e_real'].mean():.3g}", U_fake=f"{run.out['e_fake'].mean():.3g}")

    def on_end(self, run) -> None:
        self.bar.close()
