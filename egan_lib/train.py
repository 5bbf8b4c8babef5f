r"""Digging and jumping as two short functions, and an explicit loop around them.

* ``dig_step`` (chapter 1): one update of the energy U on a real and a fake batch,
  :math:`L_U = L_\text{energy}(U(x_\text{real}), U(x_\text{fake})) + \frac{\gamma}{2} N \cdot \text{penalty}`
  where the penalty is applied every N-th step only (lazy; N = 1 is every step).
* ``jump_step`` (chapter 2): one update of the generator G with U frozen, :math:`\min_G E_z U(G(z))`;
  with an entropy estimator in the recipe (chapter 7),
  :math:`\min_G -\lambda \hat H(G(Z)) + E_z U(G(z))`.
* ``train``: alternate them, with a progress bar, a history of per-member metrics, snapshots
  for animations, and a divergence guard that stops at the first non-finite value and keeps
  the last finite state.
* ``roll`` (chapter 2; chapter 5 with momentum and Adam): free particles descend a frozen
  energy, :math:`x \leftarrow x - \eta \nabla_x U(x)`, with no generator behind them.

A recipe (``Recipe``) holds the loss and penalty *functions*; nothing is selected by string.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from . import _validate, losses
from .nets import energy_on_grid
from .penalties import PenaltyInputs

__all__ = ["Recipe", "dig_step", "jump_step", "Snapshot", "History", "train", "CheckpointError",
           "state_tensors", "Rollout", "roll"]


@dataclass(frozen=True)
class Recipe:
    """How the energy and the generator are trained: the functions themselves and the weights."""

    energy_loss: Callable = losses.energy_wgan  # (e_real, e_fake) -> EnergyLoss or [K]
    generator_loss: Callable = losses.generator_energy  # (e_fake) -> [K]
    penalty: Callable[[PenaltyInputs], Tensor] | None = None  # e.g. penalties.on_real(penalties.r1)
    gamma: float = 0.0  # the penalty enters as (gamma / 2) * penalty
    penalty_every: int = 1  # lazy penalty: every N-th energy step, multiplied by N
    dig_per_jump: int = 1  # energy steps per generator step
    entropy: object | None = None  # chapter 7: an estimator with estimate(z, x_fake) -> [K] and update(z, x_fake)
    entropy_weight: float = 0.0  # lambda: the generator minimises -lambda * H_hat(G(z)) + E U(G(z))

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
        if self.entropy is not None and not all(callable(getattr(self.entropy, m, None)) for m in ("estimate", "update")):
            raise ValueError(f"entropy must have estimate(z, x_fake) and update(z, x_fake) methods "
                             f"(e.g. egan_lib.entropy.MIEntropy), got {self.entropy!r}")
        _validate.non_negative("entropy_weight", self.entropy_weight)
        if self.entropy_weight > 0 and self.entropy is None:
            raise ValueError(f"entropy_weight={self.entropy_weight} is set but entropy is None: give an estimator")


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
    """
    energy.requires_grad_(False)  # U is frozen: no gradient is accumulated for it
    try:
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
    finally:
        energy.requires_grad_(True)
    return out


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
    seconds: float = 0.0  # wall time of the loop

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.metrics:
            raise KeyError(f"no metric {key!r}; recorded: {sorted(self.metrics)}")
        return torch.stack(self.metrics[key]).cpu().numpy()

    def keys(self):
        return self.metrics.keys()

    @property
    def steps_per_second(self) -> float:
        return (self.steps[-1] if self.steps else 0) / self.seconds if self.seconds else float("nan")


def _is_sampler(obj) -> bool:
    return hasattr(obj, "sample") and not isinstance(obj, nn.Module)


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


def state_tensors(*objs) -> list[Tensor]:
    """Every tensor a resumed run must get back, in a fixed order: the parameters and buffers of each
    ``nn.Module`` and the moments and step counts of each optimiser (chapter 8 compares two runs with it)."""
    out = []
    for o in objs:
        sd = o.state_dict()
        if isinstance(o, torch.optim.Optimizer):
            out += [t for s in sd["state"].values() for t in s.values() if isinstance(t, Tensor)]
        else:
            out += list(sd.values())
    return out


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: unreadable, or from a different run set-up."""


_CKPT_FORMAT = 1  # bumped when the contents of a checkpoint change


def _checkpoints(directory: Path) -> list[Path]:
    """The complete checkpoint files of a directory, oldest first (``step-00001200.pt``)."""
    return sorted(directory.glob("step-[0-9]*.pt"), key=lambda f: int(f.stem.split("-")[1]))


def _load_checkpoint(path: Path, expected: dict) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated, corrupt, or not a torch file at all
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {err}). It was left as it is: "
            f"move it out of {path.parent} to resume from an earlier checkpoint there, or give another "
            f"checkpoint_dir to start afresh") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CKPT_FORMAT:
        raise CheckpointError(f"{path} is not an egan_lib checkpoint of format {_CKPT_FORMAT}; it was left "
                              f"as it is: give another checkpoint_dir to start afresh")
    diff = {k: (ckpt["run"].get(k), v) for k, v in expected.items() if ckpt["run"].get(k) != v}
    if diff:
        detail = "; ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"checkpoint {path} was written by a different run set-up ({detail}); it was "
                              f"left as it is: use the same set-up to resume, or another checkpoint_dir")
    return ckpt


def train(energy: nn.Module, generator, real, *, steps: int, batch: int,
          opt_e: torch.optim.Optimizer, opt_g: torch.optim.Optimizer | None = None,
          recipe: Recipe = Recipe(), seed: int = 0, log_every: int = 10,
          snapshot_every: int | None = None, snapshot_samples: int = 256, snapshot_grid=None,
          progress: bool = True, desc: str = "training",
          checkpoint_dir: str | os.PathLike | None = None, checkpoint_every: int | None = None,
          keep_checkpoints: int = 2) -> History:
    """Alternate digging and jumping for ``steps`` generator steps; return the history.

    Args:
        energy: a member-batched energy, ``[K, B, D] -> [K, B]``.
        generator: a member-batched generator (trained with ``opt_g``), or a fixed sampler with
            ``sample(n, generator, members=K)`` standing in for one (no jumping; chapter 1).
        real: the data, an object with ``sample(n, generator, members=K)``.
        steps: outer steps; each does ``recipe.dig_per_jump`` energy steps and one generator step.
        batch: real and fake samples per member per step.
        seed: seeds the data and noise stream (the nets are seeded when they are built).
        log_every: record metrics every this many steps (and check them for NaN/inf).
        snapshot_every: store fakes (and the energy on ``snapshot_grid``) this often.
        snapshot_grid: ``(extent, res)`` to record the 2D energy landscape at each snapshot.
        progress: show a tqdm progress bar.
        checkpoint_dir: save checkpoints here (on Colab, a folder of a mounted Drive) and, when the
            folder already holds some, resume from the latest: nets, optimisers, the step, the data
            and noise stream, torch's global random state, the history so far, and an entropy
            estimator's own state. A resumed run ends with exactly the parameters of an uninterrupted
            one (chapter 8). A checkpoint that cannot be read or that was written by a different
            set-up (members, batch, seed, recipe, parameter shapes) raises ``CheckpointError`` and is
            left untouched.
        checkpoint_every: save every this many steps (and at the last step); required with
            ``checkpoint_dir``.
        keep_checkpoints: how many of the newest checkpoints to keep; older ones are deleted.
    """
    from tqdm.auto import tqdm
    import time

    _validate.positive("steps", steps, integer=True)
    _validate.positive("batch", batch, integer=True)
    _validate.positive("log_every", log_every, integer=True)
    if snapshot_every is not None:
        _validate.positive("snapshot_every", snapshot_every, integer=True)
    if (checkpoint_dir is None) != (checkpoint_every is None):
        raise ValueError("checkpoint_dir and checkpoint_every go together: give both (e.g. checkpoint_dir="
                         "'/content/drive/MyDrive/egan', checkpoint_every=500) or neither")
    if checkpoint_every is not None:
        _validate.positive("checkpoint_every", checkpoint_every, integer=True)
        _validate.positive("keep_checkpoints", keep_checkpoints, integer=True)
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be an egan_lib.train.Recipe, got {type(recipe).__name__}")
    if not hasattr(real, "sample"):
        raise ValueError(f"real must have a sample(n, generator, members=K) method, got {type(real).__name__}")
    fixed_fakes = _is_sampler(generator)
    if not fixed_fakes and not isinstance(generator, nn.Module):
        raise ValueError("generator must be an nn.Module or a sampler with sample(n, generator, members=K)")
    if not fixed_fakes and opt_g is None:
        raise ValueError("opt_g is required when the generator is trained")
    K = energy.members
    if not fixed_fakes and generator.members != K:
        raise ValueError(f"generator has {generator.members} members but energy has {K}")
    device = next(energy.parameters()).device

    rng = torch.Generator().manual_seed(seed)
    snap_z = generator.noise(snapshot_samples, torch.Generator().manual_seed(seed + 1)) if not fixed_fakes else None
    hist = History()
    if snapshot_grid is not None:
        extent, res = snapshot_grid

    def fakes(n):
        if fixed_fakes:
            return generator.sample(n, rng, members=K).to(device)
        with torch.no_grad():
            return generator(generator.noise(n, rng))

    def snapshot(step):
        grid_e = None
        if snapshot_grid is not None:
            xs, ys, grid_e = energy_on_grid(energy, extent, res)
            hist.grid = (xs, ys)
        if fixed_fakes:
            f = generator.sample(snapshot_samples, torch.Generator().manual_seed(seed + 1), members=K)
        else:
            with torch.no_grad():
                f = generator(snap_z).cpu()
        hist.snapshots.append(Snapshot(step, f.cpu(), grid_e))

    def state(into=None):
        s = {"energy": energy.state_dict(), "opt_e": opt_e.state_dict()}
        if not fixed_fakes:
            s["generator"], s["opt_g"] = generator.state_dict(), opt_g.state_dict()
        return _copy_into(into, s)

    def restore(s):
        energy.load_state_dict(s["energy"])
        opt_e.load_state_dict(s["opt_e"])
        if not fixed_fakes:
            generator.load_state_dict(s["generator"])
            opt_g.load_state_dict(s["opt_g"])

    estimator = recipe.entropy if hasattr(recipe.entropy, "state_dict") else None
    if checkpoint_dir is not None and recipe.entropy is not None and estimator is None and any(
            isinstance(v, (nn.Module, torch.optim.Optimizer, torch.Generator)) for v in vars(recipe.entropy).values()):
        raise ValueError(f"recipe.entropy ({type(recipe.entropy).__name__}) trains its own nets but has no "
                         f"state_dict()/load_state_dict(): a resumed run could not restore it exactly")
    run_setup = {"members": K, "batch": batch, "seed": seed, "penalty_every": recipe.penalty_every,
                 "dig_per_jump": recipe.dig_per_jump, "gamma": recipe.gamma,
                 "entropy_weight": recipe.entropy_weight, "fixed_fakes": fixed_fakes}

    def save_checkpoint(step, dig_count):
        ckpt = {"format": _CKPT_FORMAT, "run": run_setup, "step": step, "dig_count": dig_count,
                "nets": state(), "rng": rng.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "entropy": estimator.state_dict() if estimator is not None else None,
                "history": {"steps": hist.steps, "metrics": hist.metrics, "snapshots": hist.snapshots,
                            "grid": hist.grid}}
        path = ckpt_dir / f"step-{step:08d}.pt"
        tmp = path.with_name(path.name + ".partial")
        torch.save(ckpt, tmp)
        os.replace(tmp, path)  # atomic: a cut-off save never leaves a half-written step-*.pt
        for old in _checkpoints(ckpt_dir)[:-keep_checkpoints]:
            old.unlink()

    start = 1
    dig_count = 0
    if checkpoint_dir is not None:
        ckpt_dir = Path(checkpoint_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        found = _checkpoints(ckpt_dir)
        if found:
            ckpt = _load_checkpoint(found[-1], run_setup)
            try:
                restore(ckpt["nets"])
                if estimator is not None:
                    estimator.load_state_dict(ckpt["entropy"])
            except (RuntimeError, ValueError, KeyError, TypeError) as err:
                raise CheckpointError(f"checkpoint {found[-1]} does not fit these nets or optimisers ({err}); "
                                      f"it was left as it is: build the same nets to resume, or give another "
                                      f"checkpoint_dir") from err
            rng.set_state(ckpt["rng"])
            torch.set_rng_state(ckpt["torch_rng"])
            if ckpt["cuda_rng"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
            h = ckpt["history"]
            hist.steps, hist.metrics, hist.snapshots, hist.grid = h["steps"], h["metrics"], h["snapshots"], h["grid"]
            start, dig_count = ckpt["step"] + 1, ckpt["dig_count"]
            if progress:
                print(f"resuming from {found[-1]} (step {ckpt['step']} of {steps})")

    last_good = state()
    if snapshot_every is not None and start == 1:
        snapshot(0)
    bar = tqdm(range(start, steps + 1), initial=start - 1, total=steps, desc=desc, disable=not progress,
               mininterval=0.5)
    t0 = time.perf_counter()
    for step in bar:
        for _ in range(recipe.dig_per_jump):
            out = dig_step(energy, opt_e, real.sample(batch, rng, members=K).to(device), fakes(batch),
                           recipe, step=dig_count)
            dig_count += 1
        if not fixed_fakes:
            out.update(jump_step(energy, generator, opt_g, generator.noise(batch, rng), recipe))
        checkpoint_now = checkpoint_every is not None and (step % checkpoint_every == 0 or step == steps)
        if step % log_every == 0 or step == steps or checkpoint_now:
            values = torch.stack([v for v in out.values()])
            bad = ~torch.isfinite(values)
            if bad.any():
                members = sorted(set(bad.nonzero()[:, 1].tolist()))
                names = sorted({list(out)[i] for i in bad.nonzero()[:, 0].tolist()})
                restore(last_good)
                last = hist.steps[-1] if hist.steps else 0
                hist.stopped = (f"stopped at step {step}: non-finite {', '.join(names)} in member(s) "
                                f"{members}; the nets are restored to their state at step {last}")
                warnings.warn(hist.stopped, RuntimeWarning, stacklevel=2)
                break
            hist.steps.append(step)
            for k, v in out.items():
                hist.metrics.setdefault(k, []).append(v.cpu())
            last_good = state(last_good)
            if progress:
                bar.set_postfix(U_real=f"{out['e_real'].mean():.3g}", U_fake=f"{out['e_fake'].mean():.3g}")
        if snapshot_every is not None and (step % snapshot_every == 0 or step == steps):
            snapshot(step)
        if checkpoint_now:
            save_checkpoint(step, dig_count)
    bar.close()
    hist.seconds = time.perf_counter() - t0
    return hist


class Rollout(NamedTuple):
    """Particles rolled down a frozen energy by ``roll``."""

    path: Tensor  # [T, K, N, D] on the CPU: x0, every record_every-th step, and the last step
    steps: list[int]  # the step of each recorded position (length T; starts at 0, ends at `steps`)
    final: Tensor  # [K, N, D] the last positions, on the particles' device, without a graph


def roll(energy: nn.Module, x0: Tensor, *, steps: int, lr: float,
         optimizer: type[torch.optim.Optimizer] = torch.optim.SGD, optimizer_kwargs: dict | None = None,
         record_every: int = 1) -> Rollout:
    r"""Free particles descend a frozen energy ("jumping into pits" without a generator; chapter 2).

    With the default optimiser (plain SGD) every particle takes ``steps`` gradient steps

    .. math:: x \leftarrow x - \eta\, \nabla_x U(x), \qquad \eta = \texttt{lr},

    each on its own member's energy (``x0[k]`` rolls on ``energy`` member ``k``). Chapter 5 passes
    another optimiser class (SGD with ``momentum``, Adam) and its keyword arguments, e.g.
    ``roll(U, x0, steps=500, lr=0.01, optimizer=torch.optim.SGD, optimizer_kwargs={"momentum": 0.9})``;
    the optimiser treats the particles' coordinates as its parameters.

    Args:
        energy: a member-batched energy ``[K, N, D] -> [K, N]``; it is frozen (its parameters get
            no gradient and are left unchanged).
        x0: starting positions ``[K, N, D]``.
        steps: number of descent steps.
        lr: the step size :math:`\eta` given to the optimiser.
        optimizer: a ``torch.optim.Optimizer`` class (not an instance, not a string).
        optimizer_kwargs: extra keyword arguments for ``optimizer`` (momentum, betas, ...).
        record_every: keep the positions every this many steps in ``path`` (the start and the last
            step are always kept).

    Returns:
        ``Rollout(path [T, K, N, D], steps [T], final [K, N, D])``.
    """
    if not isinstance(energy, nn.Module) or not hasattr(energy, "members"):
        raise ValueError(f"energy must be a member-batched nn.Module (e.g. nets.MLPEnergy), got {type(energy).__name__}")
    _validate.members_batch("x0", x0)
    if x0.shape[0] != energy.members:
        raise ValueError(f"x0 must have K={energy.members} members in dim 0 (one per energy member), "
                         f"got shape {tuple(x0.shape)}")
    _validate.positive("steps", steps, integer=True)
    _validate.positive("lr", lr)
    _validate.positive("record_every", record_every, integer=True)
    if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer class such as torch.optim.SGD, got {optimizer!r}")
    if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, dict):
        raise ValueError(f"optimizer_kwargs must be a dict or None, got {type(optimizer_kwargs).__name__}")

    x = x0.detach().clone().requires_grad_(True)
    opt = optimizer([x], lr=lr, **(optimizer_kwargs or {}))
    flags = [p.requires_grad for p in energy.parameters()]
    energy.requires_grad_(False)  # U is frozen: only the particles move
    path, recorded = [x.detach().cpu().clone()], [0]
    try:
        for step in range(1, steps + 1):
            # particles never interact, so the gradient of the sum is each particle's own gradient
            (g,) = torch.autograd.grad(energy(x).sum(), x)
            x.grad = g
            opt.step()
            if step % record_every == 0 or step == steps:
                path.append(x.detach().cpu().clone())
                recorded.append(step)
    finally:
        for p, f in zip(energy.parameters(), flags):
            p.requires_grad_(f)
    return Rollout(torch.stack(path), recorded, x.detach())
