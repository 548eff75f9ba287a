"""convcalc.text: which characters are escaped, how, and how long values are cut."""

from __future__ import annotations

import unicodedata

from convcalc.text import has_control, printable, quote, shorten

# Written out by hand from the Unicode charts: C0, DEL and C1 (category Cc), the line and
# paragraph separators, and the bidirectional embeddings, overrides and isolates.
CONTROL = [
    *map(chr, range(0x00, 0x20)),
    *map(chr, range(0x7F, 0xA0)),
    "\u2028", "\u2029", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069",
]  # fmt: skip


def test_every_control_character_is_escaped_and_nothing_else() -> None:
    for char in CONTROL:
        assert has_control(char), repr(char)
        shown = printable(f"a{char}b")
        assert shown.startswith("a\\") and shown.endswith("b") and shown.isprintable()
    assert all(unicodedata.category(c) == "Cc" for c in CONTROL[:65])
    kept = "plain ascii [bold] :smile: $x$ \\x1b é 日本語 \u00a0 \u200b \u2027 \u206a 😀"
    assert not has_control(kept) and printable(kept) == kept


def test_escapes_are_those_python_writes() -> None:
    text = "\x1b[31m\n\r\t\x00\x7f\x85\x9b\u202e\u2066\u2028"
    assert printable(text) == repr(text)[1:-1]
    assert printable("\udcff") == "\\udcff"  # a byte of an argument that is not UTF-8
    assert printable(printable(text)) == printable(text)


def test_long_values_keep_their_start_and_say_their_length() -> None:
    assert quote("conv\n") == "'conv\\n'"
    assert quote("a" * 100) == "'" + "a" * 100 + "'"
    assert quote("a" * 5000) == "'" + "a" * 100 + "…' (5,000 characters)"
    assert quote("\x1b" * 101) == "'" + "\\x1b" * 100 + "…' (101 characters)"
    assert shorten("b" * 101, 3) == "bbb… (101 characters)"
    assert quote(3) == "3" and quote(None) == "None"
