"""Text → plain data: read a model file (YAML, or JSON, which is YAML) and remember the
line of every value, so that later errors can say `model.yaml:12: layers[3].conv.stride`.

Only plain YAML is accepted: mappings, lists, strings, numbers, booleans and null. A tag
that would construct anything else is refused, and so is a document that expands
(through aliases) past `MAX_NODES` values.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from convcalc.errors import ConvcalcError, Where

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Document", "format_path", "parse", "read"]

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
    """("layers", 3, "conv", "stride") → "layers[3].conv.stride"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")  # the YAML path says which, and where
    return result


def parse(text: str, file: str | None = None) -> Document:
    """Parse YAML (or JSON) into plain data, keeping each value's line."""
    if text.lstrip().startswith("{"):
        # Most likely JSON, which C's json reads many times faster than YAML is composed;
        # whatever it refuses (or YAML's own flow style) takes the YAML path, for the
        # same values or for its message.
        import json

        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except (ValueError, RecursionError):
            pass
        else:
            if _SURROGATE_ESCAPE.search(text):
                _check_characters(data, file)
            return Document(data, file, text=text)
    return _parse_yaml(text, file)


#: A JSON escape of half a UTF-16 surrogate pair: \ud800 … \udfff.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_characters(data: Any, file: str | None) -> None:
    """Refuse strings with half a surrogate pair (JSON's "\\ud800" alone), which are no
    characters and could not be printed."""
    stack: list[tuple[PathKey, Any]] = [((), data)]
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
                    Where(format_path(path), file),
                ) from None


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
            return yaml.compose(text, Loader=loader)
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
        return yaml.compose(text, Loader=yaml.SafeLoader)
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
            try:
                return self.scalars.construct_object(node)
            except ValueError:
                # Python reads no integer of more than 4,300 digits (sys.int_info).
                raise self.fail(
                    f"expected a number of at most {sys.get_int_max_str_digits():,} digits, "
                    f"got one of {len(node.value):,}",
                    node,
                    path,
                ) from None
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
                raise self.fail(f"duplicate key {key!r}", key_node, path)
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
