"""The bundled models (convcalc/zoo/*.yaml) against published figures.

The torchvision architectures must give torchvision's published parameter counts to the
unit and its published compute, which counts multiply-accumulates although the column is
headed GFLOPS. Source of both: the weights' metadata in torchvision (`num_params` and
`_ops` in torchvision/models/alexnet.py, vgg.py, resnet.py, mobilenetv2.py and
video/resnet.py), shown as the tables "Params" / "GFLOPS" of
https://pytorch.org/vision/stable/models.html and each model's page (r3d_18:
https://pytorch.org/vision/stable/models/generated/torchvision.models.video.r3d_18.html).

Each file must also give the numbers its version before torchvision's names did
(tests/data/old_zoo). Against torchvision's modules themselves, layer by layer:
tests/zoo/test_torchvision.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import convcalc
from convcalc.analysis.analyze import Analysis, analyze
from convcalc.loader import build_model
from convcalc.source import parse

ZOO = Path(convcalc.__file__).resolve().parent / "zoo"

# The bundled files as they were before they took torchvision's names and definitions
# (issue 11): test data now, whose numbers the rewritten files must keep.
OLD_ZOO = Path(__file__).resolve().parent / "data" / "old_zoo"

# name: (params, GFLOPS as the docs table prints it (2 decimals), input)
PUBLISHED: dict[str, tuple[int, float, tuple[int, ...]]] = {
    "alexnet": (61_100_840, 0.71, (3, 224, 224)),
    "vgg16": (138_357_544, 15.47, (3, 224, 224)),
    "vgg16_bn": (138_365_992, 15.47, (3, 224, 224)),
    "resnet18": (11_689_512, 1.81, (3, 224, 224)),
    "resnet34": (21_797_672, 3.66, (3, 224, 224)),
    "resnet50": (25_557_032, 4.09, (3, 224, 224)),
    "resnet101": (44_549_160, 7.80, (3, 224, 224)),
    "resnet152": (60_192_808, 11.51, (3, 224, 224)),
    "mobilenet_v2": (3_504_872, 0.30, (3, 224, 224)),
    "r3d_18": (33_371_472, 40.70, (3, 16, 112, 112)),
}

# The same compute with three decimals, as the `_ops` field of torchvision's weights
# metadata has it (IMAGENET1K_V1 weights).
PUBLISHED_OPS: dict[str, float] = {
    "alexnet": 0.714,
    "resnet18": 1.814,
    "resnet34": 3.664,
    "resnet50": 4.089,
    "resnet101": 7.801,
    "resnet152": 11.514,
    "mobilenet_v2": 0.301,
}

OTHERS = ("unet", "wavenet")
ALL = (*PUBLISHED, *OTHERS)
# Every bundled file, those above and the later ones (checked against their modules in
# tests/zoo/test_classifiers.py and test_detectors.py) alike.
EVERY = sorted(path.stem for path in ZOO.glob("*.yaml"))


def zoo_path(name: str) -> Path:
    return ZOO / f"{name}.yaml"


def analysis(name: str, input_shape: tuple[int, ...] | None = None) -> Analysis:
    path = zoo_path(name)
    return analyze(build_model(parse(path.read_text(), str(path))), input_shape)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_params_and_macs_are_torchvisions_published_figures(name: str) -> None:
    params, gflops, input_shape = PUBLISHED[name]
    result = analysis(name)
    assert result.input_shape == input_shape
    assert result.totals.params == params
    assert round(result.totals.macs / 1e9, 2) == gflops


@pytest.mark.parametrize("name", list(PUBLISHED_OPS))
def test_macs_match_torchvisions_ops_to_three_decimals(name: str) -> None:
    assert round(analysis(name).totals.macs / 1e9, 3) == PUBLISHED_OPS[name]


@pytest.mark.parametrize("name", EVERY)
def test_every_file_cites_its_source_then_names_itself(name: str) -> None:
    text = zoo_path(name).read_text()
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    comment = "\n".join(header)
    assert "Paper" in comment
    assert "arXiv:" in comment or "http" in comment
    assert "Reference implementation" in comment
    body = text.splitlines()[len(header) :]
    assert body[0] == f"name: {name}"
    assert body[1].startswith("input: [")
    assert analysis(name).name == name


@pytest.mark.parametrize("name", EVERY)
def test_every_bundled_model_runs_from_the_command_line_by_name(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "convcalc", "net", name, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    expected = analysis(name)
    assert data["name"] == name
    assert data["totals"]["params"] == expected.totals.params
    assert data["totals"]["macs"] == expected.totals.macs
    assert tuple(data["output_shape"]) == expected.output_shape


def numbers(result: Analysis) -> tuple[object, ...]:
    """Everything an analysis reports but names and paths."""
    rows = [
        (row.kind, row.input_shape, row.output_shape, row.params, row.macs, row.receptive_field)
        for row in result.rows
    ]
    fields = [(row.fields, row.global_context) for row in result.rows]
    return (
        result.input_shape,
        result.output_shape,
        rows,
        fields,
        result.totals,
        result.receptive_field,
        [warning.code for warning in result.warnings],
    )


# Another input than the model's own for each, odd where the model allows it (the U-Net
# halves its input four times and concatenates: a multiple of 16).
OTHER_INPUTS: dict[str, tuple[int, ...]] = {
    **{name: (3, 97, 130) for name in PUBLISHED},
    "r3d_18": (3, 5, 37, 50),
    "unet": (3, 128, 96),
    "wavenet": (256, 6001),
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("other", [False, True])
def test_the_files_as_they_were_give_the_same_numbers(name: str, other: bool) -> None:
    old = OLD_ZOO / f"{name}.yaml"
    input_shape = OTHER_INPUTS[name] if other else None
    before = analyze(build_model(parse(old.read_text(), str(old))), input_shape)
    assert numbers(analysis(name, input_shape)) == numbers(before)


def test_the_model_file_path_gives_the_same_numbers_as_the_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "convcalc", "net", str(zoo_path("resnet50")), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    totals = json.loads(done.stdout)["totals"]
    assert totals["params"] == 25_557_032
    assert totals["flops"] == 2 * totals["macs"] == 2 * 4_089_184_256


def test_resnet_fields_at_224() -> None:
    # r = 1 + Σ (k − 1) × (stride of the input so far): stem 6 × 1, max pool 2 × 2,
    # layer1 4 × 2 × 4, layer2 2 × 4 + 3 × 2 × 8, layer3 2 × 8 + 3 × 2 × 16, layer4
    # 2 × 16 + 3 × 2 × 32: 1 + 6 + 4 + 32 + 56 + 112 + 224 = 435.
    field = analysis("resnet18").receptive_field
    assert field is not None
    assert field.size == (435, 435)
    assert field.effective_stride == (32, 32)
    assert field.effective_padding == (217, 217)
    field = analysis("resnet50").receptive_field
    assert field is not None
    assert (field.size, field.effective_stride, field.effective_padding) == (
        (427, 427),
        (32, 32),
        (213, 213),
    )


def test_unet_keeps_the_input_size_and_gives_two_classes() -> None:
    result = analysis("unet")
    assert result.input_shape == (3, 256, 256)
    assert result.output_shape == (2, 256, 256)
    # Ronneberger et al. with padded convolutions, 3 input channels, 2 classes; checked
    # against a torch.nn build in tests/property/test_zoo_torch.py.
    assert result.totals.params == 31_031_810
    assert result.warnings == ()


def test_wavenet_is_causal_with_a_field_of_5117_samples() -> None:
    result = analysis("wavenet")
    assert result.output_shape == (256, 16000)
    field = result.receptive_field
    assert field is not None
    # 1 + 1 (causal layer, width 2) + 5 stacks × (1 + 2 + … + 512)
    assert field.size == (5117,)
    assert field.effective_stride == (1,)
    # every sample sees only itself and the past: y − 5116 … y
    assert field.effective_padding == (5116,)


def test_r3d_18_reads_a_16_frame_clip() -> None:
    result = analysis("r3d_18")
    assert result.output_shape == (400,)
    field = result.receptive_field
    assert field is not None
    assert field.effective_stride == (8, 16, 16)
