"""Which recipe digs a pit at every mode? The 2D energy GAN under an ablation, over many seeds.

    python bench/ablation.py [--members K] [--ring-steps N] [--grid-steps N] [--rows NAME ...] [--out DIR]
    python bench/ablation.py --show bench/results/ablation.json

Every row is ``gan.GAN2D`` with a few fields changed from a common base (width 64, depth 3,
batch 256, latent 4, Adam lr 1e-3 with beta1 = 0, eq. (1) + R1 with gamma = 2), trained as K
members side by side (K seeds) on the ring of 8 and the grid of 25 (PacGAN's protocol: 2,500
samples per member, 3 sigma). For each row and mixture the JSON holds the per-member modes,
% high quality, reverse KL and median distance to the nearest mode (in sigma), and the minutes
it took. Rows: the activation (SiLU, ReLU, LeakyReLU 0.2 as in Mescheder et al.'s code), the
learning-rate schedule (constant, or linear decay to 1 % over the last 30 % or the second half), an EMA of the
generator, width, batch, gamma, energy steps per generator step, and the run length. Writes
bench/results/ablation.json after every row (``--out DIR``: elsewhere).

The default's tail at its own length, 2,000 steps, 64 members per row (``--ring-steps 2000 --grid-steps 2000
--members 64 --rows ROW --name ablation_quick64_TAG``, one row per process; ring members above a reverse KL
of 0.05, worst, and the grid's mean high quality): ``default`` (decay to 0.1 %, EMA 0.99) 0 of 64, 0.0062,
50.4 %; ``default, no EMA`` 1, 0.069, 52.2 %; ``default, decay to 1 %`` 1, 0.055, 50.4 %;
``default, decay to 1 %, no EMA`` (the book's default before) 3, 0.119, 52.0 %; ``default, decay to 1 %,
EMA 0.995`` 0, 0.0052, 46.5 %. The averages sample the same trained nets as the rows without them, so
their cost on the grid is paired: EMA 0.99 lowers 63 of 64 members, by 1.9 points.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np
import torch
from torch import nn

import _common
from egan_lib import data, gan, metrics, penalties, presets, train

DECAY = gan.LinearDecay(start=0.7, to=0.01)  # over the last 30 % of the steps
DECAY_HALF = gan.LinearDecay(start=0.5, to=0.01)  # over the second half
DECAY_HALF_TO_0_1 = gan.LinearDecay(start=0.5, to=0.001)  # the same, down to 0.1 %: the book's default
LEAKY = functools.partial(nn.LeakyReLU, 0.2)
R1 = functools.partial(train.Recipe, penalty=penalties.on_real(penalties.r1))

# The old default of the book, spelled out (gan.GAN2D's own defaults have since moved to the winner).
LR1 = gan.Opt(lr=1e-3)
BASE = gan.GAN2D(members=8, width=64, depth=3, activation=nn.SiLU, latent_dim=4, opt_e=LR1, opt_g=LR1,
                 schedule=None, ema=None, batch=256, seed=0, init_seed=0)


def lr(value: float) -> dict:
    return dict(opt_e=gan.Opt(lr=value), opt_g=gan.Opt(lr=value))


# the changes that make BASE the book's default, gan.GAN2D() (tests/test_bench_scripts.py checks it)
DEFAULT = dict(activation=nn.ReLU, schedule=DECAY_HALF_TO_0_1, ema=0.99, **lr(4e-3))

# name -> (changes to the base set-up, factor on the run length)
ROWS: dict[str, tuple[dict, float]] = {
    "SiLU, constant lr": (dict(activation=nn.SiLU), 1.0),
    "SiLU, decay": (dict(activation=nn.SiLU, schedule=DECAY), 1.0),
    "ReLU, constant lr": (dict(activation=nn.ReLU), 1.0),
    "ReLU, decay": (dict(activation=nn.ReLU, schedule=DECAY), 1.0),
    "LeakyReLU 0.2, decay": (dict(activation=LEAKY, schedule=DECAY), 1.0),
    "ReLU, decay, EMA 0.999": (dict(activation=nn.ReLU, schedule=DECAY, ema=0.999), 1.0),
    "ReLU, constant lr, EMA 0.999": (dict(activation=nn.ReLU, ema=0.999), 1.0),
    "ReLU, decay, width 128": (dict(activation=nn.ReLU, schedule=DECAY, width=128), 1.0),
    "ReLU, decay, batch 512": (dict(activation=nn.ReLU, schedule=DECAY, batch=512), 1.0),
    "ReLU, decay, gamma 0.5": (dict(activation=nn.ReLU, schedule=DECAY, recipe=R1(gamma=0.5)), 1.0),
    "ReLU, decay, gamma 10": (dict(activation=nn.ReLU, schedule=DECAY, recipe=R1(gamma=10.0)), 1.0),
    "ReLU, decay, 2 digs per jump": (dict(activation=nn.ReLU, schedule=DECAY, recipe=R1(gamma=2.0, dig_per_jump=2)), 1.0),
    "ReLU, decay, half the steps": (dict(activation=nn.ReLU, schedule=DECAY), 0.5),
    "ReLU, decay, lr 2e-3": (dict(activation=nn.ReLU, schedule=DECAY, **lr(2e-3)), 1.0),
    "ReLU, decay, lr 4e-3": (dict(activation=nn.ReLU, schedule=DECAY, **lr(4e-3)), 1.0),
    "ReLU, decay from 50 %, lr 4e-3": (dict(activation=nn.ReLU, schedule=DECAY_HALF, **lr(4e-3)), 1.0),
    "ReLU, decay, lr 8e-3": (dict(activation=nn.ReLU, schedule=DECAY, **lr(8e-3)), 1.0),
    "ReLU, constant lr 4e-3": (dict(activation=nn.ReLU, **lr(4e-3)), 1.0),
    "SiLU, decay, lr 4e-3": (dict(activation=nn.SiLU, schedule=DECAY, **lr(4e-3)), 1.0),
    "LeakyReLU 0.2, decay, lr 4e-3": (dict(activation=LEAKY, schedule=DECAY, **lr(4e-3)), 1.0),
    "ReLU, decay, lr 4e-3, half the steps": (dict(activation=nn.ReLU, schedule=DECAY, **lr(4e-3)), 0.5),
    "ReLU, decay, lr 4e-3, EMA 0.999": (dict(activation=nn.ReLU, schedule=DECAY, ema=0.999, **lr(4e-3)), 1.0),
    # the book's default (gan.GAN2D()) and single changes to it, meant for its own length:
    #   python bench/ablation.py --ring-steps 2000 --grid-steps 2000 --members 16 --rows default ... --name ablation_quick
    "default": (DEFAULT, 1.0),
    "default, gamma 10": (dict(DEFAULT, recipe=R1(gamma=10.0)), 1.0),
    "default, no EMA": (dict(DEFAULT, ema=None), 1.0),
    "default, EMA 0.995": (dict(DEFAULT, ema=0.995), 1.0),
    "default, generator lr 1e-3": (dict(DEFAULT, opt_g=gan.Opt(lr=1e-3)), 1.0),
    "default, batch 512": (dict(DEFAULT, batch=512), 1.0),
    "default, 2 digs per jump": (dict(DEFAULT, recipe=R1(gamma=2.0, dig_per_jump=2)), 1.0),
    # the end of the run the default had before (decay to 1 %, no average), and averages on top of it
    "default, decay to 1 %": (dict(DEFAULT, schedule=DECAY_HALF), 1.0),
    "default, decay to 1 %, no EMA": (dict(DEFAULT, schedule=DECAY_HALF, ema=None), 1.0),
    "default, decay to 1 %, EMA 0.995": (dict(DEFAULT, schedule=DECAY_HALF, ema=0.995), 1.0),
}


def run(cfg: gan.GAN2D, mix) -> dict:
    t0 = time.perf_counter()
    g = cfg.build(presets.device())
    h = g.train(mix, progress=False, log_every=100)
    samples = g.sample(2500, torch.Generator(g.energy.layers[0].weight.device).manual_seed(12345))
    stats = metrics.mode_stats(samples, mix)
    _, dist = metrics.nearest_mode(samples, mix.centers)
    return {"modes": stats.modes.tolist(), "high_quality": stats.high_quality.tolist(),
            "reverse_kl": stats.reverse_kl.tolist(),
            "median_sigma": (dist.median(dim=1).values / mix.std).tolist(),
            "stopped": h.stopped, "minutes": (time.perf_counter() - t0) / 60}


HEADER = f"{'row':32s} {'mixture':6s} {'modes':>11s} {'HQ %':>12s} {'rKL':>13s} {'median/σ':>9s} {'min':>5s}"


def line(name: str, mix_name: str, r: dict) -> str:
    m, hq, kl = (np.array(r[k]) for k in ("modes", "high_quality", "reverse_kl"))
    return (f"{name:32s} {mix_name:6s} {m.mean():5.2f}±{m.std():4.2f} {hq.mean():6.1f}±{hq.std():4.1f} "
            f"{kl.mean():7.4f}±{kl.std():5.3f} {np.median(r['median_sigma']):9.2f} {r['minutes']:5.1f}")


def show(path) -> None:
    """Print the table of a stored run (mean ± sd over the members)."""
    d = json.loads(open(path).read())
    print(f"{d['members']} members per row; {d['protocol']}\n{HEADER}")
    for name, row in d["rows"].items():
        for mix_name in ("ring", "grid"):
            if mix_name in row:
                print(line(name, mix_name, row[mix_name]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=8, help="seeds per row (members trained as one batch)")
    ap.add_argument("--ring-steps", type=int, default=5000)
    ap.add_argument("--grid-steps", type=int, default=15000)
    ap.add_argument("--rows", nargs="*", default=list(ROWS), help="names of rows to run (default: all)")
    ap.add_argument("--name", default="ablation", help="name of the JSON file")
    ap.add_argument("--show", metavar="JSON", help="print the table of a stored run and exit")
    _common.add_out(ap)
    args = ap.parse_args()
    if args.show:
        return show(args.show)
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; known: {list(ROWS)}")
    presets.use_cpu_threads(presets.quick)
    base = BASE.replace(members=args.members)
    mixtures = {"ring": (data.ring(), args.ring_steps), "grid": (data.grid(), args.grid_steps)}
    results = {}
    print(HEADER)
    for name in args.rows:
        changes, factor = ROWS[name]
        results[name] = {"changes": {k: train.describe(v) for k, v in changes.items()}, "steps_factor": factor}
        for mix_name, (mix, steps) in mixtures.items():
            r = run(base.replace(**changes, steps=int(steps * factor)), mix)
            r["steps"] = int(steps * factor)
            results[name][mix_name] = r
            print(line(name, mix_name, r), flush=True)
            path = _common.write(args.name, {"members": args.members, "base": train.describe(base),
                                             "protocol": "PacGAN: 2,500 samples per member, high quality within 3 sigma",
                                             "rows": results}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
