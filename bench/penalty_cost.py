"""What the gradient penalty costs, and what skipping it costs: steps/s of the ring GAN with no
penalty, R1 on every energy step, and lazy R1 every 4 and every 16 steps (weight scaled by the
interval, StyleGAN2's rule), trained side by side in one run, with each one's final mode statistics.

    python bench/penalty_cost.py [--members K] [--rounds R] [--out DIR]

Each configuration is the book's default set-up at quick-preset sizes (``gan.default``: eq. (1) + R1,
Adam) with only the penalty schedule changed; all train the same initial nets for R rounds of 96
steps; the rounds alternate the configurations, so load from other processes hits all of them alike. Goal (issue 6): lazy R1 every 16 steps within 1.10 x the
time per step of no penalty, at equal mode statistics. Writes bench/results/penalty_cost.json
(``--out DIR``: elsewhere).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

import _common
from egan_lib import data, gan, metrics, presets

ROUND_STEPS = 96  # a multiple of 16: every round restarts the lazy schedules in step
DEFAULT = gan.GAN2D().recipe  # the book's default: eq. (1) + (gamma / 2) R1 on the reals
RECIPES = {
    "none": dataclasses.replace(DEFAULT, penalty=None, gamma=0.0),
    "R1": DEFAULT,
    "R1 lazy 4": dataclasses.replace(DEFAULT, penalty_every=4),
    "R1 lazy 16": dataclasses.replace(DEFAULT, penalty_every=16),
}


def main() -> None:
    P = presets.quick
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=P.steps // ROUND_STEPS)
    _common.add_out(ap)
    args = ap.parse_args()
    presets.use_cpu_threads(P)
    K, ring = args.members, data.ring()
    runs = {}
    for name, recipe in RECIPES.items():  # the same initial nets (init_seed) for every configuration
        runs[name] = dict(gan=gan.default(P, members=K, recipe=recipe).build(), seconds=[], stopped=None)
    for r in range(args.rounds):
        for name, run in runs.items():
            if run["stopped"]:
                continue
            h = run["gan"].train(ring, steps=ROUND_STEPS, seed=1000 + r, progress=False)
            run["seconds"].append(h.seconds)
            run["stopped"] = h.stopped
    z = runs["none"]["gan"].generator.noise(P.eval_samples, torch.Generator().manual_seed(12345))
    rows = {}
    for name, run in runs.items():
        with torch.no_grad():
            s = metrics.mode_stats(run["gan"].generator(z), ring)
        # per-round times: the median round is robust to a burst of load on the machine
        ms = 1e3 * float(np.median(run["seconds"])) / ROUND_STEPS
        rows[name] = {"ms_per_step": ms, "round_seconds": run["seconds"], "stopped": run["stopped"],
                      "modes": s.modes.tolist(), "high_quality": s.high_quality.tolist(),
                      "reverse_kl": s.reverse_kl.tolist()}
    base = rows["none"]["ms_per_step"]
    print(f"ring GAN, quick sizes, K={K} members, {args.rounds} x {ROUND_STEPS} steps, "
          f"{torch.get_num_threads()} thread(s); time per step = median round")
    print(f"{'penalty':<12}{'ms/step':>9}{'x none':>8}{'modes (of 8)':>18}{'high quality %':>18}{'reverse KL':>16}")
    for name, r in rows.items():
        r["cost"] = r["ms_per_step"] / base
        m, q, kl = (metrics.summarize(np.array(r[k])) for k in ("modes", "high_quality", "reverse_kl"))
        print(f"{name:<12}{r['ms_per_step']:>9.2f}{r['cost']:>8.2f}{f'{m[0]:.2f} ± {m[1]:.2f}':>18}"
              f"{f'{q[0]:.1f} ± {q[1]:.1f}':>18}{f'{kl[0]:.3f} ± {kl[1]:.3f}':>16}"
              + (f"  stopped: {r['stopped']}" if r["stopped"] else ""))
    lazy = rows["R1 lazy 16"]
    print(f"goal: lazy R1 every 16 steps within 1.10 x no penalty: {lazy['cost']:.2f} x -> "
          f"{'met' if lazy['cost'] <= 1.10 else 'NOT met'}; modes {np.mean(lazy['modes']):.2f} vs "
          f"R1 every step {np.mean(rows['R1']['modes']):.2f} and none {np.mean(rows['none']['modes']):.2f}")
    print("wrote", _common.write("penalty_cost", {"members": K, "round_steps": ROUND_STEPS,
                                                  "rounds": args.rounds, "rows": rows}, args.out))


if __name__ == "__main__":
    main()
