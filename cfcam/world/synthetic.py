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
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Union

import cv2
import numpy as np

from ..images.writing import write_bytes_atomic

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
]

#: Class names, indexed by label: 0 = "normal", 1 = "lesion".
CLASSES = ("normal", "lesion")

#: Height and width of every generated image, in pixels.
SIZE = 224

#: Seed used for the committed example images in ``testimgs/``.
TESTIMGS_SEED = 2024

#: Nodule radius range in pixels (inclusive-exclusive, before scale jitter).
NODULE_RADIUS = (5.0, 14.0)

#: Nodule peak density range (same units as the anatomy densities below).
NODULE_AMPLITUDE = (0.10, 0.25)

#: Gap in pixels kept between a nodule's edge and the lung field's border.
NODULE_MARGIN = 2.0

#: Side of the marker's box in pixels (inclusive-exclusive range).
MARKER_SIZE = (15, 21)

#: The marker stays at least this many pixels from the lung field, so a map pointing at it (within the
#: pointing game's 15 px) is not mistaken for one pointing at a nodule, which lies inside the field.
MARKER_LUNG_GAP = 12

#: The marker's box stays this far from the image border: the demo model crops 16 px at the top and left
#: (its alignment shift), training flips images left-right and shifts them by up to 8 px.
MARKER_BORDER = 26

#: Spawn-key entry of the marker's own random stream (ASCII "MARK"), apart from every image's main stream.
_MARKER_STREAM = 0x4D41524B

# Pixel-coordinate grids shared by all images: the half-resolution anatomy grid
# (in full-resolution pixel units) and a [-0.5, 0.5) grid for exposure ramps.
_LOW_GRID = tuple(np.mgrid[0 : SIZE // 2, 0 : SIZE // 2].astype(np.float32) * 2.0 + 0.5)
_UNIT_GRID = tuple(np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5)

SeedLike = Union[int, np.integer, np.random.SeedSequence, np.random.Generator]


@dataclass(frozen=True)
class Scene:
    """One generated image with its ground truth.

    ``image`` is the uint8 radiograph (224, 224); ``mask`` is True on nodule
    pixels (all False for normal images, and for lesion images drawn with
    ``nodule_contrast=0``); ``lungs`` is True on the visible lung fields where
    nodules may be placed; ``label`` is 0 or 1; ``marker_mask`` is True on the
    shortcut marker's pixels (all False when the image has no marker).
    """

    image: np.ndarray
    mask: np.ndarray
    lungs: np.ndarray
    label: int
    marker_mask: Optional[np.ndarray] = None

    @property
    def has_marker(self) -> bool:
        return self.marker_mask is not None and bool(self.marker_mask.any())


def _rng(rng_or_seed: SeedLike, name: str = "rng_or_seed") -> np.random.Generator:
    """Turn a seed (int / SeedSequence) or a Generator into a Generator."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if isinstance(rng_or_seed, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int seed or a numpy Generator, not bool")
    if isinstance(rng_or_seed, (int, np.integer)):
        if rng_or_seed < 0:
            raise ValueError(f"{name} must be >= 0, got {rng_or_seed}")
        return np.random.default_rng(int(rng_or_seed))
    if isinstance(rng_or_seed, np.random.SeedSequence):
        return np.random.default_rng(rng_or_seed)
    raise TypeError(
        f"{name} must be an int seed, a SeedSequence or a numpy Generator, "
        f"got {type(rng_or_seed).__name__}"
    )


def _check_label(label) -> int:
    """Validate a class label (0 or 1) and return it as a Python int."""
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise TypeError(f"label must be 0 or 1, got {label!r}")
    if int(label) not in (0, 1):
        raise ValueError(f"label must be 0 ('normal') or 1 ('lesion'), got {label}")
    return int(label)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function (overflow-free form), used for soft organ edges."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation."""
    noise = rng.standard_normal((SIZE, SIZE), dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return noise / max(float(noise.std()), 1e-6)


def _anatomy(rng: np.random.Generator):
    """Draw the jittered anatomy: a density map, the lung field and the pixel scale.

    Densities are unitless (bright = dense); the image is a monotone
    transform of them.  The smooth organs are drawn on a half-resolution grid
    and upsampled (4x faster); the lung texture is drawn at full resolution.
    Returns ``(density, lung_field, px_per_unit)``.
    """
    # Whole-anatomy pose: shift, scale and a small rotation.
    scale = rng.uniform(88.0, 104.0)  # pixels per normalised unit
    cx = SIZE / 2 + rng.uniform(-9.0, 9.0)
    cy = SIZE / 2 + rng.uniform(-8.0, 14.0)
    angle = np.deg2rad(rng.uniform(-5.0, 5.0))
    ys, xs = _LOW_GRID
    dx, dy = (xs - cx) / scale, (ys - cy) / scale
    ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = ca * dx + sa * dy  # patient right-left (image x)
    v = -sa * dx + ca * dy  # head-feet (image y, down)
    au = np.abs(u)
    edge = np.float32(scale / 2.5)  # ~5 px wide soft edges

    # Body: a wide ellipse (thorax + abdomen) with a neck; denser abdomen.
    bw, bh = rng.uniform(1.08, 1.22), rng.uniform(1.3, 1.45)
    body = _sigmoid((1.0 - np.sqrt((u / bw) ** 2 + ((v - 0.35) / bh) ** 2)) * edge * 0.6)
    neck = _sigmoid((0.32 - au) * edge * 0.5) * _sigmoid((-0.6 - v) * edge * 0.5)
    body = np.maximum(body, neck)
    abdomen = _sigmoid((v - rng.uniform(0.55, 0.65)) * edge * 0.3)
    density = (0.30 + 0.10 * abdomen) * body

    # Lungs: egg-shaped fields with a narrow apex, cut below by the diaphragm domes.
    lungs = np.zeros_like(u)
    for side in (-1.0, 1.0):
        lc = side * rng.uniform(0.42, 0.48)
        a = rng.uniform(0.30, 0.35)
        b = rng.uniform(0.64, 0.74)
        vc = rng.uniform(-0.10, 0.0)
        du, dv = u - lc, v - vc
        widen = 1.0 + 0.35 * np.clip(dv / b, -1.0, 1.0)
        egg = np.sqrt((du / (a * widen)) ** 2 + (dv / b) ** 2)
        dome = vc + 0.8 * b - 0.16 * np.clip(1.0 - (du / (1.3 * a)) ** 2, 0.0, 1.0)
        lung = _sigmoid((1.0 - egg) * edge * 0.3) * _sigmoid((dome - v) * edge)
        lungs = np.maximum(lungs, lung)
    density -= rng.uniform(0.22, 0.27) * lungs

    # Mediastinum and heart (the heart bulges to the patient's left = image right).
    med_w = rng.uniform(0.13, 0.17)
    mediastinum = _sigmoid((med_w - au) * edge) * _sigmoid((0.7 - v) * edge)
    hx, hy = rng.uniform(0.12, 0.22), rng.uniform(0.30, 0.40)
    ha, hb = rng.uniform(0.32, 0.40), rng.uniform(0.24, 0.30)
    heart = _sigmoid((1.0 - np.sqrt(((u - hx) / ha) ** 2 + ((v - hy) / hb) ** 2)) * edge * 0.3)
    central = np.maximum(mediastinum, heart)
    density += rng.uniform(0.26, 0.32) * central * (0.5 + 0.5 * lungs)

    # Spine: a bright column with vertebral bodies.
    spine_w = rng.uniform(0.07, 0.09)
    period = rng.uniform(0.16, 0.2)
    vert = 0.7 + 0.3 * np.cos(np.pi * (v - rng.uniform(0, 1)) / period) ** 2
    spine = _sigmoid((spine_w - au) * edge) * vert
    density += 0.12 * spine * body

    # Ribs: parallel arcs per side, all evaluated at once with a periodic band.
    rib_amp = rng.uniform(0.05, 0.09)
    for side in (-1.0, 1.0):
        apex = rng.uniform(0.25, 0.35)
        curv = rng.uniform(0.55, 0.8)
        spacing = rng.uniform(0.15, 0.18)
        t = (v - curv * (au - apex) ** 2 - 0.15 * au) / spacing + rng.uniform(0.0, 1.0)
        phase = t - np.floor(t)  # in [0, 1): one period per rib
        width = rng.uniform(0.3, 0.4)
        band = np.clip(1.0 - np.abs(phase - 0.5) / (width / 2), 0.0, 1.0)
        band = np.sqrt(band) * (1.0 + 0.3 * (band < 0.5))  # brighter cortex edges
        on_side = _sigmoid((side * u - 0.06) * edge)
        extent = _sigmoid((0.95 - au) * edge) * _sigmoid((v + 0.85) * edge)
        extent *= _sigmoid((0.62 - v) * edge)
        density += rib_amp * band * on_side * extent * (0.5 + 0.5 * lungs)

    # Clavicles.
    for side in (-1.0, 1.0):
        x0, y0 = 0.12, rng.uniform(-0.82, -0.72)
        x1, y1 = 0.75, y0 - rng.uniform(0.05, 0.15)
        sx = side * u
        tt = np.clip((sx - x0) / (x1 - x0), 0.0, 1.0)
        dist = np.sqrt((sx - (x0 + tt * (x1 - x0))) ** 2 + (v - (y0 + tt * (y1 - y0))) ** 2)
        density += 0.08 * _sigmoid((0.035 - dist) * edge)

    # Upsample the smooth maps to full resolution in one call.
    stack = np.stack([density, lungs, central, spine], axis=-1).astype(np.float32)
    full = cv2.resize(stack, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    density, lungs, central, spine = (np.ascontiguousarray(full[..., i]) for i in range(4))

    # Lung markings: smooth texture, stronger towards the hila.
    hilum = cv2.resize(
        np.exp(-((au - 0.22) ** 2 + (v - 0.05) ** 2) / 0.12).astype(np.float32),
        (SIZE, SIZE), interpolation=cv2.INTER_LINEAR,
    )
    texture = _smooth_noise(rng, rng.uniform(1.5, 3.0))
    density += lungs * (0.012 + 0.025 * hilum) * texture

    field = (lungs > 0.5) & (central < 0.3) & (spine < 0.2)
    return density, field, float(scale)


def _blob(shape_rr: np.ndarray) -> np.ndarray:
    """Soft, slightly domed disc profile from a normalised radius map."""
    core = np.clip(1.0 - shape_rr**2, 0.0, 1.0)
    return (_sigmoid((1.0 - shape_rr) * 10.0) * (0.75 + 0.25 * core)).astype(np.float32)


def _stamp(rng, cx, cy, r, irregular):
    """Normalised radius map (1 on the edge) of a slightly irregular ellipse.

    Returns ``(rr, (y0, y1, x0, x1))`` over a local window around the centre,
    so stamping costs O(r^2) rather than a full image.
    """
    pad = int(np.ceil(r * 1.6)) + 3
    y0, y1 = max(int(cy) - pad, 0), min(int(cy) + pad + 1, SIZE)
    x0, x1 = max(int(cx) - pad, 0), min(int(cx) + pad + 1, SIZE)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    ecc = rng.uniform(0.8, 1.0) if irregular else 1.0
    rot = rng.uniform(0, np.pi)
    c, s = np.cos(rot), np.sin(rot)
    a, b = c * dx + s * dy, (-s * dx + c * dy) / ecc
    rr = np.sqrt(a**2 + b**2) / r
    if irregular:  # a gentle lobulated outline
        theta = np.arctan2(b, a)
        wobble = 1.0
        for k in (2, 3, 5):
            wobble = wobble + rng.uniform(0.0, 0.06) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        rr = rr / wobble
    return rr.astype(np.float32), (y0, y1, x0, x1)


def _add_distractors(rng, density, field, px):
    """Small vessel-on-end dots in the lungs, present in both classes alike."""
    ys, xs = np.nonzero(field)
    if len(ys) == 0:
        return
    for _ in range(int(rng.integers(2, 7))):
        i = int(rng.integers(len(ys)))
        r = rng.uniform(1.2, 2.8) * px / 100.0
        rr, (y0, y1, x0, x1) = _stamp(rng, xs[i] + rng.uniform(-0.5, 0.5), ys[i] + rng.uniform(-0.5, 0.5), r, False)
        density[y0:y1, x0:x1] += rng.uniform(0.05, 0.12) * _blob(rr)


def _add_nodules(rng, density, field, px, contrast: float = 1.0):
    """Add 1-3 nodules wholly inside the lung field; return their mask.

    The nodules' total added density is subtracted again from the whole image
    so they do not shift the global mean brightness.  ``contrast`` scales
    their brightness (1 = the demo world's nodules); the random draws are the
    same whatever it is, so only the nodules change.
    """
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    added = np.zeros((SIZE, SIZE), dtype=np.float32)
    # Distance (px) from each field pixel to the nearest non-field pixel.
    inside = cv2.distanceTransform(field.astype(np.uint8), cv2.DIST_L2, 5)
    count = int(rng.integers(1, 4))
    placed: list[tuple[float, float, float]] = []
    for _ in range(count):
        r = rng.uniform(*NODULE_RADIUS) * px / 100.0
        # The outline wobbles out to ~1.18 r; keep that plus a margin inside.
        ok = inside > 1.2 * r + NODULE_MARGIN + 1.0
        for (qx, qy, qr) in placed:
            ys, xs = np.ogrid[0:SIZE, 0:SIZE]
            ok &= (xs - qx) ** 2 + (ys - qy) ** 2 > (1.2 * (qr + r) + 4.0) ** 2
        cand_y, cand_x = np.nonzero(ok)
        if len(cand_y) == 0:  # no room left: shrink to the smallest nodule
            r = NODULE_RADIUS[0] * px / 100.0
            ok = inside > 1.2 * r + NODULE_MARGIN + 1.0
            for (qx, qy, qr) in placed:
                ys, xs = np.ogrid[0:SIZE, 0:SIZE]
                ok &= (xs - qx) ** 2 + (ys - qy) ** 2 > (1.2 * (qr + r) + 4.0) ** 2
            cand_y, cand_x = np.nonzero(ok)
            if len(cand_y) == 0:
                continue
        i = int(rng.integers(len(cand_y)))
        cx, cy = cand_x[i] + rng.uniform(-0.5, 0.5), cand_y[i] + rng.uniform(-0.5, 0.5)
        rr, (y0, y1, x0, x1) = _stamp(rng, cx, cy, r, True)
        added[y0:y1, x0:x1] += rng.uniform(*NODULE_AMPLITUDE) * _blob(rr)
        mask[y0:y1, x0:x1] |= rr <= 1.0
        placed.append((cx, cy, r))
    if contrast != 1.0:
        added *= np.float32(contrast)
    density += added - added.mean()
    return mask & field


def _marker_rng(rng_or_seed: SeedLike) -> np.random.Generator:
    """The marker's own random stream for an image, leaving the image's main stream untouched.

    For an int seed or a ``SeedSequence`` it is the sequence with ``_MARKER_STREAM`` appended to its spawn
    key (pure: the same seed always gives the same marker).  For a ``Generator`` it is a child spawned from
    it (``Generator.spawn``), which does not advance the generator's own state.
    """
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed.spawn(1)[0]
    if isinstance(rng_or_seed, np.random.SeedSequence):
        seq = rng_or_seed
    else:
        seq = np.random.SeedSequence(_rng_seed(rng_or_seed))
    return np.random.default_rng(
        np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (_MARKER_STREAM,), pool_size=seq.pool_size)
    )


def _marker_glyph(rng: np.random.Generator) -> np.ndarray:
    """Density of one marker token on its own square canvas: a box with a bright letter "L" or "R".

    Lead letters stop X-rays, so the letter is the brightest thing on the film; the plastic holder shows as
    a fainter box with a crisp rim.  Every pixel of the canvas belongs to the token.
    """
    side = int(rng.integers(*MARKER_SIZE))
    letter = "LR"[int(rng.integers(2))]
    glyph = np.full((side, side), rng.uniform(0.06, 0.12), dtype=np.float32)  # the holder
    glyph[[0, -1], :] = glyph[:, [0, -1]] = rng.uniform(0.2, 0.3)  # its rim
    canvas = np.zeros((side, side), dtype=np.uint8)
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, side - 6, 2)
    (w, h), _ = cv2.getTextSize(letter, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(canvas, letter, ((side - w) // 2, (side + h) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 2,
                cv2.LINE_8)
    glyph[canvas > 0] = rng.uniform(0.45, 0.6)  # the lead letter
    return glyph


def _add_marker(rng: np.random.Generator, density: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Stamp a marker token outside the lung field (at least ``MARKER_LUNG_GAP`` px away); return its mask.

    The position is uniform over the places where the whole box fits inside the border margin and clear of
    the lungs: in practice over the mediastinum and spine between the lung fields, or over the abdomen below
    them (there always is room; a test draws many).
    """
    glyph = _marker_glyph(rng)
    side = glyph.shape[0]
    gap = cv2.distanceTransform((~field).astype(np.uint8), cv2.DIST_L2, 5)  # px from the lung field
    # A top-left corner (y, x) is allowed when the box's nearest pixel to the lungs is far enough: the
    # minimum of ``gap`` over the box, computed with an erosion by the box's footprint.
    clear = cv2.erode(gap, np.ones((side, side), np.uint8), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    ok = np.zeros((SIZE, SIZE), dtype=bool)
    hi = SIZE - MARKER_BORDER - side
    ok[MARKER_BORDER : hi + 1, MARKER_BORDER : hi + 1] = clear[MARKER_BORDER : hi + 1, MARKER_BORDER : hi + 1] >= MARKER_LUNG_GAP
    ys, xs = np.nonzero(ok)
    if len(ys) == 0:  # pragma: no cover - the anatomy's jitter always leaves room (a test draws many)
        raise RuntimeError("no room for the marker outside the lung fields")
    i = int(rng.integers(len(ys)))
    y0, x0 = int(ys[i]), int(xs[i])
    density[y0 : y0 + side, x0 : x0 + side] += glyph
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


def _render(rng: np.random.Generator, density: np.ndarray) -> np.ndarray:
    """Turn a density map into a uint8 radiograph: blur, exposure, gamma, noise."""
    img = cv2.GaussianBlur(density, (0, 0), rng.uniform(0.7, 1.6), borderType=cv2.BORDER_REFLECT)
    # Soft-tissue / exposure gradient across the film.
    ys, xs = _UNIT_GRID
    gx, gy = rng.uniform(-0.06, 0.06, size=2)
    img = img + gx * xs + gy * ys
    contrast = rng.uniform(1.05, 1.4)
    brightness = rng.uniform(0.06, 0.18)
    img = brightness + contrast * img
    img = np.clip(img, 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    # Film grain: fine white noise plus a little mottle.
    img = img + rng.uniform(0.01, 0.03) * rng.standard_normal(img.shape, dtype=np.float32)
    img = img + 0.01 * _smooth_noise(rng, 1.0)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def make_scene(rng_or_seed: SeedLike, label: int, marker: bool = False, nodule_contrast: float = 1.0) -> Scene:
    """Generate one image with its nodule mask and lung field (and, on request, the shortcut marker).

    ``rng_or_seed``: an int seed (>= 0), a ``SeedSequence`` or a numpy
    ``Generator`` (which is advanced).  ``label``: 0 = normal, 1 = lesion.
    ``marker``: also draw the laterality marker outside the lungs; its
    position and look come from a separate stream, so the rest of the image
    is exactly the image drawn without it.  ``nodule_contrast``: scales the
    nodules' brightness (default 1; 0 draws no visible nodule and leaves the
    mask empty); the same nodules are placed whatever it is.
    """
    label = _check_label(label)
    if not isinstance(marker, (bool, np.bool_)):
        raise TypeError(f"marker must be True or False, got {marker!r}")
    contrast = _check_fraction("nodule_contrast", nodule_contrast)
    marker_rng = _marker_rng(rng_or_seed) if marker else None  # before the main stream is used
    rng = _rng(rng_or_seed)
    density, field, px = _anatomy(rng)
    _add_distractors(rng, density, field, px)
    if label == 1:
        mask = _add_nodules(rng, density, field, px, contrast)
        if contrast == 0.0:
            mask[:] = False
    else:
        mask = np.zeros((SIZE, SIZE), dtype=bool)
    marker_mask = _add_marker(marker_rng, density, field) if marker else np.zeros((SIZE, SIZE), dtype=bool)
    image = _render(rng, density)
    return Scene(image=image, mask=mask, lungs=field, label=label, marker_mask=marker_mask)


def make_image(rng_or_seed: SeedLike, label: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate one radiograph and its nodule mask.

    ``rng_or_seed``: an int seed (>= 0), a ``SeedSequence`` or a numpy
    ``Generator`` (which is advanced).  ``label``: 0 = normal, 1 = lesion.
    Returns ``(image uint8 (224, 224), mask bool (224, 224))``; the mask is
    all False for normal images.
    """
    scene = make_scene(rng_or_seed, label)
    return scene.image, scene.mask


def make_dataset(n: int, seed: int, balance: float = 0.5):
    """Generate ``n`` images with labels and masks, reproducibly.

    ``n``: number of images (>= 0).  ``seed``: int seed (>= 0); each image
    gets its own child seed, so image ``i`` does not depend on the others.
    ``balance``: fraction of lesion images (default 0.5); exactly
    ``round(n * balance)`` images are lesions, in shuffled order.
    Returns ``(images (n, 224, 224) uint8, labels (n,) int64, masks (n, 224, 224) bool)``.
    """
    labels, image_seqs = _labels_and_seeds(n, seed, balance)
    images = np.empty((len(labels), SIZE, SIZE), dtype=np.uint8)
    masks = np.empty((len(labels), SIZE, SIZE), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = make_image(image_seqs[i], int(label))
    return images, labels, masks


def _labels_and_seeds(n, seed, balance):
    """Validate ``make_dataset``'s arguments; return the shuffled labels and one child seed per image."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seed = _rng_seed(seed)
    if not (0.0 <= float(balance) <= 1.0):
        raise ValueError(f"balance must be in [0, 1], got {balance}")
    n, seq = int(n), np.random.SeedSequence(seed)
    label_seq, *image_seqs = seq.spawn(n + 1)
    labels = np.zeros(n, dtype=np.int64)
    labels[: int(round(n * float(balance)))] = 1
    labels = np.random.default_rng(label_seq).permutation(labels)
    return labels, image_seqs


class ShortcutSet(NamedTuple):
    """A data set with the shortcut marker: images, labels, nodule masks, marker masks, and who has a marker."""

    images: np.ndarray  #: (N, 224, 224) uint8
    labels: np.ndarray  #: (N,) int64, 1 = lesion
    masks: np.ndarray  #: (N, 224, 224) bool, the nodules
    marker_masks: np.ndarray  #: (N, 224, 224) bool, the marker (all False where there is none)
    has_marker: np.ndarray  #: (N,) bool


def make_shortcut_dataset(n: int, seed: int, balance: float = 0.5, marker_if_lesion: float = 1.0,
                          marker_if_normal: float = 0.0, nodule_contrast: float = 1.0) -> ShortcutSet:
    """``make_dataset`` with the shortcut marker drawn on a stated share of each class.

    Image ``i`` is ``make_dataset(n, seed, balance)``'s image ``i`` (same labels, same anatomy and nodules)
    with the marker added when a draw from a separate stream falls below ``marker_if_lesion`` (lesion
    images) or ``marker_if_normal`` (normal images).  The defaults (1, 0) make the marker perfectly
    predictive, as in the ``demo-shortcut`` training set; equal rates draw it independently of the class;
    (1, 1) or (0, 0) put it on every image or none.  ``nodule_contrast`` scales the lesions' brightness
    (see :func:`make_scene`).  Returns a :class:`ShortcutSet`.
    """
    labels, image_seqs = _labels_and_seeds(n, seed, balance)
    rates = np.array([_check_fraction("marker_if_normal", marker_if_normal),
                      _check_fraction("marker_if_lesion", marker_if_lesion)])
    contrast = _check_fraction("nodule_contrast", nodule_contrast)
    draws = _marker_rng(np.random.SeedSequence(_rng_seed(seed))).random(len(labels))
    has_marker = draws < rates[labels]
    out = ShortcutSet(
        images=np.empty((len(labels), SIZE, SIZE), dtype=np.uint8), labels=labels,
        masks=np.empty((len(labels), SIZE, SIZE), dtype=bool),
        marker_masks=np.empty((len(labels), SIZE, SIZE), dtype=bool), has_marker=has_marker,
    )
    for i, label in enumerate(labels):
        scene = make_scene(image_seqs[i], int(label), marker=bool(has_marker[i]), nodule_contrast=contrast)
        out.images[i], out.masks[i], out.marker_masks[i] = scene.image, scene.mask, scene.marker_mask
    return out


def _png_bytes(array: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit grayscale PNG."""
    ok, buf = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 2-D arrays
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def example_images(seed: int = TESTIMGS_SEED, per_class: int = 5):
    """Yield ``(stem, label, image, mask)`` for the example images, normal ones first, in manifest order.

    With the default seed these are exactly the images of the repository's ``testimgs/`` (a test checks it),
    made in memory in well under a second, so an installed package needs no image files.
    """
    if isinstance(per_class, (bool, np.bool_)) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    seqs = np.random.SeedSequence(_rng_seed(seed)).spawn(2 * per_class)
    for label, name in enumerate(CLASSES):
        for k in range(per_class):
            image, mask = make_image(seqs[label * per_class + k], label)
            yield f"{name}_{k + 1:02d}", label, image, mask


def write_testimgs(folder: Union[str, os.PathLike], seed: int = TESTIMGS_SEED, per_class: int = 5) -> list[dict]:
    """Write the example images, their masks and ``manifest.csv`` into ``folder``.

    ``folder``: target directory (created if missing).  ``seed``: int seed
    (default ``TESTIMGS_SEED`` = 2024, the one used for ``testimgs/``).
    ``per_class``: images per class (default 5).  Files are
    ``<class>_<NN>.png`` (8-bit grayscale, 224x224), lesion masks are
    ``masks/<stem>_mask.png`` (0/255) and the manifest has columns
    ``file,class,mask`` (mask empty for normal images).  Returns the rows.
    """
    if isinstance(per_class, (bool, np.bool_)) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    folder = Path(folder)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for stem, label, image, mask in example_images(seed, per_class):
        write_bytes_atomic(_png_bytes(image), folder / f"{stem}.png")
        mask_rel = ""
        if label == 1:
            mask_rel = f"masks/{stem}_mask.png"
            write_bytes_atomic(_png_bytes(mask.astype(np.uint8) * 255), folder / mask_rel)
        rows.append({"file": f"{stem}.png", "class": CLASSES[label], "mask": mask_rel})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["file", "class", "mask"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(text.getvalue().encode("utf-8"), folder / "manifest.csv")
    return rows


def _check_fraction(name: str, value) -> float:
    """Validate a number in [0, 1] and return it as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _rng_seed(seed) -> int:
    """Validate an int seed (>= 0) and return it."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)
