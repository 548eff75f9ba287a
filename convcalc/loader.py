"""Plain data → model: the model format of SPEC §2, checked value by value.

Every error names where (file, line, path) and what was expected. Command-line flags
go through the same checks (`build_layer`), so a layer means the same from either side.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convcalc.errors import ConvcalcError, Where
from convcalc.model.layers import KINDS, Layer, Shape
from convcalc.model.network import Leaf, Merge, Model, Node, Place, Repeat
from convcalc.model.params import describe, positive_int
from convcalc.source import Document, PathKey, format_path

__all__ = ["build_layer", "build_model", "check_shape", "open_model"]

_MODEL_KEYS = ("name", "input", "layers")

#: How many leaf layers a model may expand to, repeats counted out.
MAX_LAYERS = 1_000_000


@functools.cache
def _parameters(kind: str) -> dict[str, dataclasses.Field[Any]]:
    """The parameters a leaf kind takes (its fields made with `param`), by name."""
    return {f.name: f for f in dataclasses.fields(KINDS[kind]) if "check" in f.metadata}


def _known(names: Any) -> str:
    return ", ".join(sorted(names))


def build_layer(
    kind: str, given: dict[str, Any], place: Callable[[str | None], Where] | None = None
) -> Layer:
    """A leaf layer from its kind and parameters. `place(name)` tells where a parameter
    was given (`place(None)`: the layer itself), for messages."""
    where = place or (lambda name: Where(name or kind))
    fields = _parameters(kind)
    values = {}
    for name, value in given.items():
        if name not in fields:
            known = _known(fields) if fields else "none"
            raise ConvcalcError(
                f"unknown parameter {name!r} for {kind}; known: {known}", where(name)
            )
        try:
            values[name] = fields[name].metadata["check"](value)
        except ConvcalcError as error:
            raise error.at(where(name)) from None
    missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n not in values]
    if missing:
        raise ConvcalcError(f"{kind} needs {' and '.join(missing)}", where(None))
    return KINDS[kind](**values)


def check_shape(value: Any) -> Shape:
    """An input shape: channels and up to three spatial sizes, or one flat size."""
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 4
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ConvcalcError(
            "expected a shape: a list of 1 to 4 positive integers, channels first "
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
    layers = _build_list(document, data["layers"], ("layers",))
    _check_count(layers)
    return Model(layers, Where("", document.file), name, input_shape)


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


def _build_list(document: Document, items: Any, path: PathKey) -> tuple[Node, ...]:
    if not isinstance(items, list):
        raise ConvcalcError(
            f"expected a list of layers, got {describe(items)}", document.where(path)
        )
    nodes: list[Node] = []
    for index, item in enumerate(items):
        item_path = (*path, index)
        if isinstance(item, dict) and list(item) == ["sequential"]:
            # Grouping only: its layers take its place (their paths keep it).
            nodes.extend(_build_list(document, item["sequential"], (*item_path, "sequential")))
        else:
            nodes.append(_build_node(document, item, item_path))
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


def _build_block(document: Document, kind: str, value: Any, path: PathKey) -> Node:
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
        layers = _build_list(document, fields["layers"], (*path, "layers"))
        return Repeat(times, layers, place, _name(document, fields.get("name"), (*path, "name")))
    if kind == "residual":
        fields = _block_fields(document, kind, value, path, ("body",), ("shortcut",))
        body = _build_list(document, fields["body"], (*path, "body"))
        shortcut = _build_list(document, fields.get("shortcut") or [], (*path, "shortcut"))
        name = _name(document, fields.get("name"), (*path, "name"))
        return Merge("add", (body, shortcut), kind, ("body", "shortcut"), place, name)
    if not isinstance(value, list) or len(value) < 2:
        raise ConvcalcError(
            f"expected {kind} to be a list of at least two branches, each a list of layers "
            f"([[conv: …], []]; [] is the identity), got {describe(value)}",
            document.where(path),
        )
    branches = tuple(
        _build_list(document, branch, (*path, index)) for index, branch in enumerate(value)
    )
    labels = tuple(str(index) for index in range(len(branches)))
    return Merge("add" if kind == "add" else "concat", branches, kind, labels, place)


def _build_node(document: Document, item: Any, path: PathKey) -> Node:
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
        return _build_block(document, kind, given, (*path, kind))
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

    return Leaf(build_layer(kind, given, place), _place(document, path), name)


def open_model(source: str) -> Model:
    """A model from a file path, "-" for standard input, or a bundled model's name."""
    from convcalc.source import parse, read

    label = None
    if source != "-" and not Path(source).exists():
        from convcalc.zoo import model_names, model_path

        bundled = model_path(source)
        if bundled is None:
            raise ConvcalcError(
                f"{source}: no such file or bundled model (bundled: {', '.join(model_names())})"
            )
        source, label = str(bundled), bundled.name
    file, text = read(source)
    return build_model(parse(text, label or file))
