"""The bench scripts that train GANs run end to end on a tiny budget and write their JSON (to a
temporary folder: bench/results only ever holds real measurements)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script, *args, tmp_path):
    out = subprocess.run([sys.executable, str(BENCH / script), *args, "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=BENCH, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_full2d_writes_every_member_of_both_mixtures(tmp_path):
    text = _run("full2d.py", "--members", "2", "--ring-steps", "4", "--grid-steps", "4", tmp_path=tmp_path)
    d = json.loads((tmp_path / "full2d.json").read_text())
    for mix in ("ring", "grid"):
        assert len(d["mixtures"][mix]["high_quality"]) == 2 and d["mixtures"][mix]["steps"] == 4
    assert "PacGAN" in text and "perfect" in text.lower()


def test_ablation_runs_named_rows_and_refuses_unknown_ones(tmp_path):
    _run("ablation.py", "--members", "2", "--ring-steps", "4", "--grid-steps", "4",
         "--rows", "SiLU, constant lr", "ReLU, decay, lr 4e-3", "--name", "abl", tmp_path=tmp_path)
    d = json.loads((tmp_path / "abl.json").read_text())
    assert list(d["rows"]) == ["SiLU, constant lr", "ReLU, decay, lr 4e-3"]
    assert "SiLU" in d["base"] and "schedule=None" in d["base"].replace(" ", "")
    with pytest.raises(AssertionError):
        _run("ablation.py", "--rows", "no such row", tmp_path=tmp_path)


def _ablation():
    """bench/ablation.py as a module (it imports bench/_common, so bench/ is on the path while it loads)."""
    sys.path.insert(0, str(BENCH))
    try:
        import ablation
    finally:
        sys.path.remove(str(BENCH))
    return ablation


def test_the_ablations_default_row_is_the_books_default():
    ablation = _ablation()
    from egan_lib import gan, train

    changes, factor = ablation.ROWS["default"]
    row = ablation.BASE.replace(**changes, members=4, steps=2000)
    assert factor == 1.0 and train.describe(row) == train.describe(gan.GAN2D())


def test_every_stored_ablation_row_is_the_set_up_its_name_says():
    """A row's name in a stored table is a key of ablation.ROWS; the changes it ran with (stored as text,
    relative to BASE) must be that row's changes today, field by field (a field a side leaves out is BASE's)."""
    ablation = _ablation()
    from egan_lib import train

    checked = 0
    for path in sorted((BENCH / "results").glob("ablation*.json")):
        for name, row in json.loads(path.read_text())["rows"].items():
            changes = ablation.ROWS[name][0]
            for field in set(changes) | set(row["changes"]):
                base = train.describe(getattr(ablation.BASE, field))
                want = train.describe(changes[field]) if field in changes else base
                assert row["changes"].get(field, base) == want, (path.name, name, field)
            checked += 1
    assert checked >= 10


def test_stacked_full_records_the_schedule_and_average_it_ran_with(tmp_path):
    _run("stacked_full.py", "--members", "2", "--steps", "4", "--width", "4", "--batch", "8", "--eval-samples", "200",
         "--configs", "none", "--schedule", "decay", "--ema", "0.999", "--lr", "1e-3", "--name", "sd", tmp_path=tmp_path)
    d = json.loads((tmp_path / "sd.json").read_text())
    assert d["args"]["schedule"] == "decay" and d["args"]["ema"] == 0.999 and d["args"]["lr"] == 1e-3
    assert list(d["rows"]) == ["none"] and len(d["rows"]["none"]["kl"]) == 2


def test_mixtures_runs_the_full_size_recipe_on_a_named_mixture(tmp_path):
    _run("mixtures.py", "--members", "2", "--steps", "4", "--rows", "full-size recipe",
         "--mixtures", "grid 7x7, spacing 1.5, standardised", "--ema", "0.99", "--name", "mx", tmp_path=tmp_path)
    d = json.loads((tmp_path / "mx.json").read_text())
    r = d["mixtures"]["grid 7x7, spacing 1.5, standardised"]
    assert r["modes_total"] == 49 and len(r["full-size recipe"]["high_quality"]) == 2
    assert "ema=0.99" in d["full_recipe"].replace(" ", "")


def test_energy_model_scores_chains_and_exact_density(tmp_path):
    _run("energy_model.py", "--members", "2", "--steps", "3", "--rows", "ring, default", "ring, no jumps",
         tmp_path=tmp_path)
    d = json.loads((tmp_path / "energy_model.json").read_text())
    assert list(d["rows"]) == ["ring, default", "ring, no jumps"]
    for row in d["rows"].values():
        assert row["steps"] == 3 and {"buffer", "MALA", "exact"} <= set(row)
        assert len(row["exact"]["reverse_kl"]) == 2 and len(row["auroc"]) == 2
    assert "jump=False" in d["rows"]["ring, no jumps"]["config"].replace(" ", "")
