"""The Python API: its doctests, its numbers against the command line's, its errors, and
its types as a user's type checker sees them."""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import convcalc
import convcalc.api
from convcalc import Conv, ConvcalcError, MaxPool, analyze, from_dict, load, loads
from tests.helpers import ROOT


@pytest.mark.parametrize("module", [convcalc, convcalc.api], ids=lambda m: m.__name__)
def test_doctests(module: object) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert attempted > 0
    assert failed == 0


def test_importing_the_package_imports_nothing_else() -> None:
    """The command line imports the package too: its names load when first used."""
    code = "import sys, convcalc; print(sorted(m for m in sys.modules if m.startswith('convcalc')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['convcalc']"


def test_every_public_name_resolves() -> None:
    for name in convcalc.__all__:
        assert getattr(convcalc, name) is not None
    with pytest.raises(AttributeError):
        convcalc.no_such_name  # noqa: B018


def test_layer_in_python_agrees_with_the_command_line(cli) -> None:  # type: ignore[no-untyped-def]
    result = analyze(
        Conv(out_channels=64, kernel_size=(7, 7), stride=2, padding=3, bias=False), [3, 224, 224]
    )
    out = cli(
        "layer", "conv", "--input", "3x224x224", "--out-channels", "64", "--kernel-size", "7",
        "--stride", "2", "--padding", "3", "--no-bias", "--json",
    )  # fmt: skip
    row = json.loads(out.stdout)
    assert list(result.output_shape) == row["output_shape"] == [64, 112, 112]
    assert result.totals.params == row["params"] == 64 * 3 * 7 * 7
    assert result.totals.macs == row["macs"] == 64 * 3 * 7 * 7 * 112 * 112


def test_the_three_ways_to_make_a_model_agree() -> None:
    text = (ROOT / "examples" / "vgg_style.yaml").read_text()
    import yaml

    from_text = analyze(loads(text))
    from_file = analyze(load(ROOT / "examples" / "vgg_style.yaml"))
    from_data = analyze(from_dict(yaml.safe_load(text)))
    for other in (from_file, from_data):
        assert other.totals == from_text.totals
        assert other.receptive_field == from_text.receptive_field
        assert [r.output_shape for r in other.rows] == [r.output_shape for r in from_text.rows]


def test_parameters_are_checked_and_kept_in_one_form() -> None:
    assert Conv(out_channels=8, kernel_size=[3, 5]) == Conv(out_channels=8, kernel_size=(3, 5))
    assert MaxPool(kernel_size=2, padding=[[0, 1]]).padding == ((0, 1),)
    for bad in ({"kernel_size": 0}, {"kernel_size": 3.0}, {"kernel_size": True}):
        with pytest.raises(ConvcalcError, match="kernel_size: expected"):
            Conv(out_channels=8, **bad)


def test_errors_say_what_was_expected() -> None:
    with pytest.raises(ConvcalcError, match="a single layer needs an input shape"):
        analyze(Conv(out_channels=8, kernel_size=3))
    with pytest.raises(ConvcalcError, match=r"layers\[0\]\.conv\.stride: expected a positive"):
        from_dict({"input": [3, 8, 8], "layers": [{"conv": {"out_channels": 1, "kernel_size": 1,
                                                            "stride": 0}}]})  # fmt: skip
    with pytest.raises(ConvcalcError, match=r"model\.yaml:2"):
        loads("input: [3, 8, 8]\nlayers: 5\n", "model.yaml")


def test_a_users_code_type_checks(tmp_path: Path) -> None:
    """`py.typed` and the re-exports give a user's mypy the real types."""
    pytest.importorskip("mypy")
    user = tmp_path / "user.py"
    user.write_text(
        textwrap.dedent(
            """
            from convcalc import Analysis, Conv, analyze, load

            result: Analysis = analyze(Conv(out_channels=8, kernel_size=3), (3, 32, 32))
            params: int = result.totals.params
            shape: tuple[int, ...] = analyze(load("resnet18")).output_shape
            wrong: str = result.totals.macs
            """
        )
    )
    config = tmp_path / "mypy.ini"
    # The optional frameworks' own types are not what is tested, and torch's take mypy
    # twenty seconds to read. Without them installed, a user's mypy says nothing either:
    # it reports no errors inside an installed package, which MYPYPATH makes this one look
    # unlike.
    config.write_text(
        "[mypy]\nstrict = True\n[mypy-torch.*,onnx.*,matplotlib.*]\nfollow_imports = skip\n"
        "ignore_missing_imports = True\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental", str(user)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        # An editable install is an import hook, which mypy does not follow: point it at
        # the source, where py.typed is, as an installed wheel has it.
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    # Exactly the one mistake planted above is found: the types are real, not Any.
    assert out.stdout.count("error:") == 1, out.stdout
    assert 'user.py:7: error: Incompatible types in assignment (expression has type "int"' in (
        out.stdout
    )


_IMPORTS_TORCH = re.compile(r"^>>> (import|from) torch\b", re.MULTILINE)


def _readme_examples() -> list[Any]:
    """The README's Python sessions (its ```python blocks that begin `>>>`), each marked to
    skip where it imports torch and torch is not installed."""
    text = (ROOT / "README.md").read_text()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    sessions = [block for block in blocks if block.startswith(">>>")]
    assert sessions, "the README shows the API in ```python blocks of >>> sessions"
    needs_torch = pytest.mark.skipif(
        importlib.util.find_spec("torch") is None, reason="this example imports torch"
    )
    return [
        pytest.param(
            block, id=f"block{index}", marks=[needs_torch] if _IMPORTS_TORCH.search(block) else []
        )
        for index, block in enumerate(sessions)
    ]


@pytest.mark.parametrize("block", _readme_examples())
def test_the_readmes_python_examples_run(block: str) -> None:
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner()
    runner.run(parser.get_doctest(block, {}, "README python block", None, 0))
    failed, attempted = runner.summarize(verbose=False)
    assert attempted > 0
    assert failed == 0


def test_dir_lists_the_public_api() -> None:
    import convcalc

    listed = dir(convcalc)
    assert {"analyze", "load", "Analysis", "Conv", "from_torch"} <= set(listed)
    assert listed == sorted(convcalc.__all__)
    # Every kind of layer, by its class.
    from convcalc.model.layers import KINDS

    assert {cls.__name__ for cls in KINDS.values()} <= set(listed)
    assert all(getattr(convcalc, cls.__name__) is cls for cls in KINDS.values())


def test_fields_are_plain_ints_where_whole_and_the_repr_is_short() -> None:
    from fractions import Fraction

    import convcalc

    analysis = convcalc.analyze(convcalc.load("resnet50"))
    field = analysis.receptive_field
    assert field is not None
    assert field.effective_stride == (32, 32) and type(field.effective_stride[0]) is int
    assert type(field.effective_padding[0]) is int
    assert len(repr(analysis)) < 400 and "rows=<175 rows>" in repr(analysis)
    # A transposed convolution of stride 2 halves the step: a Fraction, kept exact.
    decoder = convcalc.loads(
        "input: [1, 8]\nlayers: [conv_transpose: {out_channels: 1, kernel_size: 2, stride: 2}]\n"
    )
    (row,) = convcalc.analyze(decoder).rows
    assert row.receptive_field is not None
    assert row.receptive_field.effective_stride == (Fraction(1, 2),)
