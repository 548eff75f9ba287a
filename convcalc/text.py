"""Text from the user, made safe to show: names, keys, values and file names reach the
terminal, files and messages with every control character written as an escape, so
that a model file cannot move the cursor, recolour the screen, reverse the order of
what follows, or start a second line of an error.

Escaped: C0 (U+0000 … U+001F), DEL and C1 (U+007F … U+009F, NEL among them), the line
and paragraph separators (U+2028, U+2029), the bidirectional embeddings, overrides and
isolates (U+202A … U+202E, U+2066 … U+2069; Boucher & Anderson 2021, "Trojan Source"),
and half surrogate pairs (which no output encoding can write: a command-line argument
that is not UTF-8 arrives as U+DC80 … U+DCFF). Each becomes the escape Python's `repr`
writes: \\n, \\t, \\r, \\x1b, \\u202e. Other text, backslashes included, is kept.
"""

from __future__ import annotations

import re

__all__ = ["CONTROL_CLASS", "MAX_SHOWN", "has_control", "printable", "quote", "shorten"]

#: How many characters of a value a message shows; beyond, the start and the length.
MAX_SHOWN = 100

#: The characters escaped, as ranges of code points (U+2028 … U+202E: the separators,
#: then the embeddings and overrides).
_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x202E), (0x2066, 0x2069), (0xD800, 0xDFFF))
#: The inside of a regular expression's character class that holds them (for the schema).
CONTROL_CLASS = "".join(f"\\u{first:04x}-\\u{last:04x}" for first, last in _RANGES)
_FOUND = re.compile(f"[{CONTROL_CLASS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for first, last in _RANGES
    for code in range(first, last + 1)
}


def has_control(text: str) -> bool:
    """Whether `text` holds a character that `printable` escapes."""
    return _FOUND.search(text) is not None


def printable(text: str) -> str:
    """`text` with its control characters escaped: "a\\x1b[31mb" shows as a\\x1b[31mb."""
    # The search first: most text holds none, and finding none is ten times quicker.
    return text.translate(_ESCAPES) if has_control(text) else text


def shorten(text: str, longest: int = MAX_SHOWN) -> str:
    """`text`, or beyond `longest` characters its start and its length:
    "aaaa… (5,000 characters)". Not escaped (see `printable`)."""
    if len(text) <= longest:
        return text
    return f"{text[:longest]}… ({len(text):,} characters)"


def quote(text: object, longest: int = MAX_SHOWN) -> str:
    """`text` quoted for a message, escaped, and beyond `longest` characters its start
    and its length: 'conv\\n', 'aaaa…' (5,000 characters). Anything but a string (a
    key in data made in Python) is shown as `repr` shows it."""
    if not isinstance(text, str):
        return printable(shorten(repr(text), longest))
    if len(text) <= longest:
        return f"'{printable(text)}'"
    return f"'{printable(text[:longest])}…' ({len(text):,} characters)"
