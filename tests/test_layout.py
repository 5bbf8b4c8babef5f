"""The layout of the house (DESIGN.md section 3): small modules, dependencies that point one way,
library code shown in the book rather than printed, and the published numbers in one place."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "egan_lib"
MODULES = sorted(p for p in LIB.glob("*.py") if p.name != "__init__.py")
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
MAX_LINES = 350

# pure modules: functions of tensors, nets, data and numbers; they know nothing of how a run is trained,
# set up, checkpointed or drawn
PURE = ("losses", "penalties", "entropy", "data", "nets", "convnets", "energies", "particles", "metrics", "sampling", "anomaly",
        "instruments", "presets", "dirac", "published")
NOT_FROM_PURE = {"train", "callbacks", "checkpoints", "gan", "plot", "widgets", "controls", "playground"}

# numbers of DESIGN.md section 8 that belong to egan_lib/published.py only (distinctive enough that they
# cannot be anything else): ring GAN and PacGAN2 % high quality, grid GAN, ALI and PacGAN4 % high quality
PUBLISHED = ("98.2", "95.6", "93.6", "94.8", "95.7")


def _cells(nb: Path, kind: str | None = "code") -> list[str]:
    """The sources of a notebook's cells of one kind (``None``: all); notebooks are stored without outputs."""
    return ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if kind in (None, c["cell_type"])]


def _egan_imports(path: Path) -> set[str]:
    """The egan_lib modules that ``path`` imports anywhere in it (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:  # from . import a, b
                found |= {a.name for a in node.names}
            elif node.level == 1:  # from .a import b
                found.add(node.module.split(".")[0])
            elif node.level == 0 and node.module == "egan_lib":  # from egan_lib import a
                found |= {a.name for a in node.names}
            elif node.level == 0 and node.module and node.module.startswith("egan_lib."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("egan_lib.")}
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_no_module_is_over_350_lines(module):
    n = len(module.read_text().splitlines())
    assert n <= MAX_LINES, f"egan_lib/{module.name} has {n} lines (at most {MAX_LINES}): split it by concern"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_no_notebook_prints_library_source(nb):
    # library code is shown as the reader sees it ({literalinclude} with :pyobject:, or show.source), never
    # as a printed string with its argument checks and raw reST
    for src in _cells(nb):
        assert not re.search(r"print\(\s*inspect\.getsource", src), \
            f"{nb.name} prints library source with print(inspect.getsource(...)): {src.strip()[:80]!r}"


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_nothing_of_training_set_up_or_drawing(name):
    path = LIB / f"{name}.py"
    if not path.exists():
        pytest.skip(f"egan_lib/{name}.py does not exist")
    # follow the imports inside egan_lib: a pure module may not reach train or plot through another module
    seen, todo, via = set(), [name], {name: [name]}
    while todo:
        mod = todo.pop()
        seen.add(mod)
        for dep in _egan_imports(LIB / f"{mod}.py"):
            if dep in NOT_FROM_PURE:
                chain = " -> ".join([*via[mod], dep])
                pytest.fail(f"pure module egan_lib/{name}.py imports {dep} ({chain})")
            if dep not in seen and (LIB / f"{dep}.py").exists():
                via[dep] = [*via[mod], dep]
                todo.append(dep)


def test_the_import_parser_sees_every_form(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("from . import a, b\nfrom .c import x\nfrom egan_lib import d\nfrom egan_lib.e import y\n"
                    "import egan_lib.f\nimport torch\nfrom .. import other_package\ndef g():\n    from .h import z\n")
    assert _egan_imports(path) == {"a", "b", "c", "d", "e", "f", "h"}


def test_published_numbers_live_only_in_egan_lib_published():
    if not (LIB / "published.py").exists():
        pytest.skip("egan_lib/published.py does not exist yet: nothing to keep the published numbers in")
    published = (LIB / "published.py").read_text()
    assert all(x in published for x in PUBLISHED), "a number of DESIGN.md section 8 is missing from published.py"
    files = [*NOTEBOOKS, *sorted((ROOT / "bench").glob("*.py"))]
    pattern = re.compile(r"(?<![\d.])(" + "|".join(map(re.escape, PUBLISHED)) + r")(?!\d)")
    copies = []
    for f in files:
        text = "\n".join(_cells(f, None)) if f.suffix == ".ipynb" else f.read_text()
        copies += [f"{f.relative_to(ROOT)}: {m.group(1)}" for m in pattern.finditer(text)]
    assert not copies, f"published numbers copied outside egan_lib/published.py (read them from there): {copies}"
