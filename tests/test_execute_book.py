"""tools/execute_book.py: notebooks executed side by side into the cache the book build reads."""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("execute_book", ROOT / "tools" / "execute_book.py")
execute_book = importlib.util.module_from_spec(_spec)
sys.modules["execute_book"] = execute_book  # so the worker processes find its functions by name
_spec.loader.exec_module(execute_book)


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# a page")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_the_toc_lists_the_books_notebooks():
    names = [p.name for p in execute_book.toc_notebooks()]
    assert names[0] == "01_digging.ipynb" and "09_sampling.ipynb" in names and "playground.ipynb" in names
    assert all(p.suffix == ".ipynb" and p.exists() for p in execute_book.toc_notebooks())


def test_executed_notebooks_are_what_the_build_finds(tmp_path, capsys):
    a = _notebook(tmp_path / "a.ipynb", "x = 20 + 22\nprint(x)")
    b = _notebook(tmp_path / "b.ipynb", "from pathlib import Path\nprint(Path.cwd().name)")
    cache_dir = tmp_path / "cache"
    assert execute_book.main([str(a), str(b), "--cache", str(cache_dir), "--jobs", "2"]) == 0
    cache = get_cache(str(cache_dir))
    for path, printed in ((a, "42"), (b, tmp_path.name)):  # b ran in its own folder, as the build runs it
        record = cache.match_cache_notebook(nbformat.read(path, as_version=4))  # myst-nb's look-up
        _, merged = cache.merge_match_into_notebook(nbformat.read(path, as_version=4))
        assert record is not None and merged.cells[1].outputs[0]["text"].strip() == printed
    assert "[2/2]" in capsys.readouterr().out


def test_a_full_run_empties_the_cache_first(tmp_path, monkeypatch):
    # without notebooks every notebook of the book runs, so nothing older may survive in the cache
    (tmp_path / "cache" / "stale").mkdir(parents=True)
    monkeypatch.setattr(execute_book, "toc_notebooks", lambda: [_notebook(tmp_path / "a.ipynb", "1 + 1")])
    assert execute_book.main(["--cache", str(tmp_path / "cache")]) == 0
    assert not (tmp_path / "cache" / "stale").exists()
    get_cache(str(tmp_path / "cache")).match_cache_notebook(nbformat.read(tmp_path / "a.ipynb", as_version=4))


def test_a_failing_notebook_fails_the_call_and_says_why(tmp_path, capsys):
    good = _notebook(tmp_path / "good.ipynb", "print('fine')")
    bad = _notebook(tmp_path / "bad.ipynb", "modes = 7", "assert modes == 8, f'only {modes} modes'")
    cache_dir = tmp_path / "cache"
    assert execute_book.main([str(bad), str(good), "--cache", str(cache_dir), "--jobs", "1"]) == 1
    out = capsys.readouterr()
    assert "bad.ipynb: FAILED" in out.out and "only 7 modes" in out.err
    cache = get_cache(str(cache_dir))
    cache.match_cache_notebook(nbformat.read(good, as_version=4))  # the others still ran and were cached
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(bad, as_version=4))


def test_a_notebook_that_cannot_be_read_is_a_failure_too(tmp_path, capsys):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    assert execute_book.main([str(broken), "--cache", str(tmp_path / "cache")]) == 1
    assert "broken.ipynb: FAILED" in capsys.readouterr().out


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--jobs"):
        execute_book.main([str(_notebook(tmp_path / "a.ipynb", "1")), "--jobs", "0", "--cache", str(tmp_path / "c")])
    with pytest.raises(ValueError, match="notebooks"):
        execute_book.main([str(tmp_path / "missing.ipynb"), "--cache", str(tmp_path / "c")])
