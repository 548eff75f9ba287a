"""The model format (SPEC §2) as a JSON Schema (draft 2020-12), for editors and validators.

Made from the loader's own table: every leaf kind in `KINDS` with its parameters (the
fields made with `param`: each check's fragment, default and doc), so a new kind or
parameter is in the schema with nothing to add here. The blocks are written out below,
as the loader reads them. The schema keeps to what draft-07 tools read the same way (no
`prefixItems`, nothing beside a `$ref`): the YAML support of most editors is draft-07.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from convcalc.loader import BLOCKS, check_shape, parameters
from convcalc.model.layers import KINDS, Layer
from convcalc.model.params import positive_int, schema_of
from convcalc.text import CONTROL_CLASS

__all__ = ["DIALECT", "model_schema", "to_schema_json"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_LAYER = {"$ref": "#/$defs/layer"}


def _layers(description: str, nullable: bool = False) -> dict[str, Any]:
    return {
        "description": description,
        "type": ["array", "null"] if nullable else "array",
        "items": _LAYER,
    }


def _name(what: str) -> dict[str, Any]:
    return {
        "description": f"A name for {what}, shown in the output; with the names of the "
        "enclosing named blocks, its qualified name (layer1.0.conv1).",
        "type": ["string", "null"],
        "minLength": 1,
        "not": _CONTROL,
    }


#: Names hold no control character (convcalc.text): a file cannot recolour a terminal.
#: (A pattern searches; `^…$` would let a final newline through, as `$` matches before
#: it in Python's regular expressions.)
_CONTROL = {"type": "string", "pattern": f"[{CONTROL_CLASS}]"}

_MODEL_NAME = {
    "description": "A name for the model, shown in the output.",
    "type": ["string", "null"],
    "not": _CONTROL,
}


_FROM = {
    "description": "Read the output of the earlier layer or block of this name (looked up in "
    "the enclosing named blocks, innermost first, then among qualified names; input: the "
    "block's own input) instead of the layer before.",
    "type": "string",
}


def _reads(description: str, least: int) -> dict[str, Any]:
    """The graph form of a merge: the names of what it reads."""
    return {
        "description": description,
        "type": "object",
        "properties": {
            "from": {
                "description": "The names of the earlier layers it reads.",
                "type": "array",
                "items": {"type": "string"},
                "minItems": least,
            },
            "name": _name("this merge"),
        },
        "required": ["from"],
        "additionalProperties": False,
    }


def _summary(kind: type[Layer]) -> str:
    """The first paragraph of the kind's docstring, on one line."""
    return " ".join((kind.__doc__ or "").split("\n\n")[0].split())


def _parameter(field: dataclasses.Field[Any]) -> dict[str, Any]:
    required = field.default is dataclasses.MISSING
    entry = {
        "description": field.metadata["doc"] + (" Required." if required else ""),
        **schema_of(field.metadata["check"]),
    }
    if not required and field.default is not None:
        entry["default"] = field.default
    return entry


def _leaf(kind: str) -> dict[str, Any]:
    fields = parameters(kind)
    required = [name for name, field in fields.items() if field.default is dataclasses.MISSING]
    entry: dict[str, Any] = {
        "description": _summary(KINDS[kind]),
        # Without required parameters the kind may stand alone (`relu`, or `relu:` = null).
        "type": "object" if required else ["object", "null"],
        "properties": {
            **{name: _parameter(field) for name, field in fields.items()},
            "name": _name("this layer"),
            "from": _FROM,
            **(
                {
                    "like": {
                        "description": "Upsample to the spatial size of this earlier layer's "
                        "output, whatever the input size (FPN, U-Net decoders); give no size "
                        "or scale_factor with it.",
                        "type": "string",
                    }
                }
                if kind == "upsample"
                else {}
            ),
        },
        "additionalProperties": False,
    }
    if required:
        entry["required"] = required
    return entry


def _branches(description: str) -> dict[str, Any]:
    return {
        "description": description + " An empty branch ([]) is the identity.",
        "type": "array",
        "minItems": 2,
        "items": {"type": "array", "items": _LAYER},
    }


# As `loader._Builder.block` reads them.
_BLOCKS: dict[str, dict[str, Any]] = {
    "sequential": {
        "anyOf": [
            _layers("Grouping only: these layers in order, as if written in its place."),
            {
                "description": "These layers in order; with a name, a named block whose "
                "layers are named under it (as nn.Sequential numbers its children).",
                "type": "object",
                "properties": {
                    "layers": _layers("The layers, in order."),
                    "name": _name("this block"),
                    "from": _FROM,
                },
                "required": ["layers"],
                "additionalProperties": False,
            },
        ]
    },
    "repeat": {
        "description": "The layers N times over; a named repeat numbers its copies under its "
        "name (layer1.0, layer1.1, …).",
        "type": "object",
        "properties": {
            "times": {"description": "How many times (N).", **schema_of(positive_int)},
            "layers": _layers("The layers to repeat."),
            "name": _name("this block"),
            "from": _FROM,
        },
        "required": ["times", "layers"],
        "additionalProperties": False,
    },
    "residual": {
        "description": "body(x) + shortcut(x), like a ResNet block; the shapes must match.",
        "type": "object",
        "properties": {
            "body": _layers("The main path."),
            "shortcut": _layers("The shortcut path; empty, null or absent: the identity.", True),
            "name": _name("this block"),
            "from": _FROM,
        },
        "required": ["body"],
        "additionalProperties": False,
    },
    "add": {
        "anyOf": [
            _branches("Element-wise sum of the branches' outputs, which must have one shape."),
            _reads("Element-wise sum of the outputs of the named layers (one shape).", 2),
        ]
    },
    "concat": {
        "anyOf": [
            _branches(
                "Concatenation of the branches' outputs along the channels (torch.cat(dim=1)); "
                "their spatial sizes must match."
            ),
            _reads("Concatenation of the named layers' outputs along the channels.", 1),
        ]
    },
    "mul": {
        "anyOf": [
            _branches(
                "Element-wise product of the branches' outputs, broadcast (each dimension "
                "equal or 1): a squeeze-and-excitation gate."
            ),
            _reads("Element-wise product of the named layers' outputs, broadcast.", 2),
        ]
    },
}

_DEFINITION = {
    "description": "A block with arguments, used like a kind: its layers, in which $arg "
    "stands for an argument's value and ${…} for integer arithmetic on them (+ - * // %, "
    "min, max). Its layers are checked when it is used.",
    "type": "object",
    "properties": {
        "args": {
            "description": "The arguments and their defaults (null: required).",
            "type": ["object", "null"],
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        },
        "layers": {"description": "The layers.", "type": "array"},
    },
    "required": ["layers"],
    "additionalProperties": False,
}

# A model with definitions uses them like kinds, which a schema cannot list: its layers
# are checked by kind only where the kind is a built-in one.
_USE = {
    "description": "A use of a definition: its arguments, name and from.",
    "type": ["object", "null"],
}


def _with_uses(fragment: Any) -> Any:
    """The fragment with every list of layers taking uses of definitions too."""
    if fragment == _LAYER:
        return {"$ref": "#/$defs/layer_or_use"}
    if isinstance(fragment, dict):
        return {key: _with_uses(value) for key, value in fragment.items()}
    if isinstance(fragment, list):
        return [_with_uses(value) for value in fragment]
    return fragment


def model_schema() -> dict[str, Any]:
    """The JSON Schema of a model file."""
    leaves = {kind: _leaf(kind) for kind in KINDS}
    return {
        "$schema": DIALECT,
        "$comment": "Generated by `convcalc schema` from convcalc's loader; do not edit.",
        "title": "convcalc model",
        "description": "A convolutional network for convcalc: its layers, in order, and "
        "optionally its name and input shape. Parameter names and defaults are PyTorch's.",
        "type": "object",
        "properties": {
            "name": _MODEL_NAME,
            "input": {
                "description": "The input shape without the batch, channels first: [C, L], "
                "[C, H, W] or [C, D, H, W], or [N] when flat. --input overrides it.",
                **schema_of(check_shape),
            },
            "define": {
                "description": "Blocks with arguments, by name, each used like a kind.",
                "type": "object",
                "propertyNames": {
                    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                    "not": {"enum": [*KINDS, *BLOCKS]},
                },
                "additionalProperties": _DEFINITION,
            },
            "layers": {"description": "The layers, in order.", "type": "array"},
            "outputs": {
                "description": "The names of the model's outputs, in order (default: the "
                "last layer).",
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
            },
            "unused_params": {
                "description": "Written by importers: the parameters of modules the "
                "forward never uses (an auxiliary classifier), by module name; counted in "
                "totals.unused_params, not in params.",
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 1},
            },
            "dropped": {
                "description": "Written by importers: the operations whose results no "
                "output reads, left out of the model.",
                "type": "array",
                "items": {"type": "string", "minLength": 1},
            },
        },
        # With definitions, a layer may be a use of one, wherever layers go.
        "if": {"required": ["define"]},
        "then": {"properties": {"layers": {"items": {"$ref": "#/$defs/layer_or_use"}}}},
        "else": {"properties": {"layers": {"items": _LAYER}}},
        "patternProperties": {
            "^x-": {
                "description": "Yours: convcalc ignores top-level keys beginning with x- "
                "(a place for anchors, reused with aliases and merge keys)."
            }
        },
        "required": ["layers"],
        "additionalProperties": False,
        "$defs": {
            "layer": {
                "description": "A layer: its kind alone (relu), or a mapping with one key, "
                "the kind, whose value holds the parameters (conv: {out_channels: 64, "
                "kernel_size: 3}).",
                "anyOf": [
                    {
                        "anyOf": [
                            {"const": kind, "description": _summary(KINDS[kind])}
                            for kind, leaf in leaves.items()
                            if "required" not in leaf
                        ]
                    },
                    {
                        "type": "object",
                        "properties": {
                            **leaves,
                            **{block: _BLOCKS[block] for block in BLOCKS},
                        },
                        "minProperties": 1,
                        "maxProperties": 1,
                        "additionalProperties": False,
                    },
                ],
            },
            "layer_or_use": {
                "description": "A layer, or a use of a definition.",
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "properties": {
                            **leaves,
                            **{block: _with_uses(_BLOCKS[block]) for block in BLOCKS},
                        },
                        "additionalProperties": _USE,
                        "minProperties": 1,
                        "maxProperties": 1,
                    },
                ],
            },
        },
    }


def to_schema_json() -> str:
    """The schema as `convcalc schema` prints it: 2-space indented, always the same."""
    return json.dumps(model_schema(), indent=2)
