r"""Digging and jumping as two short functions, and the explicit loop that alternates them.

* ``dig_step`` (chapter 1): one update of the energy U on a real and a fake batch,
  :math:`L_U = L_\text{energy}(U(x_\text{real}), U(x_\text{fake})) + \frac{\gamma}{2} N \cdot \text{penalty}`
  where the penalty is applied every N-th step only (lazy; N = 1 is every step).
* ``jump_step`` (chapter 2): one update of the generator G with U frozen, :math:`\min_G E_z U(G(z))`;
  with an entropy estimator in the recipe (chapter 7), :math:`\min_G -\lambda \hat H(G(Z)) + E_z U(G(z))`.
* ``train`` (chapter 2 walks through it): draw a batch, ``dig_per_jump`` digging steps, one jumping
  step, then the callbacks (``egan_lib.callbacks``: divergence guard, log, snapshots, schedules,
  EMA, progress bar; ``egan_lib.checkpoints``).

A recipe (``Recipe``) holds the loss and penalty *functions*; nothing is selected by string.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from . import _validate, losses
from .callbacks import STOP, ChangeRecipe, DivergenceGuard, EMA, History, Log, ProgressBar, Schedule, Snapshot, Snapshots
from .checkpoints import CheckpointError, Checkpoints, state_tensors
from .entropy import EntropyEstimator
from .nets import frozen
from .penalties import PenaltyInputs

__all__ = ["Recipe", "dig_step", "jump_step", "Run", "train", "describe",
           # the callbacks, for `train.Snapshots(...)` and friends
           "History", "Snapshot", "Snapshots", "Schedule", "EMA", "Checkpoints", "CheckpointError",
           "DivergenceGuard", "Log", "ProgressBar", "ChangeRecipe", "state_tensors"]


@dataclass(frozen=True)
class Recipe:
    """How the energy and the generator are trained: the functions themselves and the weights."""

    energy_loss: Callable = losses.energy_wgan  # (e_real, e_fake) -> EnergyLoss or [K]
    generator_loss: Callable = losses.generator_energy  # (e_fake) -> [K]
    penalty: Callable[[PenaltyInputs], Tensor] | None = None  # e.g. penalties.on_real(penalties.r1)
    gamma: float = 0.0  # the penalty enters as (gamma / 2) * penalty
    penalty_every: int = 1  # lazy penalty: every N-th energy step, multiplied by N
    dig_per_jump: int = 1  # energy steps per generator step
    entropy: EntropyEstimator | None = None  # chapter 7: e.g. entropy.KNNEntropy()
    entropy_weight: float = 0.0  # lambda: the generator minimises -lambda * H_hat(G(z)) + E U(G(z))

    def __repr__(self) -> str:  # functions by name, no memory addresses
        return describe(self, short=True)

    def __post_init__(self) -> None:
        for name in ("energy_loss", "generator_loss"):
            if not callable(getattr(self, name)):
                raise ValueError(f"{name} must be a function, got {getattr(self, name)!r}")
        if self.penalty is not None and not callable(self.penalty):
            raise ValueError(f"penalty must be a function of PenaltyInputs or None, got {self.penalty!r}")
        _validate.non_negative("gamma", self.gamma)
        if self.gamma > 0 and self.penalty is None:
            raise ValueError(f"gamma={self.gamma} is set but penalty is None: give a penalty or gamma=0")
        _validate.positive("penalty_every", self.penalty_every, integer=True)
        _validate.positive("dig_per_jump", self.dig_per_jump, integer=True)
        if self.entropy is not None and not isinstance(self.entropy, EntropyEstimator):
            raise ValueError(f"entropy must have estimate(z, x_fake) and update(z, x_fake) methods "
                             f"(e.g. egan_lib.entropy.MIEntropy), got {self.entropy!r}")
        _validate.non_negative("entropy_weight", self.entropy_weight)
        if self.entropy_weight > 0 and self.entropy is None:
            raise ValueError(f"entropy_weight={self.entropy_weight} is set but entropy is None: give an estimator")


def describe(obj, *, short: bool = False) -> str:
    """A stable text for a recipe and the functions and objects in it (no memory addresses), so
    that a checkpoint can tell whether it was written with the same recipe. ``short=True`` names
    functions and classes by their module's last part (``losses.energy_wgan``, ``nn.ReLU``), for
    printing a set-up."""
    d = functools.partial(describe, short=short)
    if isinstance(obj, (str, int, float, bool, type(None))):
        return repr(obj)
    if isinstance(obj, (tuple, list)):
        return "(" + ", ".join(d(v) for v in obj) + ")"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{k!r}: {d(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, functools.partial):
        args = [d(a) for a in obj.args] + [f"{k}={d(v)}" for k, v in sorted(obj.keywords.items())]
        return f"partial({d(obj.func)}, {', '.join(args)})"
    if isinstance(obj, torch.Generator):
        return "torch.Generator"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = ", ".join(f"{f.name}={d(getattr(obj, f.name))}" for f in dataclasses.fields(obj))
        return f"{type(obj).__qualname__}({fields})"
    if callable(obj) and hasattr(obj, "__qualname__"):
        if not short:
            return f"{obj.__module__}.{obj.__qualname__}"
        module = obj.__module__
        prefix = "nn" if module.startswith("torch.nn") else "optim" if module.startswith("torch.optim") else module.rsplit(".", 1)[-1]
        return f"{prefix}.{obj.__qualname__}"
    simple = {k: v for k, v in vars(obj).items() if isinstance(v, (str, int, float, bool))} if hasattr(obj, "__dict__") else {}
    return f"{type(obj).__qualname__}({', '.join(f'{k}={v!r}' for k, v in sorted(simple.items()))})"


def _total(loss) -> Tensor:
    return loss.total if isinstance(loss, losses.EnergyLoss) else loss


def dig_step(energy: nn.Module, opt_e: torch.optim.Optimizer, x_real: Tensor, x_fake: Tensor,
             recipe: Recipe, *, step: int = 0) -> dict[str, Tensor]:
    """One energy ("digging") update. Returns detached per-member metrics, each ``[K]``.

    ``x_fake`` is treated as a constant (the generator is not updated here). The penalty, if the
    recipe has one, runs on steps where ``step % recipe.penalty_every == 0`` and is scaled by
    ``penalty_every`` so its average weight stays ``gamma / 2``.
    """
    use_penalty = recipe.penalty is not None and recipe.gamma > 0 and step % recipe.penalty_every == 0
    x_real = x_real.detach().requires_grad_(use_penalty)
    x_fake = x_fake.detach().requires_grad_(use_penalty)
    e_real, e_fake = energy(x_real), energy(x_fake)
    loss = _total(recipe.energy_loss(e_real, e_fake))
    out = {"e_real": e_real.detach().mean(1), "e_fake": e_fake.detach().mean(1), "loss_e": loss.detach()}
    if use_penalty:
        pen = recipe.penalty(PenaltyInputs(energy, x_real, e_real, x_fake, e_fake))
        # the weight convention of the whole book: (gamma / 2) * penalty, times N when lazy
        loss = loss + (recipe.gamma / 2) * recipe.penalty_every * pen
        out["penalty"] = pen.detach()
    opt_e.zero_grad(set_to_none=True)
    loss.sum().backward()  # members never mix: the sum trains each member on its own loss
    opt_e.step()
    return out


def jump_step(energy: nn.Module, generator: nn.Module, opt_g: torch.optim.Optimizer, z: Tensor,
              recipe: Recipe) -> dict[str, Tensor]:
    r"""One generator ("jumping") update against a frozen energy. Returns ``{"loss_g": [K], ...}``.

    With ``recipe.entropy`` set (chapter 7), the estimator first takes its own training step on the
    current fakes (``update``, fakes held fixed), then the generator minimises

    .. math:: L_G = L_\text{generator}(U(G(z))) - \lambda\,\hat H(G(z)), \qquad \lambda = \texttt{entropy\_weight},

    and ``"entropy"`` (the estimate :math:`\hat H`, ``[K]``) is added to the returned metrics.
    The energy's parameters get no gradient; their ``requires_grad`` flags are left as they were.
    """
    with frozen(energy):  # U is frozen: no gradient is accumulated for it
        x_fake = generator(z)
        loss = recipe.generator_loss(energy(x_fake))
        out = {"loss_g": loss.detach()}
        if recipe.entropy is not None:
            recipe.entropy.update(z, x_fake.detach())
            h = recipe.entropy.estimate(z, x_fake)
            loss = loss - recipe.entropy_weight * h
            out["entropy"] = h.detach()
        opt_g.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt_g.step()
    return out


def _is_sampler(obj) -> bool:
    return hasattr(obj, "sample") and not isinstance(obj, nn.Module)


@dataclass(eq=False)
class Run:
    """The state of a training run that ``train`` hands to its callbacks."""

    energy: nn.Module  # [K, B, D] -> [K, B]
    generator: object  # a member-batched generator, or a fixed sampler of fakes (chapter 1)
    real: object  # the data: sample(n, rng, members=K)
    opt_e: torch.optim.Optimizer
    opt_g: torch.optim.Optimizer | None  # None when the fakes are fixed
    recipe: Recipe  # a callback may change it during the run (callbacks.ChangeRecipe)
    steps: int  # the run ends after this step
    batch: int  # real and fake samples per member per step
    seed: int  # seeds the data and noise stream
    callbacks: list = field(default_factory=list)
    history: History = field(default_factory=History)
    step: int = 0  # the last step taken
    digs: int = 0  # energy steps taken (the lazy penalty counts them)
    out: dict = field(default_factory=dict)  # the last step's per-member metrics, each [K]
    start_step: int = 0  # the step this session started from (after a resume, the checkpoint's)
    started: float = 0.0  # time.perf_counter() when this session's loop started

    def __post_init__(self) -> None:
        _validate.positive("steps", self.steps, integer=True)
        _validate.positive("batch", self.batch, integer=True)
        if not isinstance(self.recipe, Recipe):
            raise ValueError(f"recipe must be an egan_lib.train.Recipe, got {type(self.recipe).__name__}")
        if not hasattr(self.real, "sample"):
            raise ValueError(f"real must have a sample(n, rng, members=K) method, got {type(self.real).__name__}")
        self.fixed_fakes = _is_sampler(self.generator)
        if not self.fixed_fakes and not isinstance(self.generator, nn.Module):
            raise ValueError("generator must be an nn.Module or a sampler with sample(n, rng, members=K)")
        if not self.fixed_fakes and self.opt_g is None:
            raise ValueError("opt_g is required when the generator is trained")
        if self.fixed_fakes:
            self.opt_g = None
        self.members = self.energy.members
        if not self.fixed_fakes and self.generator.members != self.members:
            raise ValueError(f"generator has {self.generator.members} members but energy has {self.members}")
        self.device = next(self.energy.parameters()).device
        self.rng = self.make_rng(self.seed)
        self.initial_recipe = self.recipe

    def make_rng(self, seed: int) -> torch.Generator:
        """A random stream on the nets' device: data and noise are drawn there, never copied over."""
        return torch.Generator(self.device).manual_seed(seed)

    def real_batch(self) -> Tensor:
        return self.real.sample(self.batch, self.rng, members=self.members).to(self.device)

    @torch.no_grad()
    def fake_batch(self) -> Tensor:
        if self.fixed_fakes:
            return self.generator.sample(self.batch, self.rng, members=self.members).to(self.device)
        return self.generator(self.generator.noise(self.batch, self.rng))

    def noise(self) -> Tensor:
        return self.generator.noise(self.batch, self.rng)

    def setup(self) -> dict:
        """What a checkpoint must agree with to be resumed by this run."""
        return {"members": self.members, "batch": self.batch, "seed": self.seed, "fixed_fakes": self.fixed_fakes,
                "recipe": describe(self.initial_recipe)}


def train(energy: nn.Module, generator, real, *, steps: int, batch: int,
          opt_e: torch.optim.Optimizer, opt_g: torch.optim.Optimizer | None = None,
          recipe: Recipe = Recipe(), seed: int = 0, callbacks=(), log_every: int = 10,
          progress: bool = True, desc: str = "training") -> History:
    """Alternate digging and jumping for ``steps`` steps; return the per-member history.

    Args:
        energy: a member-batched energy, ``[K, B, D] -> [K, B]``, trained with ``opt_e``.
        generator: a member-batched generator (trained with ``opt_g``), or a fixed sampler with
            ``sample(n, rng, members=K)`` standing in for one (no jumping; chapter 1).
        real: the data, an object with ``sample(n, rng, members=K)``.
        steps: outer steps; each does ``recipe.dig_per_jump`` energy steps and one generator step.
        batch: real and fake samples per member per step.
        seed: seeds the data and noise stream (the nets are seeded when they are built).
        callbacks: more ``egan_lib.callbacks`` objects: ``Snapshots``, ``Schedule``, ``EMA``,
            ``checkpoints.Checkpoints`` (which also resumes a run from its folder).
        log_every: record the metrics every this many steps (a ``Log``; a ``DivergenceGuard``
            keeps the state of those steps to go back to).
        progress: show a progress bar.
    """
    run = Run(energy, generator, real, opt_e, opt_g, recipe, steps, batch, seed)
    _validate.positive("log_every", log_every, integer=True)
    bar = [ProgressBar(desc, every=log_every)] if progress else []
    run.callbacks = [DivergenceGuard(log_every), Log(log_every), *callbacks, *bar]
    run.callbacks.sort(key=lambda cb: cb.order)  # guard, log, yours, progress bar, checkpoints
    for cb in reversed(run.callbacks):  # checkpoints start first: a resumed run is restored
        cb.on_start(run)
    run.start_step, run.started = run.step, time.perf_counter()

    for step in range(run.step + 1, steps + 1):
        run.step = step
        for _ in range(run.recipe.dig_per_jump):  # digging: eq. (1) and the penalty, fresh batches
            x_real, x_fake = run.real_batch(), run.fake_batch()
            out = dig_step(energy, opt_e, x_real, x_fake, run.recipe, step=run.digs)
            run.digs += 1
        if not run.fixed_fakes:  # jumping: eq. (3) against the frozen energy
            out.update(jump_step(energy, generator, opt_g, run.noise(), run.recipe))
        run.out = out
        if any(cb.on_step(run) == STOP for cb in run.callbacks):  # the first STOP ends the run
            break

    run.history.seconds += time.perf_counter() - run.started
    run.history.steps_run += run.step - run.start_step
    for cb in run.callbacks:
        cb.on_end(run)
    return run.history
