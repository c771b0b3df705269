"""Loading a classifier to explain: a demo model, a torchvision ImageNet model, or a user's weights file.

The two demo models share one architecture: ``"demo"`` looks at the nodules, ``"demo-shortcut"`` was trained
where a laterality marker gave the class away and follows the marker (its card proves it by intervention).

Every path ends in ``(model in eval mode, info)``; ``info`` has the model's ``name``, ``arch``, ``classes``
(one name per output), ``default_layer`` and ``reshape`` (what CAM methods explain when no layer is given,
and how to read its output), and what the model expects as input (``input_size``, ``mean``, ``std``). Weights
files are read with ``torch.load(..., weights_only=True)``: tensors and plain containers only, never arbitrary
pickled objects.
Anything that does not fit raises ``ModelError`` saying what was expected.
"""

from __future__ import annotations

import difflib
import json
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..methods.targets import family_of
from .architecture import build_demo_model
from .timm_models import is_timm_name, load_timm

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""Folder of the committed demo model (``demo_model.pt``, float16 state dict) and its card (``demo_model.json``)."""
DEMO_WEIGHTS = "demo_model.pt"
DEMO_CARD = "demo_model.json"
DEMO_CLASSES = ("normal", "lesion")

#: The committed demo models: name -> (weights file, card file) in ``DATA_DIR``; all have the demo architecture.
DEMO_MODELS = {
    "demo": (DEMO_WEIGHTS, DEMO_CARD),
    "demo-shortcut": ("demo_shortcut_model.pt", "demo_shortcut_model.json"),
}

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")

_SHOW = 5  # keys listed per kind in a mismatch message


class ModelError(ValueError):
    """A model that cannot be built or loaded; the message says why and what to pass instead."""


# -- public entry point -----------------------------------------------------------------------------------

def load_model(name_or_path="demo", arch: str | None = None, num_classes: int | None = None,
               device="cpu", class_names: Sequence[str] | None = None) -> tuple[nn.Module, dict]:
    """``(model, info)`` for ``"demo"``/``"demo-shortcut"``, a torchvision classification name, ``"timm:NAME"``
    (timm's pretrained weights; ``pip install cfcam[timm]``), or a state-dict file (``arch`` may be ``"timm:NAME"``).

    ``"demo"``: the committed ResNet-10 (normal vs lesion); ``"demo-shortcut"``: the same architecture trained
    to cheat (it follows a marker outside the lungs, see ``cfcam train-demo --shortcut``). A torchvision name
    (``"resnet50"``...): its ImageNet weights from the torch hub cache or a download. A file (``.pt``/``.pth``...):
    a state dict for ``arch`` (a torchvision name, or ``"demo"``) with ``num_classes`` outputs (inferred from the
    file's last linear layer when not given). ``class_names`` replaces the class names (one per output); by default
    they come from the card/ImageNet meta, or are ``"class 0"``, ``"class 1"``... The model is on ``device``
    in eval mode.
    """
    dev = check_device(device)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ModelError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelError(f"name_or_path must be 'demo', 'demo-shortcut', a torchvision model name or a weights "
                         f"file path, got {type(name_or_path).__name__}")
    text = os.fspath(name_or_path)
    if is_timm_name(text) or is_timm_name(arch):  # timm: pretrained ("timm:NAME") or a file with arch="timm:NAME"
        if is_timm_name(text) and arch not in (None, text):
            raise ModelError(f"arch={arch!r} contradicts the model name {text!r}; arch only applies to a weights file")
        model, info = load_timm(text if is_timm_name(text) else arch,
                                None if is_timm_name(text) else Path(text), num_classes)
    elif not isinstance(name_or_path, os.PathLike) and text in DEMO_MODELS:
        if arch not in (None, "demo", text) or num_classes not in (None, len(DEMO_CLASSES)):
            raise ModelError(f"the {text} model has a fixed architecture and 2 classes; arch/num_classes only "
                             "apply to a weights file")
        model, info = _load_demo(text)
    elif not isinstance(name_or_path, os.PathLike) and text in classification_models():
        if arch not in (None, text):
            raise ModelError(f"arch={arch!r} contradicts the model name {text!r}; arch only applies to a weights file")
        model, info = _load_imagenet(text, num_classes)
    else:
        model, info = _load_file(Path(text), arch, num_classes)
    if class_names is not None:
        info["classes"] = check_class_names(class_names, len(info["classes"]))
    model.to(dev).eval()
    info["device"] = str(dev)
    return model, info


def classification_models() -> list[str]:
    """Names of torchvision's image classification architectures (``torchvision.models.list_models``)."""
    return torchvision.models.list_models(module=torchvision.models)


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device``; ``ValueError`` if it is malformed or not available here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but CUDA is not available on this machine "
                             "(torch.cuda.is_available() is False); use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {device!r} was asked for but MPS is not available on this machine; use 'cpu'")
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    return dev


# -- the three sources ------------------------------------------------------------------------------------

def _load_demo(name: str = "demo") -> tuple[nn.Module, dict]:
    """A committed demo model (``DEMO_MODELS[name]``): ``build_demo_model()`` + the float16 state dict + its card."""
    weights_file, card_file = DEMO_MODELS[name]
    weights = DATA_DIR / weights_file
    if not weights.is_file():
        command = "cfcam train-demo --into-package" + (" --shortcut" if name == "demo-shortcut" else "")
        raise ModelError(f"the {name} model's weights are missing ({weights}); create them with "
                         f"`{command}`, or pass another model (--model)")
    card = _read_card(DATA_DIR / card_file)
    model = build_demo_model()
    fit_state_dict(model, read_state_dict(weights), f"the {name} weights {weights}")
    norm = card.get("normalization") if isinstance(card.get("normalization"), Mapping) else {}
    info = {
        "name": name,
        "arch": "demo",
        "classes": [str(c) for c in card.get("classes", DEMO_CLASSES)],
        "default_layer": str(card.get("target_layer", "layer4[-1]")),
        "reshape": "none",
        "input_size": _side(card.get("input_size", 224)),
        "mean": tuple(card.get("mean", norm.get("mean", IMAGENET_MEAN))),
        "std": tuple(card.get("std", norm.get("std", IMAGENET_STD))),
        "source": str(weights),
    }
    _check_outputs(model, info["classes"], f"the {name} model card")
    return model, info


def _load_imagenet(name: str, num_classes: int | None) -> tuple[nn.Module, dict]:
    """torchvision ``name`` with its default ImageNet weights (cache or download); ``ModelError`` if offline."""
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise ModelError(f"torchvision has no pretrained weights for {name!r}; pass a weights file") from None
    categories = list(weights.meta.get("categories") or [])
    if num_classes is not None and num_classes != len(categories):
        raise ModelError(f"the ImageNet weights of {name} have {len(categories)} classes, not num_classes="
                         f"{num_classes}; a different number of classes needs a weights file (--weights)")
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except Exception as exc:  # URLError, HTTPError, OSError, hash mismatch (RuntimeError)...
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise ModelError(f"ImageNet weights for {name} could not be downloaded (offline?): "
                         f"{type(exc).__name__}: {exc}; they are looked for in {cache}. Pass a weights file with "
                         "--weights or use the demo model") from exc
    transform = weights.transforms()
    info = {
        "name": name,
        "arch": name,
        "classes": categories or numbered(num_outputs(model)),
        "default_layer": default_layer(model, name),
        "reshape": default_reshape(model),
        "input_size": _side(getattr(transform, "crop_size", 224)),
        "mean": tuple(getattr(transform, "mean", IMAGENET_MEAN)),
        "std": tuple(getattr(transform, "std", IMAGENET_STD)),
        "source": f"torchvision {weights}",
    }
    return model, info


def _load_file(path: Path, arch: str | None, num_classes: int | None) -> tuple[nn.Module, dict]:
    """A user's state dict for ``arch`` with ``num_classes`` outputs (inferred from the file if None)."""
    if not path.exists():
        if path.suffix.lower() not in WEIGHT_SUFFIXES and os.sep not in str(path) and "/" not in str(path):
            close = difflib.get_close_matches(str(path), [*DEMO_MODELS, *classification_models()], n=5, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ModelError(f"unknown model {str(path)!r}: not 'demo' or 'demo-shortcut', not a torchvision "
                             f"classification name"
                             f"{hint}, and no such weights file")
        raise ModelError(f"weights file {path} not found")
    if path.is_dir():
        raise ModelError(f"weights file {path} is a folder; pass the .pt/.pth file")
    if arch is None:
        raise ModelError(f"the weights file {path.name} needs its architecture: pass arch (--arch), e.g. "
                         "'resnet50', or 'demo'")
    state = read_state_dict(path)
    model = _build(arch, num_classes)
    if num_classes is None:  # take it from the file's classifier, so the seed's fc -> 2 needs no option
        num_classes = classes_in_file(model, state)
        if num_classes is not None and num_classes != num_outputs(model):
            model = _build(arch, num_classes)
    where = f"arch={arch!r}" + (f", num_classes={num_classes}" if num_classes is not None else "")
    fit_state_dict(model, state, f"the weights file {path} ({where})")
    n = num_outputs(model)
    info = {
        "name": path.name,
        "arch": arch,
        "classes": numbered(n),
        "default_layer": default_layer(model, arch),
        "reshape": default_reshape(model),
        "input_size": 224,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "source": str(path),
    }
    return model, info


def _build(arch: str, num_classes: int | None) -> nn.Module:
    """Randomly initialised ``arch`` (``"demo"``/``"demo-shortcut"``, the same architecture, or a torchvision name)."""
    if arch in DEMO_MODELS:
        model = build_demo_model()
        if num_classes is not None and num_classes != model.fc.out_features:
            model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model
    names = classification_models()
    if not isinstance(arch, str) or arch not in names:
        close = difflib.get_close_matches(str(arch), names, n=5, cutoff=0.5)
        some = close or ["resnet18", "resnet50", "densenet121", "efficientnet_b0", "vgg16"]
        raise ModelError(f"unknown architecture {arch!r}; expected 'demo' or a torchvision classification model "
                         f"such as {', '.join(some)} ({len(names)} in all: torchvision.models.list_models())")
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    try:
        return torchvision.models.get_model(arch, weights=None, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build {arch} with {kwargs}: {exc}") from None


# -- state dicts ------------------------------------------------------------------------------------------

def read_state_dict(path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``weights_only=True``; ``ModelError`` if it is anything else.

    Accepts a plain ``{name: tensor}`` mapping or a checkpoint dict with it under ``"state_dict"``,
    ``"model_state_dict"`` or ``"model"``; a ``"module."`` prefix (DataParallel) is removed.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _weights_only_reason(str(exc))
        if "GLOBAL" not in detail:  # no Python object was asked for: garbage, text, another format
            raise ModelError(f"{path} is not a readable PyTorch weights file ({detail})") from None
        raise ModelError(f"refused to load {path}: it holds Python objects other than tensors ({detail}). "
                         "Only plain state dicts are loaded (torch.load with weights_only=True), because "
                         "unpickling arbitrary objects can run code; save model.state_dict() instead") from None
    except (RuntimeError, OSError, EOFError, KeyError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path} is not a readable PyTorch weights file ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, Mapping) and not _all_tensors(obj):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), Mapping) and _all_tensors(obj[key]):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not _all_tensors(obj):
        what = (f"a dict with keys {list(obj)[:_SHOW]}" if isinstance(obj, Mapping) else type(obj).__name__)
        raise ModelError(f"{path} does not hold a state dict (names -> tensors), it holds {what}; expected "
                         "model.state_dict() or a dict with it under 'state_dict' or 'model_state_dict'")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def fit_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` (floats cast to float32); ``ModelError`` listing every mismatch.

    The message lists the first few missing keys (in the model, not in the file), unexpected keys (in the
    file, not in the model) and size mismatches, plus a hint when only the class count differs.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                  if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        lines = [f"{source} does not fit the model:"]
        if missing:
            lines.append(f"  {len(missing)} missing key(s) (in the model, not in the file): {_few(missing)}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected key(s) (in the file, not in the model): {_few(unexpected)}")
        if mismatched:
            shown = ", ".join(f"{k} {f} in the file vs {m} in the model" for k, f, m in mismatched[:_SHOW])
            more = f" (+{len(mismatched) - _SHOW} more)" if len(mismatched) > _SHOW else ""
            lines.append(f"  {len(mismatched)} size mismatch(es): {shown}{more}")
        head = _classifier_key(model)
        if not missing and not unexpected and mismatched and head in state and \
                {k for k, _, _ in mismatched} <= {head, head[: -len("weight")] + "bias"}:
            lines.append(f"  hint: the file's classifier has {state[head].shape[0]} outputs; pass "
                         f"num_classes={state[head].shape[0]} (--num-classes)")
        elif missing or unexpected:
            lines.append("  hint: is the architecture right (--arch)?")
        raise ModelError("\n".join(lines))
    cast = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        model.load_state_dict(cast, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{source} does not fit the model: {exc}") from None


def classes_in_file(model: nn.Module, state: Mapping[str, torch.Tensor]) -> int | None:
    """Outputs of the file's classifier (the weights of the model's last ``nn.Linear``), if present."""
    key = _classifier_key(model)
    if key and key in state and state[key].dim() == 2:
        return int(state[key].shape[0])
    return None


def _classifier_key(model: nn.Module) -> str | None:
    """State-dict key of the weight of the model's last ``nn.Linear`` (its classifier), or None."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return f"{linear[-1]}.weight" if linear else None


def num_outputs(model: nn.Module) -> int:
    """Number of classes the model outputs (its last linear layer's ``out_features``, else a dry run)."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linear:
        return int(linear[-1].out_features)
    with torch.no_grad():
        was = model.training
        model.eval()
        out = model(torch.zeros(1, 3, 224, 224))
        model.train(was)
    return int(out.shape[1])


# -- layers, classes, small helpers -----------------------------------------------------------------------

def default_layer(model: nn.Module, arch: str = "") -> str | None:
    """The layer CAM methods usually explain for ``model``: its family's (see :mod:`cfcam.methods.targets`),
    else the last stage of a few other torchvision layouts or the last ``Conv2d``; None if there is none."""
    family = family_of(model)
    if family is not None:
        return family.layer
    for attr, name in (("features", "features[-1]"), ("conv5", "conv5")):
        if isinstance(getattr(model, attr, None), nn.Module):
            return name
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def default_reshape(model: nn.Module) -> str:
    """The reshape transform that goes with :func:`default_layer`: ``vit``, ``swin`` or ``none``."""
    family = family_of(model)
    return family.reshape if family is not None else "none"


def check_class_names(names, n: int) -> list[str]:
    """``names`` (a list, or one comma-separated string) as ``n`` non-empty, distinct names; else ``ModelError``."""
    if isinstance(names, str):
        names = [s.strip() for s in names.split(",")]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ModelError(f"class_names gives {len(names)} name(s) but the model has {n} outputs")
    if any(not s.strip() for s in names):
        raise ModelError("class_names must not contain empty names")
    if len(set(names)) != len(names):
        raise ModelError(f"class_names must be distinct, got {names}")
    return names


def class_index(text: str, classes: Sequence[str]) -> int:
    """The class that ``text`` names: a class name (exact, else case-insensitive) or an index; ``ValueError``
    naming both choices otherwise."""
    if text in classes:
        return list(classes).index(text)
    folded = [i for i, c in enumerate(classes) if c.casefold() == text.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    try:
        index = int(text)
    except ValueError:
        index = None
    if index is not None and 0 <= index < len(classes):
        return index
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    raise ValueError(f"{text!r} is neither a class index (0..{len(classes) - 1}) nor a class name ({shown})")


def _check_outputs(model: nn.Module, classes: list, source: str) -> None:
    """``ModelError`` if ``classes`` does not give exactly one name per model output."""
    n = num_outputs(model)
    if len(classes) != n:
        raise ModelError(f"{source} names {len(classes)} classes but the model has {n} outputs")


def numbered(n: int) -> list[str]:
    """Default class names ``"class 0"``, ``"class 1"``... for a model without its own."""
    return [f"class {i}" for i in range(n)]


def _side(size) -> int:
    """The square input side from an int, ``[H, W]`` or ``[C, H, W]``."""
    if isinstance(size, (list, tuple)):
        size = size[-1]
    return int(size)


def _read_card(path: Path) -> dict:
    """The model card JSON, ``{}`` if it is missing; ``ModelError`` if it is not valid JSON."""
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the model card {path} cannot be read: {exc}") from None
    if not isinstance(card, dict):
        raise ModelError(f"the model card {path} must hold a JSON object")
    return card


def _all_tensors(obj: Mapping) -> bool:
    """True for a non-empty mapping whose values are all tensors (a state dict)."""
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _few(keys: list[str]) -> str:
    """The first few ``keys`` and how many more, for an error message."""
    more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def _weights_only_reason(message: str) -> str:
    """The useful line of torch's weights-only refusal: the blocked ``GLOBAL`` (a class or function), if any."""
    for pattern in (r"Unsupported global: GLOBAL [^\s.]+(\.[^\s.]+)*", r"[^\n]*\bGLOBAL\b[^\n]*",
                    r"Unsupported operand [^\n]*"):
        match = re.search(pattern, message)
        if match:
            return match.group(0).strip().rstrip(".")[:200]
    return (message.strip().splitlines() or ["unknown reason"])[0][:200]
