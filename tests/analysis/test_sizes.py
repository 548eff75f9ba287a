"""`sizes`: which inputs a network accepts, its smallest valid input, and the period."""

from __future__ import annotations

import json
import textwrap

from convcalc.analysis.analyze import analyze
from convcalc.analysis.sizes import check_size, period, smallest_valid
from convcalc.loader import build_model
from convcalc.opening import open_model
from convcalc.source import parse

# Four levels of 2× pooling with padded 3×3 convolutions; the decoder doubles back with
# 2×2 stride-2 transposed convolutions and concatenates the skips.
LEVEL = """\
- conv: {out_channels: 8, kernel_size: 3, padding: 1}
- concat:
  - []
  - - max_pool: {kernel_size: 2}
    INNER
    - conv_transpose: {out_channels: 8, kernel_size: 2, stride: 2}
"""


def small_unet():  # type: ignore[no-untyped-def]
    inner = "- conv: {out_channels: 8, kernel_size: 3, padding: 1}"
    for _ in range(4):
        inner = LEVEL.replace("INNER", textwrap.indent(inner, "    ").lstrip())
    text = "input: [1, 64, 64]\nlayers:\n" + textwrap.indent(inner, "  ")
    return build_model(parse(text, "unet.yaml"))


def test_unet_is_valid_exactly_at_multiples_of_16() -> None:
    model = small_unet()
    checks = [check_size(model, (1, 64, 64), n) for n in range(1, 100)]
    assert [c.size for c in checks if c.valid] == [16, 32, 48, 64, 80, 96]
    assert [c.size for c in checks if c.clean] == [16, 32, 48, 64, 80, 96]
    found = period(checks, lambda c: c.valid)
    assert found is not None
    assert (found.start, found.period, found.residues) == (16, 16, (0,))


def test_invalid_sizes_say_where() -> None:
    check = check_size(small_unet(), (1, 64, 64), 33)
    assert not check.valid and check.output_shape is None
    assert check.issues[0].code == "invalid"
    assert check.issues[0].path == "layers[1]"
    assert "concat needs every branch to give the same spatial size" in check.issues[0].message


def test_torchvision_minimum_sizes() -> None:
    # torchvision publishes min_size 63 for AlexNet and 32 for VGG-16 (their weights'
    # meta in torchvision.models).
    alexnet, vgg16 = open_model("alexnet"), open_model("vgg16")
    assert smallest_valid(alexnet, (3, 224, 224)) == 63
    assert smallest_valid(vgg16, (3, 224, 224)) == 32


def test_no_warning_on_vgg16_at_224() -> None:
    assert analyze(open_model("vgg16"), (3, 224, 224)).warnings == ()


def test_valid_but_not_clean() -> None:
    # VGG-16 at 33: the first pool drops the last row and column.
    check = check_size(open_model("vgg16"), (3, 224, 224), 33)
    assert check.valid and not check.clean
    assert {i.code for i in check.issues} == {"dropped-input"}


def test_sizes_command(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("sizes", "alexnet", "--range", "60..66", "--min", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert document["smallest_valid"] == 63
    by_size = {entry["input"]: entry for entry in document["sizes"]}
    assert set(by_size[62]) == {"input", "input_shape", "valid", "clean", "output_shape", "issues"}
    assert by_size[62]["valid"] is False and by_size[62]["output_shape"] is None
    assert by_size[63]["valid"] is True and by_size[63]["output_shape"] == [1000]
    table = cli("sizes", "alexnet", "--min")
    assert "Smallest valid input: 63" in table.stdout
    assert cli("sizes", "alexnet", "--range", "9..3").code == 2


def test_sizes_alone_answers_the_common_question(cli) -> None:  # type: ignore[no-untyped-def]
    # VGG-16: five 2×2 pools, so clean inputs are multiples of 2^5 = 32; valid from 32.
    result = cli("sizes", "vgg16", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["smallest_valid"] == 32
    assert report["clean_when"] == {"from": 192, "period": 32, "residues": [0]}
    assert [check["input"] for check in report["sizes"]] == list(range(224 - 32, 224 + 33))
