"""Plain data → model: the model format of SPEC §2, checked value by value.

Every error names where (file, line, path) and what was expected. Command-line flags
go through the same checks (`build_layer`), so a layer means the same from either side.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any

from convcalc.errors import ConvcalcError, Where
from convcalc.model.layers import KINDS, Layer, Shape
from convcalc.model.layers import parameters as layer_parameters
from convcalc.model.network import Leaf, Merge, Model, Node, Place, Repeat
from convcalc.model.params import MAX_INT, accepts, describe, positive_int, schema_of
from convcalc.source import MAX_DEPTH, Document, PathKey, format_path

__all__ = [
    "BLOCKS",
    "build_layer",
    "build_model",
    "check_shape",
    "open_document",
    "open_model",
    "parameters",
]

_MODEL_KEYS = ("name", "input", "layers")

#: How many leaf layers a model may expand to, repeats counted out.
MAX_LAYERS = 1_000_000


def parameters(kind: str) -> dict[str, dataclasses.Field[Any]]:
    """The parameters a leaf kind takes, by the kind's name in a model file."""
    return layer_parameters(KINDS[kind])


def _known(names: Any) -> str:
    return ", ".join(sorted(names))


def build_layer(
    kind: str, given: dict[str, Any], place: Callable[[str | None], Where] | None = None
) -> Layer:
    """A leaf layer from its kind and parameters. `place(name)` tells where a parameter
    was given (`place(None)`: the layer itself), for messages."""
    where = place or (lambda name: Where(name or kind))
    fields = parameters(kind)
    for name in given:
        if name not in fields:
            known = _known(fields) if fields else "none"
            raise ConvcalcError(
                f"unknown parameter {name!r} for {kind}; known: {known}", where(name)
            )
    missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n not in given]
    if missing:
        raise ConvcalcError(f"{kind} needs {' and '.join(missing)}", where(None))
    try:
        return KINDS[kind](**given)  # which checks each value (Layer.__post_init__)
    except ConvcalcError as error:
        # The layer names the bad parameter as the error's place.
        parameter = error.where.path if error.where is not None else None
        raise ConvcalcError(error.message, where(parameter)) from None


@accepts({"type": "array", "items": schema_of(positive_int), "minItems": 1, "maxItems": 4})
def check_shape(value: Any) -> Shape:
    """An input shape: channels and up to three spatial sizes, or one flat size."""
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 4
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_INT for v in value
        )
    ):
        raise ConvcalcError(
            "expected a shape: a list of 1 to 4 positive integers (at most 2^63 − 1), "
            "channels first "
            f"([3, 224, 224]), got {describe(value)}"
        )
    return tuple(value)


def build_model(document: Document) -> Model:
    data = document.data
    if not isinstance(data, dict):
        raise ConvcalcError(
            f"expected a mapping with {_known(_MODEL_KEYS)}, got {describe(data)}",
            document.where(()),
        )
    for key in data:
        if key not in _MODEL_KEYS and not key.startswith("x-"):
            raise ConvcalcError(
                f"unknown key {key!r}; known: {_known(_MODEL_KEYS)} (and x-… for your own use)",
                document.where((key,)),
            )
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ConvcalcError(f"expected a string, got {describe(name)}", document.where(("name",)))
    input_shape = None
    if "input" in data:
        try:
            input_shape = check_shape(data["input"])
        except ConvcalcError as error:
            raise error.at(document.where(("input",))) from None
    if "layers" not in data:
        raise ConvcalcError("missing 'layers': a list of layers", document.where(()))
    layers = _build_list(document, data["layers"], ("layers",), _Built())
    _check_count(layers)
    return Model(layers, Where("", document.file), name, input_shape)


class _Built:
    """How many leaves and merges have been built. Each gives at least one row, so a
    model that writes out more than MAX_LAYERS is refused as it is built, before it
    takes the time and memory of all its nodes; repeats multiply rows without building
    them, and `_check_count` counts those once the model is built."""

    def __init__(self) -> None:
        self.nodes = 0

    def add(self, node: Node) -> None:
        if not isinstance(node, Repeat):
            self.nodes += 1
            if self.nodes > MAX_LAYERS:
                raise ConvcalcError(
                    f"the model expands to more than {MAX_LAYERS:,} layers", node.where
                )


def _check_count(nodes: tuple[Node, ...]) -> int:
    """The rows the nodes give (leaves, repeats counted out, a row per merge); refused,
    at the node that goes past it, beyond MAX_LAYERS, before any work is done."""
    total = 0
    for node in nodes:
        if isinstance(node, Leaf):
            total += 1
        elif isinstance(node, Repeat):
            inner = _check_count(node.layers)
            total += node.times * inner
            detail = f" (repeat: {node.times:,} times {inner:,})"
        else:
            total += 1 + sum(_check_count(branch) for branch in node.branches)
        if total > MAX_LAYERS:
            more = detail if isinstance(node, Repeat) else ""
            raise ConvcalcError(
                f"the model expands to more than {MAX_LAYERS:,} layers{more}", node.where
            )
    return total


BLOCKS = ("sequential", "repeat", "residual", "add", "concat")


def _build_list(document: Document, items: Any, path: PathKey, built: _Built) -> tuple[Node, ...]:
    if len(path) >= MAX_DEPTH:
        # YAML is refused this deep as it is read; JSON, read by the C parser, here.
        raise ConvcalcError(
            f"the document nests more than {MAX_DEPTH:,} levels deep", Where("", document.file)
        )
    if not isinstance(items, list):
        raise ConvcalcError(
            f"expected a list of layers, got {describe(items)}", document.where(path)
        )
    nodes: list[Node] = []
    for index, item in enumerate(items):
        item_path = (*path, index)
        if isinstance(item, dict) and list(item) == ["sequential"]:
            # Grouping only: its layers take its place (their paths keep it).
            nodes.extend(
                _build_list(document, item["sequential"], (*item_path, "sequential"), built)
            )
        else:
            node = _build_node(document, item, item_path, built)
            built.add(node)
            nodes.append(node)
    return tuple(nodes)


def _place(document: Document, path: PathKey) -> Place:
    return Place(format_path(path), functools.partial(document.where, path))


def _block_fields(
    document: Document,
    kind: str,
    value: Any,
    path: PathKey,
    required: tuple[str, ...],
    optional: tuple[str, ...],
) -> dict[str, Any]:
    """The mapping of a block written as one (repeat, residual), checked for its keys."""
    if not isinstance(value, dict):
        keys = " and ".join(required)
        raise ConvcalcError(
            f"expected the {kind} block as a mapping with {keys}, got {describe(value)}",
            document.where(path),
        )
    for key in value:
        if key not in (*required, *optional, "name"):
            known = _known((*required, *optional, "name"))
            raise ConvcalcError(
                f"unknown key {key!r} in {kind}; known: {known}", document.where((*path, key))
            )
    for key in required:
        if key not in value:
            raise ConvcalcError(f"{kind} needs {key}", document.where(path))
    return value


def _name(document: Document, value: Any, path: PathKey) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConvcalcError(f"expected a string, got {describe(value)}", document.where(path))
    return value


def _build_block(document: Document, kind: str, value: Any, path: PathKey, built: _Built) -> Node:
    place = _place(document, path[:-1])
    if kind == "sequential":  # a sequential that is a list is inlined by _build_list
        raise ConvcalcError(
            f"expected sequential to be a list of layers, got {describe(value)}",
            document.where(path),
        )
    if kind == "repeat":
        fields = _block_fields(document, kind, value, path, ("times", "layers"), ())
        try:
            times = positive_int(fields["times"])
        except ConvcalcError as error:
            raise error.at(document.where((*path, "times"))) from None
        layers = _build_list(document, fields["layers"], (*path, "layers"), built)
        return Repeat(times, layers, place, _name(document, fields.get("name"), (*path, "name")))
    if kind == "residual":
        fields = _block_fields(document, kind, value, path, ("body",), ("shortcut",))
        body = _build_list(document, fields["body"], (*path, "body"), built)
        given = fields.get("shortcut")  # absent or null: the identity, as [] is
        shortcut = _build_list(document, [] if given is None else given, (*path, "shortcut"), built)
        name = _name(document, fields.get("name"), (*path, "name"))
        return Merge("add", (body, shortcut), kind, ("body", "shortcut"), place, name)
    if not isinstance(value, list) or len(value) < 2:
        raise ConvcalcError(
            f"expected {kind} to be a list of at least two branches, each a list of layers "
            f"([[conv: …], []]; [] is the identity), got {describe(value)}",
            document.where(path),
        )
    branches = tuple(
        _build_list(document, branch, (*path, index), built) for index, branch in enumerate(value)
    )
    labels = tuple(str(index) for index in range(len(branches)))
    return Merge("add" if kind == "add" else "concat", branches, kind, labels, place)


def _build_node(document: Document, item: Any, path: PathKey, built: _Built) -> Node:
    if isinstance(item, str):
        kind, given = item, None
    elif isinstance(item, dict) and len(item) == 1:
        ((kind, given),) = item.items()
    else:
        raise ConvcalcError(
            "expected a layer: a kind (relu) or a mapping with one key, the kind "
            f"(conv: {{out_channels: 64, kernel_size: 3}}); got {describe(item)}",
            document.where(path),
        )
    if kind in BLOCKS:
        return _build_block(document, kind, given, (*path, kind), built)
    if kind not in KINDS:
        known = _known((*KINDS, *BLOCKS))
        raise ConvcalcError(f"unknown layer kind {kind!r}; known: {known}", document.where(path))
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        raise ConvcalcError(
            f"expected the parameters of {kind} as a mapping, got {describe(given)}",
            document.where((*path, kind)),
        )
    given = dict(given)
    name = _name(document, given.pop("name", None), (*path, kind, "name"))

    def place(param: str | None) -> Where:
        return document.where((*path, kind) if param is None else (*path, kind, param))

    # Generated models repeat a few layers thousands of times: each distinct one is checked
    # and made once. Layers are immutable values, so rows can share them; repr() keeps
    # apart what the checks tell apart (3 from 3.0 and "3", 1 from true).
    key = (kind, repr(given))
    layer = _MADE.get(key)
    if layer is None:
        if len(_MADE) >= 4096:
            _MADE.clear()
        layer = _MADE[key] = build_layer(kind, given, place)
    return Leaf(layer, _place(document, path), name)


_MADE: dict[tuple[str, str], Layer] = {}


def open_model(
    source: str, input_shape: Shape | None = None, trace_timeout: float | None = None
) -> Model:
    """A model from a file path, "-" for standard input, or a bundled model's name;
    see `open_document`."""
    return build_model(open_document(source, input_shape, trace_timeout))


def open_document(
    source: str, input_shape: Shape | None = None, trace_timeout: float | None = None
) -> Document:
    """The plain data of a model file at a path, "-" for standard input, a bundled
    model's name, an ONNX file (`.onnx`, imported at `input_shape` if given: its
    input may have symbolic sizes), or a PyTorch module (`package.module:attribute`,
    traced at `input_shape`, which it needs, within `trace_timeout` seconds; None:
    `imports.pytorch.TRACE_TIMEOUT`)."""
    from convcalc.source import parse, read

    if source.lower().endswith(".onnx"):
        from convcalc.imports.onnx import read_onnx

        return Document(read_onnx(source, input_shape), source)
    label = None
    if source != "-" and _nothing_at(source):
        if ":" in source:
            from convcalc.imports.pytorch import REFERENCE, read_reference

            if REFERENCE.fullmatch(source):  # package.module:attribute, a PyTorch module
                return Document(read_reference(source, input_shape, trace_timeout), source)
        from convcalc.zoo import model_names, model_path

        bundled = model_path(source)
        if bundled is None:
            raise ConvcalcError(
                f"{source}: no such file or bundled model (bundled: {', '.join(model_names())})"
            )
        source, label = str(bundled), bundled.name
    file, text = read(source)
    return parse(text, label or file)


def _nothing_at(path: str) -> bool:
    """Whether no file, directory or link is at `path`, which may then name a module or
    a bundled model. A path that cannot be looked up (too long, a loop of links) is
    left to `read`, which says why."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL byte
        return True
    except OSError:
        return False
    return False
