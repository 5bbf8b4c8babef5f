r"""reST docstrings read for the pages (``egan_lib.show``): the display formulas of ``.. math::``
blocks, inline roles as Markdown, and a docstring's first paragraph as a caption."""

from __future__ import annotations

import inspect
import re

__all__ = ["docstring_math", "rest_to_markdown", "first_paragraph"]


def docstring_math(doc: str | None) -> list[str]:
    r"""The display formulas of a reST docstring: one LaTeX string per equation, in order.

    Both ``.. math:: formula`` (continued on more-indented lines) and a ``.. math::`` block with
    the formula below it are read; blank lines inside a block separate equations, as in Sphinx.
    An equation with ``&`` or ``\\`` outside any environment is wrapped in ``aligned``, and a
    trailing ``,`` / ``.`` / ``;`` (punctuation of the surrounding sentence) is dropped.
    """
    if not doc:
        return []
    out = []
    for block in _math_blocks(inspect.cleandoc(doc)):
        nowrap, body = block
        for eq in re.split(r"\n\s*\n", body):
            eq = "\n".join(line.strip() for line in eq.strip().splitlines())
            if not eq:
                continue
            eq = re.sub(r"\s*[,.;]$", "", eq)
            if not nowrap and _needs_aligned(eq):
                eq = "\\begin{aligned}\n" + eq + "\n\\end{aligned}"
            out.append(eq)
    return out


def rest_to_markdown(text: str) -> str:
    r"""Inline reST as Markdown: ``:math:`x``` to ``$x$``, ````code```` to ```code```, roles to code."""
    text = re.sub(r":math:`([^`]+)`", lambda m: "$" + m.group(1).strip() + "$", text)
    text = re.sub(r":(?:py:)?(?:func|meth|class|mod|attr|obj|data|exc):`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"`([^`<]+?)\s*<([^`>]+)>`__?", r"[\1](\2)", text)  # `text <url>`_
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return text


# --- docstrings ----------------------------------------------------------------------------------


def first_paragraph(doc: str | None, limit: int = 240) -> str:
    """The docstring's first paragraph on one line; cut after its first sentence when long."""
    if not doc:
        return ""
    para = " ".join(line.strip() for line in doc.split("\n\n", 1)[0].splitlines())
    if para.startswith(".. "):
        return ""
    if len(para) > limit:
        m = re.search(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bcf)(?<!\bvs)\.\s+(?=[A-Z(])", para)
        if m and m.start() < limit:
            para = para[: m.start() + 1]
    return para


def _math_blocks(doc: str):
    """Yield ``(nowrap, body)`` for each ``.. math::`` directive of a (cleaned) docstring."""
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)\.\. math::\s*(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1))
        body = [m.group(2)] if m.group(2).strip() else []
        nowrap, j = False, i + 1
        options = not body  # field options (:label:, :nowrap:) may follow a bare directive
        while j < len(lines):
            line = lines[j]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            if options and re.match(r"^\s*:[\w-]+:", line):
                nowrap |= line.strip().startswith(":nowrap:")
            else:
                options = options and not line.strip()
                body.append(line)
            j += 1
        yield nowrap, "\n".join(body).strip("\n")
        i = j


def _needs_aligned(eq: str) -> bool:
    if re.search(r"\\begin\{(aligned|align\*?|split|gathered|gather\*?|multline\*?|eqnarray\*?)\}", eq):
        return False
    flat = eq
    while True:  # take out matrices and other environments, innermost first
        new = re.sub(r"\\begin\{(\w+\*?)\}(?:(?!\\begin\{).)*?\\end\{\1\}", "", flat, flags=re.S)
        if new == flat:
            break
        flat = new
    return "\\\\" in flat or re.search(r"(?<!\\)&", flat) is not None
