"""Execute the book's notebooks side by side and hand their outputs to the book build.

    python tools/execute_book.py                     # every notebook in _toc.yml, one per CPU core
    python tools/execute_book.py --jobs 1            # one at a time
    python tools/execute_book.py book/02_jumping.ipynb --cache /tmp/cache

Jupyter Book 1 runs the notebooks of a build one after another, and every chapter trains on one CPU
thread (small 2D nets run no faster on two, bench/threads.py), so a build used one core of a machine
with several. This script runs ``--jobs`` notebooks at a time, each in its own kernel in the
notebook's folder (as the build does), and stores the executed notebooks in the build's
jupyter-cache (``_build/.jupyter_cache``). ``_config.yml`` sets ``execute_notebooks: cache``, so the
build that follows takes each chapter's outputs from there instead of running it again; a notebook
the cache does not match (edited since) is executed by the build itself, as before.

Called without notebooks it empties the cache first and executes every notebook, so no output of an
older library or chapter survives (a change to the library does not change a notebook's hash, and
the build alone would reuse it). Called with notebooks it executes those and replaces their entries.
A notebook that fails (a failed "What we verified" assertion) is reported with its traceback after
the others finish, and the script exits with status 1, so
``python tools/execute_book.py && jupyter-book build ...`` stops.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks of the book, in the order of ``_toc.yml``."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


def _config_timeout(root: Path = ROOT) -> int:
    import yaml

    return int(yaml.safe_load((root / "_config.yml").read_text()).get("execute", {}).get("timeout", 600))


def _execute(path: str, timeout: int) -> tuple[str, str | None, float, str | None]:
    """Run one notebook in a fresh kernel; return (path, executed notebook as JSON or None, seconds, traceback)."""
    import traceback

    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    t0 = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
        result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                     meta_override=True)
    except Exception:  # a kernel that died (out of memory), a notebook that cannot be read: also a failure
        return path, None, time.perf_counter() - t0, traceback.format_exc()
    if result.err is not None:
        return path, None, result.time, result.exc_string or repr(result.err)
    return path, nbformat.writes(nb), result.time, None


def _default_jobs() -> int:
    try:
        import torch

        if torch.cuda.is_available():
            return 1  # the full preset fills one GPU
    except ImportError:
        pass
    return max(1, os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in _toc.yml")
    ap.add_argument("--jobs", type=int, default=None, help="notebooks at a time (default: one per CPU core; 1 on a GPU)")
    ap.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache",
                    help="the jupyter-cache folder of the build (default _build/.jupyter_cache)")
    ap.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: _config.yml's execute.timeout)")
    args = ap.parse_args(argv)
    jobs = args.jobs if args.jobs is not None else _default_jobs()
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    notebooks = [p.resolve() for p in args.notebooks] or toc_notebooks()
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        raise ValueError(f"notebooks: no such file {missing}")
    timeout = args.timeout if args.timeout is not None else _config_timeout()

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    if not args.notebooks:
        shutil.rmtree(args.cache, ignore_errors=True)
    cache = get_cache(str(args.cache))
    print(f"executing {len(notebooks)} notebooks, {jobs} at a time (cache: {args.cache})", flush=True)
    t0 = time.perf_counter()
    failed: list[tuple[str, str]] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_execute, str(p), timeout) for p in notebooks]
        for done, future in enumerate(as_completed(futures), 1):
            path, text, seconds, tb = future.result()
            name = Path(path).relative_to(ROOT) if Path(path).is_relative_to(ROOT) else path
            if text is None:
                failed.append((str(name), tb))
                print(f"[{done}/{len(notebooks)}] {name}: FAILED after {seconds:.0f} s", flush=True)
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(nbformat.reads(text, as_version=4), record.uri,
                                                      data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"[{done}/{len(notebooks)}] {name}: {seconds:.0f} s", flush=True)
    print(f"executed in {time.perf_counter() - t0:.0f} s wall time", flush=True)
    for name, tb in failed:
        print(f"\n===== {name} failed =====\n{tb}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
