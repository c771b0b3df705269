"""An independent, deliberately plain implementation of the published CF-CAM, written from the spec
(``shared/spec/cf-cam.md``): loops, dense numpy distances, scikit-learn's DBSCAN, torch's ``conv2d`` with
``padding="same"``, all in float32 as the published code runs. Slow and simple on purpose: the tests compare
the fast vectorised core against it on inputs beyond the given fixtures.
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import DBSCAN


def published_cfcam(activations: np.ndarray, gradients: np.ndarray):
    a = torch.as_tensor(activations, dtype=torch.float32)
    g = torch.as_tensor(gradients, dtype=torch.float32)
    c, h, w = a.shape
    flat = a.reshape(c, -1).numpy()
    norms = np.linalg.norm(flat, ord=2, axis=1)
    important = norms >= np.percentile(norms, 75)
    rest = np.where(~important)[0]
    labels = np.full(c, -2, dtype=int)
    eps = None
    if len(rest):
        feats = flat[rest]
        dist = np.linalg.norm(feats[:, None] - feats[None, :], axis=2)
        np.fill_diagonal(dist, np.inf)
        vals = dist.flatten()
        vals = vals[vals != np.inf]
        eps = max(float(np.percentile(vals, 25)), 1e-5) if vals.size else 1e-5
        min_samples = max(2, int(len(rest) * 0.05))
        labels[rest] = DBSCAN(eps=eps, min_samples=min_samples).fit(feats).labels_
    n_clusters = int(labels.max()) + 1 if labels.max() >= 0 else 0
    weights = torch.zeros(c)
    for k in np.where(important)[0]:
        weights[k] = g[k].mean()
    for j in range(n_clusters):
        idx = np.where(labels == j)[0]
        m = g[idx].mean(dim=0)
        x, y = torch.meshgrid(torch.arange(h).float() - h / 2, torch.arange(w).float() - w / 2, indexing="ij")
        s = torch.exp(-(x**2 + y**2) / (2 * 5.0**2))
        r = torch.exp(-((m - m.mean()) ** 2) / (2 * 0.1**2))
        kern = s * r
        kern = kern / (kern.sum() + 1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            filt = F.conv2d(m[None, None], kern[None, None], padding="same")[0, 0]
        for k in idx:
            weights[k] = filt.mean()
    kept = labels != -1
    alpha = torch.softmax(weights[torch.from_numpy(kept)], dim=0)
    cam = torch.relu((alpha[:, None, None] * a[torch.from_numpy(kept)]).sum(0))
    return {"labels": labels, "eps": eps, "weights": weights.numpy(), "kept": kept, "cam": cam.numpy()}
