"""Text → plain data: read a model file (YAML, or JSON) and remember the line of every
value, so that later errors can say `model.yaml:12: layers[3].conv.stride`.

Only plain YAML is accepted: mappings, lists, strings, numbers, booleans and null. A tag
that would construct anything else is refused, and so is a document that expands
(through aliases) past `MAX_NODES` values. A `.json` file is read as JSON, strictly.

Numbers are written in plain decimal, as JSON writes them (10, -3, 0.5, 1e-5). Any other
spelling that YAML 1.1 or YAML 1.2 reads as a number (010, 0x1F, 1_000, 1:30, +3, .5) is
refused with the numbers it could mean: the two versions read some of them differently
(010 is 8 to PyYAML, 10 to YAML 1.2), and convcalc does not guess.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from convcalc.errors import ConvcalcError, Where
from convcalc.text import MAX_SHOWN, has_control, quote, shorten

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Document",
    "format_path",
    "name_hint",
    "parse",
    "plain_decimal",
    "plain_number",
    "read",
]

#: How many bytes a model file or standard input may hold. The bundled models take about
#: 10 KB and a 100,000-layer model file a few MB; YAML this large already takes minutes.
MAX_BYTES = 64 << 20

#: How many values a document may expand to (aliases count each time they are used).
MAX_NODES = 5_000_000

#: How deeply a document may nest (mappings and lists within each other).
MAX_DEPTH = 4_000

_PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
}

PathKey = tuple[str | int, ...]


def format_path(path: PathKey) -> str:
    """("layers", 3, "conv", "stride") → "layers[3].conv.stride"; a key too long to
    show whole (only a wrong one can be) is shortened."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        if len(part) > MAX_SHOWN:
            part = shorten(part)
        text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class Document:
    """Plain data read from a file, with the line where each value starts.

    A JSON document is read by the fast C parser without lines; `text` is then kept,
    and the lines are found (through YAML) only when a message needs one.
    """

    data: Any
    file: str | None = None
    lines: dict[PathKey, int] = field(default_factory=dict)
    text: str | None = None

    def where(self, path: PathKey) -> Where:
        """The place of the value at `path`, or of its nearest enclosing value that has one."""
        if not self.lines and self.text is not None:
            # JSON that YAML refuses (it reads no "\ud83d\ude00" pairs) has no lines.
            with contextlib.suppress(ConvcalcError):
                self.lines.update(_parse_yaml(self.text, self.file).lines)
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return Where(format_path(path), self.file, line)
        return Where(format_path(path), self.file)


def read(source: str) -> tuple[str, str]:
    """The text of a model file, or of standard input for "-", with a name for messages.
    At most `MAX_BYTES` are read (one more tells a longer input), so that /dev/zero or an
    endless pipe is refused, not read until memory runs out."""
    if source == "-":
        name = "<stdin>"
        if sys.stdin is None:  # the program was started with its standard input closed
            raise ConvcalcError(f"{name}: cannot read: standard input is closed")
        try:
            raw = sys.stdin.buffer.read(MAX_BYTES + 1)
        except OSError as error:
            raise ConvcalcError(f"{name}: cannot read: {error.strerror}") from None
    else:
        name = source
        try:
            with open(source, "rb") as file:
                raw = file.read(MAX_BYTES + 1)
        except FileNotFoundError:
            if os.path.islink(source):
                target = os.readlink(source)
                raise ConvcalcError(
                    f"{source}: a symbolic link to {target}, which does not exist"
                ) from None
            raise ConvcalcError(
                f"{source}: no such file (give a model file, '-' for standard input, "
                "or the name of a bundled model)"
            ) from None
        except IsADirectoryError:
            raise ConvcalcError(f"{source}: is a directory, not a model file") from None
        except OSError as error:
            raise ConvcalcError(f"{source}: cannot read: {error.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ConvcalcError(
            f"{name}: more than {MAX_BYTES:,} bytes ({MAX_BYTES >> 20} MiB), the most a model "
            "file may hold"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConvcalcError(
            f"{name}: not UTF-8 text (byte {error.start} is {raw[error.start]:#04x}); "
            "a model file is YAML or JSON"
        ) from None
    if not text.strip():
        raise ConvcalcError(f"{name}: empty; a model file needs at least a 'layers' list")
    return name, text


def name_hint(name: str, known: Iterable[str]) -> str:
    """What follows `unknown layer kind 'conv2d'` in a message: the names it was likely
    meant as (`suggest`), or else the known names. For a name with a character beyond
    ASCII (a Greek ο that looks like an o), first which character it is, and the known
    name it looks like if there is one."""
    from convcalc.suggest import did_you_mean, suggest

    known = sorted(known)
    odd = next((char for char in name if not char.isascii()), None)
    note = ""
    alike: list[str] = []
    if odd is not None:
        what = "letter" if odd.isalpha() else "character"
        note = f" (it contains the non-ASCII {what} {odd!r} U+{ord(odd):04X})"
        # The same name but for its non-ASCII characters.
        alike = [
            other
            for other in known
            if len(other) == len(name)
            and all(
                mine == theirs or not mine.isascii()
                for mine, theirs in zip(name, other, strict=True)
            )
        ][:1]
    alike = alike or suggest(name, known)
    if alike:
        return f"{note}; {did_you_mean(alike)}"
    return f"{note}; known: {', '.join(known) or 'none'}"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:  # YAML's message, which says where
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON has not, and YAML reads as text.
    raise ValueError(f"{name} is not a JSON number: JSON has only finite numbers")


def parse(text: str, file: str | None = None) -> Document:
    """Parse YAML, or JSON for a `.json` file, into plain data, keeping each value's line."""
    if file is not None and file.lower().endswith(".json"):
        return _parse_json(text, file)
    if text.lstrip().startswith("{"):
        # Most likely JSON, which C's json reads many times faster than YAML is composed;
        # whatever it refuses (or YAML's own flow style) takes the YAML path, for the
        # same values or for its message. JSON's numbers are all plain decimal, which
        # YAML reads as the same values.
        import json

        try:
            data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            pass
        else:
            return _checked(Document(data, file, text=text), text)
    return _checked(_parse_yaml(text, file), text)


def _checked(document: Document, text: str) -> Document:
    """The document of `text`, once `_check_characters` found nothing wrong in it."""
    if _may_hold_control(text):
        _check_characters(document)
    return document


def _parse_json(text: str, file: str) -> Document:
    """A `.json` file, read as JSON and nothing else: no YAML, so no YAML numbers (010,
    0x1F), comments or unquoted strings."""
    import json

    try:
        data = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_int=_json_int
        )
    except json.JSONDecodeError as error:
        token = _token_at(text, error.pos)
        spellings = plain_decimal(token) if _NUMBER_TOKEN.fullmatch(token) else []
        if spellings:
            message = (
                f"{_shown(token)} is not a JSON number; write {' or '.join(spellings)} "
                "in plain decimal"
            )
        else:
            message = f"invalid JSON: {error.msg} (column {error.colno})"
        where = Where("", file, error.lineno)
        raise _placed_by_yaml(text, file, ConvcalcError(message, where)) from None
    except RecursionError:
        raise ConvcalcError(
            f"the document nests more than {MAX_DEPTH:,} levels deep", Where("", file)
        ) from None
    except ValueError as error:  # a duplicate key, NaN, or a number too long to read
        constant = next((found for found in _CONSTANT.finditer(text) if found[1]), None)
        line = text.count("\n", 0, constant.start()) + 1 if constant else None
        raise _placed_by_yaml(
            text, file, ConvcalcError(str(error), Where("", file, line))
        ) from None
    return _checked(Document(data, file, text=text), text)


#: A JSON string, or (outside one) a constant Python's json reads but JSON has not.
_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def _json_int(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:
        raise ValueError(_too_long(digits)) from None


def _too_long(digits: str) -> str:
    # Python reads no integer of more than 4,300 digits (sys.int_info).
    return (
        f"expected a number of at most {sys.get_int_max_str_digits():,} digits, "
        f"got one of {len(digits):,}"
    )


def _placed_by_yaml(text: str, file: str, error: ConvcalcError) -> ConvcalcError:
    """JSON's error, with the layer path YAML finds for the same problem: YAML reads JSON
    as the same values, line for line, and refuses the same numbers and duplicate keys.
    Its error is taken only on JSON's line (or with the same message, when JSON gives no
    line), lest another of its rules speak for JSON."""
    try:
        _parse_yaml(text, file)
    except ConvcalcError as found:
        if found.where is not None and error.where is not None:
            same_line = found.where.line == error.where.line
            if same_line or (error.where.line is None and found.message == error.message):
                return ConvcalcError(error.message, found.where)
    return error


#: The characters of a number, or of what might be meant as one (0x1F, 1_000, 1:30, .5).
_NUMBER_TOKEN = re.compile(r"[-+]?\.?[0-9][0-9A-Za-z_.:+-]*")


def _token_at(text: str, position: int) -> str:
    """The word around `position` (where JSON stopped: after 0 in 010, at x in 0x1F)."""
    start = end = position
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.:+-"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_.:+-"):
        end += 1
    return text[start:end]


#: What a text holds if any of its strings holds a control character or half a
#: surrogate pair: an escape (JSON's and YAML's start with a backslash); a raw tab,
#: carriage return, DEL or C1 control (JSON takes them in strings), separator or
#: bidirectional control; or what makes a YAML scalar keep a line break: a block scalar
#: (| or >), or a blank line (_BLANK_LINE).
_MAY_HOLD_CONTROL = re.compile(r"[\\\t\r\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069|>]")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _may_hold_control(text: str) -> bool:
    """Whether `_check_characters` has anything to look for. Large generated models hold
    none of it and are not walked; two searches take a fifth of the time of one with
    both patterns (about 12 ms on 3 MB)."""
    return bool(_MAY_HOLD_CONTROL.search(text) or _BLANK_LINE.search(text))


def _check_characters(document: Document) -> None:
    """Refuse what could not be shown as written: strings with half a surrogate pair
    (JSON's "\\ud800" alone), which are no characters, and the name of the model or of
    a layer with a control character (other text is shown with them escaped; a name,
    which the table and pictures show, is refused outright)."""
    stack: list[tuple[PathKey, Any]] = [((), document.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, key), key) for key in value)
            stack.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                half = f"\\u{ord(value[error.start]):04x}"
                raise ConvcalcError(
                    f"expected text, got a string with {half}, half of a surrogate pair",
                    document.where(path),
                ) from None
            # Your own x- keys may hold anything.
            if path[-1:] == ("name",) and has_control(value) and not str(path[0]).startswith("x-"):
                what = "the model's name" if path == ("name",) else "a layer name"
                raise ConvcalcError(
                    f"{what} may not contain control characters, got {quote(value)}",
                    document.where(path),
                )


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

#: Numbers as JSON writes them, the one spelling convcalc reads.
_PLAIN_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")

#: What YAML 1.2's core schema reads as numbers (yaml.org/spec/1.2.2, 10.3.2). YAML 1.1's
#: are PyYAML's own resolvers. `.inf` and `.nan` mean the same to both, and pass.
_YAML12_INTEGER = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_YAML12_NUMBER = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INFINITY_OR_NAN = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")

#: Longer spellings are not worth reading out in a message.
_SHOWN = 40


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _yaml11(yaml: Any, tag: str) -> Any:
    """PyYAML's (YAML 1.1) pattern for the tag's numbers."""
    return dict(yaml.resolver.Resolver.yaml_implicit_resolvers["0"])[tag]


def _readings(text: str) -> tuple[int | float | None, int | float | None]:
    """What YAML 1.2 and YAML 1.1 (PyYAML) read `text` as, written plainly: a number, or
    None where that version reads text (or a number too long to say)."""
    import yaml

    if len(text) > _SHOWN:
        return None, None
    if _YAML12_INTEGER.match(text):
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        yaml12: int | float | None = int(text[2:] if base != 10 else text, base)
    else:
        yaml12 = float(text) if _YAML12_NUMBER.match(text) else None
    tag = next((tag for tag in (_INT, _FLOAT) if _yaml11(yaml, tag).match(text)), None)
    yaml11 = None
    if tag is not None:
        constructor = yaml.constructor.SafeConstructor()
        with contextlib.suppress(ValueError):  # 0b_ passes PyYAML's pattern, not its int()
            yaml11 = constructor.construct_object(yaml.ScalarNode(tag, text))
    return yaml12, yaml11


def _spelled(value: int | float | None) -> str | None:
    return None if value is None or value != value or abs(value) == float("inf") else repr(value)


def plain_number(text: str) -> int | float | None:
    """The number `text` writes in plain decimal, as JSON does (10, -3, 0.5, 1e-5); None
    if it is written in any other way."""
    if _PLAIN_INTEGER.fullmatch(text):
        try:
            return int(text)
        except ValueError:
            raise ConvcalcError(_too_long(text)) from None
    return float(text) if _PLAIN_NUMBER.fullmatch(text) else None


def plain_decimal(text: str) -> list[str]:
    """How to write plainly the numbers `text` may mean, as YAML 1.2 reads it, then as
    YAML 1.1 does if that differs: "010" → ["10", "8"], "0x1F" → ["31"], "1_000" →
    ["1000"], "+3" → ["3"]; [] if neither reads a number."""
    return list(dict.fromkeys(filter(None, map(_spelled, _readings(text)))))


def _not_plain(text: str) -> str:
    """The message for a number YAML reads that is not written in plain decimal."""
    yaml12, yaml11 = (_spelled(value) or "text" for value in _readings(text))
    if yaml12 == yaml11:
        read = "" if yaml12 == "text" else f" (YAML reads it as {yaml12})"
    else:
        read = f" (YAML 1.1 reads it as {yaml11}, YAML 1.2 as {yaml12})"
    spellings = plain_decimal(text)
    write = (
        f"write {' or '.join(spellings)} in plain decimal"
        if spellings
        else ("write numbers in plain decimal (10, 0.5, 1e-5)")
    )
    text_too = ", or quote it as text" if "text" in (yaml12, yaml11) else ""
    return f"{_shown(text)} is not a plain decimal number{read}; {write}{text_too}"


@functools.cache
def _strict_loader(base: Any) -> Any:
    """PyYAML's loader `base`, with every scalar that YAML 1.1 or YAML 1.2 reads as a
    number tagged int or float, for the converter to read or refuse. A subclass: PyYAML's
    own resolvers, which other code may use, are left as they are."""
    import yaml

    numbers = [
        (_INT, _yaml11(yaml, _INT)),
        (_INT, _YAML12_INTEGER),
        (_FLOAT, _yaml11(yaml, _FLOAT)),
        (_FLOAT, _YAML12_NUMBER),
    ]
    resolvers = {
        first: [(tag, pattern) for tag, pattern in items if tag not in (_INT, _FLOAT)]
        for first, items in base.yaml_implicit_resolvers.items()
    }
    for first in "-+.0123456789":
        resolvers[first] = [*numbers, *resolvers.get(first, [])]
    return type(f"Strict{base.__name__}", (base,), {"yaml_implicit_resolvers": resolvers})


def _parse_yaml(text: str, file: str | None) -> Document:
    import yaml  # only commands that read a model pay for it

    try:
        root = _compose(yaml, text, file)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        # "expected a single document in the stream", "but found another document"
        problem = ", ".join(filter(None, (error.context, error.problem))) or "cannot parse"
        raise ConvcalcError(f"invalid YAML: {problem}", Where("", file, line)) from None
    except yaml.reader.ReaderError as error:
        # The reader stops at the first character YAML does not allow (a control character).
        line = text[: text.find(chr(error.character))].count("\n") + 1
        raise ConvcalcError(
            f"invalid YAML: {error.reason} (U+{error.character:04X})",
            Where("", file, line),
        ) from None
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0] if str(error) else "cannot parse"
        raise ConvcalcError(f"invalid YAML: {problem}", Where("", file)) from None
    if root is None:
        raise ConvcalcError("empty; a model file needs at least a 'layers' list", Where("", file))
    _check_size(yaml, root, file)
    lines: dict[PathKey, int] = {}
    data = _Converter(yaml, lines, file).convert(root, ())
    return Document(data, file, lines)


def _compose(yaml: Any, text: str, file: str | None) -> Any:
    """YAML nodes, composed by libyaml where there is one. libyaml (from PyYAML 6.0.4)
    stops at 1,000 levels of nesting; such a document is composed again in Python,
    which goes as deep as MAX_DEPTH allows (with the recursion limit the CLI sets)."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.compose(text, Loader=_strict_loader(loader))
        except yaml.YAMLError as error:
            if "nesting depth" not in str(error):
                raise
    # PyYAML's own scanner slows down with every level of [ ] or { } nesting (each
    # token revisits the open levels), so a hostile depth is refused before it starts.
    if _bracket_depth(text) > MAX_DEPTH:
        raise ConvcalcError(
            f"the document nests more than {MAX_DEPTH:,} levels deep", Where("", file)
        )
    try:
        return yaml.compose(text, Loader=_strict_loader(yaml.SafeLoader))
    except RecursionError:
        raise ConvcalcError(
            f"the document nests too deeply (at most {MAX_DEPTH:,} levels)", Where("", file)
        ) from None


def _bracket_depth(text: str) -> int:
    """How deeply [ ] and { } nest in the text (brackets inside strings count too: this
    only bounds the work)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _check_size(yaml: Any, root: Any, file: str | None) -> None:
    """Refuse a document that nests too deeply or expands too far, before converting it.
    Aliases share their node, so sizes are counted once per node: linear in the text."""
    sizes: dict[int, int] = {}
    # Depth-first without recursion: (node, depth, children done?).
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if id(node) in sizes:
            continue
        if depth > MAX_DEPTH:
            raise ConvcalcError(
                f"the document nests more than {MAX_DEPTH:,} levels deep",
                Where("", file, node.start_mark.line + 1),
            )
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [part for pair in node.value for part in pair]
        )
        if done:
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_NODES:
                raise ConvcalcError(
                    f"the document expands to more than {MAX_NODES:,} values (through aliases?)",
                    Where("", file, node.start_mark.line + 1),
                )
            sizes[id(node)] = total
        else:
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


class _Converter:
    """YAML nodes → plain values, refusing tags that would construct objects."""

    def __init__(self, yaml: Any, lines: dict[PathKey, int], file: str | None) -> None:
        self.yaml = yaml
        self.lines = lines
        self.file = file
        self.scalars = yaml.constructor.SafeConstructor()

    def fail(self, message: str, node: Any, path: PathKey) -> ConvcalcError:
        return ConvcalcError(message, Where(format_path(path), self.file, node.start_mark.line + 1))

    def number(self, node: Any, path: PathKey) -> int | float:
        """A number in plain decimal; `.inf` and `.nan`, which every YAML reads alike, are
        left to the checks of the values that take numbers."""
        try:
            value = plain_number(node.value)
        except ConvcalcError as error:
            raise self.fail(error.message, node, path) from None
        if value is not None:
            return float(value) if node.tag == _FLOAT else value
        if _INFINITY_OR_NAN.fullmatch(node.value):
            return float(self.scalars.construct_yaml_float(node))
        raise self.fail(_not_plain(node.value), node, path)

    def convert(self, node: Any, path: PathKey) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        yaml = self.yaml
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _PLAIN_TAGS:
                raise self.fail(
                    f"the tag {node.tag} is not allowed: a model file holds plain values",
                    node,
                    path,
                )
            if node.tag in (_INT, _FLOAT):
                return self.number(node, path)
            return self.scalars.construct_object(node)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise self.fail(f"the tag {node.tag} is not allowed", node, path)
            return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
        if node.tag != "tag:yaml.org,2002:map":
            raise self.fail(f"the tag {node.tag} is not allowed", node, path)
        result: dict[str, Any] = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise self.fail("keys must be names (strings)", key_node, path)
            key = key_node.value
            if key in result:
                raise self.fail(f"duplicate key {quote(key)}", key_node, path)
            result[key] = self.convert(value_node, (*path, key))
        # A merge key (<<: *base) fills in what the mapping does not say itself.
        for value_node in merges:
            merged = self.convert(value_node, path)
            for source in merged if isinstance(merged, list) else [merged]:
                if not isinstance(source, dict):
                    raise self.fail("a merge key (<<) takes a mapping", value_node, path)
                for key, value in source.items():
                    result.setdefault(key, value)
        return result
