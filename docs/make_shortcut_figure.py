"""Draw docs/shortcut.png, the README's picture of the two demo models on one image: a lesion image that carries
the shortcut marker, explained (class lesion) by `demo` and by `demo-shortcut` with Grad-CAM and CF-CAM (both
presets); the lesion is outlined in white, the marker in cyan, and each row gives the model's P(lesion) with and
without the marker. Run: .venv/bin/python docs/make_shortcut_figure.py"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import cfcam  # noqa: E402
from cfcam.world.synthetic import make_scene  # noqa: E402
from cfcam.world.train import to_input  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 31  # the image of notebooks/08_a_model_that_cheats.ipynb
METHODS = [("Grad-CAM", "gradcam"), ("CF-CAM readme", "cfcam-readme"), ("CF-CAM reference", "cfcam-reference")]


@torch.no_grad()
def p_lesion(model, image) -> float:
    return float(torch.softmax(model(to_input(image)), dim=1)[0, 1])


def main() -> None:
    marked, plain = make_scene(SEED, 1, marker=True), make_scene(SEED, 1)
    x = to_input(marked.image)
    fig, axes = plt.subplots(2, 1 + len(METHODS), figsize=(12, 6.6))
    for row, name in enumerate(["demo", "demo-shortcut"]):
        model, _ = cfcam.load_model(name)
        panels = [(f"{name}: P(lesion) {p_lesion(model, marked.image):.2f}\n"
                   f"marker removed: {p_lesion(model, plain.image):.2f}", marked.image)]
        for title, method in METHODS:
            with cfcam.create(method, model, "layer4[-1]") as explainer:
                heat = explainer(x, targets=1)[0]
            panels.append((f"{name}: {title}", cfcam.overlay(heat, marked.image)))
        for ax, (title, img) in zip(axes[row], panels):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.contour(marked.mask.astype(float), levels=[0.5], colors="white", linewidths=1)
            ax.contour(marked.marker_mask.astype(float), levels=[0.5], colors="cyan", linewidths=1)
            ax.set_title(title, fontsize=10)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "shortcut.png", dpi=80)


if __name__ == "__main__":
    main()
