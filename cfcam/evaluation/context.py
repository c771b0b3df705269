"""What one method's metrics read (maps, masks, curves, re-initialised maps...), each computed once, on first use.

A metric of the registry (:mod:`cfcam.evaluation.registry`) is a function of a :class:`MethodContext`; the
context shares the costly parts between metrics (deletion and insertion read the same curves, Spearman and SSIM
the same re-initialised maps) and checks the evaluation's stop flag between batches.

Two classes per image: the *explained* class (the data's target, else the model's top class), which the
confidence, sanity and robustness metrics follow, and the *mask* class (the class whose evidence the mask
marks: the label), which localisation follows. They differ exactly on the mispredicted images, whose maps of
the mask class are computed separately (a few images, not a second pass over all of them).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from ..core.capture import ActivationsAndGradients
from . import faithfulness as fa
from . import robustness as rb
from . import sanity as sa
from .localisation import is_zero_map
from .similarity import ranks, spearman, spearman_ranked, ssim

ZERO_NOTE = "the map is zero everywhere"
SKIP_SLOW = "not run for this method: one forward pass per channel (see --slow-n)"
SKIP_GRADIENT = "not applicable: the method reads no captured gradient"


def joined(a: str, b: str) -> str:
    """Two maps' notes in one: ``a; other map: b`` (either may be empty)."""
    return "; ".join(p for p in (a, b and f"other map: {b}") if p)


class MethodContext:
    """One method on the evaluation's images: the explained maps at once, everything else when first asked."""

    def __init__(self, evaluation, name: str) -> None:
        ev, s, d = evaluation, evaluation.settings, evaluation.data
        self.ev, self.name, self.settings, self.data = ev, name, s, d
        probe = ev._explainer(name, ev.model)
        probe.remove()
        self.slow = not rb.reads_captured_gradient(probe)
        self.n = min(len(d), s.slow_n) if self.slow else len(d)
        self.sub = min(self.n, s.subset)
        self.x = d.inputs[:self.n]
        logits, targets, p_orig, p_base = ev._base()
        self.logits, self.targets = logits[:self.n], targets[:self.n]
        self.p_orig, self.p_base = p_orig[:self.n], p_base[:self.n]
        self.predicted = logits[:self.n].argmax(1).numpy()
        self.maps, self.notes, self.seconds = ev._maps(name, ev.model, self.x, self.targets, timed=True)
        self.zero = is_zero_map(self.maps)
        self.zero_note = [nt or (ZERO_NOTE if z else "") for nt, z in zip(self.notes, self.zero)]

    # -- the classes ------------------------------------------------------------------------------------
    @cached_property
    def mask_targets(self) -> np.ndarray:
        """The class whose evidence each mask marks: the data's target, else its label; where neither is
        known (-1), the explained class."""
        d = self.data
        given = np.asarray(d.targets if d.targets is not None else d.labels, dtype=np.int64)[:self.n]
        return np.where(given >= 0, given, self.targets)

    @cached_property
    def mispredicted(self) -> np.ndarray:
        """1.0 where the model's top class is not the image's label (NaN where the label is unknown)."""
        labels = np.asarray(self.data.labels, dtype=np.int64)[:self.n]
        return np.where(labels >= 0, (self.predicted != labels).astype(np.float64), np.nan)

    def row_target(self, follows: str) -> list[str]:
        """Per image, the class a metric following ``follows`` ("mask", "explained", "both", "") scored."""
        if follows == "mask":
            return [str(int(t)) for t in self.mask_targets]
        if follows == "explained":
            return [str(int(t)) for t in self.targets]
        if follows == "both":
            return [f"{int(t)} vs {int(o)}" for t, o in zip(self.targets, self.runner_up_classes)]
        return [""] * self.n

    # -- localisation -----------------------------------------------------------------------------------
    @cached_property
    def masks(self) -> np.ndarray:
        return np.asarray(self.data.masks[:self.n], dtype=bool)

    @cached_property
    def mask_given(self) -> np.ndarray:
        return self.masks.reshape(self.n, -1).any(axis=1)

    @cached_property
    def mask_maps(self) -> tuple[np.ndarray, list[str]]:
        """Maps and notes of the mask class: the explained maps where the classes agree, new maps elsewhere."""
        maps, notes = self.maps.copy(), list(self.zero_note)
        other = np.flatnonzero(self.mask_targets != self.targets)
        if other.size:
            omaps, onotes, _ = self.ev._maps(self.name, self.ev.model, self.x[other], self.mask_targets[other])
            maps[other] = omaps
            for k, i in enumerate(other):
                notes[i] = onotes[k] or (ZERO_NOTE if is_zero_map(omaps[k:k + 1])[0] else "")
        return maps, notes

    # -- faithfulness -----------------------------------------------------------------------------------
    @cached_property
    def curves(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        return fa.deletion_insertion_curves(self.ev.scorer, self.x[:self.sub], self.maps[:self.sub],
                                            self.targets[:self.sub], s.steps, s.substrate, s.batch_size * 4)

    @cached_property
    def chattopadhay(self) -> tuple[np.ndarray, np.ndarray]:
        return fa.chattopadhay_drop_increase(self.ev.scorer, self.x, self.maps, self.targets, self.p_orig)

    # -- sanity -----------------------------------------------------------------------------------------
    @property
    def random_n(self) -> int:
        """Images of the classifier check: the first ``settings.randomisation_n`` (at least the subset)."""
        return min(self.n, max(self.settings.randomisation_n, self.sub))

    @property
    def random_seeds(self) -> int:
        s = self.settings
        return min(s.randomisation_seeds, s.slow_randomisation_seeds) if self.slow else s.randomisation_seeds

    @cached_property
    def draws(self) -> dict[str, np.ndarray]:
        """Per draw ``k`` and image: Spearman, SSIM and all-zero after re-initialising the classifier from
        seed ``seed + k`` (``(K, random_n)`` arrays), and the notes of the first draw."""
        k = self.random_n
        out = {"spearman": [], "ssim": [], "zero": []}
        base = [ranks(a) for a in self.maps[:k]]
        for draw in range(self.random_seeds):
            rmaps, rnotes, _ = self.ev._maps(self.name, None, self.x[:k], self.targets[:k], draw=draw)
            out["spearman"].append([spearman_ranked(r, b) for r, b in zip(base, rmaps)])
            out["ssim"].append([ssim(a, b) for a, b in zip(self.maps[:k], rmaps)])
            out["zero"].append(is_zero_map(rmaps).astype(float))
            if draw == 0:
                notes = [joined(a, b) for a, b in zip(self.zero_note, rnotes)]
        result = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
        result["notes"] = notes
        return result

    def cascade(self, order: str) -> dict[str, tuple[np.ndarray, list[str]]]:
        """Per cascade step (``+layer``, cumulative in ``order``): per-draw Spearman with the explained map on the
        subset, ``(draws, sub)``. The classifier-only step is the classifier check's own draws (all of them, on
        these images); deeper steps use its first ``settings.cascade_seeds`` draws (a layer keeps its weights of
        draw ``k`` at every step, see :func:`~cfcam.evaluation.sanity.randomised`)."""
        cache = self.__dict__.setdefault("_cascade", {})
        if order in cache:
            return cache[order]
        sub, fc = self.sub, sa.classifier_layer(self.ev.model)
        out, layers = {}, ()
        for layer in sa.cascade_layers(self.ev.model, order):
            layers = layers + (layer,)
            if layers == (fc,):  # the classifier check's own draws, all of them: the same maps as its table
                out[layer] = (self.draws["spearman"][:, :sub], self.draws["notes"][:sub])
                continue
            per_draw, notes = [], None
            for draw in range(min(self.settings.cascade_seeds, self.random_seeds)):
                cmaps, cnotes, _ = self.ev._maps(self.name, self.ev._model(layers, draw), self.x[:sub],
                                                 self.targets[:sub], model_key=("cascade", layers, draw))
                per_draw.append([spearman(a, b) for a, b in zip(self.maps[:sub], cmaps)])
                notes = notes or [joined(a, b) for a, b in zip(self.zero_note, cnotes)]
            out[layer] = (np.asarray(per_draw, dtype=np.float64), notes)
        cache[order] = out
        return out

    @cached_property
    def runner_up_classes(self) -> np.ndarray:
        return sa.runner_up(self.logits, None if self.data.targets is None else self.targets).numpy()

    @cached_property
    def runner_up(self) -> tuple[np.ndarray, list[str]]:
        omaps, onotes, _ = self.ev._maps(self.name, self.ev.model, self.x, self.runner_up_classes)
        return omaps, [joined(a, b) for a, b in zip(self.zero_note, onotes)]

    # -- robustness -------------------------------------------------------------------------------------
    @cached_property
    def gradient_noise(self) -> dict[tuple[str, float], np.ndarray]:
        """``(protocol, sigma) -> noisy maps`` on the subset, and ``("clean", 0)`` the maps they are compared to."""
        s, sub = self.settings, self.sub
        ev = self.ev
        out = {}
        with ev._explainer(self.name, ev.model) as explainer, \
                ActivationsAndGradients(ev.model, ev._layer(self.name), s.reshape) as grab:
            cap = grab(self.x[:sub], [int(t) for t in self.targets[:sub]])
            out[("clean", 0.0)] = rb.maps_from_capture(explainer, cap.activations, cap.gradients, ev.size)
            for protocol, sigmas in (("published", s.published_sigmas), ("fair", s.fair_sigmas)):
                for sigma in sigmas:
                    gen = torch.Generator().manual_seed(s.seed)
                    out[(protocol, sigma)] = rb.gradient_noise_maps(explainer, cap.activations, cap.gradients,
                                                                    ev.size, sigma, protocol, gen)
        return out

    @cached_property
    def input_noise(self) -> np.ndarray:
        s, sub = self.settings, self.sub
        gen = torch.Generator().manual_seed(s.seed)
        noisy = self.x[:sub] + s.input_noise * torch.randn(self.x[:sub].shape, generator=gen)
        nmaps, _, _ = self.ev._maps(self.name, self.ev.model, noisy, self.targets[:sub])
        return nmaps
