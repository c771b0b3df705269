"""Learners' answers to the exercises of notebooks 05-08, right ones written differently and typical wrong
ones with a phrase their hint must contain (see answers_early.py). Used by test_checks_mistakes.py."""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, stats
from sklearn.cluster import DBSCAN

# -- 05: the pointing game ----------------------------------------------------------------------------------


def pointing_edt(cam, mask, tolerance=15):
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    return bool(ndimage.distance_transform_edt(~mask)[y, x] <= tolerance)


def pointing_disc_dilation(cam, mask, tolerance=15):
    yy, xx = np.mgrid[-tolerance:tolerance + 1, -tolerance:tolerance + 1]
    grown = ndimage.binary_dilation(mask, structure=yy**2 + xx**2 <= tolerance**2)
    flat_index = int(torch.as_tensor(cam).argmax())
    return bool(grown.ravel()[flat_index])


def pointing_by_hand(cam, mask, tolerance=15):
    y, x = divmod(int(np.argmax(cam)), cam.shape[1])
    points = np.argwhere(mask)
    return np.hypot(points[:, 0] - y, points[:, 1] - x).min() <= tolerance


def _peak(cam):
    return np.unravel_index(np.argmax(cam), cam.shape)


def _pointing_swapped(cam, mask, tolerance=15):
    y, x = _peak(cam)
    if x >= mask.shape[0] or y >= mask.shape[1]:
        return False
    return bool(ndimage.distance_transform_edt(~mask)[x, y] <= tolerance)


def _pointing_square(cam, mask, tolerance=15):
    grown = ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=tolerance)
    return bool(grown[_peak(cam)])


def _pointing_cross(cam, mask, tolerance=15):
    grown = ndimage.binary_dilation(mask, iterations=tolerance)  # the default structure is a cross
    return bool(grown[_peak(cam)])


def _pointing_centre(cam, mask, tolerance=15):
    y, x = _peak(cam)
    cy, cx = ndimage.center_of_mass(mask)
    return bool(np.hypot(y - cy, x - cx) <= tolerance)


RIGHT = {"check_pointing_game": [pointing_edt, pointing_disc_dilation, pointing_by_hand]}
WRONG = {"check_pointing_game": [
    (_pointing_swapped, "swapped"),
    (lambda cam, mask, tolerance=15: bool(ndimage.distance_transform_edt(~mask)[_peak(cam)] < tolerance),
     "boundary counts"),
    (_pointing_square, "is a square"),
    (_pointing_cross, "is a diamond"),
    (lambda cam, mask, tolerance=15: bool(mask[_peak(cam)]), "*near* the lesion"),
    (lambda cam, mask, tolerance=15: pointing_edt(cam, mask, 15), "fixed 15"),
    (_pointing_centre, "lesion's centre"),
    (lambda cam, mask, tolerance=15: pointing_edt(-cam, mask, tolerance), "not its smallest"),
]}

# -- 06: the deletion AUC ---------------------------------------------------------------------------------


def deletion_solution(predict, image, cam, steps=11, order_of=None, counts_of=None, channels=slice(None),
                      fill=None, area=None, first=0):
    """The notebook's solution; the keyword arguments make the typical mistakes."""
    c, h, w = image.shape
    cam = np.asarray(cam)
    order = np.argsort(-cam.ravel(), kind="stable") if order_of is None else order_of(cam)
    chunk = h * w // (steps - 1)
    counts = [h * w if k == steps - 1 else k * chunk for k in range(steps)] if counts_of is None else \
        counts_of(h * w, steps)
    probs = []
    for count in counts[first:]:
        flat = image.reshape(c, -1).clone()
        flat[channels, order[:count]] = 0 if fill is None else fill(image)
        probs.append(float(predict(flat.reshape(c, h, w))))
    return float(np.trapezoid(probs, dx=1 / (steps - 1))) if area is None else area(probs)


def deletion_torch(predict, image, cam, steps=11):
    c, h, w = image.shape
    order = torch.argsort(-torch.as_tensor(np.asarray(cam, dtype=np.float64)).flatten(), stable=True)
    counts = (torch.arange(steps) * (h * w // (steps - 1))).tolist()
    counts[-1] = h * w
    probs = []
    for count in counts:
        keep = torch.ones(h * w)
        keep[order[:count]] = 0
        probs.append(predict(image * keep.view(1, h, w)))
    return np.trapezoid(np.array(probs, dtype=np.float32), np.linspace(0, 1, steps))


def deletion_float32(predict, image, cam, steps=11):
    return np.float32(deletion_solution(predict, image.float(), np.asarray(cam, np.float32), steps))


RIGHT["check_deletion_auc"] = [deletion_solution, deletion_torch, deletion_float32]
WRONG["check_deletion_auc"] = [
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, order_of=lambda m: np.argsort(m.ravel())),
     "*largest*"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, channels=0), "first channel only"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, order_of=lambda m: np.argsort(-m.T.ravel())),
     "transposed"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps,
                                                   counts_of=lambda n, s: [k * (n // (s - 1)) for k in range(s)]),
     "*all* the pixels"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, counts_of=lambda n, s: np.round(
        np.linspace(0, n, s)).astype(int)), "rounded even share"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, area=np.mean), "not the mean of the"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, area=np.trapezoid), "not 1."),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, fill=lambda im: im.mean()), "image's mean"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, first=1), "starts with nothing deleted"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam), "fixed 11"),
    (lambda p, i, cam, steps=11: deletion_solution(p, i, cam, steps, counts_of=lambda n, s: [
        k * (n // (s - 1)) for k in range(s - 1)]), "the last point"),
]

# -- 06: the randomisation check ----------------------------------------------------------------------------


def randomisation_solution(explain, model, images, seed=0):
    before = np.asarray(explain(model, images))
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    clone.fc.reset_parameters()
    after = np.asarray(explain(clone, images))
    return float(np.mean([stats.spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(before, after)]))


def randomisation_ranks(explain, model, images, seed=0):
    clone = copy.deepcopy(model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        clone.fc.reset_parameters()
    pairs = zip(explain(model, images), explain(clone, images))
    return np.mean([np.corrcoef(stats.rankdata(a), stats.rankdata(b))[0, 1] for a, b in pairs])


def _randomisation_in_place(explain, model, images, seed=0):
    before = explain(model, images)
    torch.manual_seed(seed)
    model.fc.reset_parameters()
    return float(np.mean([stats.spearmanr(a.ravel(), b.ravel()).statistic
                          for a, b in zip(before, explain(model, images))]))


def _randomisation(explain, model, images, seed=0, seeded=True, reset=None, correlate=None, pool=False,
                   average=np.mean):
    before = np.asarray(explain(model, images))
    clone = copy.deepcopy(model)
    if seeded:
        torch.manual_seed(seed)
    for module in (clone.fc,) if reset is None else reset(clone):
        module.reset_parameters()
    after = np.asarray(explain(clone, images))
    correlate = correlate or (lambda a, b: stats.spearmanr(a.ravel(), b.ravel()).statistic)
    if pool:
        return float(correlate(before, after))
    return float(average([correlate(a, b) for a, b in zip(before, after)]))


RIGHT["check_randomisation_check"] = [randomisation_solution, randomisation_ranks]
WRONG["check_randomisation_check"] = [
    (_randomisation_in_place, "changed the model"),
    (lambda e, m, x, seed=0: float(np.mean([stats.spearmanr(a.ravel(), b.ravel()).statistic
                                             for a, b in zip(e(m, x), e(m, x))])), "explain the randomised copy"),
    (lambda e, m, x, seed=0: _randomisation(e, m, x, seed, correlate=lambda a, b: np.corrcoef(a.ravel(),
                                                                                             b.ravel())[0, 1]),
     "Pearson"),
    (lambda e, m, x, seed=0: _randomisation(e, m, x, seed, reset=lambda c: [mod for mod in c.modules()
                                                                              if hasattr(mod, "reset_parameters")]),
     "every layer"),
    (lambda e, m, x, seed=0: _randomisation(e, m, x, seed, pool=True), "pool"),
    (lambda e, m, x, seed=0: _randomisation(e, m, x, seed, average=np.median), "median"),
    (lambda e, m, x, seed=0: _randomisation(e, m, x, 0), "`seed` argument"),
    (lambda e, m, x, seed=0: _randomisation(e, m, x, seed, seeded=False), "changes from run to run"),
]

# -- 07: the capstone ----------------------------------------------------------------------------------------


def cfcam_from_parts(activations, gradients, *, strict=False, nonzero=False, rounded=False, centre=None,
                     pad="zeros", transpose=False, noise_kept=False, relu=True, softmax=True, filtered=True,
                     important_fraction=0.25):
    """The capstone's assembly as the notebook's solution writes it; the keywords make the typical mistakes."""
    c = activations.shape[0]
    flat = activations.reshape(c, -1)
    norms = flat.norm(dim=1).numpy()
    important = np.zeros(c, dtype=bool)
    if important_fraction > 0:
        threshold = np.percentile(norms, 100 * (1 - important_fraction))
        important = norms > threshold if strict else norms >= threshold
    rest = np.flatnonzero(~important)
    d = torch.cdist(flat[rest], flat[rest], compute_mode="donot_use_mm_for_euclid_dist").numpy()
    values = d[d > 0] if nonzero else d[~np.eye(len(rest), dtype=bool)]
    eps = max(float(np.percentile(values, 25.0)), 1e-5)
    n_min = max(2, round(0.05 * len(rest)) if rounded else int(0.05 * len(rest)))
    labels = np.full(c, -2)
    labels[rest] = DBSCAN(eps=eps, min_samples=n_min, metric="precomputed").fit(d).labels_
    weights = torch.zeros(c, dtype=activations.dtype)
    weights[important] = gradients.mean(dim=(1, 2))[important]
    for j in range(labels.max() + 1):
        m = gradients[torch.as_tensor(labels == j)].mean(dim=0)
        if filtered:
            h, w = m.shape
            ch, cw = (h / 2, w / 2) if centre is None else centre(h, w)
            x = torch.arange(h, dtype=m.dtype)[:, None] - ch
            y = torch.arange(w, dtype=m.dtype)[None, :] - cw
            k = torch.exp(-(x**2 + y**2) / 50.0) * torch.exp(-((m - m.mean()) ** 2) / 0.02)
            k = k / (k.sum() + 1e-6)
            top, left = ((h - 1) // 2, (w - 1) // 2) if pad != "before" else (h // 2, w // 2)
            mode = "constant" if pad in ("zeros", "before") else pad
            padded = F.pad(m[None, None], (left, w - 1 - left, top, h - 1 - top), mode=mode)
            m = F.conv2d(padded, k[None, None])[0, 0]
        weights[torch.as_tensor(labels == j)] = m.mean()
    kept = torch.ones(c, dtype=torch.bool) if noise_kept else torch.as_tensor(labels != -1)
    alphas = torch.zeros_like(weights)
    alphas[kept] = torch.softmax(weights[kept], dim=0) if softmax else weights[kept]
    cam = (alphas[:, None, None] * activations).sum(dim=0)
    cam = torch.relu(cam) if relu else cam
    return cam.T if transpose else cam


def cfcam_float32(activations, gradients):
    return cfcam_from_parts(activations.float(), gradients.float())


def _capstone(**mistake):
    return lambda a, g: cfcam_from_parts(a, g, **mistake)


RIGHT["check_cfcam"] = [cfcam_from_parts, cfcam_float32]
WRONG["check_cfcam"] = [
    (_capstone(strict=True), "strict comparison"),
    (_capstone(nonzero=True), "every zero distance"),
    (_capstone(rounded=True), "min_samples is rounded"),
    (_capstone(centre=lambda h, w: ((h - 1) / 2, (w - 1) / 2)), "(h-1)/2"),
    (_capstone(pad="reflect"), "mirroring"),
    (_capstone(pad="replicate"), "repeating its border"),
    (_capstone(pad="before"), "split the other way"),
    (_capstone(transpose=True), "looks transposed"),
    (_capstone(noise_kept=True), "noise channels"),
    (_capstone(relu=False), "ReLU"),
    (_capstone(softmax=False), "softmax"),
    (_capstone(filtered=False), "not filtered"),
    (_capstone(important_fraction=0.0), "no channel was set aside"),
]

# -- 08: the energy in a mask -------------------------------------------------------------------------------


def _divide(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):  # the mistake: 0 / 0 is NaN
        return float(np.float64(a) / np.float64(b))


def energy_numpy(cam, mask):
    total = cam.sum()
    return float(cam[mask].sum() / total) if total > 0 else 0.0


def energy_product(cam, mask):
    cam = torch.as_tensor(cam, dtype=torch.float64)
    total = cam.sum()
    return (cam * torch.as_tensor(mask)).sum() / total if total > 0 else torch.tensor(0.0)


RIGHT["check_energy_in_mask"] = [energy_numpy, energy_product]
WRONG["check_energy_in_mask"] = [
    (lambda cam, mask: energy_numpy(cam.T, mask), "looks transposed"),
    (lambda cam, mask: energy_numpy(cam, ~mask), "*outside*"),
    (lambda cam, mask: float(cam[mask].sum() / cam[~mask].sum()) if cam[~mask].sum() > 0 else 0.0,
     "not by the sum outside"),
    (lambda cam, mask: float(cam[mask].mean()), "mean of the map inside"),
    (lambda cam, mask: float(mask.mean()), "mask's share"),
    (lambda cam, mask: float(cam[mask].max() / cam.max()) if cam.max() > 0 else 0.0, "not the largest values"),
    (lambda cam, mask: energy_numpy((cam - cam.min()) / max(np.ptp(cam), 1e-30), mask), "rescaling"),
    (lambda cam, mask: _divide(cam[mask].sum(), cam.sum()), "return 0"),
]
