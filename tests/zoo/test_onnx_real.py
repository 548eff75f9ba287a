"""Real torchvision and timm CNNs exported to ONNX and read back (issue 12).

Each model is built with `weights=None` (on the meta device, then given empty storage:
no values matter here), exported as users export it,

    torch.onnx.export(model.eval(), x, f, opset_version=17, do_constant_folding=False,
                      dynamo=False)

and read by `convcalc net`'s ONNX importer. Against the module itself:

- params are the parameters of the modules the forward runs (googlenet's auxiliary
  classifiers do not, in eval mode, and are not in the file), plus any unused_params;
- the outputs' shapes are the forward's (a segmentation model's dict, in order);
- every row named like a module's call (`layer1.0.relu_1`, as twin.py names calls) has
  that call's output shape (channels first: the calls between ConvNeXt's permutes run on
  channels last, where a Linear is a 1×1 convolution row), and every row with parameters
  is named so, or in the module that holds them (`features.1.0.mul`, a layer scale);
- the MACs are half the FLOPs torch.utils.flop_counter counts (convolutions and matrix
  products, SPEC §3);
- for a sample of models (FIELDS), the fields and global context of a sample of rows
  are what gradients show on a linear twin of the module (twin.py).

The models the importer still refuses are listed with the one line it says.

Exports are slow (seconds a model) and large (VGG's is 0.5 GB): each file is written to
the test's own temporary directory and removed once read. A quick run (`-m 'not slow'`)
checks a model for each pattern.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from convcalc.analysis.analyze import Analysis, analyze
from convcalc.errors import ConvcalcError
from convcalc.opening import open_model

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tests.zoo.twin import (  # noqa: E402
    _calls,
    call_of,
    check_fields,
    linear_twin,
    sample,
    units,
)

SMALL = (3, 64, 64)
VIDEO = (3, 8, 64, 64)

#: torchvision 0.28's classification, segmentation and video CNNs (its list_models,
#: without the transformers: vit, swin, maxvit, mvit), and the input each is exported
#: at: small where the model allows; AlexNet and VGG need 224 (the exporter takes an
#: adaptive pooling only to a divisor of its input, 6 or 7), Inception-v3 75, S3D's
#: last pooling a 16×224×224 clip. regnet_y_128gf is left out: its 2.6 GB of weights do
#: not fit in one ONNX file (2 GiB).
TORCHVISION: dict[str, tuple[int, ...]] = {
    **{name: (3, 224, 224) for name in ("alexnet",)},
    **dict.fromkeys(
        ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"],
        (3, 224, 224),
    ),
    **dict.fromkeys(
        [
            "convnext_tiny",
            "convnext_small",
            "convnext_base",
            "convnext_large",
            "densenet121",
            "densenet161",
            "densenet169",
            "densenet201",
            *(f"efficientnet_b{i}" for i in range(8)),
            "efficientnet_v2_s",
            "efficientnet_v2_m",
            "efficientnet_v2_l",
            "googlenet",
            "mnasnet0_5",
            "mnasnet0_75",
            "mnasnet1_0",
            "mnasnet1_3",
            "mobilenet_v2",
            "mobilenet_v3_large",
            "mobilenet_v3_small",
            *(f"regnet_x_{size}" for size in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf")),
            *(f"regnet_x_{size}" for size in ("16gf", "32gf")),
            *(f"regnet_y_{size}" for size in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf")),
            *(f"regnet_y_{size}" for size in ("16gf", "32gf")),
            "resnet18",
            "resnet34",
            "resnet50",
            "resnet101",
            "resnet152",
            "resnext50_32x4d",
            "resnext101_32x8d",
            "resnext101_64x4d",
            "wide_resnet50_2",
            "wide_resnet101_2",
            "shufflenet_v2_x0_5",
            "shufflenet_v2_x1_0",
            "shufflenet_v2_x1_5",
            "shufflenet_v2_x2_0",
            "squeezenet1_0",
            "squeezenet1_1",
            "segmentation.deeplabv3_mobilenet_v3_large",
            "segmentation.deeplabv3_resnet50",
            "segmentation.deeplabv3_resnet101",
            "segmentation.fcn_resnet50",
            "segmentation.fcn_resnet101",
            "segmentation.lraspp_mobilenet_v3_large",
        ],
        SMALL,
    ),
    "inception_v3": (3, 75, 75),
    **dict.fromkeys(["video.r3d_18", "video.mc3_18", "video.r2plus1d_18"], VIDEO),
    "video.s3d": (3, 16, 224, 224),
}

#: One small model of each of the issue's timm families (timm's names).
TIMM: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(
        [
            "resnet18",  # ResNet
            "resnet18d",  # ResNet-D
            "seresnet18",  # SE-ResNet
            "resnext26ts",  # ResNeXt
            "efficientnet_b0",  # EfficientNet
            "tf_efficientnet_b0",  # EfficientNet with TF "same" padding
            "mobilenetv2_100",  # MobileNetV2
            "mobilenetv3_small_100",  # MobileNetV3
            "mobilenetv4_conv_small",  # MobileNetV4
            "regnetx_002",  # RegNetX
            "regnety_002",  # RegNetY
            "convnext_atto",  # ConvNeXt
            "densenet121",  # DenseNet
            "legacy_xception",  # Xception
            "xception41",  # Xception (aligned)
            "dla34",  # DLA
            "hrnet_w18_small",  # HRNet
            "cspdarknet53",  # CSPDarkNet
            "cspresnet50",  # CSPResNet
            "ghostnet_100",  # GhostNet
            "rexnet_100",  # ReXNet
            "ese_vovnet19b_dw",  # VoVNet
            "res2net50_14w_8s",  # Res2Net
            "resnest14d",  # ResNeSt
            "selecsls42b",  # SelecSLS
            "dpn48b",  # DPN
            "nfnet_l0",  # NFNet
            "dm_nfnet_f0",  # NFNet (DeepMind's)
            "mixnet_s",  # MixNet
            "gernet_s",  # GENet
            "repvgg_a0",  # RepVGG
            "hardcorenas_a",  # HardCoReNAS
            "lcnet_050",  # LCNet
            "tinynet_e",  # TinyNet
            "fbnetc_100",  # FBNet
            "mnasnet_small",  # MNASNet
            "darknet53",  # DarkNet
            "skresnet18",  # SKNet
            "ecaresnet26t",  # ECA-ResNet
        ],
        SMALL,
    ),
    "inception_v3": (3, 75, 75),  # Inception-v3
}

#: What convcalc still refuses, by the start of its message (after the file's name).
REFUSED = {
    # Weight standardisation: the convolution's weight is computed in the graph
    # (ReduceMean, Sub, Sqrt... of the parameter), which convcalc does not compute.
    "timm:nfnet_l0": r"node '/stem/conv1/Conv' \(Conv, in module 'stem.conv1'\): its weight",
    "timm:dm_nfnet_f0": r"node '/stem/conv1/Conv' \(Conv, in module 'stem.conv1'\): its weight",
    # Efficient channel attention: a Conv1d along the channels, written as Reshape to
    # [N, 1, C]; convcalc convolves over space only.
    "timm:ecaresnet26t": r"node '/layer1/layer1.0/se/Reshape' \(Reshape, .*reshapes \[256\]",
    # Split attention: a softmax over the radix, written as Reshape to [N, 2, C/2, H, W].
    "timm:resnest14d": r"node '/layer1/layer1.0/conv2/Reshape' \(Reshape, .*\[1, 2, 64, 16, 16\]",
    # Selective kernels: the branches stacked on a new axis (torch.stack: Unsqueeze).
    "timm:skresnet18": r"node '/layer1/layer1.0/conv1/Unsqueeze' \(Unsqueeze, .*cannot follow",
}

#: The models checked in a quick run, one for each pattern the importer follows (SE gates
#: with sigmoid and hard sigmoid, layer scale, channels last, shuffles, slices and splits,
#: dense and non-nesting graphs, global means, TF "same" padding, several outputs, 3-D);
#: exporting takes seconds a model, so the others are marked slow (CI runs them all).
QUICK = {
    "tv:resnet18",
    "tv:densenet121",
    "tv:googlenet",
    "tv:efficientnet_b0",
    "tv:mobilenet_v3_small",
    "tv:mnasnet0_5",
    "tv:shufflenet_v2_x0_5",
    "tv:convnext_tiny",
    "tv:regnet_y_400mf",
    "tv:squeezenet1_1",
    "tv:segmentation.lraspp_mobilenet_v3_large",
    "tv:video.r3d_18",
    "timm:seresnet18",
    "timm:tf_efficientnet_b0",
    "timm:convnext_atto",
    "timm:cspresnet50",
    "timm:hrnet_w18_small",
    "timm:ghostnet_100",
    "timm:mixnet_s",
    "timm:dpn48b",
    "timm:ecaresnet26t",
}


#: The models whose fields are checked by gradients too: SE gates, a shuffle, channels
#: last, dense concatenations, HRNet's exchanges. (timm's SE blocks pool with
#: `x.mean`, which the linear twin does not take for a global path.)
FIELDS = {
    "tv:resnet18",
    "tv:mobilenet_v3_small",
    "tv:shufflenet_v2_x0_5",
    "tv:convnext_tiny",
    "tv:densenet121",
    "timm:hrnet_w18_small",
}


def _cases() -> list[Any]:
    keys = [f"tv:{name}" for name in TORCHVISION] + [f"timm:{name}" for name in TIMM]
    return [key if key in QUICK else pytest.param(key, marks=pytest.mark.slow) for key in keys]


def build(key: str, torchvision: Any, timm: Any) -> tuple[nn.Module, tuple[int, ...]]:
    """The model, weights=None, in eval mode, with storage of no particular values (on
    the meta device first: initialising VGG's weights alone takes seconds), and its
    input shape."""
    source, name = key.split(":")
    if source == "timm":
        make = lambda: timm.create_model(name, pretrained=False)  # noqa: E731
        shape = TIMM[name]
    else:
        group, _, short = name.rpartition(".")
        backbone = {"weights_backbone": None} if group == "segmentation" else {}
        make = lambda: torchvision.models.get_model(short, weights=None, **backbone)  # noqa: E731
        shape = TORCHVISION[name]
    try:
        with torch.device("meta"):
            module = make().to_empty(device="cpu")
    except NotImplementedError:  # RegNet's builder reads a value while it builds
        module = make()
    return module.eval(), shape


def export(module: nn.Module, shape: tuple[int, ...], file: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            torch.zeros(1, *shape),
            str(file),
            opset_version=17,
            do_constant_folding=False,
            dynamo=False,
        )


def imported(key: str, torchvision: Any, timm: Any, tmp_path: Path) -> tuple[Any, nn.Module]:
    """What convcalc makes of the model's ONNX file (an Analysis, or the ConvcalcError
    it raises), and the module, moved to the meta device."""
    module, shape = build(key, torchvision, timm)
    file = tmp_path / "model.onnx"
    export(module, shape, file)
    try:
        got: Any = analyze(open_model(str(file), None))
    except ConvcalcError as error:
        got = error
    finally:
        file.unlink()
    return got, module.to("meta")


def outputs(result: Any) -> list[tuple[int, ...]]:
    """The shapes (without the batch) of a forward's outputs, in order."""
    if isinstance(result, torch.Tensor):
        return [tuple(result.shape[1:])]
    values = result.values() if isinstance(result, dict) else result
    return [shape for value in values for shape in outputs(value)]


def check(analysis: Analysis, module: nn.Module) -> None:
    shape = analysis.input_shape
    # Parameters of the modules the forward runs.
    ran = {call_of(module, name)[0] for name in _calls(module, shape, lambda *_: None)}
    modules = dict(module.named_modules())
    used = {
        id(p): p.numel() for name in {"", *ran} for p in modules[name].parameters(recurse=False)
    }
    assert analysis.totals.params + analysis.totals.unused_params == sum(used.values())

    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        result = module(torch.zeros(1, *shape, device="meta"))
    assert [output.shape for output in analysis.outputs] == outputs(result)
    assert analysis.totals.macs * 2 == flops.get_total_flops()

    calls = _calls(module, shape, lambda sub, x, output: (sub, tuple(output.shape[1:])))
    checked = 0
    for row in analysis.rows:
        if row.qualified_name not in calls:
            # Parameters a module uses itself (layer scale, timm's BatchNormAct2d) are rows
            # named in it (`features.1.0.mul`, `bn1.batch_norm`).
            owner = row.qualified_name.rpartition(".")[0]
            assert not row.params or owner in calls, f"{row.qualified_name}: no module"
            continue
        _, out = calls[row.qualified_name]
        if out != row.output_shape and len(out) > 1:
            out = (out[-1], *out[:-1])  # a call on channels last (ConvNeXt): rows are first
        assert row.output_shape == out, row.qualified_name
        checked += 1
    assert checked >= len(analysis.rows) // 2


def check_fields_sample(analysis: Analysis, module: nn.Module) -> None:
    """The fields and global context of a sample of the rows with a field named after
    calls (the first, the last, evenly spaced ones between), at a few units each, are
    what gradients show on the module's thin linear twin (twin.py). Calls on channels
    last (ConvNeXt's) are left out: the twin's units are the call's."""
    shapes = _calls(module, analysis.input_shape, lambda sub, x, output: tuple(output.shape[1:]))
    rows = [
        row.qualified_name
        for row in analysis.rows
        if row.fields is not None and shapes.get(row.qualified_name) == row.output_shape
    ]
    probes = [(name, unit) for name in sample(rows, 8) for unit in units(shapes[name])]
    check_fields(analysis, linear_twin(module, thin=True), probes)


@pytest.mark.parametrize("key", _cases())
def test_exported_models_read_back(key: str, torchvision: Any, timm: Any, tmp_path: Path) -> None:
    got, module = imported(key, torchvision, timm, tmp_path)
    if key in REFUSED:
        assert isinstance(got, ConvcalcError), f"{key} is read now: take it off REFUSED"
        message = str(got).split(": ", 1)[1]
        assert "\n" not in message and re.match(REFUSED[key], message), message
        return
    if isinstance(got, ConvcalcError):
        pytest.fail(str(got))
    check(got, module)
    if key in FIELDS:
        check_fields_sample(got, module)


def test_the_counts_the_readme_gives() -> None:
    torchvision = len(TORCHVISION) - sum(key.startswith("tv:") for key in REFUSED)
    timm = len(TIMM) - sum(key.startswith("timm:") for key in REFUSED)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"{torchvision} of the {len(TORCHVISION)} torchvision" in readme
    assert f"{timm} of the {len(TIMM)} timm" in readme
