"""What the library costs: one training step of ``egan_lib.train.train`` against a minimal
hand-written PyTorch loop doing the same math with the same nets, side by side.

    python bench/overhead.py

Both do, per step, the book's default recipe (R1 on the real batch): draw a real batch from the ring and
a fake batch from G, the energy step of eq. (1) + (gamma/2) * E||grad U(x_real)||^2, then the generator
step of eq. (3) with U frozen. The minimal loop is what one would
write by hand in a script (no metrics, no progress bar, no divergence guard, no checks); the library
run is ``train.train`` with its defaults (metrics logged and checked every 10 steps), without the
progress bar. Both take their nets and optimisers from the book's default set-up (``gan.default``):
only the loop differs. Rounds alternate the two, with fresh nets built from the same seed, and the ratio
of the medians is reported for the quick preset's sizes (where Python overhead shows most) and for the
full preset's widths. Goal (issue 6): egan_lib / minimal <= 1.10. Writes bench/results/overhead.json
(``--out DIR``: elsewhere).
"""

from __future__ import annotations

import argparse
import time

import torch

import _common
from egan_lib import data, gan, penalties, presets, train


def run_library(cfg: gan.GAN2D, steps):
    run = cfg.build()
    t0 = time.perf_counter()
    run.train(data.ring(), steps=steps, progress=False)
    _common.sync()
    return (time.perf_counter() - t0) / steps


def run_minimal(cfg: gan.GAN2D, steps):
    # the same nets and optimisers as the library run; the loop below is the hand-written one
    run = cfg.build()
    E, G, opt_e, opt_g = run.energy, run.generator, run.opt_e, run.opt_g
    ring = data.ring()
    centers, std = ring.centers, ring.std
    K, B, L, GAMMA = E.members, cfg.batch, G.latent_dim, cfg.recipe.gamma
    rng = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        # energy step: eq. (1) + (gamma / 2) R1 on the reals
        x_real = centers[torch.randint(len(centers), (K, B), generator=rng)]
        x_real = (x_real + std * torch.randn(K, B, 2, generator=rng)).requires_grad_(True)
        with torch.no_grad():
            x_fake = G(torch.randn(K, B, L, generator=rng))
        e_real, e_fake = E(x_real), E(x_fake)
        (g,) = torch.autograd.grad(e_real.sum(), x_real, create_graph=True)
        loss = e_real.mean(1) - e_fake.mean(1) + GAMMA / 2 * g.pow(2).sum(-1).mean(1)
        opt_e.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt_e.step()
        # generator step: eq. (3), U frozen
        E.requires_grad_(False)
        loss_g = E(G(torch.randn(K, B, L, generator=rng))).mean(1)
        opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        opt_g.step()
        E.requires_grad_(True)
    _common.sync()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    _common.add_out(ap)
    args = ap.parse_args()
    presets.use_cpu_threads(presets.quick)
    configs = {"quick": gan.default(presets.quick), "full widths": gan.default(presets.full)}
    rows = {}
    for name, cfg in configs.items():
        # the minimal loop computes eq. (1) + (gamma / 2) R1 on the reals, one energy step per generator step
        if cfg.recipe != train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=cfg.recipe.gamma):
            raise SystemExit(f"the minimal loop does not compute the default recipe any more: {cfg.recipe}")
        steps = args.steps if name == "quick" else max(args.steps // 10, 10)
        run_minimal(cfg, 5), run_library(cfg, 5)  # warm-up
        t = _common.interleaved({"egan_lib": lambda: run_library(cfg, steps),
                                 "minimal": lambda: run_minimal(cfg, steps)}, args.rounds)
        lib, mini = _common.median(t["egan_lib"]), _common.median(t["minimal"])
        sizes = {"nets": dict(K=cfg.members, width=cfg.width, depth=cfg.depth, latent=cfg.latent_dim),
                 "batch": cfg.batch}
        rows[name] = {"config": sizes, "steps": steps, "seconds_per_step": t,
                      "egan_lib_ms": 1e3 * lib, "minimal_ms": 1e3 * mini, "ratio": lib / mini}
    print(f"one training step (energy + generator, R1 on), median of {args.rounds} interleaved rounds, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'sizes':>12}{'K':>4}{'width':>7}{'batch':>7}{'egan_lib ms':>13}{'minimal ms':>12}{'ratio':>8}  goal <= 1.10")
    for name, r in rows.items():
        n = r["config"]["nets"]
        print(f"{name:>12}{n['K']:>4}{n['width']:>7}{r['config']['batch']:>7}{r['egan_lib_ms']:>13.2f}"
              f"{r['minimal_ms']:>12.2f}{r['ratio']:>8.3f}  {'met' if r['ratio'] <= 1.10 else 'NOT met'}")
    print("wrote", _common.write("overhead", {"rows": rows, "goal": 1.10}, args.out))


if __name__ == "__main__":
    main()
