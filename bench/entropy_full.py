"""The grid of 25 under the full preset, with and without the generator's entropy term (chapter 7),
beside the published numbers (``egan_lib.published``: PacGAN and VEEGAN, with their tables).

    python bench/entropy_full.py                              # the full preset: K=16, 10000 steps, width 256
    python bench/entropy_full.py --members 4 --steps 10000    # what fits in about an hour on one CPU thread
    python bench/entropy_full.py --members 2 --steps 60 --width 16 --out /tmp/smoke.json   # a smoke test

Protocol (PacGAN / VEEGAN): grid of 25 Gaussians at {-4,-2,0,2,4}^2 with sigma 0.05; after training,
2,500 fakes per member; a fake is high quality within 3 sigma of its nearest mode; a mode is captured
by at least one high-quality fake; reverse KL is KL(mode histogram || uniform). Every member is an
independent run (the members of a batch never mix: chapter 2), so the table gives mean ± sd over
members and the worst member.

The set-up is the book's default energy GAN, ``gan.default`` at the full preset's size (eq. (1),
zero-centred R1 on the reals with weight gamma / 2, Adam with beta = (0, 0.9) for both nets, one
energy step per generator step), trained by ``GAN.train`` (``train.train``), with two additions: the
learning rate of both nets decays linearly to ``--final-lr`` (1 %) of its value over the last
``--decay`` fraction (30 %) of the steps (``gan.LinearDecay``), and the entropy term of ``--entropy``
with weight ``--weight`` in the configuration that has one. The decay was the only change among those
tried on a medium budget (K=4, width 128, 2,000-3,000 steps: R1 gamma 0.1 / 2 / 10, hinge loss, R1 + R2, a
slower generator, MEG's lr 1e-4 with 5 energy steps per generator step) that raised both modes and
high quality there, and only a little (HQ 4 % -> 7 % at 3,000 steps). Both configurations start from
the same nets and see the same data and noise streams.

The stored bench/results/entropy_full.json was measured by an earlier version of this script with its
own copy of the loop: the same nets, recipe, optimisers and decay (10,000 steps: constant to step
7,000, then linear to 1 %), but each step drew its fake batch before its real batch from the stream,
where ``train.train`` draws the real one first; a rerun gives statistically equivalent numbers, not
identical ones.

On one CPU thread the true full preset (K=16) takes about 0.7 s per step, i.e. about 2 hours per
configuration; ``--members 4`` (0.13-0.15 s per step) runs both configurations in about 45 minutes.

Prints a table and writes bench/results/entropy_full.json, or ``--out`` (with what actually ran and the
machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

import _common
from egan_lib import data, entropy, gan, metrics, presets, published

P = presets.full
# egan_lib.published: (label, modes, high quality %, reverse KL or None) of the grid of 25
PUBLISHED = [(r.label, r.modes, r.high_quality, r.reverse_kl) for r in published.GRID]
PACGAN4 = next(r for r in published.GRID if r.method == "PacGAN4")
GOAL = {"modes": 25, "high_quality": PACGAN4.high_quality, "reverse_kl": PACGAN4.reverse_kl}  # every member; beat PacGAN4


def make_estimator(name: str, members: int, latent_dim: int, width: int, seed: int, device):
    if name == "knn":
        return entropy.KNNEntropy(k=1)
    if name == "mi":
        # MEG's optimiser for the statistics network: Adam, lr 1e-4, betas (0.5, 0.9), one step per generator step
        return entropy.MIEntropy(members, 2, latent_dim, width=width, depth=2, lr=1e-4, betas=(0.5, 0.9), seed=seed,
                                 device=device)
    raise ValueError(f"--entropy must be 'knn' or 'mi', got {name!r}")


def setup(args, estimator) -> gan.GAN2D:
    """The run of one configuration: the book's default GAN at the full preset's size, changed by the options."""
    base = gan.default(P, members=args.members, steps=args.steps, width=args.width, batch=args.batch)
    return base.replace(
        opt_e=gan.Opt(lr=args.lr),  # Adam, betas (0, 0.9)
        opt_g=gan.Opt(lr=args.lr_g or args.lr),
        recipe=dataclasses.replace(base.recipe, gamma=args.gamma, entropy=estimator,
                                   entropy_weight=args.weight if estimator is not None else 0.0),
        # constant, then linear to final_lr x lr over the last `decay` of the steps (none when decay = 0)
        schedule=gan.LinearDecay(start=1 - args.decay, to=args.final_lr) if args.decay > 0 else None,
        seed=args.seed,  # the data and noise stream
        init_seed=args.seed,  # the same initial nets for every configuration
    )


def run(config: str, args, estimator, device) -> dict:
    """Train K members on the grid with one configuration; return per-member statistics."""
    grid = data.grid()
    K = args.members
    built = setup(args, estimator).build(device)
    hist = built.train(grid, log_every=100, desc=config)  # the divergence guard keeps the state of every 100th step
    x = built.sample(P.eval_samples, torch.Generator().manual_seed(args.seed + 4))
    s = metrics.mode_stats(x, grid) if torch.isfinite(x).all() else None
    H = entropy.sample_entropy(x).cpu().numpy() if s is not None else np.full(K, np.nan)
    res = {"config": config, "steps_done": hist.steps_run, "stopped": hist.stopped, "seconds": hist.seconds,
           "steps_per_second": hist.steps_per_second, "entropy_of_samples": H.tolist()}
    if s is not None:
        res.update(modes=s.modes.tolist(), high_quality=s.high_quality.tolist(), reverse_kl=s.reverse_kl.tolist())
    return res


def summary(r: dict) -> dict:
    out = {}
    for key in ("modes", "high_quality", "reverse_kl", "entropy_of_samples"):
        v = np.asarray(r.get(key, [np.nan]), dtype=float)
        out[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                    "min": float(v.min()), "max": float(v.max())}
    m = {k: np.asarray(r.get(k, [np.nan]), dtype=float) for k in ("modes", "high_quality", "reverse_kl")}
    out["goal_met_by_every_member"] = bool((m["modes"] >= GOAL["modes"]).all() and (m["high_quality"] > GOAL["high_quality"]).all()
                                           and (m["reverse_kl"] < GOAL["reverse_kl"]).all())
    out["goal_met_on_average"] = bool(m["modes"].min() >= GOAL["modes"] and m["high_quality"].mean() > GOAL["high_quality"]
                                      and m["reverse_kl"].mean() < GOAL["reverse_kl"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=P.members, help=f"K, independent runs side by side (full: {P.members})")
    ap.add_argument("--steps", type=int, default=P.steps, help=f"generator steps (full: {P.steps})")
    ap.add_argument("--width", type=int, default=P.width, help=f"hidden units of both MLPs (full: {P.width})")
    ap.add_argument("--batch", type=int, default=P.batch, help=f"samples per member per step (full: {P.batch})")
    ap.add_argument("--entropy", choices=("knn", "mi"), default="knn", help="the estimator of the entropy run")
    ap.add_argument("--weight", type=float, default=0.03, help="lambda, the entropy term's weight")
    ap.add_argument("--gamma", type=float, default=2.0, help="R1 weight: the penalty enters as gamma/2 * E|grad U|^2")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of both nets")
    ap.add_argument("--lr-g", type=float, default=None, help="the generator's learning rate if not --lr")
    ap.add_argument("--decay", type=float, default=0.3, help="fraction of the steps over which the lr decays linearly")
    ap.add_argument("--final-lr", type=float, default=0.01, help="the lr at the end, as a fraction of --lr")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "entropy_full.json"),
                    help="where the JSON goes (default: bench/results/entropy_full.json, which the appendix draws)")
    args = ap.parse_args()
    for name in ("members", "steps", "width", "batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if not 0 <= args.decay <= 1:
        raise ValueError(f"--decay must be in [0, 1], got {args.decay}")
    if not 0 < args.final_lr <= 1:
        raise ValueError(f"--final-lr must be in (0, 1], got {args.final_lr}")

    device = presets.device()
    presets.use_cpu_threads(P)
    torch.manual_seed(args.seed)  # the statistics network of --entropy mi is drawn from torch's global stream
    ran = {"preset": "full" if (args.members, args.steps, args.width, args.batch) == (P.members, P.steps, P.width, P.batch)
           else "full, reduced", "members": args.members, "steps": args.steps, "width": args.width, "depth": P.depth,
           "latent_dim": P.latent_dim, "batch": args.batch, "eval_samples": P.eval_samples,
           "energy_loss": "losses.energy_wgan (eq. (1))", "penalty": f"R1 on real, gamma={args.gamma} (gamma/2 * E|grad U|^2)",
           "optimiser": f"Adam betas=(0, 0.9), lr={args.lr} (energy), {args.lr_g or args.lr} (generator); "
                                       "1 energy step per generator step",
           "lr_schedule": f"constant, then linear to {args.final_lr} x lr over the last {args.decay:.0%} of the steps",
           "entropy": {"estimator": args.entropy, "weight": args.weight}, "seed": args.seed}
    print(f"grid of 25 on {device}, {torch.get_num_threads()} thread(s): K={args.members} members, {args.steps} steps, "
          f"width {args.width}, depth {P.depth}, latent {P.latent_dim}, batch {args.batch}")
    t_all = time.perf_counter()
    results = [run("no entropy term", args, None, device)]
    est = make_estimator(args.entropy, args.members, P.latent_dim, args.width, args.seed, device)
    label = {"knn": "k-NN entropy", "mi": "MI (MEG) entropy"}[args.entropy] + f", λ={args.weight:g}"
    results.append(run(label, args, est, device))
    wall = time.perf_counter() - t_all

    # the data itself, measured the same way: the ceiling of every statistic at 2,500 samples
    grid = data.grid()
    x_real = grid.sample(P.eval_samples, torch.Generator().manual_seed(7), members=args.members)
    s_real = metrics.mode_stats(x_real, grid)
    real = {"config": "the data itself (2,500 real samples)", "modes": s_real.modes.tolist(),
            "high_quality": s_real.high_quality.tolist(), "reverse_kl": s_real.reverse_kl.tolist(),
            "entropy_of_samples": entropy.sample_entropy(x_real).cpu().numpy().tolist()}

    print(f"\ngrid of 25, PacGAN protocol: mean ± sd over {args.members} members (min over members), "
          f"{P.eval_samples} samples each; wall time {wall / 60:.1f} min")
    hdr = f"{'':36}{'modes':>20}{'high quality %':>17}{'reverse KL':>16}{'entropy (nats)':>17}{'steps/s':>9}"
    print(hdr)
    for r in results + [real]:
        r["summary"] = summary(r)
        sm = r["summary"]
        f = lambda k, p: f"{sm[k]['mean']:.{p}f} ± {sm[k]['sd']:.{p}f}"
        sps = f"{r['steps_per_second']:9.2f}" if "steps_per_second" in r else f"{'':9}"
        print(f"{r['config']:36}{f('modes', 2) + ' (' + str(int(sm['modes']['min'])) + ')':>20}{f('high_quality', 1):>17}"
              f"{f('reverse_kl', 3):>16}{f('entropy_of_samples', 2):>17}{sps}" + (f"  [{r['stopped']}]" if r.get("stopped") else ""))
    for lab, m, hq, kl in PUBLISHED:
        print(f"{'published: ' + lab:36}{m:>20.1f}{hq:>17.1f}{'—' if kl is None else f'{kl:.2f}':>16}")
    for r in results:
        print(f"{r['config']}: per member modes {r.get('modes')}, HQ {np.round(r.get('high_quality', []), 1).tolist()}, "
              f"rKL {np.round(r.get('reverse_kl', []), 3).tolist()}")
        print(f"  goal ({GOAL['modes']} modes, HQ > {GOAL['high_quality']} %, rKL < {GOAL['reverse_kl']}) met by every member: "
              f"{r['summary']['goal_met_by_every_member']}; "
              f"by the mean (all members 25 modes): {r['summary']['goal_met_on_average']}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"ran": ran, "machine": {**_common.machine(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}, "wall_seconds": wall, "goal": GOAL,
                               "published": [dict(zip(("label", "modes", "high_quality", "reverse_kl"), p)) for p in PUBLISHED],
                               "results": results + [real]}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
