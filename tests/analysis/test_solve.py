"""`solve`: every answer is right when put back into a layer, the known answers are
found, and a brute force over small bounds finds nothing that it missed."""

from __future__ import annotations

import json
from itertools import product

import pytest

from convcalc.analysis.solve import layers_for_field, solve
from convcalc.errors import ConvcalcError
from convcalc.loader import build_layer


def output_of(setting, size: int, transpose: bool) -> int:  # type: ignore[no-untyped-def]
    params = {
        "out_channels": 1,
        "kernel_size": setting.kernel_size,
        "stride": setting.stride,
        "dilation": setting.dilation,
        "padding": [list(setting.padding)],
    }
    if transpose:
        params["output_padding"] = setting.output_padding
    layer = build_layer("conv_transpose" if transpose else "conv", params)
    return layer.apply((1, size)).output_shape[1]


def test_224_to_112_with_a_3x3_stride_2() -> None:
    found = {
        (s.padding, s.dropped)
        for s in solve(224, 112, kernel_sizes=(3,), strides=(2,), dilations=(1,))
    }
    assert ((0, 1), 0) in found
    assert ((1, 1), 0) in found


def test_best_first() -> None:
    best = solve(224, 112)[0]
    assert best.dropped == 0
    assert best.padding[0] == best.padding[1]


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize(("size", "output"), [(224, 112), (7, 4), (10, 10), (5, 3), (56, 112)])
def test_every_solution_gives_the_output(size: int, output: int, transpose: bool) -> None:
    for setting in solve(size, output, transpose=transpose):
        assert output_of(setting, size, transpose) == output


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize(("size", "output"), [(9, 4), (8, 8), (6, 13), (12, 5)])
def test_brute_force_finds_nothing_missed(size: int, output: int, transpose: bool) -> None:
    # Every kernel, stride, dilation and split of the padding up to small bounds, built
    # as a layer and run; solve lists each way to place the total padding evenly.
    found = {
        (s.kernel_size, s.stride, s.dilation, s.padding[0] + s.padding[1], s.output_padding)
        for s in solve(size, output, transpose=transpose, kernel_sizes=range(1, 6),
                       strides=range(1, 4), dilations=range(1, 3))
    }  # fmt: skip
    for kernel, stride, dilation, before, after in product(
        range(1, 6), range(1, 4), range(1, 3), range(8), range(8)
    ):
        if kernel == 1 and dilation > 1:
            continue
        extras = range(max(stride, dilation)) if transpose else [None]
        span = (kernel - 1) * dilation + 1
        for extra in extras:
            params = {"out_channels": 1, "kernel_size": kernel, "stride": stride,
                      "dilation": dilation, "padding": [[before, after]]}  # fmt: skip
            if transpose:
                params["output_padding"] = extra
            layer = build_layer("conv_transpose" if transpose else "conv", params)
            try:
                result = layer.apply((1, size)).output_shape[1]
            except ConvcalcError:
                continue
            padding_only = not transpose and (
                before >= span or (output - 1) * stride - before > size - 1
            )
            if result == output and not padding_only:
                assert (kernel, stride, dilation, before + after, extra) in found


def test_field_target_with_doubling_dilation() -> None:
    # 3×3 with dilations 1, 2, 4, …: the field is 2^(n+1) − 1: 511 ≥ 500 after 8 layers.
    plan = layers_for_field(500, kernel_size=3, growth=2)
    assert len(plan.sizes) == 8
    assert plan.sizes[-2:] == (255, 511)
    assert plan.dilations[:3] == (1, 2, 4)


def test_field_target_with_strides() -> None:
    # k3 s2: 3, 3 + 2·2 = 7, 7 + 2·4 = 15: r = 2^(n+1) − 1 again.
    assert layers_for_field(15, kernel_size=3, stride=2).sizes == (3, 7, 15)


def test_field_target_out_of_reach() -> None:
    with pytest.raises(ConvcalcError, match="never widens"):
        layers_for_field(10, kernel_size=1)


def test_solve_command(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("solve", "--input", "224", "--output", "112", "--kernel-size", "3", "--json")
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert {"kernel_size": 3, "stride": 2, "dilation": 1, "padding": [0, 1], "dropped": 0} in (
        document["solutions"]
    )
    transposed = json.loads(
        cli("solve", "--input", "56", "--output", "112", "--transpose", "--json").stdout
    )
    assert set(transposed["solutions"][0]) == {
        "kernel_size", "stride", "dilation", "padding", "output_padding", "checkerboard",
        "dropped",
    }  # fmt: skip
    field = json.loads(cli("solve", "--field", "500", "--dilation-growth", "2", "--json").stdout)
    assert field["field_target"]["layers"] == 8
    table = cli("solve", "--input", "224", "--output", "112")
    assert table.code == 0 and "best first" in table.stdout
    assert cli("solve", "--input", "224").code == 2
