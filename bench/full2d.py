"""The book's default 2D set-up at full length on this machine, many seeds: the ring and the grid.

    python bench/full2d.py [--members K] [--ring-steps N] [--grid-steps N] [--width W] [--mixtures ring grid] [--out DIR]

``gan.GAN2D()`` untouched (ReLU, Adam lr 4e-3 decayed to 1 % over the second half, eq. (1) + R1 with
gamma = 2, width 64, batch 256) except for the run length, trained as K members (K seeds) side by
side, scored under PacGAN's protocol (2,500 samples per member, high quality within 3 sigma) next to
the published rows and the ceilings of a perfect sampler (``egan_lib.published``). Prints mean,
standard deviation, worst member and minutes per mixture; writes bench/results/full2d.json.
"""

from __future__ import annotations

import argparse

import numpy as np

import _common
from ablation import run
from egan_lib import data, gan, presets, published, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=10, help="seeds (members trained as one batch)")
    ap.add_argument("--ring-steps", type=int, default=10000)
    ap.add_argument("--grid-steps", type=int, default=15000)
    ap.add_argument("--width", type=int, default=gan.GAN2D.width)
    ap.add_argument("--mixtures", nargs="*", default=["ring", "grid"], choices=["ring", "grid"])
    _common.add_out(ap)
    args = ap.parse_args()
    presets.use_cpu_threads(presets.quick)
    base = gan.GAN2D(members=args.members, width=args.width, seed=0, init_seed=0)
    mixtures = {"ring": (data.ring(), args.ring_steps, published.RING, published.PERFECT_RING),
                "grid": (data.grid(), args.grid_steps, published.GRID, published.PERFECT_GRID)}
    results = {}
    for name in args.mixtures:
        mix, steps, rows, perfect = mixtures[name]
        r = run(base.replace(steps=steps), mix)
        r["steps"] = steps
        results[name] = r
        m, hq, kl = (np.array(r[k]) for k in ("modes", "high_quality", "reverse_kl"))
        print(f"{name}: {args.members} seeds, {steps} steps, {r['minutes']:.1f} min\n"
              f"  ours      modes {m.mean():5.2f} (min {m.min()})  high quality {hq.mean():5.1f} ± {hq.std():4.1f} % "
              f"(min {hq.min():.1f})  reverse KL {kl.mean():.4f} ± {kl.std():.4f} (max {kl.max():.4f})")
        for row in (*rows, perfect):
            kl_text = "—" if row.reverse_kl is None else f"{row.reverse_kl:.4f}"
            print(f"  {row.label:30s} modes {row.modes:5.2f}  high quality {row.high_quality:5.1f} %  reverse KL {kl_text}")
        path = _common.write("full2d", {"members": args.members, "base": train.describe(base),
                                        "protocol": "PacGAN: 2,500 samples per member, high quality within 3 sigma",
                                        "mixtures": results}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
