"""Drawing one radiograph: the jittered anatomy, vessel-like dots, nodules, and the film (blur, exposure, noise).

Two dark lung fields, rib arcs, a bright spine and mediastinum, a heart shadow and soft tissue, with the whole
anatomy jittered in position, scale, rotation, brightness and contrast. Nodules are placed wholly inside the
lung fields and their added brightness is subtracted again from the whole image, so the global mean
brightness tells nothing about the class. Only numpy and OpenCV are used.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SIZE", "NODULE_RADIUS", "NODULE_AMPLITUDE", "NODULE_MARGIN", "sigmoid", "draw_anatomy",
           "add_distractors", "add_nodules", "render"]

#: Height and width of every generated image, in pixels.
SIZE = 224

#: Nodule radius range in pixels (inclusive-exclusive, before scale jitter).
NODULE_RADIUS = (5.0, 14.0)

#: Nodule peak density range (same units as the anatomy densities below).
NODULE_AMPLITUDE = (0.10, 0.25)

#: Gap in pixels kept between a nodule's edge and the lung field's border.
NODULE_MARGIN = 2.0

# Pixel-coordinate grids shared by all images: the half-resolution anatomy grid
# (in full-resolution pixel units) and a [-0.5, 0.5) grid for exposure ramps.
_LOW_GRID = tuple(np.mgrid[0 : SIZE // 2, 0 : SIZE // 2].astype(np.float32) * 2.0 + 0.5)
_UNIT_GRID = tuple(np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function (overflow-free form), used for soft organ edges."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation."""
    noise = rng.standard_normal((SIZE, SIZE), dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return noise / max(float(noise.std()), 1e-6)


def draw_anatomy(rng: np.random.Generator):
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
    body = sigmoid((1.0 - np.sqrt((u / bw) ** 2 + ((v - 0.35) / bh) ** 2)) * edge * 0.6)
    neck = sigmoid((0.32 - au) * edge * 0.5) * sigmoid((-0.6 - v) * edge * 0.5)
    body = np.maximum(body, neck)
    abdomen = sigmoid((v - rng.uniform(0.55, 0.65)) * edge * 0.3)
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
        lung = sigmoid((1.0 - egg) * edge * 0.3) * sigmoid((dome - v) * edge)
        lungs = np.maximum(lungs, lung)
    density -= rng.uniform(0.22, 0.27) * lungs

    # Mediastinum and heart (the heart bulges to the patient's left = image right).
    med_w = rng.uniform(0.13, 0.17)
    mediastinum = sigmoid((med_w - au) * edge) * sigmoid((0.7 - v) * edge)
    hx, hy = rng.uniform(0.12, 0.22), rng.uniform(0.30, 0.40)
    ha, hb = rng.uniform(0.32, 0.40), rng.uniform(0.24, 0.30)
    heart = sigmoid((1.0 - np.sqrt(((u - hx) / ha) ** 2 + ((v - hy) / hb) ** 2)) * edge * 0.3)
    central = np.maximum(mediastinum, heart)
    density += rng.uniform(0.26, 0.32) * central * (0.5 + 0.5 * lungs)

    # Spine: a bright column with vertebral bodies.
    spine_w = rng.uniform(0.07, 0.09)
    period = rng.uniform(0.16, 0.2)
    vert = 0.7 + 0.3 * np.cos(np.pi * (v - rng.uniform(0, 1)) / period) ** 2
    spine = sigmoid((spine_w - au) * edge) * vert
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
        on_side = sigmoid((side * u - 0.06) * edge)
        extent = sigmoid((0.95 - au) * edge) * sigmoid((v + 0.85) * edge)
        extent *= sigmoid((0.62 - v) * edge)
        density += rib_amp * band * on_side * extent * (0.5 + 0.5 * lungs)

    # Clavicles.
    for side in (-1.0, 1.0):
        x0, y0 = 0.12, rng.uniform(-0.82, -0.72)
        x1, y1 = 0.75, y0 - rng.uniform(0.05, 0.15)
        sx = side * u
        tt = np.clip((sx - x0) / (x1 - x0), 0.0, 1.0)
        dist = np.sqrt((sx - (x0 + tt * (x1 - x0))) ** 2 + (v - (y0 + tt * (y1 - y0))) ** 2)
        density += 0.08 * sigmoid((0.035 - dist) * edge)

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
    return (sigmoid((1.0 - shape_rr) * 10.0) * (0.75 + 0.25 * core)).astype(np.float32)


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


def add_distractors(rng, density, field, px):
    """Small vessel-on-end dots in the lungs, present in both classes alike."""
    ys, xs = np.nonzero(field)
    if len(ys) == 0:
        return
    for _ in range(int(rng.integers(2, 7))):
        i = int(rng.integers(len(ys)))
        r = rng.uniform(1.2, 2.8) * px / 100.0
        rr, (y0, y1, x0, x1) = _stamp(rng, xs[i] + rng.uniform(-0.5, 0.5), ys[i] + rng.uniform(-0.5, 0.5), r, False)
        density[y0:y1, x0:x1] += rng.uniform(0.05, 0.12) * _blob(rr)


def add_nodules(rng, density, field, px, contrast: float = 1.0):
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


def render(rng: np.random.Generator, density: np.ndarray) -> np.ndarray:
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
