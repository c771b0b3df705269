"""A synthetic chest X-ray world with ground truth, so CAMs can be scored offline.

Every image is drawn from a seeded random generator: two dark lung fields,
rib arcs, a bright spine and mediastinum, a heart shadow, soft tissue, noise
and blur, with the whole anatomy jittered in position, scale, rotation,
brightness and contrast.  Class 1 ("lesion") images also carry 1 to 3 bright,
roughly round nodules inside the lung fields, and their mask marks exactly
those nodules.  Both classes share every other distribution (including small
vessel-like bright dots), and the nodules' added brightness is subtracted
again from the whole image, so the global mean brightness tells nothing about
the class: a model has to find the nodule.

A *shortcut marker* can be added on request (``make_scene(..., marker=True)``): a
radiograph-style laterality token (a bright "L" or "R" in a box, like the lead
markers radiographers tape to the cassette) outside the lung fields, at a
varying position, with its own pixel mask.  Its randomness comes from a
separate stream derived from the image's seed, so an image drawn without the
marker is byte-identical to what it always was, and the same image drawn with
the marker differs only around the token.  :func:`make_shortcut_dataset` ties
the marker to the class at stated rates (the ``demo-shortcut`` model's
training set: every lesion image carries it, no normal image does) or draws it
independently of the class (evaluation sets).

Only numpy and OpenCV are used; the same seed gives byte-identical output.

The work is split by job: :mod:`cfcam.world.anatomy` (drawing the body, nodules and film),
:mod:`cfcam.world.markers` (the shortcut marker), :mod:`cfcam.world.scenes` (scenes and data sets),
:mod:`cfcam.world.testimgs` (the example images) and :mod:`cfcam.world.seeding` (seeds and checks); this
module gathers their public names, where they have always been imported from.
"""

from __future__ import annotations

from .anatomy import NODULE_AMPLITUDE, NODULE_MARGIN, NODULE_RADIUS, SIZE
from .markers import MARKER_BORDER, MARKER_LUNG_GAP, MARKER_SIZE
from .scenes import CLASSES, Scene, ShortcutSet, make_dataset, make_image, make_scene, make_shortcut_dataset
from .seeding import SeedLike
from .testimgs import TESTIMGS_SEED, example_images, write_testimgs

__all__ = [
    "CLASSES",
    "SIZE",
    "Scene",
    "make_scene",
    "make_image",
    "make_dataset",
    "ShortcutSet",
    "make_shortcut_dataset",
    "example_images",
    "write_testimgs",
    "TESTIMGS_SEED",
    "NODULE_RADIUS",
    "NODULE_AMPLITUDE",
    "NODULE_MARGIN",
    "MARKER_SIZE",
    "MARKER_LUNG_GAP",
    "MARKER_BORDER",
    "SeedLike",
]
