"""``egan_lib.published``: the published reference numbers, each with its citation, in one place; the
ceilings of a perfect sampler against their formulas and against a measurement."""

import dataclasses
import json
import math
from pathlib import Path

import pytest

from egan_lib import data, metrics, published

ROOT = Path(__file__).resolve().parents[1]
ROWS = published.RING + published.GRID + published.STACKED_MNIST + published.STACKED_MNIST_LATER


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.method}, {r.cited_as}")
def test_every_row_names_its_paper_and_table(row):
    assert "Table" in row.source and any(str(y) in row.source for y in range(2017, 2025))
    assert row.label == f"{row.method} ({row.cited_as})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.modes = 0


def test_the_rows_of_the_design():
    pick = lambda rows, m: next(r for r in rows if r.method == m)
    assert (pick(published.RING, "GAN").modes, pick(published.RING, "GAN").high_quality) == (6.3, 98.2)
    assert pick(published.GRID, "PacGAN4").reverse_kl == 0.04 and pick(published.GRID, "VEEGAN").reverse_kl is None
    assert [(r.method, r.modes, r.reverse_kl) for r in published.STACKED_MNIST] == [
        ("MEG", 1000, 0.031), ("PacGAN", 1000, 0.06), ("WGAN-GP", 959, 0.73)]
    assert all(r.high_quality is None for r in published.STACKED_MNIST + published.STACKED_MNIST_LATER)
    assert all(0 < r.modes <= 8 for r in published.RING) and all(0 < r.modes <= 25 for r in published.GRID)


def test_the_perfect_sampler_ceilings():
    p = 100 * (1 - math.exp(-4.5))
    assert published.PERFECT_RING.high_quality == pytest.approx(p) and round(p, 1) == 98.9
    assert published.PERFECT_RING.reverse_kl == pytest.approx(7 / (2 * 2500 * p / 100))
    assert round(published.PERFECT_RING.reverse_kl, 4) == 0.0014
    assert round(published.PERFECT_STACKED_MNIST.reverse_kl, 3) == 0.019
    assert published.PERFECT_STACKED_MNIST.high_quality is None and published.PERFECT_GRID.modes == 25
    with pytest.raises(ValueError, match="n_modes"):
        published.perfect_sampler(0, 100)
    with pytest.raises(ValueError, match="dim"):
        published.perfect_sampler(8, 100, dim=3)


def test_the_ceiling_is_what_the_data_score():
    ring = data.ring()
    s = metrics.sampling_spread(lambda n, rng: ring.sample(n, rng, members=1), ring, repeats=40, n=2500, seed=1)
    ceiling = published.PERFECT_RING
    assert abs(s.high_quality.mean() - ceiling.high_quality) < 0.2  # 40 draws: standard error about 0.03
    assert abs(s.reverse_kl.mean() / ceiling.reverse_kl - 1) < 0.3
    assert (s.modes == 8).all()


def _code(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    return path.read_text()


def test_no_other_copy_of_the_numbers():
    # the published rows as they were once copied by hand: (modes, high quality) or (modes, KL) side by side
    copies = ["6.3, 98.2", "7.9, 95.6", "17.3, 94.8", "24.1, 95.7", "24.8, 93.6", "24.6, 40.0", "1000, 0.031",
              "959, 0.73"]
    files = sorted(ROOT.glob("book/*.ipynb")) + sorted(ROOT.glob("bench/*.py")) + sorted(ROOT.glob("egan_lib/*.py"))
    for path in files:
        if path.name == "published.py":
            continue
        code = _code(path)
        assert not [c for c in copies if c in code], f"{path.name} holds a copy of a published number"


def test_bench_results_reads_the_stored_tables_and_says_when_one_is_missing(capsys):
    full = published.bench_results("full2d")  # this checkout is a clone: the stored table is found
    stored = json.loads((Path(__file__).resolve().parents[1] / "bench" / "results" / "full2d.json").read_text())
    assert full == stored and set(full["mixtures"]) == {"ring", "grid"}
    assert published.bench_results("no_such_table") is None
    assert "bench/results/no_such_table.json is not here" in capsys.readouterr().out
    for bad in ("full2d.json", "../full2d", "", 3):
        with pytest.raises(ValueError, match="name"):
            published.bench_results(bad)
