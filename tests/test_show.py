r"""show.source: the library's code as a chapter shows it (no docstring, no argument checks,
the docstring's formulas as math above the code)."""

import ast
import inspect

import pytest

from egan_lib import _validate, losses, show


# --- small functions to show ------------------------------------------------------------------


def descend(x, *, steps, lr):
    r"""Plain gradient descent on a bowl.

    Each step moves every point downhill,

    .. math:: x \leftarrow x - \eta\, \nabla_x U(x), \qquad \eta = \texttt{lr},

    with :math:`U(x) = \tfrac12 x^2`.
    """
    _validate.positive("steps", steps, integer=True)
    _validate.positive("lr", lr)
    if not isinstance(x, list):
        raise ValueError(f"x must be a list, got {type(x).__name__}")
    elif not x:
        raise TypeError("x must not be empty")

    for step in range(steps):
        # the gradient of U(x) = x^2 / 2 is x itself
        x = [xi - lr * xi for xi in x]
    return x  # where the points came to rest


def _check_pair(a, b):
    if a > b:
        raise ValueError("a must not exceed b")


def two_lines(a, b):
    r"""Two equations in one block, and a helper check.

    .. math::

        a &\le b \\
        b - a &\ge 0

        c = a + b
    """
    _check_pair(a, b)
    for name, v in (("a", a), ("b", b)):
        _validate.non_negative(name, v)
    if a == b:
        raise RuntimeError("a tie is a real outcome, not a bad argument")  # kept: not an argument check
    checked = _validate.non_negative("a", a)  # kept: its result is used
    return checked + b


def only_checks(a):
    """Nothing here but checks."""
    _validate.positive("a", a)


def branches(c, members=None):
    if members is not None:
        if c == 1:
            c = members
        elif c != members:
            raise ValueError("c must be 1 or members")
    else:
        _validate.positive("c", c)
    return c


def with_fence():
    """A function whose code holds a Markdown fence."""
    return "```python\nprint(1)\n```"


class Bowl:
    r"""A bowl-shaped energy :math:`U(x) = c\,x^2`.

    .. math:: \nabla U(x) = 2 c\, x
    """

    def __init__(self, c=1.0):
        """Build it; ``c`` must be positive."""
        if c <= 0:
            raise ValueError("c must be positive")
        self.c = c  # the curvature

    def __call__(self, x):
        """The energy at ``x``."""
        return self.c * x * x

    def grad(self, x):
        return 2 * self.c * x


# --- the code ------------------------------------------------------------------------------------


def test_checks_and_docstring_are_gone_comments_and_algorithm_kept():
    code = show.code(descend)
    for gone in ("_validate", "raise", "isinstance", "elif", "Plain gradient descent", ".. math::", '"""'):
        assert gone not in code, f"{gone!r} is still shown:\n{code}"
    for kept in ("def descend(x, *, steps, lr):", "for step in range(steps):",
                 "# the gradient of U(x) = x^2 / 2 is x itself", "return x  # where the points came to rest"):
        assert kept in code
    assert code.splitlines()[1] == "    for step in range(steps):"  # no blank line left after the def


def test_the_shown_code_is_the_same_function():
    scope = {}
    exec(compile(show.code(descend), "shown", "exec"), scope)
    assert scope["descend"]([1.0, -2.0], steps=3, lr=0.5) == descend([1.0, -2.0], steps=3, lr=0.5)


def test_helper_checks_and_loops_of_checks_go_other_raises_stay():
    code = show.code(two_lines)
    assert "_check_pair" not in code and "for name, v" not in code
    assert 'raise RuntimeError("a tie is a real outcome' in code
    assert 'checked = _validate.non_negative("a", a)  # kept: its result is used' in code


def test_drop_checks_false_keeps_the_checks_but_not_the_docstring():
    code = show.code(descend, drop_checks=False)
    assert '_validate.positive("lr", lr)' in code and "raise TypeError" in code
    assert "Plain gradient descent" not in code


def test_an_emptied_body_gets_an_ellipsis():
    code = show.code(only_checks)
    assert code == "def only_checks(a):\n    ..."
    ast.parse(code)


def test_a_dropped_elif_leaves_nothing_an_emptied_else_an_ellipsis():
    assert show.code(branches) == (
        "def branches(c, members=None):\n"
        "    if members is not None:\n"
        "        if c == 1:\n"
        "            c = members\n"
        "    else:\n"
        "        ...\n"
        "    return c")


def test_code_holding_a_fence_gets_a_longer_one():
    md = show.source(with_fence).markdown
    assert "````python\n" in md and md.rstrip().endswith("````")


# --- the math and the caption ----------------------------------------------------------------------


def test_math_directive_becomes_display_math_and_roles_inline_math():
    md = show.source(descend).markdown
    assert "$$\nx \\leftarrow x - \\eta\\, \\nabla_x U(x), \\qquad \\eta = \\texttt{lr}\n$$" in md
    assert ":math:" not in md and ".. math::" not in md
    assert md.startswith("`test_show.descend` — Plain gradient descent on a bowl.")
    assert md.index("$$") < md.index("```python")  # the formula comes before the code
    assert show.rest_to_markdown(r"with :math:`U(x) = \tfrac12 x^2` and ``lr``") == r"with $U(x) = \tfrac12 x^2$ and `lr`"


def test_a_block_of_equations_is_split_and_aligned():
    eqs = show.docstring_math(two_lines.__doc__)
    assert eqs == ["\\begin{aligned}\na &\\le b \\\\\nb - a &\\ge 0\n\\end{aligned}", "c = a + b"]
    # an environment's own & and \\ need no wrapping
    assert show.docstring_math(r".. math:: J = \begin{pmatrix} 0 & 1 \\ 1 & 0 \end{pmatrix}") == [
        r"J = \begin{pmatrix} 0 & 1 \\ 1 & 0 \end{pmatrix}"]


def test_caption_and_math_can_be_switched_off_or_replaced():
    md = show.source(descend, caption=False, math=False).markdown
    assert md.startswith("```python\n") and "$$" not in md
    md = show.source(descend, caption="**The loop.**").markdown
    assert md.startswith("**The loop.**\n\n$$")


# --- classes, methods, lists, parts ------------------------------------------------------------------


def test_a_class_loses_every_docstring_and_check():
    src = show.source(Bowl)
    assert src.code.startswith("class Bowl:\n    def __init__(self, c=1.0):\n        self.c = c  # the curvature")
    assert "raise" not in src.code and "Build it" not in src.code and "The energy at" not in src.code
    assert "def grad(self, x):" in src.code
    assert "$U(x) = c\\,x^2$." in src.markdown and "$$\n\\nabla U(x) = 2 c\\, x\n$$" in src.markdown


def test_methods_bound_and_unbound():
    assert show.code(Bowl.__call__) == "def __call__(self, x):\n    return self.c * x * x"
    assert show.code(Bowl(2.0).grad) == "def grad(self, x):\n    return 2 * self.c * x"
    assert show.source(Bowl.grad).markdown.startswith("`test_show.Bowl.grad`\n\n```python")


def test_a_list_is_shown_one_after_another():
    src = show.source([descend, Bowl])
    assert src.markdown.count("```python") == 2
    assert src.markdown.index("def descend") < src.markdown.index("class Bowl")
    assert str(src) == show.code(descend) + "\n\n\n" + show.code(Bowl)


def test_part_of_a_function_by_lines_or_markers():
    first = inspect.getsource(descend).splitlines()
    start = next(i for i, line in enumerate(first, 1) if "for step" in line)
    by_lines = show.code(descend, lines=(start, start + 2))
    by_markers = show.code(descend, between=("for step", "x = [xi"))
    assert by_lines == by_markers == ("for step in range(steps):\n"
                                      "    # the gradient of U(x) = x^2 / 2 is x itself\n"
                                      "    x = [xi - lr * xi for xi in x]")
    assert show.code(descend, between=("for step", None)).endswith("return x  # where the points came to rest")


def test_the_library_itself():
    for fn in (losses.energy_wgan, losses.energy_hinge):
        code = show.code(fn)
        ast.parse(code)
        assert "_check_pair" not in code and '"""' not in code and "return EnergyLoss(" in code


# --- display ---------------------------------------------------------------------------------------


def test_it_displays_as_markdown_in_ipython():
    formatters = pytest.importorskip("IPython.core.formatters")
    src = show.source(descend)
    data, _ = formatters.DisplayFormatter().format(src)
    assert data["text/markdown"] == src.markdown
    assert data["text/plain"] == src.code
    assert "lines of code" in repr(src)


# --- bad arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call, name", [
    (lambda: show.source(42), "obj"),
    (lambda: show.source([]), "obj"),
    (lambda: show.source([descend, "text"]), "obj[1]"),
    (lambda: show.source(len), "obj"),
    (lambda: show.source(descend, lines=(0, 3)), "lines"),
    (lambda: show.source(descend, lines=(5, 2)), "lines"),
    (lambda: show.source(descend, lines=(1, 10_000)), "lines"),
    (lambda: show.source(descend, lines="1-3"), "lines"),
    (lambda: show.source(descend, between=("no such marker", None)), "between"),
    (lambda: show.source(descend, between=("for step", "no such marker")), "between"),
    (lambda: show.source(descend, between="for step"), "between"),
    (lambda: show.source([descend, Bowl], lines=(1, 2)), "lines"),
    (lambda: show.source(descend, lines=(1, 2), between=("a", None)), "lines or between"),
    (lambda: show.source(descend, drop_checks="yes"), "drop_checks"),
    (lambda: show.source(descend, caption=3), "caption"),
    (lambda: show.source(descend, math=None), "math"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_glue_hands_a_value_to_myst_nb_or_does_nothing(monkeypatch):
    import sys
    import types
    got = {}
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: got.update({name: (value, display)})
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    show.glue("x", 1.5)
    assert got == {"x": (1.5, False)}
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # not installed: import fails
    assert show.glue("y", 2.0) is None
