"""The CF-CAM ablation: the published preset with one component changed at a time, next to Grad-CAM.

Each variant is a named entry for :class:`~cfcam.evaluation.engine.EvalSettings`' ``variants`` and is
measured with the same metrics as ``cfcam evaluate``. "Clustering off" makes every channel important
(``important_fraction=1``): nothing is clustered, filtered or dropped, so each channel keeps its own mean
gradient, and with ``weighting="gap"`` that is exactly Grad-CAM.
"""

from __future__ import annotations

ABLATION: dict[str, dict] = {
    "gradcam": {"method": "gradcam"},
    "reference": {"method": "cfcam-reference"},
    "ref/no-important-split": {"method": "cfcam-reference", "options": {"important_fraction": 0.0}},
    "ref/no-clustering": {"method": "cfcam-reference", "options": {"important_fraction": 1.0}},
    "ref/filter-none": {"method": "cfcam-reference", "options": {"filter": "none"}},
    "ref/filter-bilateral": {"method": "cfcam-reference",
                             "options": {"filter": "bilateral", "spatial_sigma": 1.0, "range_sigma": 0.2}},
    "ref/gap": {"method": "cfcam-reference", "options": {"weighting": "gap"}},
    "ref/gap-no-clustering": {"method": "cfcam-reference", "options": {"weighting": "gap", "important_fraction": 1.0}},
    "ref/layer3": {"method": "cfcam-reference", "layer": "layer3[-1]"},
    "readme": {"method": "cfcam-readme"},
    "readme/layer3": {"method": "cfcam-readme", "layer": "layer3[-1]"},
    "gradcam/layer3": {"method": "gradcam", "layer": "layer3[-1]"},
}
