"""Draw docs/demo.png, the README's picture: one test image, Grad-CAM and CF-CAM (both presets), with the
true lesion outlined. Run: .venv/bin/python docs/make_demo_figure.py"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import cfcam  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMAGE, MASK = ROOT / "testimgs" / "lesion_02.png", ROOT / "testimgs" / "masks" / "lesion_02_mask.png"


def main() -> None:
    model, info = cfcam.load_model("demo")
    image = np.asarray(Image.open(IMAGE).convert("RGB"))
    mask = np.asarray(Image.open(MASK)) > 127
    x = cfcam.preprocess(image)
    panels = [("input", image)]
    for title, make in [("Grad-CAM", lambda: cfcam.GradCAM(model, "layer4[-1]")),
                        ("CF-CAM readme", lambda: cfcam.CFCAM(model, "layer4[-1]", "readme")),
                        ("CF-CAM reference", lambda: cfcam.CFCAM(model, "layer4[-1]", "reference"))]:
        with make() as explainer:
            heat = explainer(x, targets=1)[0]
        panels.append((f"{title} (class lesion)", cfcam.overlay(heat, image)))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img)
        ax.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "demo.png", dpi=80)


if __name__ == "__main__":
    main()
