"""Plain data → model: the model format of SPEC §2, checked value by value.

Every error names where (file, line, path) and what was expected. Command-line flags
go through the same checks (`build_layer`), so a layer means the same from either side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from convcalc.errors import ConvcalcError, Where
from convcalc.model.layers import KINDS, Layer, Shape
from convcalc.model.network import Leaf, Model, Node
from convcalc.model.params import describe
from convcalc.source import Document, PathKey

__all__ = ["build_layer", "build_model", "check_shape", "open_model", "parameter_names"]

_MODEL_KEYS = ("name", "input", "layers")


def parameter_names(kind: str) -> list[str]:
    """The parameters a leaf kind takes, required ones first, as PyTorch names them."""
    fields = [f for f in dataclasses.fields(KINDS[kind]) if "check" in f.metadata]
    required = [f.name for f in fields if f.default is dataclasses.MISSING]
    return required + [f.name for f in fields if f.default is not dataclasses.MISSING]


def _known(names: Any) -> str:
    return ", ".join(sorted(names))


def build_layer(
    kind: str, given: dict[str, Any], place: Callable[[str | None], Where] | None = None
) -> Layer:
    """A leaf layer from its kind and parameters. `place(name)` tells where a parameter
    was given (`place(None)`: the layer itself), for messages."""
    where = place or (lambda name: Where(name or kind))
    cls = KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls) if "check" in f.metadata}
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
    return cls(**values)


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
    return Model(layers, Where("", document.file), name, input_shape)


def _build_list(document: Document, items: Any, path: PathKey) -> tuple[Node, ...]:
    if not isinstance(items, list):
        raise ConvcalcError(
            f"expected a list of layers, got {describe(items)}", document.where(path)
        )
    return tuple(_build_node(document, item, (*path, index)) for index, item in enumerate(items))


def _build_node(document: Document, item: Any, path: PathKey) -> Node:
    where = document.where(path)
    if isinstance(item, str):
        kind, given = item, None
    elif isinstance(item, dict) and len(item) == 1:
        ((kind, given),) = item.items()
    else:
        raise ConvcalcError(
            "expected a layer: a kind (relu) or a mapping with one key, the kind "
            f"(conv: {{out_channels: 64, kernel_size: 3}}); got {describe(item)}",
            where,
        )
    if kind not in KINDS:
        raise ConvcalcError(f"unknown layer kind {kind!r}; known: {_known(KINDS)}", where)
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        raise ConvcalcError(
            f"expected the parameters of {kind} as a mapping, got {describe(given)}",
            document.where((*path, kind)),
        )
    given = dict(given)
    name = given.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise ConvcalcError(
            f"expected a string, got {describe(name)}", document.where((*path, kind, "name"))
        )

    def place(param: str | None) -> Where:
        return document.where((*path, kind) if param is None else (*path, kind, param))

    return Leaf(build_layer(kind, given, place), where, name)


def open_model(source: str) -> Model:
    """A model from a file path, or "-" for standard input."""
    from convcalc.source import parse, read

    name, text = read(source)
    return build_model(parse(text, name))
