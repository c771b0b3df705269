"""The classroom explorer without a browser: uploads read or refused with a sentence naming the file, the model
switch and an upload keep every parameter, the map changes with the model, and the page's notebook, make target
and Binder link are where the README says."""

import io
import json
import re
from datetime import datetime, timezone

import numpy as np
import pytest
from PIL import Image

from cfcam.teaching.widgets.classroom import MODELS, Classroom
from cfcam.teaching.widgets.drawing import PANEL_PX
from cfcam.teaching.widgets.uploads import MAX_UPLOAD_BYTES, UploadError, read_upload

from conftest import ROOT


def encoded(array_or_image, fmt="PNG", **kw) -> bytes:
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gray(h=60, w=80, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


# -- reading an upload -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, says", [
    ("notes.png", b"these are my lecture notes, not a picture", "not an image"),
    ("empty.png", b"", "empty"),
    ("huge.png", b"\0" * (MAX_UPLOAD_BYTES + 1), "too large"),
    ("lab.tif", encoded(Image.new("LAB", (40, 30)), "TIFF"), "colour mode LAB"),
    ("tiny.png", encoded(gray(8, 40)), "too small (40x8 px"),
    ("bomb.png", encoded(Image.new("L", (6000, 6000))), "too many pixels"),
    ("cut.png", encoded(gray())[:120], "corrupt or truncated"),
])
def test_a_bad_upload_is_refused_with_a_sentence_naming_it(name, content, says):
    with pytest.raises(UploadError) as err:
        read_upload(name, content)
    message = str(err.value)
    assert message.startswith(f"{name}: ") and says in message, message
    assert "Traceback" not in message and "/tmp" not in message and "upload." not in message  # no temp path


def test_an_upload_is_shrunk_to_a_panel_and_the_conversions_are_said():
    ramp = np.tile(np.linspace(0, 51_000, 900).astype(np.uint16), (600, 1))  # 16-bit, far above 255
    up = read_upload("/some/where/scan.png", encoded(ramp, "PNG"))
    assert up.name == "scan.png" and up.rgb.dtype == np.uint8 and up.rgb.shape == (149, PANEL_PX, 3)
    assert up.rgb.max() > 200  # 16-bit scaled from its own range, not clipped to its high byte
    text = up.describe()
    assert "16-bit grayscale" in text and "shrunk from 900x600" in text and "colour picture" not in text
    rgba = read_upload("logo.png", encoded(np.dstack([gray(40, 40, s) for s in range(4)])))
    assert rgba.rgb.shape == (40, 40, 3) and "transparency dropped" in rgba.describe()
    assert "colour picture" in rgba.describe()  # the demo models know grayscale radiographs only


def test_an_upload_name_is_escaped_in_the_page():
    up = read_upload("<i>x.png", encoded(gray()))
    assert "<b>&lt;i&gt;x.png</b>" in up.describe()


# -- the explorer ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def room():
    return Classroom(eps_percentile=40.0, preset="reference")


def uploaded(name: str, content: bytes) -> dict:
    """One file of a FileUpload's value, as ipywidgets 8 gives it to the kernel."""
    return {"name": name, "type": "", "size": len(content), "last_modified": datetime.now(timezone.utc),
            "content": memoryview(content)}


def cf_png(room) -> bytes:
    return bytes(room.board.image.value)


def test_it_opens_on_the_demo_model_with_the_test_and_marker_images(room):
    board = room.board
    names = [label for label, _ in board.controls["image"].options]
    assert len(names) == 12 and sum("marker" in n for n in names) == 2
    assert board.values()["eps_percentile"] == 40.0 and board.values()["preset"] == "reference"
    assert "demo" in room.about.value and set(MODELS) == {label for label in room.model.options}
    assert cf_png(room)[:8] == b"\x89PNG\r\n\x1a\n"


def test_switching_the_model_keeps_the_settings_and_changes_the_map(room):
    board = room.board
    board.set(image=10, important_fraction=0.2, layer="layer3")  # lesion + marker
    before, settings = cf_png(room), room.board.values()
    room.switch_model("demo-shortcut")
    assert room.board is not board and room.board.values() == settings
    shown = [b.widget.layout.display != "none" for b in room.boards.values()]
    assert "demo-shortcut" in room.about.value and shown == [False, True]  # the other dashboard is hidden
    assert cf_png(room) != before  # the cheating model's map is another map
    room.switch_model("demo")
    assert room.board.values() == settings and cf_png(room) == before  # the same model, the same map


def test_a_slider_move_redraws_the_map(room):
    before, pictures = cf_png(room), set()
    for eps in (10.0, 30.0, 60.0, 90.0):
        room.board.controls["eps_percentile"].value = eps
        pictures.add(cf_png(room))
    assert room.board.updates >= 4 and pictures - {before}


def test_an_upload_joins_every_model_and_is_shown(room):
    room.session("demo-shortcut")  # both sessions exist: the upload must reach both
    settings = room.board.values()
    room.upload.value = (uploaded("mine.png", encoded(gray(300, 300, 5))),)  # as the browser sends a file
    assert room.upload.value == ()
    index = len(room.session("demo").images) - 1
    assert room.board.values() == {**settings, "image": index}
    assert "mine.png</b> added" in room.message.value and "error" not in room.message.value
    assert all(s.names[index] == "mine.png (uploaded)" for s in room.sessions.values())
    assert room.session("demo").images[index].shape == (PANEL_PX, PANEL_PX, 3)


def test_a_bad_upload_says_so_and_keeps_the_picture(room):
    before, updates = cf_png(room), room.board.updates
    room.upload.value = (uploaded("notes.txt", b"plain text"),)
    assert "cfcam-classroom-error" in room.message.value and "notes.txt: not an image" in room.message.value
    assert cf_png(room) == before and room.board.updates == updates


def test_an_unknown_model_is_refused():
    with pytest.raises(ValueError, match="model must be one of"):
        Classroom("resnet18")


# -- the page, the make target, the docs -------------------------------------------------------------------------

def test_the_explorer_notebook_is_committed_bare_outside_the_course():
    path = ROOT / "explorer" / "cfcam_explorer.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert "classroom()" in "".join(code[-1]["source"])
    assert not list((ROOT / "notebooks").glob("*explorer*"))  # not one of the numbered notebooks


def test_make_explorer_readme_and_binder_link():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^explorer: \$\(STAMP\)\n\t\$\(BIN\)/python explorer/serve\.py --port \$\(EXPLORER_PORT\)$",
                     makefile, re.M)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^make explorer +# ", readme, re.M)
    assert "urlpath=voila/render/explorer/cfcam_explorer.ipynb" in readme
    assert re.search(r"^\s*- voila>=", (ROOT / "environment.yml").read_text(encoding="utf-8"), re.M)
