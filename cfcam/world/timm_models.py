"""timm models for ``load_model`` and ``--model timm:NAME``: pretrained weights, or a user's state-dict file.

timm is an optional extra (``pip install cfcam[timm]``); it is imported only here, only when a ``timm:`` name is
asked for. A weights file is read like every other one (``torch.load(..., weights_only=True)``, see
:func:`cfcam.world.models.read_state_dict`); pretrained weights come from the Hugging Face cache or a download,
and an offline machine gets the same kind of message as for torchvision's weights.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from torch import nn

PREFIX = "timm:"


def is_timm_name(text) -> bool:
    """True for ``"timm:NAME"``."""
    return isinstance(text, str) and text.startswith(PREFIX)


def load_timm(name: str, weights: Path | None, num_classes: int | None) -> tuple[nn.Module, dict]:
    """``(model, info)`` for ``"timm:NAME"``: its pretrained weights (``weights=None``) or the state dict in
    ``weights`` with ``num_classes`` outputs (read from the file when None); ``ModelError`` saying why not."""
    from .models import (
        ModelError,
        classes_in_file,
        default_layer,
        default_reshape,
        fit_state_dict,
        num_outputs,
        numbered,
        read_state_dict,
    )

    timm = _import_timm(ModelError)
    arch = name[len(PREFIX):] if is_timm_name(name) else name
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
        hint = f" (did you mean {', '.join(PREFIX + c for c in close)}?)" if close else ""
        raise ModelError(f"timm has no model {arch!r}{hint}; list them with timm.list_models()")
    if weights is None:
        model, source = _pretrained(timm, arch, num_classes, ModelError)
    else:
        if not Path(weights).is_file():
            raise ModelError(f"weights file {weights} not found")
        state = read_state_dict(weights)
        model = _create(timm, arch, num_classes, ModelError)
        if num_classes is None:  # take it from the file's classifier, as for torchvision's architectures
            found = classes_in_file(model, state)
            if found is not None and found != num_outputs(model):
                model = _create(timm, arch, found, ModelError)
        fit_state_dict(model, state, f"the weights file {weights} (arch='{PREFIX}{arch}')")
        source = str(weights)
    config = timm.data.resolve_data_config({}, model=model)
    n = num_outputs(model)
    info = {
        "name": PREFIX + arch if weights is None else Path(weights).name,
        "arch": PREFIX + arch,
        "classes": _imagenet_names(timm, model, n) if weights is None else numbered(n),
        "default_layer": default_layer(model, arch),
        "reshape": default_reshape(model),
        "input_size": int(config.get("input_size", (3, 224, 224))[-1]),
        "mean": tuple(config.get("mean", (0.485, 0.456, 0.406))),
        "std": tuple(config.get("std", (0.229, 0.224, 0.225))),
        "source": source,
    }
    return model, info


def _import_timm(error: type):
    try:
        import timm
        import timm.data
    except ImportError as exc:
        raise error(f"timm models need the timm package, which is not installed ({exc}): "
                    "pip install 'cfcam[timm]'") from None
    return timm


def _create(timm, arch: str, num_classes: int | None, error: type) -> nn.Module:
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    try:
        return timm.create_model(arch, pretrained=False, **kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise error(f"cannot build timm:{arch} with {kwargs}: {exc}") from None


def _pretrained(timm, arch: str, num_classes: int | None, error: type) -> tuple[nn.Module, str]:
    """timm's pretrained ``arch`` from the Hugging Face cache or a download; ``error`` if offline."""
    cfg = timm.models.get_pretrained_cfg(arch) if hasattr(timm.models, "get_pretrained_cfg") else None
    hub_id = (getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None)) if cfg is not None else None
    if cfg is not None and not hub_id:
        raise error(f"timm has no pretrained weights for {arch!r}; pass a weights file (--weights)")
    trained = getattr(cfg, "num_classes", None)
    if num_classes is not None and trained and num_classes != trained:
        raise error(f"the pretrained weights of timm:{arch} have {trained} classes, not num_classes={num_classes}; "
                    "a different number of classes needs a weights file (--weights)")
    try:
        model = timm.create_model(arch, pretrained=True)
    except Exception as exc:  # offline: LocalEntryNotFoundError, OSError, ConnectionError, HTTPError...
        raise error(f"pretrained weights for timm:{arch} could not be downloaded (offline?): "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; they are looked for in "
                    f"the Hugging Face cache {_hf_cache()}. Pass a weights file with --weights or use the demo "
                    "model") from exc
    return model, f"timm {hub_id or arch}"


def _hf_cache() -> str:
    try:
        from huggingface_hub import constants
        return str(constants.HF_HUB_CACHE)
    except Exception:  # an old or missing huggingface_hub: say where it usually is
        return "~/.cache/huggingface/hub"


def _imagenet_names(timm, model: nn.Module, n: int) -> list[str]:
    """ImageNet class descriptions for a pretrained model with ImageNet's classes, else numbered names."""
    from .models import numbered

    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(model)
        names = list(ImageNetInfo(subset).label_descriptions()) if subset else []
    except Exception:  # older timm without the label tables
        names = []
    return names if len(names) == n else numbered(n)
