"""Training steps per second of the 2D energy GAN with 1 and 2 torch threads, side by side, on a quiet
machine and next to one other CPU-bound process (what a shared CI machine or a laptop doing other
work looks like).

    python bench/threads.py [--steps N] [--rounds R] [--out DIR]

Why the presets run the 2D chapters with one CPU thread (``Preset.cpu_threads``): the nets are small,
so a second thread gains little when the machine is idle, and when another process holds a core the
two threads wait on each other and a run gets several times slower. The runs alternate (1, 2, 1, 2,
...) so that load from other processes hits both alike. Each run is the book's default set-up at
quick-preset sizes (``gan.default``). Prints a table and writes bench/results/threads.json
(``--out DIR``: elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time

import torch

import _common
from egan_lib import data, gan, presets

P = presets.quick
STEPS, ROUNDS = 300, 3


def steps_per_second(threads: int, steps: int = STEPS) -> float:
    torch.set_num_threads(threads)
    run = gan.default(P, steps=steps).build()
    t0 = time.perf_counter()
    run.train(data.ring(), progress=False)
    return steps / (time.perf_counter() - t0)


@contextlib.contextmanager
def busy_neighbour():
    """One other process spinning on a core for as long as the block runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=STEPS, help=f"steps per timed run (default {STEPS})")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help=f"runs of each thread count (default {ROUNDS})")
    _common.add_out(ap)
    args = ap.parse_args()
    results = {}
    for load, ctx in (("quiet", contextlib.nullcontext), ("one busy neighbour", busy_neighbour)):
        with ctx():
            results[load] = _common.interleaved({1: lambda: steps_per_second(1, args.steps),
                                                 2: lambda: steps_per_second(2, args.steps)}, args.rounds)
    print(f"quick-preset ring GAN with R1 (K={P.members}, width {P.width}, batch {P.batch}), steps/s, "
          f"best of {args.rounds}")
    print(f"{'machine':>20}{'1 thread':>10}{'2 threads':>11}{'1 / 2':>8}")
    rows = {}
    for load, r in results.items():
        b1, b2 = max(r[1]), max(r[2])
        rows[load] = {"steps_per_second": {"1": r[1], "2": r[2]}, "ratio_1_over_2": b1 / b2}
        print(f"{load:>20}{b1:>10.1f}{b2:>11.1f}{b1 / b2:>8.2f}")
    print("wrote", _common.write("threads", {"rows": rows}, args.out))


if __name__ == "__main__":
    main()
