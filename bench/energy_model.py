"""Chapter 9's energy model without a generator, over many seeds and at longer runs than the chapter's.

    python bench/energy_model.py [--members K] [--rows NAME ...] [--out DIR]

Rows (each ``--members`` seeds trained side by side as one batch; ``gan.EnergyModel2D`` unless said):

* ``ring, default``: ``EnergyModel2D()``, the chapter's run (600 steps, 10 MALA steps and one jump
  between pits per draw from the buffer);
* ``ring, no jumps``: chains that never cross between pits (the chapter's other half);
* ``ring, 20 MALA steps``, ``ring, 5 MALA steps``: twice and half the Langevin steps per draw;
* ``ring, R1 instead``: the GAN's R1 (gamma = 2) in place of the energy's mean square;
* ``ring, ULA chains``: unadjusted chains in the buffer (no Hastings test);
* ``ring, long``: 3,000 steps; ``grid, long``: the grid of 25, 3,000 steps.

Each is scored by PacGAN's protocol (2,500 samples per member, high quality within 3 sigma) on the
buffer's chains, on 100 MALA steps (after 50 warm-up steps) from them and on exact samples of
e^{-U} on the box (``sampling.grid_sample``: no chain, the density on a 600 x 600 grid), plus E|grad U|^2 at real
samples and the AUROC of U for held-out reals against off-data points. Writes
bench/results/energy_model.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import _common
from egan_lib import anomaly, data, gan, metrics, penalties, presets, sampling, train

BASE = gan.EnergyModel2D()
ROWS = {
    "ring, default": ("ring", {}),
    "ring, no jumps": ("ring", {"jump": False}),
    "ring, 20 MALA steps": ("ring", {"chain_steps": 20}),
    "ring, 5 MALA steps": ("ring", {"chain_steps": 5}),
    "ring, R1 instead": ("ring", {"recipe": train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=2.0)}),
    "ring, ULA chains": ("ring", {"metropolis": False, "jump": False}),
    "ring, long": ("ring", {"steps": 3000}),
    "grid, long": ("grid", {"steps": 3000}),
}


def measure(mixture, cfg: gan.EnergyModel2D) -> dict:
    t0 = time.perf_counter()
    model = cfg.build(mixture)
    model.train(mixture, progress=False)
    minutes = (time.perf_counter() - t0) / 60
    g = torch.Generator().manual_seed(12)
    out = {"minutes": minutes, "acceptance": model.buffer.acceptance.tolist(),
           "jump_acceptance": model.buffer.jump_acceptance.tolist()}
    chain = model.sample(2500, g, steps=100, adapt_steps=50)
    exact = sampling.grid_sample(model.energy, model.buffer.box, 2500, g)
    for how, x in (("buffer", model.buffer.states[:, -2500:]), ("MALA", chain.final), ("exact", exact)):
        s = metrics.mode_stats(x, mixture)
        out[how] = {"modes": s.modes.tolist(), "high_quality": s.high_quality.tolist(),
                    "reverse_kl": s.reverse_kl.tolist()}
    x = mixture.sample(1000, g, members=cfg.members).requires_grad_(True)
    out["slope_at_reals"] = penalties.r1(x, model.energy(x)).detach().tolist()
    with torch.no_grad():
        off = anomaly.off_data(mixture, 2500, g, members=cfg.members)
        held = mixture.sample(2500, g, members=cfg.members)
        out["auroc"] = anomaly.auroc(model.energy(off), model.energy(held)).tolist()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--steps", type=int, default=None, help="override every row's steps (a smoke run)")
    _common.add_out(ap)
    args = ap.parse_args()
    presets.use_cpu_threads(presets.quick)
    mixtures = {"ring": data.ring(), "grid": data.grid()}
    results = {}
    for name in args.rows:
        mix_name, changes = ROWS[name]
        cfg = BASE.replace(members=args.members, **changes)
        if args.steps:
            cfg = cfg.replace(steps=args.steps)
        results[name] = r = {"steps": cfg.steps, "config": repr(cfg), **measure(mixtures[mix_name], cfg)}
        m = r["MALA"]
        print(f"{name:20s} {cfg.steps:5d} steps  MALA: modes {np.mean(m['modes']):5.2f}  high quality "
              f"{np.mean(m['high_quality']):5.1f} ± {np.std(m['high_quality']):4.1f} % (min "
              f"{np.min(m['high_quality']):5.1f})  reverse KL {np.mean(m['reverse_kl']):.4f} (max "
              f"{np.max(m['reverse_kl']):.4f});  buffer {np.mean(r['buffer']['high_quality']):5.1f} %;  exact: "
              f"{np.mean(r['exact']['high_quality']):5.1f} %, reverse KL {np.mean(r['exact']['reverse_kl']):.3f};  "
              f"E|grad U|^2 at reals {np.mean(r['slope_at_reals']):8.1f};  AUROC {np.mean(r['auroc']):.3f};  "
              f"{r['minutes']:.1f} min", flush=True)
        _common.write("energy_model", {"members": args.members, "rows": results}, args.out)


if __name__ == "__main__":
    main()
