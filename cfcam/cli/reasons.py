"""Why an input failed, said once: a reason as the reader wrote it, without a wrapper that repeats the path.

The image reader reports an image refused for its size from inside its decoder's error handler, which wraps
it as ``corrupt or truncated image data (ImageError: <path>: too many pixels ...)``: wrongly labelled, and the
path twice on one line. :func:`plain_reason` gives back the inner reason.
"""

from __future__ import annotations

import re

_WRAPPED = re.compile(r"^corrupt or truncated image data \(ImageError: (?P<inner>.*)\)$", re.S)


def plain_reason(reason: str, path=None) -> str:
    """``reason`` without the decoder's wrapper around an ``ImageError`` and without the path it repeats."""
    text = str(reason)
    for _ in range(3):  # a wrapper inside a wrapper
        match = _WRAPPED.match(text)
        if not match:
            break
        text = match.group("inner")
        if path is not None and text.startswith(f"{path}: "):
            text = text[len(f"{path}: "):]
        elif ": " in text:  # the path as the reader wrote it, up to the first ": "
            text = text.partition(": ")[2]
    return text
