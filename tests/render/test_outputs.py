"""Every output form, from one analysis: JSON per SPEC §5, CSV, Markdown, the table."""

from __future__ import annotations

import csv
import io
import json

from tests.helpers import ROOT

VGG = str(ROOT / "examples/vgg_style.yaml")
RESIDUAL = """\
name: tiny
input: [3, 32, 32]
layers:
  - conv: {name: stem, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  - residual:
      body:
        - conv: {out_channels: 8, kernel_size: 3, padding: 1}
        - batch_norm
  - conv_transpose: {out_channels: 4, kernel_size: 2, stride: 2}
  - max_pool: {kernel_size: 3, stride: 2}
  - adaptive_avg_pool: {output_size: 1}
  - flatten
  - linear: {out_features: 10}
"""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_field(field: object) -> None:
    assert isinstance(field, dict)
    assert set(field) == {"size", "effective_stride", "effective_padding"}
    assert all(isinstance(v, list) and all(_is_number(x) for x in v) for v in field.values())


def test_json_follows_spec_section_5(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "-", "--json", stdin=RESIDUAL)
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert document["name"] == "tiny"
    assert document["input_shape"] == [3, 32, 32]
    assert document["output_shape"] == [10]
    for row in document["layers"]:
        assert {
            "path", "kind", "name", "input_shape", "output_shape", "params", "macs",
            "receptive_field",
        } <= set(row)  # fmt: skip
        if row["receptive_field"] is not None:
            check_field(row["receptive_field"])
    # A block's leaves, then its merge row at the block's own path.
    paths = [(row["path"], row["kind"]) for row in document["layers"]]
    assert paths[:4] == [
        ("layers[0]", "conv"),
        ("layers[1].residual.body[0]", "conv"),
        ("layers[1].residual.body[1]", "batch_norm"),
        ("layers[1]", "add"),
    ]
    totals = document["totals"]
    assert totals["params"] == sum(row["params"] for row in document["layers"])
    assert totals["macs"] == sum(row["macs"] for row in document["layers"])
    assert totals["flops"] == 2 * totals["macs"]
    assert totals["trainable_params"] == totals["params"]
    # The transposed convolution halves the stride: decimals where not whole.
    assert document["layers"][4]["receptive_field"]["effective_stride"] == [1, 1]
    check_field(document["receptive_field"])
    assert document["warnings"] == [
        {
            "path": "layers[3]",
            "qualified_name": "layers[3]",
            "code": "dropped-input",
            "message": document["warnings"][0]["message"],
        },
        {
            "path": "layers[3]",
            "qualified_name": "layers[3]",
            "code": "dropped-input",
            "message": document["warnings"][1]["message"],
        },
    ]


def test_json_is_deterministic(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("net", VGG, "--json").stdout == cli("net", VGG, "--format", "json").stdout


def test_fractions_are_decimals_in_json(cli) -> None:  # type: ignore[no-untyped-def]
    row = json.loads(
        cli("layer", "adaptive_avg_pool", "--input", "1x7", "--output-size", "3", "--json").stdout
    )
    assert row["receptive_field"]["effective_stride"] == [7 / 3]


def test_csv_has_exact_numbers(cli) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.DictReader(io.StringIO(cli("net", VGG, "--format", "csv").stdout)))
    document = json.loads(cli("net", VGG, "--json").stdout)
    assert [int(row["params"]) for row in rows] == [r["params"] for r in document["layers"]]
    assert [int(row["macs"]) for row in rows] == [r["macs"] for r in document["layers"]]
    assert rows[0]["output_shape"] == "64x64x64"
    assert rows[0]["field_size"] == "3x3"


def test_markdown_table(cli) -> None:  # type: ignore[no-untyped-def]
    text = cli("net", VGG, "--format", "markdown").stdout
    lines = text.splitlines()
    assert lines[0].startswith("| Layer | Kind | Output shape | Params | MACs |")
    assert "| classifier | linear | 10 | 5,130 |" in text
    assert "**Receptive field**: size 70" in text


def test_table_snapshot(cli, snapshot) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", VGG)
    assert result.code == 0
    snapshot("vgg_style.txt", result.stdout)
    # Invariant: the rows add up to the totals line.
    document = json.loads(cli("net", VGG, "--json").stdout)
    assert f"Params {document['totals']['params']:,}" in result.stdout
