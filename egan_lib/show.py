r"""Code as the reader sees it: a library function's algorithm, with its formula above it.

A chapter shows the library's own code, never a pasted copy. Printing
``inspect.getsource(f)`` shows everything in the file: the docstring with its raw reST, and the
argument checks that make up half of many functions. ``source(f)`` shows what the chapter is
about instead::

    from egan_lib import show, particles
    show.source(particles.roll)

The result is Markdown: a caption from the docstring's first paragraph, the docstring's
``.. math::`` formulas as display math, and the code without its docstring and argument checks
in a ``python`` code block. Jupyter, JupyterLab and Colab render it with highlighting and
MathJax; so does the book, whose builder (myst-nb) parses Markdown outputs as MyST there
(``nb_render_markdown_format: myst`` in ``_config.yml``; plain CommonMark would leave ``$$`` as text).

What counts as an argument check (``drop_checks=True``):

* a statement that is only a call to ``_validate.<anything>(...)`` or to a helper whose name
  starts with ``_check`` or ``_validate`` (a call whose result is assigned is kept);
* an ``if`` whose branches do nothing but raise ``ValueError`` or ``TypeError`` (``elif`` chains
  included), and a ``for`` loop whose body is only such checks.

Every other line is shown exactly as written, comments included, dedented.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from dataclasses import dataclass

from ._docstrings import docstring_math, first_paragraph, rest_to_markdown

__all__ = ["Source", "source", "code", "docstring_math", "rest_to_markdown", "glue"]

#: Exceptions whose ``raise`` marks an ``if`` as an argument check.
ARGUMENT_ERRORS = frozenset({"ValueError", "TypeError"})
#: Check helpers: ``_validate.<name>(...)`` calls and functions named ``_check*`` / ``_validate*``.
CHECK_MODULE = "_validate"
CHECK_PREFIXES = ("_check", "_validate")


@dataclass(frozen=True, repr=False)
class Source:
    """What ``source`` returns: Markdown for Jupyter, Colab and the book; the bare code as text.

    IPython displays it through ``_repr_markdown_`` (the ``text/markdown`` output that myst-nb
    renders in the book); ``str()`` and the plain-text repr give the code alone.
    """

    markdown: str  # caption, display math and a fenced ``python`` block
    code: str  # the code shown, without the fence

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's text/plain
        p.text(self.code)

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        n = self.code.count("\n") + 1
        return f"<Source: {n} lines of code; display it in a notebook, or print() it>"


# --- the public entry points -----------------------------------------------------------------


def source(obj, *, drop_checks: bool = True, lines: tuple[int, int] | None = None,
           between: tuple[str, str | None] | None = None, caption: bool | str = True,
           math: bool = True) -> Source:
    r"""Show a function, method or class (or a list of them, one after another) as a reader wants it.

    Args:
        obj: a function, method, class or property; or a non-empty list/tuple of them.
        drop_checks: leave out the argument checks (what counts as one: the module's docstring).
            The docstring is left out either way: its formulas and first paragraph are shown above.
        lines: ``(start, stop)``: show only these lines, counted from 1 at the object's first line
            (its ``def``, ``class`` or first decorator), both included.
        between: ``(start, end)``: show only the lines from the first one containing the text
            ``start`` to the first later one containing ``end``, both included (``end=None``: to the
            end). Markers may be comments or code; they survive edits better than line numbers.
        caption: ``True``: the object's name and the first paragraph of its docstring; ``False``: no
            caption; a string: that Markdown instead.
        math: show the docstring's ``.. math::`` formulas as display math above the code.

    Returns:
        A ``Source``: displayed as Markdown in a notebook and in the book, ``str()`` is the code.

    Raises:
        ValueError: a bad argument (named in the message), or an object whose source is unavailable.
    """
    if not isinstance(drop_checks, bool):
        raise ValueError(f"drop_checks must be True or False, got {drop_checks!r}")
    if not isinstance(math, bool):
        raise ValueError(f"math must be True or False, got {math!r}")
    if not isinstance(caption, (bool, str)):
        raise ValueError(f"caption must be True, False or a string, got {type(caption).__name__}")
    if lines is not None and between is not None:
        raise ValueError("give lines or between, not both")
    if isinstance(obj, (list, tuple)):
        if not obj:
            raise ValueError("obj must be a function, method or class, or a non-empty list of them; got an empty list")
        if lines is not None or between is not None:
            raise ValueError(f"{'lines' if lines is not None else 'between'} selects part of one object, "
                             f"but obj is a list of {len(obj)}")
        if isinstance(caption, str) and len(obj) > 1:
            raise ValueError("caption must be True or False when obj is a list (one caption per object)")
        parts = [_one(o, f"obj[{i}]", drop_checks, None, None, caption, math) for i, o in enumerate(obj)]
    else:
        parts = [_one(obj, "obj", drop_checks, lines, between, caption, math)]
    return Source("\n\n".join(md for md, _ in parts) + "\n", "\n\n\n".join(c for _, c in parts))


def code(obj, *, drop_checks: bool = True, lines: tuple[int, int] | None = None,
         between: tuple[str, str | None] | None = None) -> str:
    """Only the code that ``source`` would show, as a string (for tests and plain-text use)."""
    return source(obj, drop_checks=drop_checks, lines=lines, between=between, caption=False, math=False).code


# --- one object --------------------------------------------------------------------------------


def _one(obj, name, drop_checks, lines, between, caption, math) -> tuple[str, str]:
    target = _unwrap(obj, name)
    try:
        raw = inspect.getsource(target)
    except (OSError, TypeError) as err:
        raise ValueError(f"{name}: no source code is available for {obj!r} ({err})") from None
    src_lines = _strip_first_indent(raw.splitlines())
    try:
        tree = ast.parse("\n".join(src_lines))
    except SyntaxError as err:
        raise ValueError(f"{name}: the source of {obj!r} cannot be parsed on its own ({err.msg})") from None
    top = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))), None)
    if top is None:
        raise ValueError(f"{name} must be a function, method or class defined with def/class, got {obj!r}")

    drop, placeholders = _lines_to_drop(tree, src_lines, drop_checks)
    keep = _select(len(src_lines), src_lines, lines, between)
    shown = [(i, placeholders.get(i, src_lines[i - 1])) for i in keep if i not in drop or i in placeholders]
    text = _tidy(shown, _inside_strings(tree))

    doc = ast.get_docstring(top, clean=True)
    parts = []
    if caption is True:
        first = first_paragraph(doc)
        label = f"`{_qualified_name(target)}`"
        parts.append(f"{label} — {rest_to_markdown(first)}" if first else label)
    elif caption:
        parts.append(caption)
    if math:
        parts += [f"$$\n{eq}\n$$" for eq in docstring_math(doc)]
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    parts.append(f"{fence}python\n{text}\n{fence}")
    return "\n\n".join(parts), text


def _unwrap(obj, name):
    if isinstance(obj, property):
        if obj.fget is None:
            raise ValueError(f"{name} is a property with no getter")
        return obj.fget
    if isinstance(obj, functools.cached_property):
        return obj.func
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    if inspect.ismethod(obj):
        return obj.__func__
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return obj
    raise ValueError(f"{name} must be a function, method, class or property (or a list of them), "
                     f"got {type(obj).__name__}: {obj!r}"[:300])


def _qualified_name(obj) -> str:
    module = getattr(obj, "__module__", None) or ""
    short = module.rsplit(".", 1)[-1]
    qual = getattr(obj, "__qualname__", getattr(obj, "__name__", "?")).replace(".<locals>", "")
    return qual if short in ("", "__main__", "builtins") else f"{short}.{qual}"


def _strip_first_indent(lines: list[str]) -> list[str]:
    """Remove the first line's indentation from every line that has it (a method's source)."""
    indent = re.match(r"\s*", lines[0]).group(0) if lines else ""
    return [line[len(indent):] if line.startswith(indent) else (line if line.strip() else "") for line in lines]


def _select(n: int, src_lines: list[str], lines, between) -> list[int]:
    if lines is not None:
        ok = (isinstance(lines, (tuple, list)) and len(lines) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in lines))
        if not ok or not 1 <= lines[0] <= lines[1] <= n:
            raise ValueError(f"lines must be (start, stop) with 1 <= start <= stop <= {n} (this object's "
                             f"lines, counted from its first line), got {lines!r}")
        return list(range(lines[0], lines[1] + 1))
    if between is not None:
        ok = (isinstance(between, (tuple, list)) and len(between) == 2 and isinstance(between[0], str)
              and between[0] and (between[1] is None or (isinstance(between[1], str) and between[1])))
        if not ok:
            raise ValueError(f"between must be (start, end): two non-empty strings, end may be None; got {between!r}")
        start = next((i for i, line in enumerate(src_lines, 1) if between[0] in line), None)
        if start is None:
            raise ValueError(f"between: no line contains the start marker {between[0]!r}")
        stop = n
        if between[1] is not None:
            stop = next((i for i, line in enumerate(src_lines, 1) if i > start and between[1] in line), None)
            if stop is None:
                raise ValueError(f"between: no line after {between[0]!r} contains the end marker {between[1]!r}")
        return list(range(start, stop + 1))
    return list(range(1, n + 1))


# --- what to leave out ---------------------------------------------------------------------------


def _lines_to_drop(tree: ast.Module, src_lines: list[str], drop_checks: bool):
    """Line numbers (1-based) of docstrings and checks; ``...`` placeholders for emptied blocks."""
    drop: set[int] = set()
    placeholders: dict[int, str] = {}

    def visit(node: ast.AST) -> None:
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            gone = []
            for i, stmt in enumerate(body):
                is_doc = (i == 0 and field == "body" and _is_docstring(stmt)
                          and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
                is_check = drop_checks and _is_check(stmt) and not isinstance(stmt, ast.Raise)
                if (is_doc or is_check) and _owns_its_lines(stmt, src_lines):
                    gone.append(stmt)
                else:
                    visit(stmt)  # what is left out is not looked into
            for stmt in gone:
                drop.update(range(stmt.lineno, stmt.end_lineno + 1))
            first = gone[0] if gone else None
            is_elif = (field == "orelse" and isinstance(node, ast.If) and first is not None
                       and src_lines[first.lineno - 1].lstrip().startswith("elif"))
            if gone and len(gone) == len(body) and not is_elif:  # an emptied block still needs a statement
                placeholders[first.lineno] = src_lines[first.lineno - 1][:first.col_offset] + "..."
        for child in getattr(node, "handlers", []) + getattr(node, "cases", []):  # try/except, match
            visit(child)

    visit(tree)
    return drop, placeholders


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _is_check(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Expr):
        return isinstance(stmt.value, ast.Call) and _is_check_call(stmt.value)
    if isinstance(stmt, ast.Raise):
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id in ARGUMENT_ERRORS
    if isinstance(stmt, ast.If):
        return all(map(_is_check, stmt.body)) and all(map(_is_check, stmt.orelse))
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return not stmt.orelse and all(map(_is_check, stmt.body))
    return False


def _is_check_call(call: ast.Call) -> bool:
    parts, f = [], call.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    if not parts:
        return False
    root, last = parts[-1], parts[0]
    return root == CHECK_MODULE or last.startswith(CHECK_PREFIXES)


def _owns_its_lines(stmt: ast.stmt, src_lines: list[str]) -> bool:
    """True when nothing but whitespace precedes the statement and nothing but a comment follows it."""
    before = src_lines[stmt.lineno - 1][:stmt.col_offset]
    after = src_lines[stmt.end_lineno - 1][stmt.end_col_offset:]
    return not before.strip() and (not after.strip() or after.strip().startswith("#"))


def _inside_strings(tree: ast.Module) -> set[int]:
    """Lines inside multi-line string literals, which tidying must not touch."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.end_lineno > node.lineno:
            inside.update(range(node.lineno + 1, node.end_lineno + 1))
    return inside


def _tidy(shown: list[tuple[int, str]], protected: set[int]) -> str:
    """Dedent; no blank line right after a block opener, at most one in a row, none at the ends.

    ``shown`` holds ``(line number, text)``; lines inside multi-line strings (``protected``) are
    kept exactly as they are.
    """
    out: list[str] = []
    for i, line in shown:
        if i in protected:
            out.append(line)
        elif not line.strip():
            if out and out[-1].strip() and not _opens_block(out[-1]):
                out.append("")
        else:
            out.append(line.rstrip())
    while out and not out[-1].strip():
        out.pop()
    return textwrap.dedent("\n".join(out))


def _opens_block(line: str) -> bool:
    return re.sub(r"\s+#.*$", "", line).rstrip().endswith(":")


def glue(name: str, value, *, display: bool = False) -> None:
    """Hand a number measured in this run to the book's prose (myst-nb's ``glue``; in the text,
    ``{glue:text}`name:.1f```). Where myst-nb is not installed (Colab, a bare Jupyter), it does
    nothing: the prose then shows the reference and the cell's printed output holds the number."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=display)

