"""Seeds as a batch: the wall time of one training step with K members trained as one batch,
against K single-member runs one after another.

    python bench/members.py [--sizes quick|full]

Each member is the book's default ring GAN at the preset's sizes (``gan.default``: eq. (1) + R1, Adam),
so K members are K seeds.
One step of a K = 1 run is timed in every round next to the batched runs; K sequential runs cost
K times that (the runs share nothing, so that is exactly their wall time). Reported: time per step
at K relative to K = 1 ("cost x") and the speed-up over the sequential loop (K / cost). Goal on a
2-core CPU (issue 6): K = 32 costs at most 4 x one member (8 x the sequential throughput); on a GPU
>= 25 x at K = 64. Writes bench/results/members-<sizes>-<device>.json (``--out DIR``: elsewhere).
"""

from __future__ import annotations

import argparse
import time

import torch

import _common
from egan_lib import data, gan, presets

MEMBERS = (1, 4, 16, 32, 64)


def seconds_per_step(K: int, P: presets.Preset, steps: int, device, batch: int | None = None) -> float:
    run = gan.default(P, members=K, steps=steps, batch=batch or P.batch).build(device)
    run.train(data.ring(), steps=3, progress=False)  # warm-up (allocator, kernels)
    _common.sync(device)
    t0 = time.perf_counter()
    run.train(data.ring(), progress=False)
    _common.sync(device)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", choices=sorted(presets.PRESETS), default="quick",
                    help="net width and batch of which preset (default quick)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=0, help="steps per timing (default: by sizes)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: the preset's)")
    ap.add_argument("--profile", type=int, default=0, metavar="K",
                    help="also profile K members (torch.profiler): where the time goes, and the matmul FLOP rate")
    _common.add_out(ap)
    args = ap.parse_args()
    P = presets.PRESETS[args.sizes]
    device = presets.device()
    presets.use_cpu_threads(P)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (60 if args.sizes == "quick" else 6)
    if device.type == "cuda":
        steps *= 5
    contenders = {K: (lambda K=K: seconds_per_step(K, P, steps, device)) for K in MEMBERS}
    # the fixed cost of a step (Python, kernel launches, optimiser bookkeeping): one member, one sample
    contenders["fixed"] = lambda: seconds_per_step(1, P, steps, device, batch=1)
    t = _common.interleaved(contenders, args.rounds)
    t1, fixed = _common.median(t[1]), _common.median(t["fixed"])
    rows = []
    print(f"{args.sizes} sizes (width {P.width}, depth {P.depth}, batch {P.batch} per member), R1 on, "
          f"on {device} with {torch.get_num_threads()} thread(s); median of {args.rounds} interleaved rounds")
    print(f"{'K':>4}{'ms/step':>10}{'cost x (vs K=1)':>17}{'sequential ms':>15}{'speed-up':>10}")
    for K in MEMBERS:
        tk = _common.median(t[K])
        row = {"K": K, "ms_per_step": 1e3 * tk, "cost": tk / t1, "sequential_ms": 1e3 * K * t1,
               "speedup": K * t1 / tk, "all_seconds": t[K]}
        rows.append(row)
        print(f"{K:>4}{row['ms_per_step']:>10.2f}{row['cost']:>17.2f}{row['sequential_ms']:>15.1f}{row['speedup']:>10.1f}")
    # a step costs about fixed + K * work: what batching can save is the fixed part only
    work = t1 - fixed
    print(f"fixed cost of a step (K=1, batch 1): {1e3 * fixed:.2f} ms; work per member: {1e3 * work:.2f} ms "
          f"({100 * fixed / t1:.0f} % of a one-member step is fixed cost)")
    print(f"{'K':>4}{'model ms (fixed + K x work)':>30}{'measured ms':>13}")
    for r in rows:
        r["model_ms"] = 1e3 * (fixed + r["K"] * work)
        print(f"{r['K']:>4}{r['model_ms']:>30.2f}{r['ms_per_step']:>13.2f}")
    r32 = next(r for r in rows if r["K"] == 32)
    if device.type == "cpu":
        print(f"goal (CPU): K=32 costs <= 4 x one member: {r32['cost']:.2f} x -> {'met' if r32['cost'] <= 4 else 'NOT met'}")
    else:
        r64 = rows[-1]
        print(f"goal (GPU): speed-up >= 25 x at K=64: {r64['speedup']:.1f} x -> {'met' if r64['speedup'] >= 25 else 'NOT met'}")
    payload = {"sizes": args.sizes, "steps": steps, "rows": rows, "fixed_ms": 1e3 * fixed, "work_ms": 1e3 * work}
    if args.profile:
        payload["profile"] = profile(args.profile, P, steps, device)
    name = f"members-{args.sizes}-{'gpu' if device.type == 'cuda' else 'cpu'}"
    if args.threads:
        name += f"-{args.threads}threads"
    print("wrote", _common.write(name, payload, args.out))


def profile(K: int, P: presets.Preset, steps: int, device) -> dict:
    """Operator times of ``steps`` training steps at K members, and the FLOP rate of the matmuls."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    seconds_per_step(K, P, 2, device)  # warm-up
    with torch_profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        seconds_per_step(K, P, steps, device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    table = sorted(({"op": e.key, "share": e.self_cpu_time_total / total,
                     "gflop_per_step": e.flops / 1e9 / steps} for e in events if e.self_cpu_time_total > 0),
                   key=lambda r: -r["share"])[:12]
    step_ms = 1e3 * seconds_per_step(K, P, steps, device)  # without the profiler, which slows every op
    for r in table:
        r["ms_per_step"] = r["share"] * step_ms
    mm = [r for r in table if r["op"] in ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm")]
    mm_ms, mm_gflop = sum(r["ms_per_step"] for r in mm), sum(r["gflop_per_step"] for r in mm)
    print(f"\nprofile of K={K} ({steps} steps; shares of the profiled run, times scaled to an unprofiled "
          f"step of {step_ms:.1f} ms):")
    print(f"{'op':<28}{'share':>7}{'ms/step':>9}")
    for r in table:
        print(f"{r['op'][:27]:<28}{100 * r['share']:>6.1f}%{r['ms_per_step']:>9.2f}")
    print(f"matrix products: {100 * sum(r['share'] for r in mm):.0f} % of the time, {mm_gflop:.2f} GFLOP per step "
          f"at {mm_gflop / mm_ms * 1e3:.0f} GFLOP/s; the rest is elementwise work (activations and their "
          f"first and second derivatives for the penalty) and the optimiser")
    return {"K": K, "steps": steps, "ops": table, "matmul_gflop_per_step": mm_gflop,
            "matmul_gflops": mm_gflop / mm_ms * 1e3}


if __name__ == "__main__":
    main()
