"""The bundled models with several outputs against their PyTorch modules (see twin.py):
DeepLabV3 (`out`, `aux`), Faster R-CNN's ResNet-50 FPN backbone (`0` … `3`, `pool`) and
YOLOv5s (P3, P4, P5).

DeepLabV3 and the FPN backbone are torchvision's own modules. YOLOv5's package is not
installed here (on PyPI, `yolov5` 7.0.14 pulls in OpenCV and more), so `YOLOv5s` below
transcribes its published definition: models/common.py (Conv, Bottleneck, C3, SPPF,
Concat), models/yolo.py (Detect's convolutions, BaseModel._forward_once) and the widths
and depths that parse_model gives models/yolov5s.yaml, at Ultralytics YOLOv5 v7.0. Built
beside that package's own DetectionModel("yolov5s.yaml"), it had the same state_dict
(names and shapes) and, with its weights loaded, the same three maps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from convcalc.analysis.analyze import analyze
from convcalc.opening import open_model

pytest.importorskip("torch")

# After the skip without torch:
import torch
from torch import nn

from tests.zoo.twin import check_fields, check_module, linear_twin, units

# --- YOLOv5s, transcribed from Ultralytics YOLOv5 v7.0 (models/common.py, models/yolo.py)


class Conv(nn.Module):
    """Conv2d (no bias, padding k // 2 unless given), BatchNorm2d, SiLU."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x: Any) -> Any:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 0.5) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x: Any) -> Any:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        hidden = c2 // 2
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(c1, hidden, 1, 1)
        self.cv3 = Conv(2 * hidden, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, e=1.0) for _ in range(n)))

    def forward(self, x: Any) -> Any:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: Any) -> Any:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, x: list[Any]) -> Any:
        return torch.cat(x, 1)


class Detect(nn.Module):
    """Detect's convolutions: the raw maps, before the reshape to (3, H, W, 85) and the
    decoding of boxes, which have no parameters."""

    def __init__(self, nc: int, na: int, ch: tuple[int, ...]) -> None:
        super().__init__()
        self.m = nn.ModuleList(nn.Conv2d(c, (nc + 5) * na, 1) for c in ch)

    def forward(self, x: list[Any]) -> list[Any]:
        return [conv(level) for conv, level in zip(self.m, x, strict=True)]


class YOLOv5s(nn.Module):
    """DetectionModel("yolov5s.yaml"): `model.0` … `model.24`, each reading the layer
    before it or the layers its `from` lists."""

    def __init__(self) -> None:
        super().__init__()
        upsample = nn.Upsample(None, 2, "nearest")
        layers: list[tuple[int | list[int], nn.Module]] = [
            (-1, Conv(3, 32, 6, 2, 2)),  # 0
            (-1, Conv(32, 64, 3, 2)),
            (-1, C3(64, 64, 1)),
            (-1, Conv(64, 128, 3, 2)),
            (-1, C3(128, 128, 2)),
            (-1, Conv(128, 256, 3, 2)),  # 5
            (-1, C3(256, 256, 3)),
            (-1, Conv(256, 512, 3, 2)),
            (-1, C3(512, 512, 1)),
            (-1, SPPF(512, 512, 5)),
            (-1, Conv(512, 256, 1, 1)),  # 10
            (-1, upsample),
            ([-1, 6], Concat()),
            (-1, C3(512, 256, 1, False)),
            (-1, Conv(256, 128, 1, 1)),
            (-1, nn.Upsample(None, 2, "nearest")),  # 15
            ([-1, 4], Concat()),
            (-1, C3(256, 128, 1, False)),
            (-1, Conv(128, 128, 3, 2)),
            ([-1, 14], Concat()),
            (-1, C3(256, 256, 1, False)),  # 20
            (-1, Conv(256, 256, 3, 2)),
            ([-1, 10], Concat()),
            (-1, C3(512, 512, 1, False)),
            ([17, 20, 23], Detect(80, 3, (128, 256, 512))),
        ]
        self.sources = [source for source, _ in layers]
        self.model = nn.Sequential(*(module for _, module in layers))

    def forward(self, x: Any) -> Any:
        saved: list[Any] = []
        for source, module in zip(self.sources, self.model, strict=True):
            if isinstance(source, int):
                x = x if source == -1 else saved[source]
            else:
                x = [x if j == -1 else saved[j] for j in source]
            x = module(x)
            saved.append(x)
        return x


# --- The models


def deeplabv3(torchvision: Any) -> Any:
    # aux_loss=True: as the published weights are (their 42,004,074 params count it).
    return torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, aux_loss=True
    )


def fasterrcnn_backbone(torchvision: Any) -> Any:
    # What fasterrcnn_resnet50_fpn() builds as `model.backbone` when given weights (by
    # default the ImageNet backbone's, which cannot be downloaded here): a ResNet-50 with
    # FrozenBatchNorm2d, three trainable layers, and the FPN. Without weights it would
    # use BatchNorm2d, whose scale and shift are parameters.
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    return _resnet_fpn_extractor(torchvision.models.resnet50(norm_layer=FrozenBatchNorm2d), 3)


def yolov5s(_: Any) -> Any:
    return YOLOv5s()


#: name: (builder, published params or None, the outputs' names in the module's result)
MODELS: dict[str, tuple[Callable[[Any], Any], int | None, tuple[str, ...]]] = {
    # DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.meta["num_params"]
    "deeplabv3_resnet50": (deeplabv3, 42_004_074, ("out", "aux")),
    # torchvision publishes no figure for the backbone alone.
    "fasterrcnn_resnet50_fpn": (fasterrcnn_backbone, None, ("0", "1", "2", "3", "pool")),
    # "YOLOv5s summary: 214 layers, 7235389 parameters" (Ultralytics tutorial.ipynb, v7.0)
    "yolov5s": (yolov5s, 7_235_389, ("model.24.m.0", "model.24.m.1", "model.24.m.2")),
}


def build(torchvision: Any, name: str) -> Any:
    """The module, on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        return MODELS[name][0](torchvision).eval()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_module_call_is_a_row_of_its_shape_and_macs(torchvision: Any, name: str) -> None:
    analysis = analyze(open_model(name))
    _, published, _ = MODELS[name]
    if published is not None:
        assert analysis.totals.params == published
    check_module(analysis, build(torchvision, name), analysis.input_shape)


def test_compute_is_the_published_figure() -> None:
    # DeepLabV3: `_ops` 178.722 in torchvision's weights metadata (multiply-accumulates).
    assert round(analyze(open_model("deeplabv3_resnet50")).totals.macs / 1e9, 3) == 178.722
    # YOLOv5s: Ultralytics' GFLOPs are 2 FLOPs per multiply-accumulate: "Model summary: 157
    # layers, 7225885 parameters, 0 gradients, 16.4 GFLOPs" once fused (the batch norms
    # folded into the convolutions, which thop then counts alone; unfused, 16.6 counts
    # the batch norms too).
    assert round(analyze(open_model("yolov5s")).totals.flops / 1e9, 1) == 16.4


@pytest.mark.parametrize("name", sorted(MODELS))
def test_outputs_are_the_modules_outputs(torchvision: Any, name: str) -> None:
    analysis = analyze(open_model(name))
    module = build(torchvision, name)
    with torch.no_grad():
        result = module(torch.zeros(1, *analysis.input_shape, device="meta"))
    _, _, names = MODELS[name]
    shapes = (
        [tuple(result[key].shape[1:]) for key in names]
        if isinstance(result, dict)
        else [tuple(level.shape[1:]) for level in result]
    )
    assert [(output.name, output.shape) for output in analysis.outputs] == list(
        zip(names, shapes, strict=True)
    )


def test_every_convolution_has_the_modules_geometry(torchvision: Any) -> None:
    """Kernel, stride, padding, dilation and groups of every convolution: where a
    dilation sits changes no shape and no parameter count, only fields."""
    for name in MODELS:
        convolutions = {
            key: sub
            for key, sub in build(torchvision, name).named_modules()
            if isinstance(sub, nn.Conv2d)
        }
        checked = 0
        for node in open_model(name).nodes:
            if node.qualified_name in convolutions:
                conv = convolutions[node.qualified_name]
                layer: Any = node.op
                assert [_pair(layer.kernel_size), _pair(layer.stride), _pair(layer.padding),
                        _pair(layer.dilation), layer.groups] == [
                    conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups
                ], node.qualified_name  # fmt: skip
                checked += 1
        assert checked == len(convolutions), name


def _pair(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value, value)


#: name: the inputs to measure fields at by gradients, each with the rows to measure and
#: whether the outputs are measured too. The whole model runs on small inputs only (its
#: deepest fields then cover the whole input); a forward pass that stops at the last row
#: asked for measures early rows, dilated ones among them, on larger inputs.
FIELDS: dict[str, tuple[tuple[tuple[int, int, int], tuple[str, ...], bool], ...]] = {
    "deeplabv3_resnet50": (
        (
            (3, 48, 48),
            ("classifier.0.convs.1.0", "classifier.0.project.0", "aux_classifier.4"),
            True,
        ),
        (
            (3, 160, 160),
            (
                "backbone.maxpool",
                "backbone.layer2.0.conv2",
                "backbone.layer3.0.conv2",
                "backbone.layer3.1.conv2",  # dilation 2
            ),
            False,
        ),
    ),
    "fasterrcnn_resnet50_fpn": (
        ((3, 64, 64), ("fpn.inner_blocks.2.0", "fpn.layer_blocks.2.0"), True),
        (
            (3, 224, 224),
            ("body.layer1.2.conv2", "body.layer2.3.conv2", "body.layer3.1.conv2"),
            False,
        ),
    ),
    "yolov5s": (
        ((3, 128, 128), ("model.12", "model.13.cv3.conv"), True),
        (
            (3, 320, 320),
            ("model.0.conv", "model.4.m.1.cv2.conv", "model.6.cv3.conv", "model.8.m.0.cv2.conv"),
            False,
        ),
    ),
}

CASES = [(name, index) for name, cases in FIELDS.items() for index in range(len(cases))]


@pytest.mark.parametrize(("name", "case"), CASES)
def test_fields_and_global_context_are_what_gradients_show(
    torchvision: Any, name: str, case: int
) -> None:
    input_shape, rows, with_outputs = FIELDS[name][case]
    analysis = analyze(open_model(name), input_shape)
    shapes = {row.qualified_name: row.output_shape for row in analysis.rows}
    probes = [(row, unit) for row in rows for unit in units(shapes[row])]
    if with_outputs:
        probes += [
            (output.name, unit) for output in analysis.outputs for unit in units(output.shape)
        ]
    check_fields(analysis, linear_twin(build(torchvision, name), thin=True), probes)
