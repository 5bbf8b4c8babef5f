"""Run sizes: one notebook, two presets (the book's "Presets" section of the introduction).

Every chapter runs the same code under ``quick`` (CI, a laptop CPU: each chapter in at most
90 s on two cores) or ``full`` (a GPU such as Colab's: more steps, members and samples).
``current()`` picks ``EGAN_PRESET`` when it is set, else ``full`` on CUDA, else ``quick``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

__all__ = ["Preset", "quick", "full", "PRESETS", "current", "device", "use_cpu_threads", "describe"]


@dataclass(frozen=True)
class Preset:
    name: str  # "quick" or "full"; printed by every chapter
    members: int  # K: independent models (seeds) trained side by side as one batch
    steps: int  # alternating dig/jump steps of a full energy-GAN run
    dig_steps: int  # energy-only steps when the fakes are held fixed (chapter 1)
    batch: int  # real and fake samples per member per step
    width: int  # hidden units of the 2D MLPs
    depth: int  # hidden layers of the 2D MLPs
    latent_dim: int  # dimension of the generator's noise z
    eval_samples: int  # samples per member for mode statistics (2,500 in VEEGAN/PacGAN)
    particles: int  # free particles per member in the jumping experiments
    grid_res: int  # points per axis when an energy landscape is drawn
    snapshots: int  # frames stored for an animation of training
    cpu_threads: int  # torch threads on a CPU: the 2D nets are too small to gain from more (bench/threads.py)
    # images (chapter 8): digits and stacked digits under quick; stacked MNIST and CIFAR-10 under full
    image_members: int  # K for the image GANs (each member is a conv energy and a conv generator)
    image_steps: int  # alternating dig/jump steps of one image GAN run
    image_batch: int  # real and fake images per member per step
    image_width: int  # channels of the first conv layer (doubled at each halving of the side)
    image_latent_dim: int  # dimension of the image generators' noise z
    image_eval_samples: int  # generated images per member for mode counts (26,000 in PacGAN and MEG)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name != "name" and (not isinstance(v, int) or v < 1):
                raise ValueError(f"Preset.{f.name} must be a positive int, got {v!r}")

    def replace(self, **changes) -> "Preset":
        """A copy with some fields changed (for example ``current().replace(members=2)``)."""
        return dataclasses.replace(self, **changes)


quick = Preset(
    name="quick",
    members=4,
    steps=2000,
    dig_steps=2000,
    batch=256,
    width=64,
    depth=3,
    latent_dim=4,
    eval_samples=2500,
    particles=256,
    grid_res=80,
    snapshots=30,
    cpu_threads=1,
    image_members=4,
    image_steps=600,
    image_batch=32,
    image_width=16,
    image_latent_dim=16,
    image_eval_samples=5000,
)

full = Preset(
    name="full",
    members=16,
    steps=10000,
    dig_steps=10000,
    batch=512,
    width=256,
    depth=3,
    latent_dim=8,
    eval_samples=2500,
    particles=2048,
    grid_res=200,
    snapshots=60,
    cpu_threads=1,
    image_members=4,
    image_steps=20000,
    image_batch=64,
    image_width=64,
    image_latent_dim=64,
    image_eval_samples=26000,
)

PRESETS: dict[str, Preset] = {"quick": quick, "full": full}


def current() -> Preset:
    """The preset named by ``EGAN_PRESET``; unset: ``full`` on CUDA, else ``quick``."""
    name = os.environ.get("EGAN_PRESET", "").strip().lower()
    if not name:
        return full if torch.cuda.is_available() else quick
    if name not in PRESETS:
        raise ValueError(
            f"EGAN_PRESET={os.environ['EGAN_PRESET']!r} is not a preset; valid: {sorted(PRESETS)}"
        )
    return PRESETS[name]


def device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_cpu_threads(preset: Preset | None = None) -> int:
    """On a CPU, run torch with ``preset.cpu_threads`` threads; returns the number in use.

    The 2D chapters' nets are a few thousand parameters: splitting their matrix products over
    several threads costs more than it saves, and on a busy machine the threads' spin-waiting can
    make a run several times slower (``python bench/threads.py`` measures it side by side).
    Nothing changes on a GPU machine.
    """
    preset = preset or current()
    if device().type == "cpu":
        torch.set_num_threads(preset.cpu_threads)
    return torch.get_num_threads()


def describe(preset: Preset | None = None, on: torch.device | str | None = None) -> str:
    """One line for a chapter's set-up cell: which preset runs where, and how to switch."""
    preset = preset or current()
    device_ = on or device()
    other = "full" if preset.name == "quick" else "quick"
    return (
        f"preset: {preset.name} (K={preset.members} members, {preset.steps} steps) on {device_}; "
        f"set EGAN_PRESET={other} before importing to switch"
    )
