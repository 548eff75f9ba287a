"""Pictures of the receptive field: `net --plot` (SVG/PNG, matplotlib), `--field-of`, and
the terminal bar chart `net --chart` (Rich only).

The exact fields are checked against hand calculations and PyTorch's own formulas; the
files are parsed back (SVG as XML, PNG by its header) and their shapes measured.
"""

from __future__ import annotations

import math
import re
import struct
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from convcalc.render.chart import bar
from convcalc.render.plot import unit_field
from tests.helpers import ROOT, analyze_yaml

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

# Three 3×3 convolutions with padding 1 on 9×9: a field of 7 = 1 + 3·(3 − 1), effective
# padding 3, stride 1, so unit (y, x) sees rows y − 3 … y + 3 and columns x − 3 … x + 3.
THREE = """\
name: three
input: [1, 9, 9]
layers:
  - conv: {out_channels: 1, kernel_size: 3, padding: 1}
  - conv: {out_channels: 1, kernel_size: 3, padding: 1}
  - conv: {name: last, out_channels: 1, kernel_size: 3, padding: 1}
"""
# Down by a strided convolution and up again by a transposed one (as in a U-Net).
DOWN_UP = """\
name: down-up
input: [1, 6, 6]
layers:
  - conv: {out_channels: 1, kernel_size: 3, stride: 2, padding: 1}
  - conv_transpose: {out_channels: 1, kernel_size: 3, stride: 2, padding: 1, output_padding: 1}
"""
ADAPTIVE = """\
input: [1, 10, 7]
layers:
  - adaptive_avg_pool: {output_size: [3, 3]}
"""
CLASSIFIER = """\
name: classifier
input: [3, 32, 32]
layers:
  - conv: {name: stem, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  - max_pool: {kernel_size: 3, stride: 2, padding: 1}
  - conv: {out_channels: 8, kernel_size: 3, dilation: 8, padding: 8}
  - adaptive_avg_pool: {output_size: 1}
  - flatten
  - linear: {out_features: 10}
"""


# --- the exact field of one unit (no matplotlib needed) ---


def test_unit_field_of_three_3x3_convolutions() -> None:
    analysis = analyze_yaml(THREE)
    corner = unit_field(analysis, "0,0")
    assert corner.row.name == "last"  # by default the last row with a field
    assert corner.spans == ((-3, 3), (-3, 3))
    # Unit 0 reaches 3 before the input, unit 8 reaches 8 + 3 = 11, 3 past its end (8).
    assert corner.border == ((3, 3), (3, 3))
    assert unit_field(analysis, "4,6").spans == ((1, 7), (3, 9))
    # In padding: rows −3 … −1 of the 7 columns, then columns −3 … −1 of rows 0 … 3.
    assert corner.outside(0, 1) == [((-3, -1), (-3, 3)), ((0, 3), (-3, -1))]
    assert unit_field(analysis, "4,4").outside(0, 1) == []
    # An earlier layer, by path: one convolution, a field of 3.
    assert unit_field(analysis, "0,0", "layers[0]").spans == ((-1, 1), (-1, 1))


def test_unit_field_after_a_transposed_convolution_is_per_unit() -> None:
    """By hand along one axis: the strided convolution's unit i sees 2i − 1 … 2i + 1; the
    transposed convolution's output o = 2i − 1 + k (k = 0, 1, 2) takes input i = (o + 1 −
    k) / 2 where whole, so even units read one unit and odd units two. y·S − P with the
    summary's r = 5, S = 1, P = 2 would give every unit 5 positions."""
    analysis = analyze_yaml(DOWN_UP)
    spans = [unit_field(analysis, f"{o},0").spans[0] for o in range(6)]
    assert spans == [(-1, 1), (-1, 3), (1, 3), (1, 5), (3, 5), (3, 7)]
    row = analysis.rows[-1]
    assert row.receptive_field is not None and row.receptive_field.size == (5, 5)


def test_unit_field_after_a_transposed_convolution_agrees_with_pytorch() -> None:
    """The positions inside the input that each unit's gradient reaches are the drawn
    span cut to the input (outside it is padding, Araujo et al.'s convention)."""
    torch = pytest.importorskip("torch")
    down = torch.nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
    up = torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    for layer in (down, up):
        torch.nn.init.ones_(layer.weight)
    image = torch.ones(1, 1, 6, 6, requires_grad=True)
    output = up(down(image))
    analysis = analyze_yaml(DOWN_UP)
    for y, x in [(0, 0), (1, 5), (3, 2), (5, 5)]:
        (gradient,) = torch.autograd.grad(output[0, 0, y, x], image, retain_graph=True)
        rows, cols = (gradient[0, 0] != 0).nonzero(as_tuple=True)
        spans = unit_field(analysis, f"{y},{x}").spans
        for seen, span in zip((rows, cols), spans, strict=True):
            assert span is not None
            assert (int(seen.min()), int(seen.max())) == (max(span[0], 0), min(span[1], 5))


def test_unit_field_of_an_uneven_adaptive_pool() -> None:
    """PyTorch's adaptive pooling: bin i spans floor(i·n / m) … ceil((i + 1)·n / m) − 1."""
    analysis = analyze_yaml(ADAPTIVE)
    for i in range(3):
        expected = tuple(
            (i * n // 3, -(-(i + 1) * n // 3) - 1)
            for n in (10, 7)  # the input's H and W
        )
        assert unit_field(analysis, f"{i},{i}").spans == expected
    assert unit_field(analysis, "1,1").spans == ((3, 6), (2, 4))  # not a multiple of 10/3


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ("9,0", "on axis H the indices run 0 … 8"),
        ("0,9", "on axis W the indices run 0 … 8"),
        ("0", "one unit index per spatial axis (H, W), such as 0,0"),
        ("0,0,0", "one unit index per spatial axis"),
        ("a,b", "got 'a,b'"),
        ("-1,0", "got '-1,0'"),
        ("²,0", "got '²,0'"),  # a digit, but no decimal: int() does not read it
    ],
)
def test_bad_units_are_refused(cli, tmp_path: Path, unit: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "-", "--plot", str(tmp_path / "f.svg"), "--field-of", unit, stdin=THREE)
    assert result.code == 2
    assert result.stderr.startswith("error: --field-of: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not (tmp_path / "f.svg").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plot", "f.pdf"], "error: --plot: expected a file name ending in .svg or .png"),
        (["--plot", "f"], "error: --plot: expected a file name ending in .svg or .png"),
        (["--field-of", "0,0"], "error: --field-of: draws a picture: give --plot FILE too"),
        (["--plot", "f.svg", "--layer", "last"], "error: --layer: picks the layer of"),
        (["--plot", "f.svg", "--field-of", "0", "--layer", "nope"], "no layer or block with"),
        (["--plot", "f.svg", "--field-of", "0", "--layer", "layers[5]"], "no field of its own"),
        (["--chart", "--json"], "error: --chart: prints instead of the table"),
    ],
)
def test_bad_picture_options_are_refused(
    cli, tmp_path: Path, args: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    args = [str(tmp_path / a) if a.startswith("f") else a for a in args]
    result = cli("net", "-", *args, stdin=CLASSIFIER)
    assert result.code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_name_given_twice_is_refused_before_any_picture(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Qualified names are unique (SPEC §6.1), so --layer never finds two rows.
    model = """\
input: [1, 8, 8]
layers:
  - repeat: {times: 2, layers: [conv: {name: c, out_channels: 1, kernel_size: 3}]}
"""
    result = cli("net", "-", "--plot", str(tmp_path / "f.svg"), "--field-of", "0,0",
                 "--layer", "c", stdin=model)  # fmt: skip
    assert result.code == 2
    assert "the name 'c' is given twice: here and at <stdin>:3" in result.stderr
    assert not (tmp_path / "f.svg").exists()


def test_without_matplotlib_one_line_says_what_to_install(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = cli("net", "-", "--plot", str(tmp_path / "f.png"), stdin=THREE)
    assert result.code == 2
    assert result.stderr == (
        "error: --plot: pictures need matplotlib: pip install 'convcalc[plot]'\n"
    )


# --- the terminal chart (Rich only) ---


def test_bar_lengths_are_in_eighths() -> None:
    assert bar(1.0, 4) == "████"
    assert bar(0.5, 3) == "█▌"
    assert bar(1 / 32, 4) == "▏"
    assert bar(0.0, 4) == ""


def _chart_rows(text: str) -> list[tuple[str, str, str]]:
    """(layer, bar, field) of each line of a chart under its heading."""
    rows = []
    for line in text.splitlines()[1:]:
        match = re.fullmatch(r"(\S+) +([█▏▎▍▌▋▊▉]*) *(\S+)", line)
        assert match, line
        rows.append((match[1], match[2], match[3]))
    return rows


def _eighths(drawn: str) -> int:
    return sum(8 if c == "█" else "▏▎▍▌▋▊▉".index(c) + 1 for c in drawn)


def _markdown_fields(cli, model: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    table = cli("net", "-", "--format", "markdown", stdin=model).stdout
    cells = [line.split(" | ") for line in table.splitlines()[2:] if line.startswith("| ")]
    return [(c[0].removeprefix("| "), c[5]) for c in cells]


def test_chart_matches_the_table_linear(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "-", "--chart", stdin=THREE)
    assert result.code == 0 and "\x1b" not in result.stdout  # a pipe gets plain text
    assert result.stdout.splitlines()[0].startswith("Receptive field per layer (linear scale")
    rows = _chart_rows(result.stdout)
    assert [(layer, field) for layer, _, field in rows] == _markdown_fields(cli, THREE)
    assert [field for _, _, field in rows] == ["3", "5", "7"]
    # 40 cells for the largest field; the others in proportion, to an eighth.
    assert [_eighths(drawn) for _, drawn, _ in rows] == [round(320 * r / 7) for r in (3, 5, 7)]


def test_chart_matches_the_table_log(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "-", "--chart", stdin=CLASSIFIER)
    assert result.code == 0 and "\x1b" not in result.stdout
    assert "(log scale" in result.stdout.splitlines()[0]
    rows = _chart_rows(result.stdout)
    assert [(layer, field) for layer, _, field in rows] == _markdown_fields(cli, CLASSIFIER)
    # stem 3; the pool 3 + 2·2 = 7; the dilated conv 7 + 16·4 = 71 (kernel (3 − 1)·8 + 1
    # = 17 at effective stride 4); then the global pool and the rest: no field, no bar.
    assert [field for _, _, field in rows] == ["3", "7", "71", "—", "—", "—"]
    lengths = [_eighths(drawn) for _, drawn, _ in rows]
    assert lengths[:3] == [round(320 * math.log(r) / math.log(71)) for r in (3, 7, 71)]
    assert lengths[3:] == [0, 0, 0]


# --- the files (matplotlib) ---


def _svg(path: Path) -> ElementTree.Element:
    root = ElementTree.parse(path).getroot()
    assert root.tag == SVG + "svg"
    return root


def _points(root: ElementTree.Element, gid: str) -> list[tuple[float, float]]:
    """The vertices of the path drawn for the artist with this gid, in SVG units."""
    group = root.find(f".//{SVG}g[@id='{gid}']")
    assert group is not None, gid
    path = group.find(f"{SVG}path")
    assert path is not None
    numbers = [float(n) for n in re.findall(r"-?[\d.]+(?:e-?\d+)?", path.attrib["d"])]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def _box(root: ElementTree.Element, gid: str) -> tuple[float, float, float, float]:
    xs, ys = zip(*_points(root, gid), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def matplotlib() -> None:
    pytest.importorskip("matplotlib")


def _plot(cli, tmp_path: Path, model: str, name: str, *args: str) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    result = cli("net", "-", "--plot", str(path), *args, stdin=model)
    assert result.code == 0, result.stderr
    assert path.exists()
    return path


@pytest.mark.usefixtures("matplotlib")
def test_growth_svg_depends_on_the_model(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    three = _plot(cli, tmp_path, THREE, "three.svg")
    classifier = _plot(cli, tmp_path, CLASSIFIER, "classifier.svg")
    assert three.read_text() != classifier.read_text()
    assert _plot(cli, tmp_path, THREE, "again.svg").read_text() == three.read_text()
    text = "".join(_svg(classifier).itertext())
    assert "stem" in text and "classifier" in text and "receptive field 71" in text
    # Log scale: the heights of the field points 3, 5, 7 are in the ratio of their logs
    # (SVG y grows downward).
    heights = [-y for _, y in _points(_svg(three), "field-HW")]
    assert len(heights) == 3
    ratio = (heights[1] - heights[0]) / (heights[2] - heights[1])
    assert ratio == pytest.approx(math.log(5 / 3) / math.log(7 / 5), rel=1e-3)


@pytest.mark.usefixtures("matplotlib")
def test_growth_draws_one_line_per_axis_where_axes_differ(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = THREE.replace("kernel_size: 3, padding: 1}", "kernel_size: [3, 1], padding: [1, 0]}")
    root = _svg(_plot(cli, tmp_path, model, "f.svg"))
    heights = [y for _, y in _points(root, "field-W")]
    assert len(heights) == 3 and len(set(heights)) == 1  # 1 on W throughout
    assert len({y for _, y in _points(root, "field-H")}) == 3  # 3, 5, 7 on H
    assert root.find(f".//{SVG}g[@id='map-HW']") is not None  # the maps stay 9×9


@pytest.mark.usefixtures("matplotlib")
def test_growth_png(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    three = _plot(cli, tmp_path, THREE, "three.png")
    classifier = _plot(cli, tmp_path, CLASSIFIER, "classifier.PNG")
    width, height = _png_size(three)
    assert 600 < width < 3000 and 400 < height < 2000
    assert three.read_bytes() != classifier.read_bytes()


@pytest.mark.usefixtures("matplotlib")
def test_field_of_svg_draws_the_exact_field(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corner = _svg(_plot(cli, tmp_path, THREE, "corner.svg", "--field-of", "0,0"))
    left, top, right, bottom = _box(corner, "input")
    cell = (right - left) / 9
    assert (bottom - top) / 9 == pytest.approx(cell)
    # The field: 7×7 cells from 3 cells before the input's corner; the padding: 3 cells
    # around it; the centre on the unit's own position.
    assert _box(corner, "field") == pytest.approx(
        (left - 3 * cell, top - 3 * cell, left + 4 * cell, top + 4 * cell), abs=0.01
    )
    assert _box(corner, "padding") == pytest.approx(
        (left - 3 * cell, top - 3 * cell, right + 3 * cell, bottom + 3 * cell), abs=0.01
    )
    marker = corner.find(f".//{SVG}g[@id='centre']//{SVG}use")
    assert marker is not None
    centre = (float(marker.attrib["x"]), float(marker.attrib["y"]))
    assert centre == pytest.approx((left + cell / 2, top + cell / 2), abs=0.01)
    # The part in padding: the band above (3×7) and the one to the left (4×3).
    assert _box(corner, "field-in-padding-0") == pytest.approx(
        (left - 3 * cell, top - 3 * cell, left + 4 * cell, top), abs=0.01
    )
    assert _box(corner, "field-in-padding-1") == pytest.approx(
        (left - 3 * cell, top, left, top + 4 * cell), abs=0.01
    )
    assert "in padding: 33 positions" in "".join(corner.itertext())

    middle_path = _plot(cli, tmp_path, THREE, "middle.svg", "--field-of", "4,4")
    middle = _svg(middle_path)
    left, top, right, _ = _box(middle, "input")  # its own layout: the legend differs
    cell = (right - left) / 9
    assert _box(middle, "field") == pytest.approx(
        (left + cell, top + cell, left + 8 * cell, top + 8 * cell), abs=0.01
    )
    assert middle.find(f".//{SVG}g[@id='field-in-padding-0']") is None
    assert middle_path.read_text() != (tmp_path / "corner.svg").read_text()


@pytest.mark.usefixtures("matplotlib")
def test_field_of_after_a_transposed_convolution(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Unit (1, 0) sees rows −1 … 3 and columns −1 … 1 (worked out above): 5×3 cells."""
    root = _svg(_plot(cli, tmp_path, DOWN_UP, "f.svg", "--field-of", "1,0"))
    left, top, right, _ = _box(root, "input")
    cell = (right - left) / 6
    assert _box(root, "field") == pytest.approx(
        (left - cell, top - cell, left + 2 * cell, top + 4 * cell), abs=0.01
    )


@pytest.mark.usefixtures("matplotlib")
def test_field_of_png_and_other_dimensions(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    width, height = _png_size(_plot(cli, tmp_path, THREE, "f.png", "--field-of", "2,3"))
    assert width > 500 and height > 500
    audio = str(ROOT / "examples/audio_dilated_1d.yaml")
    result = cli("net", audio, "--input", "1x40", "--plot", str(tmp_path / "a.svg"),
                 "--field-of", "30", "--json")  # fmt: skip
    assert result.code == 0 and result.stdout.startswith("{")  # the JSON still prints
    root = _svg(tmp_path / "a.svg")
    left, _, right, _ = _box(root, "input")
    field_left, _, field_right, _ = _box(root, "field")
    cell = (right - left) / 40
    # The causal stack sees the 128 samples up to its own: −97 … 30.
    assert (field_left, field_right) == pytest.approx((left - 97 * cell, left + 31 * cell))
    video = str(ROOT / "examples/video_3d.yaml")
    result = cli("net", video, "--plot", str(tmp_path / "v.svg"), "--field-of", "1,3,3")
    assert result.code == 0, result.stderr
    # On D: effective stride 4, padding 6, size 16, so unit 1 sees 4 − 6 … 4 − 6 + 15.
    assert "on axis D the unit sees −2…13" in "".join(_svg(tmp_path / "v.svg").itertext())


@pytest.mark.usefixtures("matplotlib")
def test_an_unwritable_file_is_an_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "-", "--plot", str(tmp_path / "missing" / "f.svg"), stdin=THREE)
    assert result.code == 2
    assert result.stderr.startswith("error: --plot: cannot write ")
    assert result.stderr.count("\n") == 1


def test_a_model_without_spatial_axes_draws_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = "input: [10]\nlayers:\n  - linear: {out_features: 4}\n  - relu\n"
    for picture in ("f.png", "f.svg"):
        result = cli("net", "-", "--plot", str(tmp_path / picture), stdin=model)
        assert (result.code, result.stdout) == (2, "")
        assert result.stderr == (
            "error: --plot: draws the field over the spatial axes, and the input 10 has none\n"
        )
    assert list(tmp_path.iterdir()) == []


# A layer name in mathtext ($…$ with a macro matplotlib does not know, which it would
# refuse), one with glyphs its default font lacks (a warning each), and a name in
# Rich's markup.
ODD_NAMES = """\
name: "[bold]odd[/] $x$"
input: [1, 9, 9]
layers:
  - conv: {name: "$\\\\undefinedmacro$", out_channels: 1, kernel_size: 3}
  - conv: {name: "日本語", out_channels: 1, kernel_size: 3}
"""


@pytest.mark.usefixtures("matplotlib")
@pytest.mark.parametrize("picture", ["f.svg", "f.png"])
def test_matplotlib_says_nothing_and_draws_names_as_written(tmp_path: Path, picture: str) -> None:
    from tests.hostile.harness import run_convcalc

    model = tmp_path / "odd.yaml"
    model.write_text(ODD_NAMES)
    path = tmp_path / picture
    # A configuration folder matplotlib cannot make: it logs that it made another.
    quiet = {"MPLCONFIGDIR": str(model / "not-a-folder")}
    for args in ([], ["--field-of", "0,0", "--layer", "日本語"]):
        result = run_convcalc(["net", str(model), "--plot", str(path), *args], env=quiet)
        assert (result.code, result.stderr) == (0, ""), result.stderr
    if picture.endswith(".svg"):
        text = "".join(_svg(path).itertext())
        assert "[bold]odd[/] $x$" in text and "日本語" in text
        growth = tmp_path / "growth.svg"
        assert run_convcalc(["net", str(model), "--plot", str(growth)], env=quiet).stderr == ""
        assert "$\\undefinedmacro$" in "".join(_svg(growth).itertext())


@pytest.mark.usefixtures("matplotlib")
def test_titles_and_labels_escape_control_characters(tmp_path: Path) -> None:
    # A model file may not hold such names; an imported model (here plain data) may.
    from convcalc.analysis.analyze import analyze
    from convcalc.api import from_dict
    from convcalc.render.plot import write_plot

    model = from_dict(
        {
            "name": "m\x1b[31m\u202e",
            "input": [1, 9, 9],
            "layers": [{"conv": {"name": "two\nlines\x85", "out_channels": 1, "kernel_size": 3}}],
        }
    )
    analysis = analyze(model)
    growth, unit = tmp_path / "growth.svg", tmp_path / "unit.svg"
    write_plot(analysis, str(growth))
    write_plot(analysis, str(unit), "0,0", "two\nlines\x85")
    for path in (growth, unit):
        text = path.read_text()
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]", text)
        shown = "".join(_svg(path).itertext())
        assert "m\\x1b[31m\\u202e · " in shown and "two\\nlines\\x85" in shown
