"""The data the explorers share: a :class:`Session` (model, images, masks, a cache of captures) and the staged
CF-CAM pipelines each explorer keeps per (image, layer, class)."""

from __future__ import annotations

import numpy as np
import torch

from ...core.capture import ActivationsAndGradients, Capture, eval_mode
from ...core.pipeline import CFCAMPipeline
from ...images.viz import preprocess, to_rgb_array

__all__ = ["ActivationsAndGradients", "Session", "staged_pipeline"]


class Session:
    """The model, the images (with lesion masks where known) and a cache of captures.

    model: a classifier, or a name for :func:`cfcam.load_model` such as ``"demo-shortcut"`` (default: the demo
    model); images: a list of uint8 RGB/grayscale arrays (default: the built-in examples,
    :func:`cfcam.load_examples`).
    """

    def __init__(self, model=None, images=None, masks=None, names=None, class_names=None) -> None:
        if model is None or isinstance(model, str):
            from ...world.models import load_model

            model, info = load_model(model or "demo")
            class_names = class_names or info["classes"]
        self.model = model  # left as given: each capture switches to eval mode and back
        if images is None:
            images, masks, names = _default_images()
        self.images = [to_rgb_array(np.asarray(im)) for im in images]
        self.masks = list(masks) if masks is not None else [None] * len(self.images)
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(self.images))]
        self.class_names = list(class_names) if class_names else [f"class {i}" for i in range(self._n_outputs())]
        self._inputs: dict[int, torch.Tensor] = {}
        self._captures: dict[tuple, Capture] = {}

    def _n_outputs(self) -> int:
        """How many classes the model has (one forward pass in eval mode; the modes are restored)."""
        with eval_mode(self.model), torch.no_grad():
            return int(self.model(preprocess(np.zeros((8, 8, 3), np.uint8))).shape[1])

    def add_image(self, image, name: str, mask=None) -> int:
        """Append an image (uint8 RGB or grayscale) with its name and lesion mask (None: unknown); its index."""
        self.images.append(to_rgb_array(np.asarray(image)))
        self.masks.append(mask)
        self.names.append(str(name))
        return len(self.images) - 1

    def image(self, i: int) -> np.ndarray:
        return self.images[i]

    def mask(self, i: int):
        return self.masks[i]

    def input(self, i: int) -> torch.Tensor:
        if i not in self._inputs:
            self._inputs[i] = preprocess(self.images[i])
        return self._inputs[i]

    def capture(self, i: int, layer: str, target: int | None = None) -> Capture:
        """Activations and gradients of image ``i`` at ``layer`` for ``target`` (top class if None), cached."""
        key = (i, layer, target)
        if key not in self._captures:
            with ActivationsAndGradients(self.model, layer) as grab:
                cap = grab(self.input(i), targets=target)
            self._captures[key] = cap
            self._captures[(i, layer, int(cap.targets[0]))] = cap
        return self._captures[key]


def _default_images():
    """The built-in examples (the same pixels as ``testimgs/``, from any install or folder)."""
    from ...world.examples import load_examples

    examples = load_examples()
    return ([np.asarray(e.image) for e in examples], [e.mask if e.has_lesion else None for e in examples],
            [f"{e.name} ({e.class_name})" for e in examples])


def staged_pipeline(session: Session, cache: dict, i: int, layer: str, target) -> CFCAMPipeline:
    """The staged pipeline of image ``i`` at ``layer`` for ``target``, kept in ``cache`` (an explorer's own), so
    that a move recomputes only the stages after the parameter that changed."""
    key = (i, layer, target)
    if key not in cache:
        cap = session.capture(i, layer, target)
        cache[key] = CFCAMPipeline(cap.activations[0], cap.gradients[0])
    return cache[key]
