"""Checkpoints that resume a run exactly (chapter 8: a long run on Colab survives a disconnect).

``Checkpoints(directory, every)`` is a callback of ``train.train``: it saves the nets, optimisers,
step, random streams, history and the state of every callback that has one (schedules, the EMA)
and of the entropy estimator; when its folder already holds checkpoints, the run resumes from the
newest and ends with exactly the parameters of an uninterrupted run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from . import _validate
from .callbacks import Callback, _due, _load_nets_state, _nets_state

__all__ = ["Checkpoints", "CheckpointError", "state_tensors"]


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


_CKPT_FORMAT = 2  # bumped when the contents of a checkpoint change


class Checkpoints(Callback):
    """Save every ``every`` steps (and at the last) into ``directory`` (on Colab, a folder of a
    mounted Drive), keeping the ``keep`` newest; when the folder already holds checkpoints, resume
    from the newest: nets, optimisers, the step, the data and noise stream, torch's global random
    state, the history so far, and the state of every callback and entropy estimator that has one
    (schedules, EMA). A resumed run ends with exactly the parameters of an uninterrupted one.
    A checkpoint that cannot be read or that was written by a different set-up (members, batch,
    seed, recipe, parameter shapes) raises ``CheckpointError`` and is left untouched."""

    order = 20

    def __init__(self, directory: str | os.PathLike, every: int, *, keep: int = 2, verbose: bool = True):
        if not isinstance(directory, (str, os.PathLike)):
            raise ValueError(f"directory must be a path, got {directory!r}")
        self.directory = Path(directory)
        self.every = _validate.positive("every", every, integer=True)
        self.keep = _validate.positive("keep", keep, integer=True)
        self.verbose = verbose

    def files(self) -> list[Path]:
        """The complete checkpoint files, oldest first (``step-00001200.pt``)."""
        return sorted(self.directory.glob("step-[0-9]*.pt"), key=lambda f: int(f.stem.split("-")[1]))

    @staticmethod
    def _stateful(run) -> dict:
        objs = {f"callback{i}": cb for i, cb in enumerate(run.callbacks) if hasattr(cb, "state_dict")}
        if run.recipe.entropy is not None:
            objs["entropy"] = run.recipe.entropy
        return {k: o for k, o in objs.items() if hasattr(o, "state_dict")}

    def on_start(self, run) -> None:
        entropy = run.recipe.entropy
        if entropy is not None and not hasattr(entropy, "state_dict") and any(
                isinstance(v, (nn.Module, torch.optim.Optimizer, torch.Generator)) for v in vars(entropy).values()):
            raise ValueError(f"recipe.entropy ({type(entropy).__name__}) trains its own nets but has no "
                             f"state_dict()/load_state_dict(): a resumed run could not restore it exactly")
        self.directory.mkdir(parents=True, exist_ok=True)
        found = self.files()
        if found:
            self.resume(run, found[-1])

    def resume(self, run, path: Path) -> None:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # truncated, corrupt, or not a torch file at all
            raise CheckpointError(
                f"checkpoint {path} cannot be read ({type(err).__name__}: {err}). It was left as it is: "
                f"move it out of {path.parent} to resume from an earlier checkpoint there, or give another "
                f"checkpoint directory to start afresh") from err
        if not isinstance(ckpt, dict) or ckpt.get("format") != _CKPT_FORMAT:
            raise CheckpointError(f"{path} is not an egan_lib checkpoint of format {_CKPT_FORMAT}; it was left "
                                  f"as it is: give another checkpoint directory to start afresh")
        setup = run.setup()
        diff = {k: (ckpt["run"].get(k), v) for k, v in setup.items() if ckpt["run"].get(k) != v}
        if diff:
            detail = "; ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in diff.items())
            raise CheckpointError(f"checkpoint {path} was written by a different run set-up ({detail}); it was "
                                  f"left as it is: use the same set-up to resume, or another checkpoint directory")
        stateful = self._stateful(run)
        try:
            _load_nets_state(run, ckpt["nets"])
            if set(ckpt["stateful"]) != set(stateful):
                raise ValueError(f"it holds the state of {sorted(ckpt['stateful'])}, this run has {sorted(stateful)}")
            for k, obj in stateful.items():
                obj.load_state_dict(ckpt["stateful"][k])
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"checkpoint {path} does not fit these nets, optimisers or callbacks ({err}); "
                                  f"it was left as it is: build the same set-up to resume, or give another "
                                  f"checkpoint directory") from err
        run.rng.set_state(ckpt["rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        for k, v in ckpt["history"].items():
            setattr(run.history, k, v)
        run.step, run.digs = ckpt["step"], ckpt["digs"]
        if self.verbose:
            print(f"resuming from {path} (step {run.step} of {run.steps})")

    def on_step(self, run):
        if not _due(run, self.every):
            return
        h = run.history
        ckpt = {"format": _CKPT_FORMAT, "run": run.setup(), "step": run.step, "digs": run.digs,
                "nets": _nets_state(run), "rng": run.rng.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "stateful": {k: o.state_dict() for k, o in self._stateful(run).items()},
                "history": {"steps": h.steps, "metrics": h.metrics, "snapshots": h.snapshots, "grid": h.grid,
                            "seconds": h.seconds + time.perf_counter() - run.started,
                            "steps_run": h.steps_run + run.step - run.start_step}}
        path = self.directory / f"step-{run.step:08d}.pt"
        tmp = path.with_name(path.name + ".partial")
        torch.save(ckpt, tmp)
        os.replace(tmp, path)  # atomic: a cut-off save never leaves a half-written step-*.pt
        for old in self.files()[:-self.keep]:
            old.unlink()
