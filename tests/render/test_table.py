"""The network's table as people read it (issue 13): blocks from qualified names,
`--depth`, fitted to 80, 100 and 120 columns with no number cut, in a real terminal,
named alike in CSV and `--layer`, and the same from Python.

Snapshots hold the tables (rewritten by `pytest --update-snapshots`); the checks beside
them read each table back against the model's JSON, which no table code makes: every
shape, count, field and stride appears whole in its row's cell, each block's params
are the sum of the JSON rows under its name, and the top level adds up to the totals.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from typing import Any

import pytest

from convcalc import ConvcalcError, analyze, load
from convcalc.render.plot import unit_field
from convcalc.render.tree import build, find, lines
from tests.helpers import ROOT

WIDTHS = (80, 100, 120)
TABLES = [
    ("resnet50", None),  # the default depth
    ("resnet50", "all"),
    ("fasterrcnn_resnet50_fpn", None),  # several outputs, an FPN's interleaved blocks
    ("efficientnet_b0", None),  # gates, and residuals named as blocks
]
GUIDES = "│├└─ "
SI = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _table(cli, monkeypatch, model: str, depth: str | None, width: int) -> str:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", str(width))
    result = cli("net", model, *(["--depth", depth] if depth else []))
    assert result.code == 0, result.stderr
    return str(result.stdout)


def _json(cli, model: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = cli("net", model, "--json")
    return dict(json.loads(result.stdout))


def _axes(values: list[int | float]) -> str:
    """Per-axis values as a table writes them: one where all agree, fractions as a/b."""
    texts = [str(Fraction(v).limit_denominator()) for v in values]
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def _si(text: str) -> float:
    """A figure read at a glance back to a number: 4.09G → 4.09e9."""
    found = re.fullmatch(r"([0-9.]+)([KMGT]?)", text)
    assert found, f"not a whole figure: {text!r}"
    return float(found[1]) * SI[found[2]]


def _expected(rows: list[dict[str, Any]], shown: set[str]) -> list[str]:
    """The cells a row (or a block: its JSON rows, in order) must show whole."""
    last = rows[-1]
    field = last["receptive_field"]
    cells = ["×".join(map(str, last["output_shape"])), f"{sum(r['params'] for r in rows):,}"]
    if field is None:
        return cells
    cells.append(_axes(field["size"]) + ("+g" if last["global_context"] else ""))
    if "stride" in shown:
        cells.append(_axes(field["effective_stride"]))
    if "padding" in shown:
        cells.append(_axes(field["effective_padding"]))
    return cells


def _body(text: str) -> tuple[list[str], list[str], str]:
    """The table's header lines, body lines and total line, between its two rules."""
    lines_ = text.splitlines()
    rules = [i for i, line in enumerate(lines_) if line and set(line) == {"─"}]
    assert len(rules) == 2
    return lines_[1 : rules[0]], lines_[rules[0] + 1 : rules[1]], lines_[rules[1] + 1]


def _name(line: str) -> str:
    return re.split(r"\s{2,}", line.strip())[0].lstrip(GUIDES)


def _check_against_json(text: str, document: dict[str, Any], width: int) -> None:
    assert all(len(line) <= width for line in text.splitlines())
    header, body, total = _body(text)
    shown = set(header[-1].split())
    rows = document["layers"]
    names = [r["qualified_name"] for r in rows]
    top_params = 0
    parents: list[tuple[int, str]] = []  # the lines above: their guides' width and name
    for line in body:
        name_text, *cells = re.split(r"\s{2,}", line.strip())
        name = name_text.lstrip(GUIDES)
        assert not any("…" in cell for cell in cells), line
        indent = len(line) - len(line.lstrip(GUIDES))
        while parents and parents[-1][0] >= indent:
            parents.pop()
        if name.startswith("…"):  # shortened: the one name under its parent that ends so
            parent = parents[-1][1] + "."
            children = {
                parent + n[len(parent) :].split(".")[0] for n in names if n.startswith(parent)
            }
            (name,) = [child for child in children if child.endswith(name[1:])]
        parents.append((indent, name))
        # A row, or a block: the rows named under it, and one named as it (its sum).
        under = [r for r in rows if r["qualified_name"] == name]
        block = [r for r in rows if r["qualified_name"].startswith(name + ".")]
        block = sorted(block + under, key=rows.index) if block else []
        matches = []
        for found in (under, block):
            expected = _expected(found, shown) if found else ["-"]
            if set(expected) <= set(cells):
                # MACs follow params, read at a glance: within their 3 figures.
                macs = _si(cells[cells.index(expected[1]) + 1])
                if macs == pytest.approx(sum(r["macs"] for r in found), rel=0.005, abs=0.5):
                    matches.append(found)
        assert matches, f"no row or block has the cells of: {line}"
        if not name_text.startswith(tuple(GUIDES)):
            top_params += sum(r["params"] for r in matches[0])
    totals = document["totals"]
    assert top_params == totals["params"], "the top level adds up to the totals"
    total_cells = re.split(r"\s{2,}", total.strip())
    assert f"{totals['params']:,}" in total_cells
    assert _si(total_cells[-1]) == pytest.approx(totals["macs"], rel=0.005)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    ("model", "depth"), TABLES, ids=[f"{m}-{d or 'default'}" for m, d in TABLES]
)
def test_table_at_a_width(
    cli, monkeypatch, snapshot, model: str, depth: str | None, width: int
) -> None:  # type: ignore[no-untyped-def]
    text = _table(cli, monkeypatch, model, depth, width)
    snapshot(f"table/{model}-{depth or 'default'}-{width}.txt", text)
    _check_against_json(text, _json(cli, model), width)


def test_the_default_shows_stages_and_blocks_and_says_how_to_open_them(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = _table(cli, monkeypatch, "resnet50", None, 80)
    names = [_name(line) for line in _body(text)[1]]
    assert names[3:9] == ["maxpool", "layer1", "layer1.0", "layer1.1", "layer1.2", "layer2"]
    assert "layer1.0.conv2" not in text
    # torchinfo's depth=2 has 26 rows: the same, and the flatten it does not show.
    assert len(names) == 27
    last = " ".join(" ".join(text.rstrip("\n").split("\n")[-2:]).split())
    assert last == (
        "Depth 2 of 4 (the default): --depth 3 opens one more level, --depth all shows all "
        "175 layers."
    )
    assert "Left out to fit 80 columns: Eff. padding; every column shows from 84 columns." in text


def test_depth_opens_and_folds(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    one = _table(cli, monkeypatch, "resnet50", "1", 120)
    assert [_name(line) for line in _body(one)[1]][4:8] == ["layer1", "layer2", "layer3", "layer4"]
    assert "layer3.2" not in one
    three = _table(cli, monkeypatch, "resnet50", "3", 120)
    assert "│ ├─layer1.0.conv2 " in three and "│ ├─layer1.0.downsample " in three
    assert "layer1.0.downsample.0" not in three
    every = _table(cli, monkeypatch, "resnet50", "all", 120)
    assert "│ │ ├─layer1.0.downsample.0 " in every
    # Each of the 175 rows, and the 4 stages, 16 blocks and 4 downsample blocks.
    assert len(_body(every)[1]) == 175 + 24
    assert "Depth" not in every  # nothing is folded: no note
    for depth in ("0", "x", "1.5", "-1"):
        result = cli("net", "resnet50", "--depth", depth)
        assert (result.code, result.stdout) == (2, "")
        assert result.stderr == (
            f"error: --depth: expected a whole number of at least 1, or all, got '{depth}'\n"
        )
    for other in (["--json"], ["--format", "csv"], ["--format", "markdown"], ["--chart"]):
        result = cli("net", "resnet50", "--depth", "1", *other)
        assert result.code == 2
        assert result.stderr == (
            "error: --depth: folds the table's rows; json, csv and markdown keep every row\n"
        )


def test_names_shorten_from_the_left_and_columns_give_way_in_order(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    wide = _table(cli, monkeypatch, "efficientnet_b0", "all", 200)
    assert "features.6.2.block.2.scale_activation " in wide and "Left out" not in wide
    narrow = _table(cli, monkeypatch, "efficientnet_b0", "all", 80)
    assert "Left out to fit 80 columns: Eff. padding, Kind;" in narrow
    # Names lose their start, at a dot: the end says what the layer is.
    assert "│ │   │ ├─…block.2.scale_activation  96×1×1 " in narrow
    assert all(len(line) <= 80 for line in narrow.splitlines())
    tiny = _table(cli, monkeypatch, "resnet50", None, 40)  # below 80: nothing cut still
    assert "25,557,032" in tiny
    assert "Left out to fit 40 columns: Eff. padding, Kind, Eff. stride;" in " ".join(tiny.split())


def test_a_pipe_without_columns_gets_the_whole_table(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COLUMNS", raising=False)
    text = cli("net", "efficientnet_b0", "--depth", "all").stdout
    assert "padding" in text.splitlines()[2] and "Left out" not in text
    # Prose is not wrapped either: one line per warning.
    assert sum(line.startswith("warning ") for line in text.splitlines()) == 1
    assert "…" not in text


def test_in_a_real_terminal_of_80_by_24(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`convcalc net resnet50` in a pseudo-terminal of 80×24, as a person sees it: the
    last screen holds the last stage's blocks, whole numbers, the totals and how to open
    the table, and no line is longer than the terminal (so none wraps)."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(TERM="xterm-256color", PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "convcalc", "net", "resnet50"],
        stdin=follower, stdout=follower, stderr=follower, env=env, cwd=tmp_path,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    raw = b"".join(chunks).decode()
    assert "\x1b[" in raw, "a terminal gets colour"
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", raw).replace("\r\n", "\n")
    output = plain.rstrip("\n").split("\n")
    assert all(len(line) <= 80 for line in output), max(output, key=len)
    screen = output[-23:]  # and the shell's prompt under them
    seen = "\n".join(screen)
    for text in ("layer4 ", "├─layer4.0", "└─layer4.2", "fc ", "25,557,032", "4.09G", "Total"):
        assert text in seen, text
    assert not re.search(r"[0-9,.]…|…[0-9]", seen), "a number cut"
    assert screen[-2].startswith("Depth 2 of 4 (the default): --depth 3 opens one more level")


def test_csv_names_rows_as_the_table_does(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "resnet50", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "name", "kind", "output_shape", "params", "macs", "field_size", "effective_stride",
        "effective_padding", "path",
    ]  # fmt: skip
    conv2 = next(row for row in rows if row["name"] == "layer1.0.conv2")
    assert conv2["path"] == ("layers[4].sequential.layers[0].bottleneck.layers[0].residual.body[3]")
    assert conv2["params"] == str(64 * 64 * 3 * 3)
    assert len(rows) == 175  # every row, whatever the depth of the table


def test_layer_selects_a_block_by_its_output() -> None:
    analysis = analyze(load("resnet50"))
    block = find(analysis.rows, "layer3.2")
    assert block is not None and block.qualified_name == "layer3.2.relu_2"
    assert find(analysis.rows, "layer1.0.conv2") is not None
    assert find(analysis.rows, "layers[4].sequential.layers[0].bottleneck.layers[1]") is not None
    assert find(analysis.rows, "layer9") is None and find(analysis.rows, "layer3.2.x") is None
    # The field of the block's output unit is its last row's.
    assert (
        unit_field(analysis, "3,3", "layer3.2").spans
        == unit_field(analysis, "3,3", "layer3.2.relu_2").spans
    )


def test_blocks_of_graphs_and_gates() -> None:
    """An FPN's blocks interleave as they run; each is shown once, where it starts.
    EfficientNet's residual `features.2.1` is a block and its sum a row of that name."""
    fpn = build(analyze(load("fasterrcnn_resnet50_fpn")).rows)
    top = [line.name for line in lines(fpn, 1)]
    assert top == ["body", "fpn", "pool", "0", "1", "2", "3"]
    inner = next(line.item for line in lines(fpn, 2) if line.name == "fpn.inner_blocks")
    assert [line.name for line in lines(inner, 1)] == [  # type: ignore[arg-type]
        "fpn.inner_blocks.3", "fpn.inner_blocks.2", "fpn.inner_blocks.1", "fpn.inner_blocks.0",
    ]  # fmt: skip
    effnet = build(analyze(load("efficientnet_b0")).rows)
    shown = [(line.guides, line.name) for line in lines(effnet, 4)]
    block = shown.index(("│ └─", "features.2.1"))
    assert shown[block + 1 : block + 3] == [
        ("│   ├─", "features.2.1.block"),
        ("│   └─", "features.2.1"),  # the sum, its block's last row
    ]


def test_python_summary_is_the_command_lines_table(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    analysis = analyze(load("resnet50"))
    for depth, flag in ((2, None), ("all", "all"), (1, "1")):
        text = _table(cli, monkeypatch, "resnet50", flag, 100).splitlines()
        summary = analysis.summary(depth, width=100).splitlines()  # type: ignore[arg-type]
        # The same, up to the note on how to open it, which names the API's argument.
        notes = [i for i, line in enumerate(text) if line.startswith("Depth ")] or [len(text)]
        assert summary[: notes[0]] == text[: notes[0]]
        api = " ".join(summary[notes[0] :]).split()
        cli_note = " ".join(text[notes[0] :]).replace("--depth all", "summary(depth='all')")
        assert api == re.sub(r"--depth (\d)", r"summary(depth=\1)", cli_note).split()
    for bad in (0, "deep", True, 1.5):
        with pytest.raises(ConvcalcError, match="depth: expected a whole number"):
            analysis.summary(bad)  # type: ignore[arg-type]
    assert len(repr(analysis)) < 400


def test_jupyter_and_rich_show_the_table() -> None:
    from rich.console import Console

    analysis = analyze(load("resnet50"))
    page = analysis._repr_html_()
    assert page.count("<tr>") == 27 + 2  # the rows to depth 2, the titles, the total
    assert '<td style="text-align:right">25,557,032</td>' not in page  # a total is a th
    assert '<th style="text-align:right">25,557,032</th>' in page
    assert "└─layer4.2</td>" in page and "Eff. padding" in page
    assert "summary(depth=3) opens one more level" in page
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(analysis)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "└─layer4.2" in shown and "25,557,032" in shown
    assert all(len(line) <= 80 for line in shown.splitlines())
