"""Training steps per second of the 2D energy GAN with 1 and 2 torch threads, side by side.

    python bench/threads.py

Why the presets run the 2D chapters with one CPU thread (``Preset.cpu_threads``): the nets are
too small for a second thread to help. The runs alternate (1, 2, 1, 2, ...) so that load from
other processes hits both alike. Prints a table and writes bench/results/threads.json.
"""

from __future__ import annotations

import time

import torch

import _common
from egan_lib import data, nets, penalties, presets, train

P = presets.quick
STEPS, ROUNDS = 300, 3


def steps_per_second(threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    E = nets.MLPEnergy(P.members, width=P.width, depth=P.depth)
    G = nets.MLPGenerator(P.members, latent_dim=P.latent_dim, width=P.width, depth=P.depth)
    t0 = time.perf_counter()
    train.train(E, G, data.ring(), steps=STEPS, batch=P.batch, progress=False,
                opt_e=torch.optim.Adam(E.parameters(), 1e-3, betas=(0.0, 0.9)),
                opt_g=torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.9)),
                recipe=train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=2.0))
    return STEPS / (time.perf_counter() - t0)


def main() -> None:
    results: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(ROUNDS):
        for t in (1, 2):
            results[t].append(steps_per_second(t))
    best = {t: max(v) for t, v in results.items()}
    print(f"quick-preset ring GAN with R1 (K={P.members}, width {P.width}, batch {P.batch}), best of {ROUNDS}")
    print(f"{'threads':>8} {'steps/s':>9}")
    for t, v in best.items():
        print(f"{t:>8} {v:9.1f}")
    print(f"ratio 1 thread / 2 threads: {best[1] / best[2]:.2f}")
    print("wrote", _common.write("threads", {"steps_per_second": results, "ratio_1_over_2": best[1] / best[2]}))


if __name__ == "__main__":
    main()
