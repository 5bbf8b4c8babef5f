"""Execution time of every chapter under the current preset (EGAN_PRESET, default quick on CPU).

    python bench/chapters.py            # all chapters in _toc.yml
    python bench/chapters.py 02_jumping # some of them

Prints a table and writes it to bench/results/chapters-<preset>.json. The quick preset's goal is
at most 90 s per chapter on a 2-core CPU (the book build runs them one per core at a time: tools/execute_book.py).
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import nbformat
import torch
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import _common  # noqa: E402
from egan_lib import presets  # noqa: E402


def chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def run(nb_path: Path) -> float:
    nb = nbformat.read(nb_path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    todo = [p for p in chapters() if not argv or any(a in p.stem for a in argv)]
    preset = presets.current()
    rows = []
    for p in todo:
        seconds = run(p)
        rows.append({"chapter": p.stem, "seconds": round(seconds, 1)})
        print(f"{p.stem:<28} {seconds:7.1f} s", flush=True)
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':<28} {total:7.1f} s   (preset {preset.name}, {platform.machine()}, "
          f"cuda={torch.cuda.is_available()}; each chapter sets its own CPU threads)")
    if len(todo) == len(chapters()):  # a partial run does not replace the table
        print("wrote", _common.write(f"chapters-{preset.name}", {"preset": preset.name, "rows": rows,
                                                                 "total_seconds": total}))


if __name__ == "__main__":
    main(sys.argv[1:])
