"""Input checks shared by every module: a bad argument is a ValueError that names it."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["members_batch", "energies", "positive", "non_negative", "same_members"]


def members_batch(name: str, x, dim: int | None = None, ndim: int = 3) -> Tensor:
    """``x`` must be a floating tensor ``[K, B, D]`` (``ndim`` dims in all; ``D == dim`` if given)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [K, B, D], got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim != ndim:
        shape = "[K, B, D]" if ndim == 3 else f"{ndim} dimensions [K, B, ...]"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} must have last dimension {dim}, got shape {tuple(x.shape)}")
    return x


def energies(name: str, e) -> Tensor:
    """An energy tensor is floating and ``[K, B]`` (one energy per member and sample)."""
    if not isinstance(e, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [K, B], got {type(e).__name__}")
    if not e.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {e.dtype}")
    if e.ndim != 2:
        raise ValueError(f"{name} must have shape [K, B], got {tuple(e.shape)}")
    return e


def same_members(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of members K, "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


def positive(name: str, v, integer: bool = False):
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or not v > 0:
        kind = "a positive int" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {v!r}")
    return v


def non_negative(name: str, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    return v


def boolean(name: str, v) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be True or False, got {v!r}")
    return v
