"""Shared helpers of the bench scripts: the machine a table was measured on, JSON output, and
side-by-side timing (rounds that alternate the contenders, so load from other processes hits all
of them alike)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """What the numbers were measured on (stored with every table)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": "cpu",
        "date": time.strftime("%Y-%m-%d"),
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def add_out(parser) -> None:
    """The ``--out DIR`` option of every bench script: where its JSON goes (a smoke run points it at a
    temporary folder, so the stored results in bench/results are only ever real measurements)."""
    parser.add_argument("--out", type=Path, default=RESULTS, metavar="DIR",
                        help="folder to write the JSON to (default bench/results)")


def write(name: str, payload: dict, out: str | Path | None = None) -> Path:
    """Write ``payload`` (plus the machine) to ``<out>/<name>.json`` (default ``bench/results``);
    return the path."""
    folder = Path(out) if out is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1) + "\n")
    return path


def sync(device: torch.device | str | None = None) -> None:
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize()


def interleaved(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call every contender once per round, in turn; each returns seconds (or any measure)."""
    out: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            out[name].append(fn())
    return out


def median(values) -> float:
    return float(statistics.median(values))
