"""Cost of the generator's entropy term (chapter 7): training steps per second without it, with the
k-NN estimate and with MEG's statistics network, side by side, at two batch sizes.

    python bench/entropy_cost.py

The k-NN term needs each batch's B x B distances (quadratic in B); the MI term one more small
network trained once per generator step (linear in B). The runs alternate within each round so that
load from other processes hits all alike. Prints a table and writes bench/results/entropy_cost.json.
"""

from __future__ import annotations

import time

import torch

import _common
from egan_lib import data, entropy, nets, penalties, presets, train

P = presets.current()
STEPS, ROUNDS = 200, 2
CONFIGS = ("none", "k-NN", "MI (MEG)")


def steps_per_second(name: str, batch: int) -> float:
    torch.manual_seed(0)
    dev = presets.device()
    K = P.members
    E = nets.MLPEnergy(K, width=P.width, depth=P.depth).to(dev)
    G = nets.MLPGenerator(K, latent_dim=P.latent_dim, width=P.width, depth=P.depth).to(dev)
    est = {"none": None, "k-NN": entropy.KNNEntropy(),
           "MI (MEG)": entropy.MIEntropy(K, 2, P.latent_dim, width=P.width, device=dev)}[name]
    recipe = train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=2.0, entropy=est,
                          entropy_weight=0.0 if est is None else 0.03)
    t0 = time.perf_counter()
    train.train(E, G, data.ring(), steps=STEPS, batch=batch, progress=False, recipe=recipe,
                opt_e=torch.optim.Adam(E.parameters(), 1e-3, betas=(0.0, 0.9)),
                opt_g=torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.9)))
    return STEPS / (time.perf_counter() - t0)


def main() -> None:
    presets.use_cpu_threads(P)
    rows = {}
    for batch in (P.batch, 2 * P.batch):
        runs = {c: [] for c in CONFIGS}
        for _ in range(ROUNDS):
            for c in CONFIGS:
                runs[c].append(steps_per_second(c, batch))
        rows[batch] = {c: max(v) for c, v in runs.items()}
    print(f"preset {P.name}, K={P.members}, width {P.width}, {STEPS} steps, best of {ROUNDS} rounds")
    print(f"{'batch':>6}" + "".join(f"{c + ' steps/s':>20}" for c in CONFIGS) + f"{'k-NN cost x':>14}{'MI cost x':>12}")
    for batch, r in rows.items():
        print(f"{batch:>6}" + "".join(f"{r[c]:>20.1f}" for c in CONFIGS)
              + f"{r['none'] / r['k-NN']:>14.2f}{r['none'] / r['MI (MEG)']:>12.2f}")
    print("wrote", _common.write("entropy_cost", {"preset": P.name, "rows": rows}))


if __name__ == "__main__":
    main()
