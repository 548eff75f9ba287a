"""A model document (the plain data of a model file) → YAML that reads like the files in
`examples/`: one layer a line, its parameters as a flow mapping, blocks indented.
`convcalc export` writes it; `convcalc net` reads it back to the same analysis.

Text is written with its control characters escaped (convcalc.text): an imported
model's layer names may hold them, and a model file's may not.
"""

from __future__ import annotations

from typing import Any

from convcalc.text import printable

__all__ = ["to_yaml"]

#: Blocks whose value is a mapping of named lists of layers, and those lists' keys.
_MAPPED_BLOCKS = {"residual": ("body", "shortcut"), "repeat": ("layers",)}


class _Flow(dict[str, Any]):
    """A parameter mapping, written on one line: {out_channels: 64, kernel_size: 3}."""


class _FlowList(list[Any]):
    """A short list, written on one line: [3, 224, 224]."""


def to_yaml(data: dict[str, Any], comment: str | None = None) -> str:
    """The YAML text of a model document, with `comment` as a first line if given."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            # Lists indented under their key (`layers:` then `  - conv: …`), as people
            # write them; PyYAML's default puts the dashes under the key.
            super().increase_indent(flow, False)

    Dumper.add_representer(str, lambda dumper, value: dumper.represent_str(printable(value)))
    Dumper.add_representer(
        _Flow, lambda dumper, value: dumper.represent_mapping("tag:yaml.org,2002:map", value, True)
    )
    Dumper.add_representer(
        _FlowList,
        lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, True),
    )
    styled = {
        key: _FlowList(value)
        if key == "input" and isinstance(value, list)
        else _layers(value)
        if key == "layers"
        else value
        for key, value in data.items()
    }
    text = yaml.dump(
        styled,
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,  # a layer per line, however long its parameters
    )
    return f"# {printable(comment)}\n{text}" if comment else text


def _layers(items: Any) -> Any:
    return [_layer(item) for item in items] if isinstance(items, list) else items


def _layer(item: Any) -> Any:
    if not isinstance(item, dict) or len(item) != 1:
        return item
    ((kind, value),) = item.items()
    if kind == "sequential":
        return {kind: _layers(value)}
    if kind in ("add", "concat") and isinstance(value, list):
        return {kind: [_layers(branch) for branch in value]}
    if kind in _MAPPED_BLOCKS and isinstance(value, dict):
        lists = _MAPPED_BLOCKS[kind]
        return {kind: {key: _layers(v) if key in lists else v for key, v in value.items()}}
    if isinstance(value, dict):
        return {kind: _Flow(value)}
    return item
