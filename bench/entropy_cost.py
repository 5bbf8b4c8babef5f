"""Cost of the generator's entropy term (chapter 7): training steps per second without it, with the
k-NN estimate and with MEG's statistics network, side by side, at two batch sizes.

    python bench/entropy_cost.py [--steps N] [--rounds R] [--out DIR]

The k-NN term needs each batch's B x B distances (quadratic in B); the MI term one more small
network trained once per generator step (linear in B). The runs alternate within each round so that
load from other processes hits all alike. Each run is the book's default set-up at the current
preset's sizes (``gan.default``) with only the entropy term added. Prints a table and writes
bench/results/entropy_cost.json (``--out DIR``: elsewhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import _common
from egan_lib import data, entropy, gan, presets

P = presets.current()
STEPS, ROUNDS = 200, 2
CONFIGS = ("none", "k-NN", "MI (MEG)")


def steps_per_second(name: str, batch: int, steps: int = STEPS) -> float:
    dev = presets.device()
    cfg = gan.default(P, steps=steps, batch=batch)
    est = {"none": None, "k-NN": entropy.KNNEntropy(),
           "MI (MEG)": entropy.MIEntropy(cfg.members, 2, cfg.latent_dim, width=cfg.width, device=dev)}[name]
    if est is not None:
        cfg = cfg.replace(recipe=dataclasses.replace(cfg.recipe, entropy=est, entropy_weight=0.03))
    run = cfg.build(dev)
    t0 = time.perf_counter()
    run.train(data.ring(), progress=False)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=STEPS, help=f"steps per timed run (default {STEPS})")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help=f"runs of each configuration (default {ROUNDS})")
    _common.add_out(ap)
    args = ap.parse_args()
    presets.use_cpu_threads(P)
    rows = {}
    for batch in (P.batch, 2 * P.batch):
        runs = {c: [] for c in CONFIGS}
        for _ in range(args.rounds):
            for c in CONFIGS:
                runs[c].append(steps_per_second(c, batch, args.steps))
        rows[batch] = {c: max(v) for c, v in runs.items()}
    print(f"preset {P.name}, K={P.members}, width {P.width}, {args.steps} steps, best of {args.rounds} rounds")
    print(f"{'batch':>6}" + "".join(f"{c + ' steps/s':>20}" for c in CONFIGS) + f"{'k-NN cost x':>14}{'MI cost x':>12}")
    for batch, r in rows.items():
        print(f"{batch:>6}" + "".join(f"{r[c]:>20.1f}" for c in CONFIGS)
              + f"{r['none'] / r['k-NN']:>14.2f}{r['none'] / r['MI (MEG)']:>12.2f}")
    print("wrote", _common.write("entropy_cost", {"preset": P.name, "rows": rows}, args.out))


if __name__ == "__main__":
    main()
