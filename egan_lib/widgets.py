"""Live controls for the chapters: sliders and buttons above a figure that redraws (ipywidgets).

Every control is an object with ``widget`` (what a notebook displays), ``controls`` (name -> slider,
dropdown, ...), ``set(**values)`` (what a test or a reader's code does instead of dragging a slider)
and ``result`` (the numbers behind the last drawing). Figures are drawn with matplotlib's Agg canvas
into an ``ipywidgets.Image`` as PNG, which works alike in Jupyter, JupyterLab, VS Code and Colab
(Colab's own ipywidgets 7 included: only widgets that versions 7 and 8 share are used).

In the rendered book no kernel runs: a control's output also carries a short HTML note (the book's
configuration ranks it above the widget view), so a static page shows the note where a live
notebook shows the control; the chapter's own static figure stays the default output.

Here: ``Canvas``, ``Control`` and ``RunControl`` (a short training run per setting, its progress
shown). The chapters' controls are in ``controls``, the playground in ``playground``.
"""

from __future__ import annotations

import io
from typing import Callable

from .callbacks import Callback

__all__ = ["LIVE_NOTE", "Canvas", "Control", "RunControl", "Progress"]

LIVE_NOTE = ('<div class="egan-live"><b>Interactive control.</b> It runs when this chapter is opened '
             'in Colab or Jupyter (the launch button at the top of the page); the rendered book shows '
             'the static figure above instead.</div>')


def ipywidgets():
    """The ipywidgets module, or an ImportError that says how to get it."""
    try:
        import ipywidgets as w
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError("the live controls need ipywidgets (Colab and Jupyter have it): "
                          "pip install ipywidgets") from exc
    return w


class Canvas:
    """A matplotlib figure (Agg, no pyplot: nothing is shown twice) drawn into an ``ipywidgets.Image``."""

    def __init__(self, figsize=(9.0, 4.0), dpi: int = 80):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        self.fig = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(self.fig)
        self.dpi = dpi
        self.image = ipywidgets().Image(format="png")
        self.png, self.frames = b"", 0  # the last PNG and how many were drawn

    def message(self, text: str) -> None:
        """Show a line of text instead of a figure (before the first run)."""
        self.fig.clear()
        self.fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="0.3")
        self.draw()

    def draw(self) -> None:
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=self.dpi, pil_kwargs={"compress_level": 1})  # fast: frames/s
        self.png = buf.getvalue()
        self.image.value = self.png
        self.frames += 1


class Control:
    """Controls above a canvas. Subclasses implement ``update()``, which reads ``values()``,
    computes, draws on ``canvas.fig`` and stores the numbers in ``result``."""

    note = LIVE_NOTE

    def __init__(self, controls: dict, canvas: Canvas, *, buttons=()):
        w = ipywidgets()
        self.controls, self.canvas, self.result = dict(controls), canvas, {}
        self.status = w.HTML("")
        self._hold = False
        rows = [w.HBox(list(self.controls.values())[i:i + 3]) for i in range(0, len(self.controls), 3)]
        self.widget = w.VBox([*rows, w.HBox([*buttons, self.status]), canvas.image])
        for c in self.controls.values():
            c.observe(self._changed, names="value")
            if hasattr(getattr(c, "style", None), "description_width"):
                c.style.description_width = "initial"  # labels in full, not cut to a fixed width

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def set(self, **values) -> "Control":
        """Set some controls as a reader would, then redraw once; unknown names are a ValueError."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; this one has {sorted(self.controls)}")
        self._hold = True
        try:
            for name, v in values.items():
                self.controls[name].value = v
        finally:
            self._hold = False
        self._changed(None)
        return self

    def _changed(self, _change) -> None:
        if not self._hold:
            self.update()

    def update(self) -> None:  # pragma: no cover - every control overrides it
        raise NotImplementedError

    def close(self) -> None:
        """Done with it: empty its picture (a saved notebook keeps no stale PNG) and close its widgets."""
        self.canvas.image.value = b""
        for w in (*self.controls.values(), self.status, self.canvas.image, self.widget):
            w.close()

    def _repr_mimebundle_(self, include=None, exclude=None):
        # a live front end (Jupyter, Colab) draws the widget view; the book's HTML ranks the note first
        return {"text/plain": f"{type(self).__name__} (interactive when run in Colab or Jupyter)",
                "text/html": self.note,
                "application/vnd.jupyter.widget-view+json": {
                    "version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}}


def _choice(values, value, description: str, fmt: str = "{:g}", **kw):
    """A slider over a list of exact values (a learning rate of 4e-3 stays 4e-3, not 10^-2.4)."""
    if value not in values:
        values = sorted({*values, value})
    return ipywidgets().SelectionSlider(options=[(fmt.format(v), v) for v in values], value=value,
                                        description=description, style={"description_width": "initial"}, **kw)


def _slider(kind: str, value, lo, hi, step, description: str, **kw):
    w = ipywidgets()
    cls = {"float": w.FloatSlider, "int": w.IntSlider}[kind]
    return cls(value=value, min=lo, max=hi, step=step, description=description,
               style={"description_width": "initial"}, **kw)


class Progress(Callback):
    """A training-loop callback that moves an ``ipywidgets.IntProgress`` (every ``every`` steps)."""

    def __init__(self, bar, every: int = 10):
        self.bar, self.every = bar, every

    def on_start(self, run) -> None:
        self.bar.max, self.bar.value = run.steps, run.step

    def on_step(self, run):
        if run.step % self.every == 0 or run.step == run.steps:
            self.bar.value = run.step


class RunControl(Control):
    """A short training run per setting (chapters 1, 4, 7): ``run(values, callbacks)`` trains with the
    controls' values (passing ``callbacks`` on to the loop, which shows the progress) and returns what
    ``draw(fig, result, values)`` draws; it returns the numbers kept in ``result``. A change of a
    control starts a run; so does the Run button. Nothing runs before the first change or click."""

    def __init__(self, controls: dict, run: Callable, draw: Callable, *, figsize=(10.0, 4.0),
                 hint: str = "move a control or press Run: a short run trains and draws here"):
        w = ipywidgets()
        self._run, self._draw = run, draw
        self.bar = w.IntProgress(value=0, min=0, max=1, description="training")
        self.button = w.Button(description="Run", button_style="primary")
        self.button.on_click(lambda _b: self.update())
        for c in controls.values():
            if hasattr(c, "continuous_update"):
                c.continuous_update = False
        super().__init__(controls, Canvas(figsize), buttons=[self.button, self.bar])
        self.runs = 0
        self.canvas.message(hint)

    def update(self) -> None:
        v = self.values()
        self.status.value = "training ..."
        out = self._run(v, [Progress(self.bar)])
        self.canvas.fig.clear()
        self.result = dict(self._draw(self.canvas.fig, out, v) or {})
        self.canvas.draw()
        self.runs += 1
        self.status.value = ""
