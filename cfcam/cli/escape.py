"""File names and messages made safe to show: one line on a terminal, one inert cell in a spreadsheet.

A file name is whatever bytes the file system allows: terminal escape sequences (ANSI), newlines,
bidirectional overrides, bytes that are not UTF-8 (Python keeps them as lone surrogates). ``printable``
writes each such character as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\xff`` for an undecodable
byte), so a name can neither move the cursor nor split a line; ``csv_cell`` also defuses formulas (a leading
``'``), and ``path_cell`` does so for a file name without changing which file it names (a leading ``./``).
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidirectional embeddings/overrides/isolates, and lone surrogates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FORMULA_STARTS = ("=", "+", "-", "@")


def _escape(match: re.Match) -> str:
    """The visible escape of one unsafe character (an undecodable byte as ``\\xNN``, like Python does)."""
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte the file name really holds
        return f"\\x{code - 0xDC00:02x}"
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value) -> str:
    """``str(value)`` with every control, bidi-override and undecodable character escaped: one safe line."""
    return _UNSAFE.sub(_escape, str(value))


def csv_cell(value) -> str:
    """``printable(value)``, with a leading ``'`` when it starts like a spreadsheet formula (``= + - @``)."""
    text = printable(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def path_cell(value) -> str:
    """A relative file name or path for a CSV cell: ``printable(value)``, with ``./`` in front when it starts
    like a spreadsheet formula (``-dash.png`` becomes ``./-dash.png``): inert in a spreadsheet, and still the
    same file for anything that opens it (relative to the same folder). Absolute paths start with ``/`` or a
    drive letter and are left as they are."""
    text = printable(value)
    return "./" + text if text.startswith(_FORMULA_STARTS) else text
