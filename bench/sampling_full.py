"""Chapter 9 at full size on this machine: MCMC from trained GANs, before and after, many seeds.

    python bench/sampling_full.py [--members K] [--ring-steps N] [--grid-steps N] [--mcmc-steps N] [--out DIR]
    python bench/sampling_full.py --mixtures --digit-steps 3000 --name sampling_digits   # the digits, longer
    python bench/sampling_full.py --mixtures --digit-steps 150 --digit-members 24 --name sampling_digits_quick

For the ring of 8 and the grid of 25, trains the book's default set-up (eq. (1) + R1) and a standard
GAN (the same set-up with the logistic loss and the non-saturating generator loss) as K members each,
then scores, under PacGAN's protocol (2,500 samples per member, high quality within 3 sigma), the
generator's samples and the samples after ``--mcmc-steps`` MALA steps (after 50 warm-up steps that
adapt each member's step size) in latent space at T = 1 (the generator's density kept) and in x-space
at T = 1 (the energy alone), all from the same latent start. Also the AUROC of U for held-out reals
against off-data points (at least 10 sigma from every mode). Then the digits: chapter 8's
image set-up (eq. (1) + lazy R1) and its standard-GAN twin, trained on the training split, and the
AUROC of U for held-out digits against corrupted copies (noise, an occluding square, shuffled pixels),
beside the same nets before training (the control). The last command is chapter 9's digit run (150
steps) over 24 members instead of the chapter's 4.
Prints a table per mixture and writes bench/results/sampling_full.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

import _common
from egan_lib import anomaly, data, gan, losses, metrics, presets, sampling, train

STANDARD = train.Recipe(energy_loss=losses.energy_logistic, generator_loss=losses.generator_nonsaturating)


def measure(mixture, steps: int, members: int, mcmc_steps: int) -> dict:
    out = {}
    g = torch.Generator().manual_seed(5)
    for name, recipe in (("default", gan.GAN2D.recipe), ("standard GAN", STANDARD)):
        t0 = time.perf_counter()
        run = gan.GAN2D(members=members, steps=steps, recipe=recipe).build()
        run.train(mixture, progress=False)
        z0 = run.generator.noise(2500, g)
        with torch.no_grad():
            x0 = run.generator(z0)
            relief = run.energy(x0).std(1)
        lat = sampling.mala(sampling.latent_target(run.energy, run.generator), z0, steps=mcmc_steps,
                            step_size=0.01, adapt_steps=50, rng=g)
        xsp = sampling.mala(sampling.x_target(run.energy), x0, steps=mcmc_steps, step_size=1e-4,
                            adapt_steps=100, rng=g)
        with torch.no_grad():
            x_lat = run.generator(lat.final)
            off = anomaly.off_data(mixture, 2500, g, members=members)
            held = mixture.sample(2500, g, members=members)
            au = anomaly.auroc(run.energy(off), run.energy(held))
        rows = {"generator": x0, "latent MALA, T=1": x_lat, "x-space MALA, T=1": xsp.final}
        out[name] = {how: {k: np.asarray(v).tolist() for k, v in metrics.mode_stats(x, mixture)._asdict().items()
                           if k != "histogram"} for how, x in rows.items()}
        out[name]["auroc"] = au.tolist()
        out[name]["relief"] = relief.tolist()
        out[name]["acceptance"] = {"latent": lat.acceptance.tolist(), "x-space": xsp.acceptance.tolist()}
        out[name]["minutes"] = (time.perf_counter() - t0) / 60
    return out


def digits_auroc(members: int, steps: int) -> dict:
    """AUROC of U for held-out digits against corrupted held-out digits, the default image set-up of
    chapter 8 and the same with the standard GAN's losses, both trained on the training split."""
    train_set, test_set = data.digits("train"), data.digits("test")
    g = torch.Generator().manual_seed(6)
    held = test_set.images[None].expand(members, *test_set.images.shape)
    out = {}
    kinds = ("noise", "occlude", "shuffle")
    for name, loss, gen_loss in (("default", losses.energy_wgan, losses.generator_energy),
                                 ("standard GAN", losses.energy_logistic, losses.generator_nonsaturating)):
        cfg = gan.image_default(presets.quick, steps=steps, members=members)
        run = cfg.replace(recipe=dataclasses.replace(cfg.recipe, energy_loss=loss, generator_loss=gen_loss)).build()
        damaged = {kind: anomaly.corrupt(held, kind, g) for kind in kinds}
        if name == "default":  # the control: the same nets before any training
            with torch.no_grad():
                normal = run.energy(held)
                out["untrained"] = {k: anomaly.auroc(run.energy(x), normal).tolist() for k, x in damaged.items()}
        run.train(train_set, progress=False)
        with torch.no_grad():
            normal = run.energy(held)
            out[name] = {k: anomaly.auroc(run.energy(x), normal).tolist() for k, x in damaged.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--ring-steps", type=int, default=2000)
    ap.add_argument("--grid-steps", type=int, default=3000)
    ap.add_argument("--mcmc-steps", type=int, default=20)
    ap.add_argument("--mixtures", nargs="*", default=["ring", "grid"], choices=["ring", "grid"])
    ap.add_argument("--digit-steps", type=int, default=presets.quick.image_steps, help="0: no digits")
    ap.add_argument("--digit-members", type=int, default=None, help="members of the digit runs (default: --members, at most 4)")
    ap.add_argument("--name", default="sampling_full", help="the JSON's file name, without .json")
    _common.add_out(ap)
    args = ap.parse_args()
    presets.use_cpu_threads(presets.quick)
    mixes = {"ring": (data.ring(), args.ring_steps), "grid": (data.grid(), args.grid_steps)}
    results = {}
    for mix_name in args.mixtures:
        mixture, steps = mixes[mix_name]
        results[mix_name] = r = measure(mixture, steps, args.members, args.mcmc_steps)
        print(f"{mix_name}: {args.members} members, {steps} steps, {args.mcmc_steps} MALA steps")
        for name, rows in r.items():
            for how in ("generator", "latent MALA, T=1", "x-space MALA, T=1"):
                s = rows[how]
                print(f"  {name:13s} {how:18s} modes {np.mean(s['modes']):5.2f}  high quality "
                      f"{np.mean(s['high_quality']):5.1f} ± {np.std(s['high_quality']):4.1f} %  "
                      f"reverse KL {np.mean(s['reverse_kl']):.3f} (max {np.max(s['reverse_kl']):.3f})")
            print(f"  {name:13s} AUROC {np.mean(rows['auroc']):.3f} (min {np.min(rows['auroc']):.3f}); "
                  f"relief of U over the fakes {np.mean(rows['relief']):.3f}; {rows['minutes']:.1f} min")
    digits, digit_members = {}, 0
    if args.digit_steps:
        digit_members = args.digit_members or min(args.members, 4)
        digits = digits_auroc(digit_members, args.digit_steps)
        print(f"digits: AUROC of U, held-out digits against corrupted ones ({args.digit_steps} steps, {digit_members} members)")
        for name, kinds in digits.items():
            print(f"  {name:13s} " + "  ".join(f"{k} {np.mean(v):.3f} (min {np.min(v):.3f})" for k, v in kinds.items()))
    path = _common.write(args.name, {"members": args.members, "mcmc_steps": args.mcmc_steps,
                                           "steps": {m: mixes[m][1] for m in args.mixtures}, "mixtures": results,
                                           "digits_auroc": digits, "digit_steps": args.digit_steps,
                                           "digit_members": digit_members}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
