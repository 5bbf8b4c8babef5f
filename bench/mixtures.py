"""Does a recipe work on mixtures it was not tuned on? The 2D GAN on other counts, rotations,
spacings and several rings at once, K seeds each.

    python bench/mixtures.py [--members K] [--steps N] [--rows NAME ...] [--out DIR]

The rows are those of ``bench/ablation.py`` (by default the book's old set-up and its
new default, ReLU with lr 4e-3 decayed over the second half); the mixtures are not the book's ring and grid:
a ring of 12, the grid of 25 rotated by 30 degrees, a 7 x 7 grid at spacing 1.5, three rings of 8,
12 and 16 modes (36 in all), and 10 modes at random places. Same protocol as the ablation
(2,500 samples per member, 3 sigma). Writes bench/results/mixtures.json after every mixture.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import _common
from ablation import BASE, ROWS, run
from egan_lib import data, gan, presets, train


def rotated_grid(degrees: float = 30.0) -> data.GaussianMixture2D:
    g = data.grid()
    a = math.radians(degrees)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return data.GaussianMixture2D(g.centers @ rot.T, std=g.std, name=f"grid of 25 rotated {degrees:g}°")


def scattered(n: int = 10, std: float = 0.05, seed: int = 7) -> data.GaussianMixture2D:
    rng = torch.Generator().manual_seed(seed)
    centers = (torch.rand(n, 2, generator=rng) * 8 - 4)
    return data.GaussianMixture2D(centers, std=std, name=f"{n} modes at random places")


MIXTURES = {
    "ring of 12": lambda: data.ring(12, radius=1.0, std=0.01),
    "grid rotated 30°": rotated_grid,
    "grid 7x7, spacing 1.5": lambda: data.grid(side=7, spacing=1.5, std=0.05),
    "three rings (36 modes)": data.rings,
    "10 scattered modes": scattered,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--steps", type=int, default=15000)
    ap.add_argument("--rows", nargs="*", default=["SiLU, constant lr", "ReLU, decay from 50 %, lr 4e-3"])
    ap.add_argument("--mixtures", nargs="*", default=list(MIXTURES))
    _common.add_out(ap)
    args = ap.parse_args()
    bad = [r for r in args.rows if r not in ROWS] + [m for m in args.mixtures if m not in MIXTURES]
    if bad:
        ap.error(f"unknown rows or mixtures {bad}; rows: {list(ROWS)}; mixtures: {list(MIXTURES)}")
    presets.use_cpu_threads(presets.quick)
    base = BASE.replace(members=args.members)
    results: dict = {}
    for mix_name in args.mixtures:
        mix = MIXTURES[mix_name]()
        results[mix_name] = {"modes_total": mix.n_modes, "std": mix.std}
        for row in args.rows:
            changes, factor = ROWS[row]
            r = run(base.replace(**changes, steps=int(args.steps * factor)), mix)
            results[mix_name][row] = r
            m, hq, kl = (np.array(r[k]) for k in ("modes", "high_quality", "reverse_kl"))
            print(f"{mix_name:24s} {row:24s} modes {m.mean():5.2f} (min {m.min():2d} of {mix.n_modes}) "
                  f"HQ {hq.mean():5.1f} ± {hq.std():4.1f} %  rKL {kl.mean():.4f}  {r['minutes']:.1f} min", flush=True)
        path = _common.write("mixtures", {"members": args.members, "steps": args.steps,
                                          "base": train.describe(base), "mixtures": results}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
