"""The book's structure: config, table of contents, chapter anatomy, and the README example."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")


def _toc_files():
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


NOTEBOOKS = [ROOT / f"{f}.ipynb" for f in _toc_files() if (ROOT / f"{f}.ipynb").exists()]
CHAPTERS = [nb for nb in NOTEBOOKS if nb.name[0].isdigit()]  # the rest are appendices


def _cells(nb_path, kind="code"):
    nb = json.loads(nb_path.read_text())
    return [c for c in nb["cells"] if c["cell_type"] == kind]


def _src(cell):
    return "".join(cell["source"])


def test_config_pins_the_essentials():
    # the build takes outputs from the cache that tools/execute_book.py fills (emptied first) just before it
    assert CONFIG["execute"]["execute_notebooks"] == "cache"
    assert CONFIG["execute"]["allow_errors"] is False
    assert {"dollarmath", "amsmath"} <= set(CONFIG["parse"]["myst_enable_extensions"])
    assert CONFIG["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert CONFIG["repository"]["branch"] == "main"


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    for f in _toc_files():
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f"{f} is in _toc.yml but missing"
    listed = {ROOT / f"{f}.ipynb" for f in _toc_files()}
    for nb in (ROOT / "book").glob("*.ipynb"):
        assert nb in listed, f"{nb.name} is not in _toc.yml"


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_is_stored_without_outputs(nb):
    for c in _cells(nb):
        assert not c.get("outputs") and c.get("execution_count") is None, f"{nb.name} has outputs: strip them"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_no_control_characters_in_cells(nb):
    # a LaTeX backslash lost in a Python string turns \text into a tab, \approx into a bell, \frac into a form feed
    for c in json.loads(nb.read_text())["cells"]:
        bad = sorted({repr(ch) for ch in _src(c) if ord(ch) < 32 and ch != "\n"})
        assert not bad, f"{nb.name}: control characters {bad} in {_src(c)[:60]!r}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_anatomy(nb):
    md = _cells(nb, "markdown")
    code = _cells(nb)
    title = _src(md[0])
    assert title.startswith("# Chapter"), f"{nb.name}: first cell must be the chapter title"
    badge = f"https://colab.research.google.com/github/{REPO_URL.removeprefix('https://github.com/')}/blob/main/book/{nb.name}"
    assert badge in title, f"{nb.name}: the Colab badge must point at {badge}"
    install = _src(code[0])
    assert f'"egan_lib @ git+{REPO_URL}@main"' in install, f"{nb.name}: install cell must use {REPO_URL}"
    assert "except ImportError" in install and not re.search(r"\b(torch|numpy)\s*[=<>]=", install)
    assert "presets.current()" in _src(code[1]) and "describe" in _src(code[1])
    assert "presets.use_cpu_threads(P)" in _src(code[1]), f"{nb.name}: set the CPU threads in the set-up cell"
    assert any("What we verified" in _src(c) for c in md), f"{nb.name}: no 'What we verified' section"
    assert "assert" in _src(code[-1]), f"{nb.name}: the closing cell must assert the chapter's claims"
    for c in code:
        assert not re.search(r"^\s*from\s+egan_lib(\.\w+)?\s+import\s+\*", _src(c), re.M), "no star imports"


def test_speed_appendix_reads_only_committed_bench_results():
    nb = ROOT / "book" / "appendix_speed.ipynb"
    assert nb in NOTEBOOKS
    assert _src(_cells(nb, "markdown")[0]).startswith("# How fast is it?")
    code = "\n".join(_src(c) for c in _cells(nb))
    names = re.findall(r'"((?:overhead|members|penalty_cost|chapters|threads|entropy_full|stacked_full)[\w-]*)"', code)
    assert names, "the appendix reads no bench results"
    for name in names:
        assert (ROOT / "bench" / "results" / f"{name}.json").exists(), f"bench/results/{name}.json is missing"


def test_readme_has_the_two_commands():
    text = (ROOT / "README.md").read_text()
    for marker in ("<!-- ci:build -->", "<!-- ci:test -->"):
        assert marker in text
    build = text.split("<!-- ci:build -->")[1].split("```")[1]
    test = text.split("<!-- ci:test -->")[1].split("```")[1]
    assert "torch==2.13.0" in build and "jupyter-book build --all -W" in build
    # the chapters run side by side into the cache the build reads, right before it
    assert "python tools/execute_book.py && jupyter-book build" in build
    assert "torch==2.13.0" in test and test.strip().endswith("pytest")


def test_readme_example_runs():
    text = (ROOT / "README.md").read_text()
    example = text.split("## The library in five lines")[1].split("```python")[1].split("```")[0]
    scope: dict = {}
    exec(compile(example, "README example", "exec"), scope)
    assert scope["history"].steps[-1] == 2000 and scope["run"].config.seed == 0
    # what it prints must show a working GAN, in every seed: all 8 modes, most samples of high quality
    # (an even spread round the ring scores 7.6 %) and the modes evenly shared (the book's quick targets)
    stats = scope["stats"]
    assert (stats.modes == 8).all() and (stats.high_quality >= 70).all(), stats
    assert (stats.reverse_kl <= 0.05).all(), stats
