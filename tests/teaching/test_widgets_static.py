"""Explorers on a static page (``CFCAM_STATIC_WIDGETS=1``, set by ``make book``): a still of exactly the pictures
the widget shows, their titles, and where to run it live; without the variable, the live widget as before."""

import io

import numpy as np
import pytest
from PIL import Image

from cfcam.teaching.widgets import clustering_explorer, hooks_explorer
from cfcam.teaching.widgets.static import GAP, enabled, still, still_note

BINDER = "https://mybinder.org/v2/gh/cfcam/cfcam/HEAD?urlpath=lab/tree/notebooks/01_hooks_and_gradcam.ipynb"


@pytest.fixture
def shown(monkeypatch):
    """What the explorer displays, captured instead of sent to a front end."""
    import IPython.display

    out = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: out.extend(objs))
    return out


@pytest.mark.parametrize(("value", "on"), [("1", True), ("", False), ("0", False), (None, False)])
def test_enabled_by_the_variable(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("CFCAM_STATIC_WIDGETS", raising=False)
    else:
        monkeypatch.setenv("CFCAM_STATIC_WIDGETS", value)
    assert enabled() is on


def test_a_still_of_the_pictures_titles_and_where_to_run_it_live(session, shown, monkeypatch):
    monkeypatch.setenv("CFCAM_STATIC_WIDGETS", "1")
    monkeypatch.setenv("CFCAM_BINDER_URL", BINDER)
    explorer = hooks_explorer(session, channel=3)
    explorer._ipython_display_()
    image, note = shown
    picture = np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB"))
    x = 0
    for panel in explorer.panels:  # the still is the panels' own pictures, side by side
        own = np.asarray(Image.open(io.BytesIO(panel.image.value)).convert("RGB"))
        h, w = own.shape[:2]
        assert np.array_equal(picture[:h, x:x + w], own)
        x += w + GAP
    assert picture.shape[1] == x - GAP
    html = note.data
    assert f"href='{BINDER}'" in html and "make lab" in html and "channel = 3" in html and "layer = layer4[-1]" in html
    assert "activation A[3]" in html and "Grad-CAM at layer4[-1]" in html and "<br>" not in html.split("<ol>")[1]


def test_a_chart_panel_is_named_in_the_note_but_not_drawn(session):
    explorer = clustering_explorer(session)
    note = still_note(explorer)
    assert note.count("<li>") == len(explorer.panels) and note.count("(a chart, not in the still)") == 1
    assert "settings, other steps" in note and ",;" not in note  # a title's line break read as text
    drawn = [p for p in explorer.panels if p.image.layout.display != "none"]
    assert len(drawn) == len(explorer.panels) - 1  # the cluster-size chart is HTML
    widths = [Image.open(io.BytesIO(p.image.value)).size[0] for p in drawn]
    assert still(explorer).shape[1] == sum(widths) + GAP * (len(drawn) - 1)


def test_without_the_variable_the_live_widget(session, shown, monkeypatch):
    monkeypatch.delenv("CFCAM_STATIC_WIDGETS", raising=False)
    explorer = hooks_explorer(session)
    explorer._ipython_display_()
    assert shown == [explorer.widget]
