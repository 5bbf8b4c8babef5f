"""Frames per second of the playground (``egan_lib.playground``) at its default sizes, headless, and
where a frame's time goes: the training steps, the sampling and landscapes, the drawing into a PNG.

    python bench/playground.py [--frames N] [--members K ...] [--out DIR]

The issue asks for at least 5 redraws per second on a laptop CPU at the default sizes (4 members,
5 steps per frame). Each row times ``--frames`` calls of ``Playground.step`` (what Start repeats) after
5 warm-up frames, and splits one frame's time by timing its parts alone. One torch thread, as the
book's presets run the 2D chapters. Prints a table and writes bench/results/playground.json.
"""

from __future__ import annotations

import argparse
import io
import time

import torch

import _common
from egan_lib import nets, playground


def measure(members: int, frames: int) -> dict:
    pg = playground.Playground(members=members, steps=100_000)
    for _ in range(5):
        pg.step()
    t0 = time.perf_counter()
    for _ in range(frames):
        pg.step()
    per_frame = (time.perf_counter() - t0) / frames
    steps = pg.controls["frame_steps"].value

    def timed(fn, n=10):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n

    train = timed(lambda: pg.gan.train(pg.mix, steps=steps, progress=False, log_every=steps))
    land = timed(lambda: (pg.gan.sample(pg.n_fakes), nets.energy_on_grid(pg.gan.energy, pg.extent, pg.res)))
    draw = timed(lambda: pg.canvas.fig.savefig(io.BytesIO(), format="png", dpi=pg.canvas.dpi,
                                               pil_kwargs={"compress_level": 1}))
    pg.close()
    return {"members": members, "steps_per_frame": steps, "frames_per_second": 1 / per_frame,
            "ms_per_frame": 1000 * per_frame, "ms_train": 1000 * train, "ms_sample_and_landscape": 1000 * land,
            "ms_draw_png": 1000 * draw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--members", type=int, nargs="*", default=[1, 4, 8])
    _common.add_out(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [measure(k, args.frames) for k in args.members]
    print(f"{'members':>8}{'frames/s':>10}{'ms/frame':>10}{'train':>8}{'sample+U':>10}{'PNG':>8}   (ms; steps per frame: "
          f"{rows[0]['steps_per_frame']})")
    for r in rows:
        print(f"{r['members']:>8}{r['frames_per_second']:>10.1f}{r['ms_per_frame']:>10.0f}{r['ms_train']:>8.0f}"
              f"{r['ms_sample_and_landscape']:>10.0f}{r['ms_draw_png']:>8.0f}")
    print(f"wrote {_common.write('playground', {'frames': args.frames, 'rows': rows}, args.out)}")


if __name__ == "__main__":
    main()
