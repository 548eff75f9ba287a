"""Plain data → model: the model format of SPEC §2 and §6, checked value by value and
lowered to a graph of nodes (convcalc.model.network).

Blocks, repeats and definitions are expanded here, once: every node gets the nodes it
reads, its row path (`layers[2].repeat[1].layers[0]`) and its qualified name
(`layer1.0.conv1`, SPEC §6.1). Every error names where (file, line, path or qualified
name) and what was expected. Command-line flags go through the same checks
(`build_layer`), so a layer means the same from either side.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from convcalc.errors import ConvcalcError, Where
from convcalc.expressions import evaluate
from convcalc.model.layers import KINDS, Layer, Shape
from convcalc.model.layers import parameters as layer_parameters
from convcalc.model.network import INPUT, INPUT_NAME, Merge, Model, Node, Place
from convcalc.model.params import MAX_INT, accepts, describe, positive_int, schema_of
from convcalc.source import MAX_DEPTH, Document, PathKey, name_hint
from convcalc.text import quote

__all__ = [
    "BLOCKS",
    "MAX_LAYERS",
    "build_layer",
    "build_model",
    "check_shape",
    "parameters",
]

_MODEL_KEYS = ("name", "input", "define", "layers", "outputs", "unused_params", "dropped")

#: How many nodes a model may expand to, repeats and definitions counted out.
MAX_LAYERS = 1_000_000

BLOCKS = ("sequential", "repeat", "residual", "add", "concat", "mul")

#: How many `$argument` steps one value may take before it is called a loop.
_MAX_INDIRECTION = 100

_ARGUMENT = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_IN_TEXT = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_DEFINITION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
            raise ConvcalcError(
                f"unknown parameter {quote(name)} for {kind}{name_hint(name, fields)}", where(name)
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
    """The graph of a model file's plain data."""
    data = document.data
    if not isinstance(data, dict):
        raise ConvcalcError(
            f"expected a mapping with {_known(_MODEL_KEYS)}, got {describe(data)}",
            document.where(()),
        )
    for key in data:
        if key not in _MODEL_KEYS and not key.startswith("x-"):
            from convcalc.suggest import suggest  # only on the way to an error

            # Not after a guess, nor for a look-alike of a key (a Greek ο, a Cyrillic е).
            guessed = not key.isascii() or suggest(key, _MODEL_KEYS)
            own = "" if guessed else " (and x-… for your own use)"
            raise ConvcalcError(
                f"unknown key {quote(key)}{name_hint(key, _MODEL_KEYS)}{own}",
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
    builder = _Builder(document, _definitions(document, data.get("define", {})))
    top = _Context(_Scope(None, INPUT), None, None, ())
    last = builder.items(data["layers"], ("layers",), "layers", top, INPUT)
    outputs = builder.outputs(data.get("outputs"), top, last)
    builder.check_dead(outputs)
    return Model(
        tuple(builder.nodes),
        outputs,
        Where("", document.file),
        name,
        input_shape,
        _unused_params(document, data.get("unused_params", {})),
        _dropped(document, data.get("dropped", [])),
    )


def _unused_params(document: Document, value: Any) -> tuple[tuple[str, int], ...]:
    """`unused_params: {module: count}`: what an importer found the forward never used."""
    if not isinstance(value, dict):
        raise ConvcalcError(
            f"expected a mapping of module names to parameter counts, got {describe(value)}",
            document.where(("unused_params",)),
        )
    for module, count in value.items():
        if not isinstance(module, str) or not module:
            raise ConvcalcError(
                f"expected a module name, got {describe(module)}",
                document.where(("unused_params",)),
            )
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_INT:
            raise ConvcalcError(
                f"expected a positive count of parameters, got {describe(count)}",
                document.where(("unused_params", module)),
            )
    return tuple(value.items())


def _dropped(document: Document, value: Any) -> tuple[str, ...]:
    """`dropped: [name, …]`: the nodes an importer dropped because no output reads them."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConvcalcError(
            f"expected a list of names, got {describe(value)}", document.where(("dropped",))
        )
    return tuple(value)


class _Definition(NamedTuple):
    """A block with arguments (SPEC §6.2): its arguments' defaults (`...`: required)
    and its layers, as the model file gives them."""

    name: str
    args: dict[str, Any]
    layers: Any


def _definitions(document: Document, value: Any) -> dict[str, _Definition]:
    path: PathKey = ("define",)
    if not isinstance(value, dict):
        raise ConvcalcError(
            f"expected define to map names to definitions, got {describe(value)}",
            document.where(path),
        )
    found = {}
    for name, body in value.items():
        where = document.where((*path, name))
        if name in KINDS or name in BLOCKS:
            raise ConvcalcError(
                f"{quote(name)} is a built-in kind; give the definition another name", where
            )
        if not _DEFINITION_NAME.fullmatch(name):
            raise ConvcalcError(
                f"a definition's name is a word of letters, digits and _, got {quote(name)}", where
            )
        if not isinstance(body, dict) or "layers" not in body:
            raise ConvcalcError(
                f"expected a definition as a mapping with layers and optional args, "
                f"got {describe(body)}",
                where,
            )
        for key in body:
            if key not in ("args", "layers"):
                raise ConvcalcError(
                    f"unknown key {quote(key)} in a definition; known: args, layers",
                    document.where((*path, name, key)),
                )
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise ConvcalcError(
                f"expected args as a mapping of names to defaults (null: required), "
                f"got {describe(args)}",
                document.where((*path, name, "args")),
            )
        for arg in args:
            if not _DEFINITION_NAME.fullmatch(arg) or arg in ("name", "from"):
                raise ConvcalcError(
                    f"an argument's name is a word of letters, digits and _, other than "
                    f"name and from; got {quote(arg)}",
                    document.where((*path, name, "args", arg)),
                )
        defaults = {arg: ... if default is None else default for arg, default in args.items()}
        found[name] = _Definition(name, defaults, body["layers"])
    return found


class _Scope:
    """The names a named block (or the model) gives its nodes, for `from` to find; and
    the block's own input (`from: input`)."""

    __slots__ = ("input", "names", "parent", "prefix")

    def __init__(self, prefix: str | None, input: int, parent: _Scope | None = None) -> None:
        self.prefix = prefix  # the qualified name of the block; None at the top
        self.input = input
        self.parent = parent
        self.names: dict[str, int] = {}

    def qualify(self, name: str) -> str:
        return name if self.prefix is None else f"{self.prefix}.{name}"


class _Seat:
    """How the unnamed items of one list are named: by their position under `prefix`,
    as `nn.Sequential` numbers its children."""

    __slots__ = ("position", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.position = 0

    def take(self) -> str:
        self.position += 1
        return f"{self.prefix}.{self.position - 1}"


class _Argument(NamedTuple):
    """An argument's value as written, where it was written, and the context it is
    read in (the use's caller's, or the definition's own for a default)."""

    value: Any
    path: PathKey
    context: _Context


class _Context(NamedTuple):
    """What building an item needs besides the item: the scope that names and finds
    nodes, how unnamed items are named, the arguments in force and the definitions
    being expanded (to refuse one that uses itself)."""

    scope: _Scope
    seat: _Seat | None  # None: the items are named by their path
    arguments: dict[str, _Argument] | None
    uses: tuple[str, ...]


class _Builder:
    """One pass over a model file's layers, in file order, appending nodes."""

    def __init__(self, document: Document, definitions: dict[str, _Definition]) -> None:
        self.document = document
        self.definitions = definitions
        self.nodes: list[Node] = []
        # Every qualified name given so far (rows and named blocks), with the node it
        # stands for and where it was given: duplicates are errors, `from` finds them.
        self.qualified: dict[str, tuple[int, PathKey]] = {}
        self.depth = 0
        self.using: list[str] = []  # the qualified names of the uses being expanded

    # --- Places and names

    def where(self, path: PathKey) -> Where:
        """The place of the value at `path`; inside a definition, with the qualified name
        of the use being expanded (`layer1.0: define.bottleneck.layers[0]…`)."""
        found = self.document.where(path)
        if path[:1] == ("define",) and self.using:
            return Where(f"{self.using[-1]}: {found.path}", found.file, found.line)
        return found

    def place(self, row_path: str, path: PathKey) -> Place:
        return Place(row_path, functools.partial(self.document.where, path))

    def register(self, qualified: str, node: int, path: PathKey) -> None:
        known = self.qualified.get(qualified)
        if known is not None and known[0] != node:
            first = self.document.where(known[1])
            at = f"{first.file}:{first.line}" if first.line is not None else first.path
            raise ConvcalcError(
                f"the name {quote(qualified)} is given twice: here and at {at} "
                "(qualified names are unique within a model)",
                self.where(path),
            )
        self.qualified[qualified] = (node, path)

    def name_item(self, name: str | None, row_path: str, path: PathKey, context: _Context) -> str:
        """The qualified name of an item: its own name in its scope, or its seat's (its
        position: every item takes one), or where that is taken already or nothing above
        has a name, its path."""
        seat = context.seat.take() if context.seat is not None else None
        if name is not None:
            if name == INPUT_NAME:
                raise ConvcalcError(
                    f"{INPUT_NAME!r} names a block's input; give the layer another name",
                    self.where(path),
                )
            return context.scope.qualify(name)
        return row_path if seat is None or seat in self.qualified else seat

    def add(
        self,
        op: Layer | Merge,
        inputs: tuple[int, ...],
        row_path: str,
        path: PathKey,
        name: str | None,
        qualified: str,
        context: _Context,
        like: int | None = None,
        entry: int | None = None,
    ) -> int:
        index = len(self.nodes)
        if index >= MAX_LAYERS:
            raise ConvcalcError(
                f"the model expands to more than {MAX_LAYERS:,} layers", self.where(path)
            )
        place = self.place(row_path, path)
        self.nodes.append(Node(op, inputs, place, name, qualified, like, entry))
        self.register(qualified, index, path)
        if name is not None:
            context.scope.names[name] = index
        return index

    def name_block(self, name: str | None, output: int, path: PathKey, context: _Context) -> None:
        """A named sequential or repeat stands for its output node, for `from` to find."""
        if name is not None:
            self.register(context.scope.qualify(name), output, path)
            context.scope.names[name] = output

    def find(self, name: Any, path: PathKey, context: _Context) -> int:
        """The node `from: name` reads: looked up in the enclosing scopes, innermost
        first, then among all qualified names."""
        name, path, context = self.resolve(name, path, context)
        if not isinstance(name, str):
            raise ConvcalcError(
                f"expected the name of an earlier layer, got {describe(name)}", self.where(path)
            )
        if name == INPUT_NAME:
            return context.scope.input
        scope: _Scope | None = context.scope
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        if name in self.qualified:
            return self.qualified[name][0]
        raise ConvcalcError(
            f"no earlier layer or block is named {quote(name)} here (from names an earlier "
            "layer, or input)",
            self.where(path),
        )

    # --- Arguments

    def resolve(
        self, value: Any, path: PathKey, context: _Context
    ) -> tuple[Any, PathKey, _Context]:
        """`$argument` replaced by the argument's value (with where it was written and the
        context to read it in), `${expression}` by its value; any other value as it is.
        Outside definitions a string is what it says, `$` or not (as it always was)."""
        if context.arguments is None:
            return value, path, context
        for _ in range(_MAX_INDIRECTION):
            if not (isinstance(value, str) and "$" in value):
                return value, path, context
            if value.startswith("${") and value.endswith("}") and value.count("${") == 1:
                return self.expression(value[2:-1], path, context), path, context
            found = _ARGUMENT.fullmatch(value)
            if found is None:  # arguments within a longer string
                return self.spliced(value, path, context), path, context
            argument = self.argument(found[1], path, context)
            value, path, context = argument
        raise ConvcalcError(
            f"the arguments refer to each other more than {_MAX_INDIRECTION} times (a loop?)",
            self.where(path),
        )

    def spliced(self, text: str, path: PathKey, context: _Context) -> str:
        """A longer string (a name: `inner_blocks.${k}.0`) with each `$argument` and
        `${expression}` in it replaced by the value's digits or text."""

        def value_of(found: re.Match[str]) -> str:
            whole = found[0]
            value, at, _ = self.resolve(whole, path, context)
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ConvcalcError(
                    f"{quote(whole)} in a string stands for a number or a string, "
                    f"got {describe(value)}",
                    self.where(at),
                )
            return str(value)

        return _IN_TEXT.sub(value_of, text)

    def argument(self, name: str, path: PathKey, context: _Context) -> _Argument:
        if context.arguments is None or name not in context.arguments:
            hint = name_hint(name, context.arguments) if context.arguments else "; none here"
            raise ConvcalcError(f"no argument {quote(name)}{hint}", self.where(path))
        return context.arguments[name]

    def expression(self, text: str, path: PathKey, context: _Context) -> int:
        def value_of(name: str) -> int:
            value, at, _ = self.resolve(f"${name}", path, context)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConvcalcError(
                    f"${{…}} takes whole numbers; the argument {quote(name)} is {describe(value)}",
                    self.where(at),
                )
            return value

        try:
            return evaluate(text, value_of)
        except ConvcalcError as error:
            raise error.at(self.where(path)) from None

    def plain(self, value: Any, path: PathKey, context: _Context) -> Any:
        """A parameter value with every argument in it replaced."""
        if isinstance(value, str) and "$" in value:
            value, path, context = self.resolve(value, path, context)
        if isinstance(value, list):
            return [self.plain(item, (*path, i), context) for i, item in enumerate(value)]
        return value

    # --- Lists, items and blocks

    def items(
        self, items: Any, path: PathKey, row_path: str, context: _Context, source: int
    ) -> int:
        """Build a list of layers reading `source`; the node its last item gives."""
        items, path, inner = self.resolve(items, path, context)
        if inner is not context:  # a list given as an argument: named where it is used
            context = context._replace(arguments=inner.arguments)
        if len(path) >= MAX_DEPTH or self.depth >= MAX_DEPTH:
            # YAML is refused this deep as it is read; JSON, read by the C parser, here.
            raise ConvcalcError(
                f"the document nests more than {MAX_DEPTH:,} levels deep",
                Where("", self.document.file),
            )
        if not isinstance(items, list):
            raise ConvcalcError(
                f"expected a list of layers, got {describe(items)}", self.where(path)
            )
        self.depth += 1
        for index, item in enumerate(items):
            source = self.item(item, (*path, index), f"{row_path}[{index}]", context, source)
        self.depth -= 1
        return source

    def item(self, item: Any, path: PathKey, row_path: str, context: _Context, source: int) -> int:
        if isinstance(item, str) and "$" in item:
            item, path, _ = self.resolve(item, path, context)
        if isinstance(item, str):
            kind, given = item, None
        elif isinstance(item, dict) and len(item) == 1:
            ((kind, given),) = item.items()
        else:
            raise ConvcalcError(
                "expected a layer: a kind (relu) or a mapping with one key, the kind "
                f"(conv: {{out_channels: 64, kernel_size: 3}}); got {describe(item)}",
                self.where(path),
            )
        value_path = (*path, kind)
        if kind in BLOCKS:
            return self.block(kind, given, path, row_path, context, source)
        if kind in self.definitions:
            return self.use(self.definitions[kind], given, path, row_path, context, source)
        if kind not in KINDS:
            hint = name_hint(kind, (*KINDS, *BLOCKS, *self.definitions))
            raise ConvcalcError(f"unknown layer kind {quote(kind)}{hint}", self.where(path))
        if given is None:
            given = {}
        elif not isinstance(given, dict):
            raise ConvcalcError(
                f"expected the parameters of {kind} as a mapping, got {describe(given)}",
                self.where(value_path),
            )
        if any(isinstance(value, str | list) for value in given.values()):
            given = {
                key: self.plain(value, (*value_path, key), context) for key, value in given.items()
            }
        else:
            given = dict(given)
        name = _name(self, given.pop("name", None), (*value_path, "name"))
        if "from" in given:
            source = self.find(given.pop("from"), (*value_path, "from"), context)
        like = None
        if kind == "upsample" and "like" in given:
            like = self.find(given.pop("like"), (*value_path, "like"), context)
            if "size" in given or "scale_factor" in given:
                raise ConvcalcError(
                    "like takes the size of another layer's output: give no size or "
                    "scale_factor with it",
                    self.where((*value_path, "like")),
                )
        qualified = self.name_item(name, row_path, value_path, context)
        named = qualified if qualified != row_path else None
        layer = _layer(self, kind, given, value_path, named)
        return self.add(layer, (source,), row_path, value_path, name, qualified, context, like)

    def block(
        self, kind: str, value: Any, path: PathKey, row_path: str, context: _Context, source: int
    ) -> int:
        value_path = (*path, kind)
        value, value_path, _ = self.resolve(value, value_path, context)
        if kind == "sequential":
            if isinstance(value, list):  # grouping only: its layers take its place
                return self.items(value, value_path, f"{row_path}.sequential", context, source)
            fields = self.fields(kind, value, value_path, ("layers",), ("from",))
            source = self.source(fields, value_path, context, source)
            name = _name(
                self,
                self.plain(fields.get("name"), (*value_path, "name"), context),
                (*value_path, "name"),
            )
            if name is not None and context.seat is not None:
                context.seat.take()  # a named block is one item of its list
            inner = self.scoped(name, context, source)
            output = self.items(
                fields["layers"],
                (*value_path, "layers"),
                f"{row_path}.sequential.layers",
                inner,
                source,
            )
            self.name_block(name, output, value_path, context)
            return output
        if kind == "repeat":
            return self.repeat(value, value_path, row_path, context, source)
        if kind == "residual":
            fields = self.fields(kind, value, value_path, ("body",), ("shortcut", "from"))
            source = self.source(fields, value_path, context, source)
            name = _name(
                self,
                self.plain(fields.get("name"), (*value_path, "name"), context),
                (*value_path, "name"),
            )
            qualified = self.name_item(name, row_path, value_path, context)
            body = self.items(
                fields["body"],
                (*value_path, "body"),
                f"{row_path}.residual.body",
                self.branch(name, qualified, "body", context, source),
                source,
            )
            given = fields.get("shortcut")  # absent or null: the identity, as [] is
            shortcut = self.items(
                [] if given is None else given,
                (*value_path, "shortcut"),
                f"{row_path}.residual.shortcut",
                self.branch(name, qualified, "shortcut", context, source),
                source,
            )
            merge = Merge("add", kind, ("body", "shortcut"))
            return self.add(
                merge, (body, shortcut), row_path, path, name, qualified, context, entry=source
            )
        if isinstance(value, dict):  # the graph form: add: {from: [a, b]}
            return self.graph_merge(kind, value, value_path, path, row_path, context)
        if not isinstance(value, list) or len(value) < 2:
            raise ConvcalcError(
                f"expected {kind} to be a list of at least two branches, each a list of layers "
                f"([[conv: …], []]; [] is the identity), or a mapping with from: [names], "
                f"got {describe(value)}",
                self.where(value_path),
            )
        qualified = self.name_item(None, row_path, value_path, context)
        ends = []
        for index, branch in enumerate(value):
            ends.append(
                self.items(
                    branch,
                    (*value_path, index),
                    f"{row_path}.{kind}[{index}]",
                    self.branch(None, qualified, str(index), context, source),
                    source,
                )
            )
        labels = tuple(str(index) for index in range(len(ends)))
        merge = Merge(kind, kind, labels)  # type: ignore[arg-type]
        return self.add(merge, tuple(ends), row_path, path, None, qualified, context, entry=source)

    def graph_merge(
        self,
        kind: str,
        value: dict[str, Any],
        value_path: PathKey,
        path: PathKey,
        row_path: str,
        context: _Context,
    ) -> int:
        fields = self.fields(kind, value, value_path, ("from",), ())
        names, names_path, names_context = self.resolve(
            fields["from"], (*value_path, "from"), context
        )
        least = 1 if kind == "concat" else 2
        if not isinstance(names, list) or len(names) < least:
            raise ConvcalcError(
                f"expected from: a list of at least {least} earlier layers' names, "
                f"got {describe(names)}",
                self.where(names_path),
            )
        inputs = tuple(self.find(n, (*names_path, i), names_context) for i, n in enumerate(names))
        labels = tuple(str(self.resolve(n, names_path, names_context)[0]) for n in names)
        name = _name(
            self,
            self.plain(fields.get("name"), (*value_path, "name"), context),
            (*value_path, "name"),
        )
        qualified = self.name_item(name, row_path, value_path, context)
        merge = Merge(kind, kind, labels)  # type: ignore[arg-type]
        return self.add(merge, inputs, row_path, path, name, qualified, context)

    def repeat(
        self, value: Any, value_path: PathKey, row_path: str, context: _Context, source: int
    ) -> int:
        fields = self.fields("repeat", value, value_path, ("times", "layers"), ("from",))
        source = self.source(fields, value_path, context, source)
        try:
            times = positive_int(self.plain(fields["times"], (*value_path, "times"), context))
        except ConvcalcError as error:
            raise error.at(self.where((*value_path, "times"))) from None
        name = _name(
            self,
            self.plain(fields.get("name"), (*value_path, "name"), context),
            (*value_path, "name"),
        )
        layers, layers_path, _ = self.resolve(fields["layers"], (*value_path, "layers"), context)
        # A named repeat numbers its copies under its name, as nn.Sequential numbers
        # repeated blocks: a copy that is one unnamed layer is `name.i` itself, any other
        # copy is a scope `name.i`. An unnamed one adds no level: its copies continue the
        # enclosing list.
        if name is not None and context.seat is not None:
            context.seat.take()  # a named block is one item of its list
        scope = self.scoped(name, context, source) if name is not None else None
        single = isinstance(layers, list) and len(layers) == 1 and not _named(layers[0])
        first = len(self.nodes)
        for time in range(times):
            copy_path = f"{row_path}.repeat[{time}].layers"
            if scope is None:
                copy = context
            elif single:
                copy = scope
            else:
                copy = self.scoped(str(time), scope, source)
            before = len(self.nodes)
            source = self.items(layers, layers_path, copy_path, copy, source)
            made = len(self.nodes) - before
            if made == 0:
                break  # nothing inside (only empty lists): every other time is the same nothing
            if time == 0 and first + made * times > MAX_LAYERS:
                raise ConvcalcError(
                    f"the model expands to more than {MAX_LAYERS:,} layers "
                    f"(repeat: {times:,} times {made:,})",
                    self.where(value_path[:-1]),
                )
        self.name_block(name, source, value_path, context)
        return source

    def use(
        self,
        definition: _Definition,
        given: Any,
        path: PathKey,
        row_path: str,
        context: _Context,
        source: int,
    ) -> int:
        """A definition used like a kind: its layers, with the arguments given here, in a
        scope named by the use."""
        value_path = (*path, definition.name)
        if definition.name in context.uses:
            chain = " → ".join(
                (*context.uses[context.uses.index(definition.name) :], definition.name)
            )
            raise ConvcalcError(f"the definition uses itself: {chain}", self.where(path))
        if given is None:
            given = {}
        elif not isinstance(given, dict):
            raise ConvcalcError(
                f"expected the arguments of {definition.name} as a mapping, got {describe(given)}",
                self.where(value_path),
            )
        for key in given:
            if key not in definition.args and key not in ("name", "from"):
                hint = name_hint(key, (*definition.args, "name", "from"))
                raise ConvcalcError(
                    f"unknown argument {quote(key)} for {definition.name}{hint}",
                    self.where((*value_path, key)),
                )
        missing = [a for a, d in definition.args.items() if d is ... and a not in given]
        if missing:
            raise ConvcalcError(
                f"{definition.name} needs {' and '.join(missing)}", self.where(value_path)
            )
        source = self.source(given, value_path, context, source)
        name = _name(
            self,
            self.plain(given.get("name"), (*value_path, "name"), context),
            (*value_path, "name"),
        )
        qualified = self.name_item(name, row_path, value_path, context)
        arguments: dict[str, _Argument] = {}
        scope = _Scope(qualified, source)
        inner = _Context(scope, _Seat(qualified), arguments, (*context.uses, definition.name))
        for arg, default in definition.args.items():
            if arg in given:
                arguments[arg] = _Argument(given[arg], (*value_path, arg), context)
            else:  # a default may use the other arguments
                arguments[arg] = _Argument(default, ("define", definition.name, "args", arg), inner)
        self.using.append(qualified)
        output = self.items(
            definition.layers,
            ("define", definition.name, "layers"),
            f"{row_path}.{definition.name}.layers",
            inner,
            source,
        )
        self.using.pop()
        self.register(qualified, output, value_path)
        if name is not None:
            context.scope.names[name] = output
        return output

    # --- Helpers of blocks

    def fields(
        self,
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
                self.where(path),
            )
        for key in value:
            if key not in (*required, *optional, "name"):
                hint = name_hint(key, (*required, *optional, "name"))
                raise ConvcalcError(
                    f"unknown key {quote(key)} in {kind}{hint}", self.where((*path, key))
                )
        for key in required:
            if key not in value:
                raise ConvcalcError(f"{kind} needs {key}", self.where(path))
        return value

    def source(self, fields: dict[str, Any], path: PathKey, context: _Context, source: int) -> int:
        """What a block reads: its `from`, or the node before it."""
        if "from" not in fields:
            return source
        return self.find(fields["from"], (*path, "from"), context)

    @staticmethod
    def scoped(name: str | None, context: _Context, source: int) -> _Context:
        """The context of a named block's layers: a scope of their own, numbered by
        position; an unnamed block adds no level."""
        if name is None:
            return context
        qualified = context.scope.qualify(name)
        scope = _Scope(qualified, source, context.scope)
        return context._replace(scope=scope, seat=_Seat(qualified))

    @staticmethod
    def branch(
        name: str | None, qualified: str, label: str, context: _Context, source: int
    ) -> _Context:
        """The context of one branch of a block (a residual's body or shortcut, an
        add's or concat's branch). A named residual is a scope for its layers' names (a
        module whose forward adds its input, as MobileNetV2's InvertedResidual); an
        unnamed block adds no level. Unnamed layers are named by the block, the branch
        and their position (`layer1.0.0.body.5`), where anything above them has a name,
        and by their path where nothing has."""
        if name is not None:
            context = context._replace(scope=_Scope(qualified, source, context.scope))
        elif context.seat is None:
            return context
        return context._replace(seat=_Seat(f"{qualified}.{label}"))

    # --- The end: outputs and dead nodes

    def outputs(self, value: Any, context: _Context, last: int) -> tuple[int, ...]:
        path: PathKey = ("outputs",)
        if value is None:
            return (last,)
        if not isinstance(value, list) or not value:
            raise ConvcalcError(
                f"expected outputs: a list of the names of layers, got {describe(value)}",
                self.where(path),
            )
        return tuple(self.find(name, (*path, i), context) for i, name in enumerate(value))

    def check_dead(self, outputs: tuple[int, ...]) -> None:
        """Every node must lead to an output: one that none does is dead code."""
        live = [False] * len(self.nodes)
        for output in outputs:
            if output != INPUT:
                live[output] = True
        for index in range(len(self.nodes) - 1, -1, -1):
            if live[index]:
                node = self.nodes[index]
                for read in (*node.inputs, *(() if node.like is None else (node.like,))):
                    if read != INPUT:
                        live[read] = True
        dead = [self.nodes[i] for i, alive in enumerate(live) if not alive]
        if dead:
            names = ", ".join(node.qualified_name for node in dead[:5])
            more = f" and {len(dead) - 5:,} more" if len(dead) > 5 else ""
            raise ConvcalcError(
                f"no output depends on {names}{more}: read it with from, list it in outputs, "
                "or remove it",
                dead[0].where,
            )


def _named(item: Any) -> bool:
    """Whether a layer item as written carries a name of its own."""
    if isinstance(item, dict) and len(item) == 1:
        (value,) = item.values()
        return isinstance(value, dict) and "name" in value
    return False


def _name(builder: _Builder, value: Any, path: PathKey) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConvcalcError(f"expected a string, got {describe(value)}", builder.where(path))
    if value == "":
        raise ConvcalcError("expected a name, got an empty string", builder.where(path))
    return value


def _layer(
    builder: _Builder, kind: str, given: dict[str, Any], path: PathKey, name: str | None
) -> Layer:
    """The layer of a model file's item; its errors name the file, the line, the layer's
    qualified name where it has one of its own, and the parameter's path."""

    def place(param: str | None) -> Where:
        found = builder.document.where(path if param is None else (*path, param))
        if name is None:
            return builder.where(path if param is None else (*path, param))
        return Where(f"{name}: {found.path}", found.file, found.line)

    # Generated models repeat a few layers thousands of times: each distinct one is checked
    # and made once. Layers are immutable values, so rows can share them; repr() keeps
    # apart what the checks tell apart (3 from 3.0 and "3", 1 from true).
    key = (kind, repr(given))
    layer = _MADE.get(key)
    if layer is None:
        if len(_MADE) >= 4096:
            _MADE.clear()
        layer = _MADE[key] = build_layer(kind, given, place)
    return layer


_MADE: dict[tuple[str, str], Layer] = {}
