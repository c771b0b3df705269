"""The explorer shell: controls above a row of :class:`Panel` s redrawn in place, the status line, and PyTorch
on one thread during a move."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence

import ipywidgets as W
import numpy as np
import torch

from .drawing import PANEL_PX, to_png
from .effects import Advice

__all__ = ["Explorer", "Panel", "one_thread"]


class Panel:
    """One picture (or an HTML chart) with a title above and a colour bar or caption below."""

    def __init__(self) -> None:
        self.title = W.HTML()
        self.image = W.Image(format="png")
        self.image.add_class("cfcam-panel-image")
        self.body = W.HTML(layout=W.Layout(display="none"))
        self.foot = W.HTML()
        self.widget = W.VBox([self.title, self.image, self.body, self.foot],
                             layout=W.Layout(width=f"{PANEL_PX}px", margin="0 3px"))  # 4 in a row: 920 px
        self.widget.add_class("cfcam-panel")  # the browser test checks that the panels share one row
        self._rgb: np.ndarray | None = None
        self._html: str | None = None

    def show(self, title: str, rgb: np.ndarray | None = None, foot: str = "", body: str | None = None) -> bool:
        """Show a picture (or ``body`` HTML); True when what is drawn changed."""
        self.title.value = (f"<div style='font-size:12px;line-height:1.3;width:{PANEL_PX}px;min-height:4em'>"
                            f"{title}</div>")  # same height in every panel, so the pictures line up
        self.foot.value = foot
        if body is not None:
            changed = body != self._html
            self._html = body
            self.body.value = body
            self.body.layout.display, self.image.layout.display = "", "none"
            return changed
        changed = self._rgb is None or self._rgb.shape != rgb.shape or not np.array_equal(self._rgb, rgb)
        if changed:
            self._rgb = rgb
            self.image.value = to_png(rgb)
            self.image.width, self.image.height = str(rgb.shape[1]), str(rgb.shape[0])  # native size
        self.body.layout.display, self.image.layout.display = "none", ""
        return changed


class Explorer:
    """Controls above a row of panels redrawn in place.

    ``compute(values) -> state`` is the method's work (timed as ``last_seconds``); ``draw(values, state)``
    returns one ``dict(title=..., rgb=... or body=..., foot=...)`` per panel. The status line reports the whole
    time of the move, and says "map unchanged" when no picture changed. ``start`` sets controls before the
    first drawing, so an explorer can open in the state the text before it describes. ``advise(values, state)``
    returns ``{control name: Advice}`` (:mod:`.effects`): a control that cannot act in this state is disabled
    with the reason shown under it, and enabled again by the next move that lets it act.
    """

    def __init__(self, controls: dict[str, W.Widget], compute: Callable[[dict], object],
                 draw: Callable[[dict, object], Sequence[dict]], title: str = "", passive: tuple = (),
                 start: dict | None = None, advise: Callable[[dict, object], dict[str, Advice]] | None = None) -> None:
        self.controls = controls
        self._compute, self._draw = compute, draw
        self._advise = advise or (lambda values, state: {})
        #: the advice of the last move, ``{control name: Advice}``
        self.advice: dict[str, Advice] = {}
        self.reasons = {name: W.HTML(layout=W.Layout(display="none")) for name in controls}
        for label in self.reasons.values():
            label.add_class("cfcam-control-reason")
        self.panels: list[Panel] = []
        self.row = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.status = W.HTML()
        self.status.add_class("cfcam-explorer-status")
        self.last_seconds = 0.0
        self.last_total_seconds = 0.0
        self.updates = 0
        self.unchanged = False
        self.state = None
        self._suspended = False
        unknown = set(start or ()) - set(controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; controls: {list(controls)}")
        for name, value in (start or {}).items():
            controls[name].value = value
        boxes = [W.HTML(f"<b>{title}</b>")] if title else []
        items = [W.VBox([c, self.reasons[name]]) for name, c in controls.items()]
        rows = [W.HBox(items[i:i + 3]) for i in range(0, len(items), 3)]
        self.widget = W.VBox(boxes + rows + [self.row, self.status])
        self.widget.add_class("cfcam-explorer")  # stable hooks for the browser test
        for name, c in controls.items():
            if name not in passive:  # a passive control acts through its own observer (e.g. a preset)
                c.observe(self._changed, names="value")
        self.update()

    @property
    def image(self) -> W.Image:
        """The last panel's picture: the map the explorer is about (tests and the browser test watch it)."""
        return self.panels[-1].image

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def set(self, **values) -> None:
        """Set several controls at once with a single recomputation."""
        self._suspended = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._suspended = False
        self.update()

    def _changed(self, change) -> None:
        if not self._suspended:
            self.update()

    def update(self) -> None:
        with one_thread():
            self._update()

    def _update(self) -> None:
        start = time.perf_counter()
        self._suspended = True  # compute may adjust a control's range (channel, cluster): no second update
        try:
            values = self.values()
            try:
                state = self._compute(values)
            except ValueError as err:  # a combination the method refuses: say so, keep the old pictures
                self.status.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
                return
            self.state = state
            self.last_seconds = time.perf_counter() - start
            specs = list(self._draw(values, state))
            while len(self.panels) < len(specs):
                self.panels.append(Panel())
            if len(self.row.children) != len(specs):
                self.row.children = [p.widget for p in self.panels[:len(specs)]]
            changed = [p.show(**spec) for p, spec in zip(self.panels, specs)]
            self._apply_advice(self._advise(values, state))
        finally:
            self._suspended = False
        self.updates += 1
        self.unchanged = self.updates > 1 and not any(changed)
        self.last_total_seconds = time.perf_counter() - start
        notes = getattr(state, "notes", None) or (state.get("notes") if isinstance(state, dict) else None) or getattr(
            state.get("cf") if isinstance(state, dict) else None, "notes", ())
        said = ("<b>map unchanged</b>: these settings give the same result as before. "
                if self.unchanged else "")
        self.status.value = (f"<span class='cfcam-update' data-n='{self.updates}'>{said}updated in "
                             f"{1000 * self.last_total_seconds:.0f} ms (computation "
                             f"{1000 * self.last_seconds:.0f} ms, drawing "
                             f"{1000 * (self.last_total_seconds - self.last_seconds):.0f} ms)</span>"
                             + "".join(f"<br><i>{html.escape(n)}</i>" for n in notes))

    def _apply_advice(self, advice: dict[str, Advice]) -> None:
        """Disable the controls that cannot act now and show each advice under its control; clear the rest."""
        unknown = set(advice) - set(self.controls)
        if unknown:
            raise ValueError(f"advice for unknown control(s) {sorted(unknown)}")
        self.advice = dict(advice)
        for name, control in self.controls.items():
            a = advice.get(name)
            control.disabled = bool(a and a.disable)
            label = self.reasons[name]
            if a is None:
                label.value, label.layout.display = "", "none"
            else:
                mark = "&#8856; " if a.disable else "&#9432; "  # a "no entry" sign, or an information sign
                label.value = (f"<div style='font-size:11px;line-height:1.25;color:#555;max-width:290px;"
                               f"margin:0 0 3px 6px'>{mark}{html.escape(a.text)}</div>")
                label.layout.display = ""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from . import static

        if static.enabled():  # a static page (the book): a still and where to run it live, not a dead widget
            return static.show_still(self)
        display(self.widget)


class one_thread:
    """Run PyTorch on one thread inside the block (restored after).

    A move's work is many small tensor operations; with two threads on a busy two-core machine each of them
    waits for the other thread to be scheduled, which measured 10 to 40 times slower (a dashboard slider move:
    about 14 ms on one thread, 250-550 ms on two, at a load average of 7).
    """

    def __enter__(self):
        self._threads = torch.get_num_threads()
        if self._threads != 1:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        return False
