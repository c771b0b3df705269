"""The classroom explorer: notebook 04's dashboard with a model picker and an image upload, made for a page
without code that a teacher projects (``make explorer`` serves ``explorer/cfcam_explorer.ipynb`` with Voila)."""

from __future__ import annotations

import html

import ipywidgets as W

from .controls import dropdown
from .dashboard import dashboard
from .explorer import Explorer
from .session import Session
from .uploads import ACCEPT, MAX_UPLOAD_BYTES, Upload, UploadError, read_upload

__all__ = ["MODELS", "Classroom", "classroom"]

MODELS = {
    "demo": "the demo model: trained on the demo world, it looks at the nodules",
    "demo-shortcut": "a model that cheats: trained with a marker outside the lungs, it follows the marker "
                     "(notebook 08); try it on the images with a marker",
}
# Notebook 08's scenes: a lesion image and a normal one that carry the shortcut marker
MARKER_SCENES = (("lesion + marker", 31, 1), ("normal + marker", 32, 0))


class Classroom:
    """The dashboard under a model picker, an upload button and a message line; switching the model or adding
    an image keeps every parameter as it was. ``widget`` is what the page shows; ``board`` the dashboard shown.

    Each model has its own :class:`Session` and its own dashboard, both built at the start and kept on the
    page, the other one hidden: a switch hands the shown settings to the other dashboard (one update) and
    swaps which is shown, so the browser draws no new controls (rebuilding them took a second there). Every
    session holds the same images in the same order (the ten test images, two with the marker, then the
    uploads), so the image picker means the same thing under either model.
    """

    def __init__(self, model: str = "demo", **start) -> None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
        self.sessions: dict[str, Session] = {}
        self.uploads: list[Upload] = []
        self.model = dropdown(list(MODELS), model, "model")
        self.upload = W.FileUpload(accept=ACCEPT, multiple=False, description="upload an image",
                                   layout=W.Layout(width="auto"))
        self.upload.add_class("cfcam-classroom-upload")
        self.about = W.HTML()
        self.message = W.HTML(f"<span style='color:#555'>Upload a PNG, JPEG, TIFF or BMP of at most "
                              f"{MAX_UPLOAD_BYTES // 2**20} MB; it joins the image list.</span>")
        self.message.add_class("cfcam-classroom-message")
        self.boards: dict[str, Explorer] = {model: dashboard(self.session(model), **start)}
        settings = self.board.values()
        for name in MODELS:  # the other model's dashboard now (about a second), so that a switch is quick
            if name not in self.boards:
                self.boards[name] = dashboard(self.session(name), **self._fit(name, settings))
        self.holder = W.VBox([b.widget for b in self.boards.values()])
        self._show(model)
        self.widget = W.VBox([W.HBox([self.model, self.upload]), self.about, self.message, self.holder])
        self.widget.add_class("cfcam-classroom")
        self._say_model()
        self.model.observe(self._on_model, names="value")
        self.upload.observe(self._on_upload, names="value")

    def session(self, name: str) -> Session:
        """The session of model ``name``: the test images, the marker scenes and the uploads, in that order."""
        if name not in self.sessions:
            from ...world.scenes import make_scene

            session = Session(name)
            for label, seed, cls in MARKER_SCENES:
                scene = make_scene(seed, cls, marker=True)
                session.add_image(scene.image, f"{label} ({session.class_names[cls]})",
                                  scene.mask if scene.mask.any() else None)
            for up in self.uploads:
                session.add_image(up.rgb, f"{up.name} (uploaded)")
            self.sessions[name] = session
        return self.sessions[name]

    @property
    def board(self) -> Explorer:
        """The dashboard shown (the current model's)."""
        return self.boards[self.model.value]

    def add_upload(self, name: str, content: bytes) -> int:
        """Read an uploaded file, add it to every session and show it; its image index. ``UploadError`` if not."""
        up = read_upload(name, content)
        self.uploads.append(up)
        index = -1
        for session in self.sessions.values():
            index = session.add_image(up.rgb, f"{up.name} (uploaded)")
        settings = {**self.board.values(), "image": index}
        for model in self.boards:  # new image lists: new dashboards (the hidden ones first, the shown one last)
            if model != self.model.value:
                self._rebuild(model, settings)
        self._rebuild(self.model.value, settings)
        self._say(up.describe())
        return index

    def switch_model(self, name: str) -> None:
        """Show model ``name`` with the same image, layer, class and parameters."""
        self.model.value = name  # the observer switches (nothing happens when already shown)

    def _rebuild(self, model: str, settings: dict) -> None:
        """A new dashboard for ``model`` in place of its old one, opening with ``settings``."""
        old = self.boards[model]
        self.boards[model] = dashboard(self.session(model), **self._fit(model, settings))
        self.holder.children = [b.widget for b in self.boards.values()]
        _close(old.widget)  # its widgets would otherwise live on in the kernel, one set per upload
        self._show(self.model.value)

    def _fit(self, model: str, settings: dict) -> dict:
        """``settings`` for ``model``'s dashboard: a class the model does not have becomes its top class."""
        if settings.get("target", -1) >= len(self.session(model).class_names):
            return {**settings, "target": -1}
        return settings

    def _show(self, model: str) -> None:
        """Show ``model``'s dashboard, hide the others (hidden, not removed: the browser keeps their views)."""
        for name, board in self.boards.items():
            board.widget.layout.display = "" if name == model else "none"
            (board.widget.add_class if name == model else board.widget.remove_class)("cfcam-shown")

    def _on_model(self, change) -> None:
        try:
            settings = self.boards[change["old"]].values()
            board = self.boards[change["new"]]
            if board.values() != self._fit(change["new"], settings):
                board.set(**self._fit(change["new"], settings))
            self._show(change["new"])
            self._say_model()
        except Exception as err:  # noqa: BLE001 - a page without code shows the reason, not a traceback
            self._say(f"could not switch to {change['new']}: {type(err).__name__}: {err}", error=True)

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[0]
        try:
            self.add_upload(upload.get("name", "upload"), bytes(upload["content"]))
        except UploadError as err:
            self._say(str(err), error=True)
        except Exception as err:  # noqa: BLE001 - a page without code shows the reason, not a traceback
            self._say(f"{upload.get('name', 'upload')}: could not be shown ({type(err).__name__}: {err})",
                      error=True)
        finally:
            self.upload.value = ()  # the same file can be chosen again, and its bytes are not kept twice

    def _say(self, text: str, error: bool = False) -> None:
        """The message line: ``text`` is HTML when not an error (errors are plain text, escaped here)."""
        self.message.value = (f"<span class='cfcam-classroom-error' style='color:#b00'>{html.escape(text)}</span>"
                              if error else f"<span class='cfcam-classroom-ok'>{text}</span>")

    def _say_model(self) -> None:
        self.about.value = (f"<span class='cfcam-classroom-model'>model <b>{html.escape(self.model.value)}</b>: "
                            f"{html.escape(MODELS[self.model.value])}</span>")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _close(widget: W.Widget) -> None:
    """Close a widget and everything inside it (the page no longer shows them)."""
    for child in getattr(widget, "children", ()):
        _close(child)
    widget.close()


def classroom(model: str = "demo", **start) -> Classroom:
    """The classroom explorer (see :class:`Classroom`); ``start`` sets the dashboard's controls first, as
    :func:`~cfcam.teaching.widgets.dashboard.dashboard` takes them (``preset=...`` included)."""
    return Classroom(model, **start)
