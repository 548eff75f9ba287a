"""The bundled models against the same networks written by hand in torch.nn.

torchvision cannot be installed here, so the builders below mirror torchvision's own
classes (torchvision/models/alexnet.py, vgg.py, resnet.py, mobilenetv2.py,
video/resnet.py) line for line, and the U-Net and the WaveNet follow their model files'
sources (milesial/Pytorch-UNet without batch norm; ibab/tensorflow-wavenet with the
documented simplifications). For each model:

- `sum(p.numel())` of the torch build equals convcalc's params, and torchvision's
  published count for the torchvision models (built on the meta device: no memory, no
  initialisation);
- on the meta device, at the default input, the output shape and the multiply-
  accumulates counted from the modules torch ran (forward hooks) equal convcalc's;
- a real forward pass (float32) gives convcalc's output shape, at the default input or
  a smaller one where a full-size pass would be slow, and at odd sizes;
- for every bundled model, the receptive field measured by gradients on a linear twin
  (float64, positive weights, no biases, max pools as average pools with the same
  window, batch norm, activations and dropout as identities) equals convcalc's, on an
  input large enough to hold the probed units' whole fields, and equals the field
  convcalc reports at the model's own input. The twin is built thin (a few channels:
  the builders take a width): which input positions a unit sees does not depend on the
  channel counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import Tensor, nn  # noqa: E402

import convcalc  # noqa: E402
from convcalc.analysis.analyze import Analysis, ReceptiveField, analyze  # noqa: E402
from convcalc.loader import build_model  # noqa: E402
from convcalc.source import parse  # noqa: E402

ZOO = Path(convcalc.__file__).resolve().parent / "zoo"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: these small passes gain nothing from more, and spinning
    threads slow down badly when the cores are shared (as under pytest-xdist or CI)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def analysis(name: str, input_shape: tuple[int, ...] | None = None) -> Analysis:
    path = ZOO / f"{name}.yaml"
    return analyze(build_model(parse(path.read_text(), str(path))), input_shape)


# --- torchvision/models/alexnet.py ---------------------------------------------------


def alexnet(num_classes: int = 1000, width: int = 64) -> nn.Module:
    """`width` (not torchvision's) scales every channel count of the features by
    width / 64, for thin twins; 64 is torchvision's network."""

    def c(channels: int) -> int:
        return channels * width // 64

    features = nn.Sequential(
        nn.Conv2d(3, c(64), kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c(64), c(192), kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c(192), c(384), kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c(384), c(256), kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c(256), c(256), kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    classifier = nn.Sequential(
        nn.Dropout(p=0.5),
        nn.Linear(c(256) * 6 * 6, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(p=0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )
    return nn.Sequential(features, nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(1), classifier)


# --- torchvision/models/vgg.py -------------------------------------------------------

VGG_D: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
VGG_D += [512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16(batch_norm: bool = False, num_classes: int = 1000, width: int = 64) -> nn.Module:
    """`width` (not torchvision's) scales every channel count of the features by
    width / 64, for thin twins; 64 is torchvision's network."""
    layers: list[nn.Module] = []
    in_channels = 3
    for v in VGG_D:
        if isinstance(v, int):
            v = v * width // 64
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
        else:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    classifier = nn.Sequential(
        nn.Linear(in_channels * 7 * 7, 4096),
        nn.ReLU(True),
        nn.Dropout(p=0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Dropout(p=0.5),
        nn.Linear(4096, num_classes),
    )
    return nn.Sequential(
        nn.Sequential(*layers), nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(1), classifier
    )


# --- torchvision/models/resnet.py ----------------------------------------------------


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        width = planes  # groups = 1, base_width = 64
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)  # V1.5: the stride on the 3×3
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """Up to the output of layer4, the last layer with a receptive field."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


RESNETS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}


# --- torchvision/models/mobilenetv2.py -----------------------------------------------


def conv_bn_relu6(
    inp: int, oup: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    # torchvision.ops.misc.Conv2dNormActivation: padding (k − 1) // 2, no bias before BN
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden_dim = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(inp, hidden_dim, kernel_size=1))
        layers += [
            conv_bn_relu6(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    # torchvision/models/_utils.py
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    # Make sure that round down does not go down by more than 10%.
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def mobilenet_v2(
    num_classes: int = 1000, width_mult: float = 1.0, round_nearest: int = 8
) -> nn.Module:
    # width_mult 1.0 (the bundled model): _make_divisible changes nothing.
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2]]
    setting += [[6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    input_channel = _make_divisible(32 * width_mult, round_nearest)
    last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
    features: list[nn.Module] = [conv_bn_relu6(3, input_channel, stride=2)]
    for t, c, n, s in setting:
        output_channel = _make_divisible(c * width_mult, round_nearest)
        for i in range(n):
            features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
            input_channel = output_channel
    features.append(conv_bn_relu6(input_channel, last_channel, kernel_size=1))
    return nn.Sequential(
        nn.Sequential(*features),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(1),
        nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channel, num_classes)),
    )


# --- torchvision/models/video/resnet.py (r3d_18) -------------------------------------


class VideoBasicBlock(nn.Module):
    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        # Conv3DSimple: kernel (3, 3, 3), padding 1, the stride on every axis, no bias
        self.conv1 = nn.Sequential(
            nn.Conv3d(inplanes, planes, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            nn.Conv3d(planes, planes, 3, padding=1, bias=False), nn.BatchNorm3d(planes)
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


def r3d_18(num_classes: int = 400, width: int = 64) -> nn.Module:
    """`width` (not torchvision's) is the stem's channels, the later stages having
    2, 4 and 8 times as many, for thin twins; 64 is torchvision's network."""
    stem = nn.Sequential(  # BasicStem
        nn.Conv3d(3, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )
    layers: list[nn.Module] = [stem]
    inplanes = width
    for planes, stride in ((width, 1), (2 * width, 2), (4 * width, 2), (8 * width, 2)):
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes),
            )
        layers.append(
            nn.Sequential(
                VideoBasicBlock(inplanes, planes, stride, downsample),
                VideoBasicBlock(planes, planes),
            )
        )
        inplanes = planes
    layers += [nn.AdaptiveAvgPool3d((1, 1, 1)), nn.Flatten(1), nn.Linear(inplanes, num_classes)]
    return nn.Sequential(*layers)


# --- U-Net (Ronneberger et al. 2015, padded as milesial/Pytorch-UNet, no batch norm) --


def double_conv(inp: int, out: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out, out, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """Up-convolution halving the channels, then the skip concatenated before it."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(inp, inp // 2, kernel_size=2, stride=2)
        self.conv = double_conv(inp, out)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.conv(torch.cat([x2, self.up(x1)], dim=1))


class UNet(nn.Module):
    def __init__(self, n_channels: int = 3, n_classes: int = 2, width: int = 64) -> None:
        super().__init__()
        w = width
        self.inc = double_conv(n_channels, w)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(w * 2**i, w * 2 ** (i + 1)))
            for i in range(4)
        )
        self.ups = nn.ModuleList(Up(w * 2 ** (i + 1), w * 2**i) for i in reversed(range(4)))
        self.outc = nn.Conv2d(w, n_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


# --- WaveNet (ibab/tensorflow-wavenet, with the model file's simplifications) --------


class CausalConv1d(nn.Conv1d):
    """Width 2, dilation d, padded d samples before and none after."""

    def __init__(self, inp: int, out: int, dilation: int = 1, bias: bool = True) -> None:
        super().__init__(inp, out, kernel_size=2, dilation=dilation, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(nn.functional.pad(x, (self.dilation[0], 0)))


class WaveNetBlock(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.filter = CausalConv1d(channels, channels, dilation)
        self.gate = CausalConv1d(channels, channels, dilation)
        self.dense = nn.Conv1d(channels, channels, kernel_size=1)
        self.act_filter: nn.Module = nn.Tanh()
        self.act_gate: nn.Module = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        # The model file's simplification: the gate product written as a sum.
        out = self.act_filter(self.filter(x)) + self.act_gate(self.gate(x))
        return x + self.dense(out)


def wavenet(channels: int = 32, skip: int = 512, quantization: int = 256) -> nn.Module:
    blocks = [WaveNetBlock(channels, 2**i) for _ in range(5) for i in range(10)]
    return nn.Sequential(
        CausalConv1d(quantization, channels, bias=False),
        *blocks,
        nn.Conv1d(channels, skip, kernel_size=1),
        nn.ReLU(),
        nn.Conv1d(skip, skip, kernel_size=1),
        nn.ReLU(),
        nn.Conv1d(skip, quantization, kernel_size=1),
        nn.Softmax(dim=1),
    )


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "alexnet": alexnet,
    "vgg16": vgg16,
    "vgg16_bn": lambda: vgg16(batch_norm=True),
    **{name: partial(ResNet, block, counts) for name, (block, counts) in RESNETS.items()},
    "mobilenet_v2": mobilenet_v2,
    "r3d_18": r3d_18,
    "unet": UNet,
    "wavenet": wavenet,
}


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# torchvision's published parameter counts (num_params of the weights' metadata): the
# builders above are torchvision's architectures.
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "mobilenet_v2": 3_504_872,
    "r3d_18": 33_371_472,
}


@pytest.mark.parametrize("name", list(TORCHVISION_PARAMS))
def test_the_builders_have_torchvisions_published_params(name: str) -> None:
    with torch.device("meta"):
        model = BUILDERS[name]()
    assert count_params(model) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_params_equal_the_torch_build(name: str) -> None:
    with torch.device("meta"):
        model = BUILDERS[name]()
    assert count_params(model) == analysis(name).totals.params


def module_macs(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> int:
    """Multiply-accumulates of one convolution or linear layer as torch ran it (batch 1),
    the convention of SPEC §3."""
    if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        kernel = math.prod(module.kernel_size)
        return inputs[0].numel() * module.out_channels // module.groups * kernel
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        kernel = math.prod(module.kernel_size)
        return output.numel() * module.in_channels // module.groups * kernel
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


@pytest.mark.parametrize("name", list(BUILDERS))
def test_macs_and_output_shape_equal_the_torch_build_on_the_meta_device(name: str) -> None:
    # Shapes propagate on the meta device without any arithmetic: the full-size
    # networks at their default inputs, in no time.
    result = analysis(name)
    with torch.device("meta"):
        model = BUILDERS[name]().eval()
        x = torch.empty(1, *result.input_shape)
    macs = []
    for module in model.modules():
        module.register_forward_hook(lambda m, i, o: macs.append(module_macs(m, i, o)))
    out = model(x)
    assert tuple(out.shape[1:]) == result.output_shape
    assert sum(macs) == result.totals.macs


# Output shapes by a real forward pass (float32, batch 1), at the model's own input or a
# smaller or odd one (given to convcalc as well).
FORWARDS = [
    ("alexnet", None),
    ("alexnet", (3, 100, 131)),
    ("resnet18", (3, 97, 130)),
    ("resnet50", None),
    ("resnet50", (3, 161, 99)),
    ("mobilenet_v2", None),
    ("mobilenet_v2", (3, 113, 75)),
    ("vgg16_bn", (3, 64, 96)),
    ("unet", (3, 128, 96)),
    ("wavenet", (256, 6000)),
    ("r3d_18", (3, 8, 56, 56)),
    ("r3d_18", (3, 5, 37, 50)),
]


@pytest.mark.parametrize(("name", "input_shape"), FORWARDS)
def test_output_shape_equals_a_torch_forward(
    name: str, input_shape: tuple[int, ...] | None
) -> None:
    result = analysis(name, input_shape)
    torch.manual_seed(0)
    model = BUILDERS[name]().eval()
    with torch.no_grad():
        out = model(torch.randn(1, *result.input_shape))
    assert tuple(out.shape[1:]) == result.output_shape


# --- receptive fields by gradients ---------------------------------------------------


IDENTITIES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.ReLU,
    nn.ReLU6,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softmax,
    nn.Dropout,
)
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)


def linear_twin(module: nn.Module) -> nn.Module:
    """The module made linear with positive weights, in float64: max pools become
    average pools with the same window, batch norm and activations identities, every
    weight a positive constant (1 / its kernel's size) and every bias 0. In place."""
    for name, child in module.named_children():
        if isinstance(child, nn.MaxPool2d):
            replacement: nn.Module = nn.AvgPool2d(
                child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode
            )
        elif isinstance(child, IDENTITIES):
            replacement = nn.Identity()
        else:
            replacement = linear_twin(child)
        setattr(module, name, replacement)
    if isinstance(module, CONVOLUTIONS):
        with torch.no_grad():
            module.weight.fill_(1.0 / module.weight[0].numel())
            if module.bias is not None:
                module.bias.zero_()
    return module.double()


def measured_fields(
    network: Callable[..., object],
    input_shape: tuple[int, ...],
    units: Sequence[tuple[int, ...]],
    axes: tuple[int, ...],
) -> list[list[tuple[int, int]]]:
    """Per spatial axis in `axes`, per output unit (its spatial index, channel 0): the
    first and last input position on that axis whose gradient is not zero. Each unit
    gets its own copy of the input in the batch; one backward pass serves them all."""
    x = torch.zeros(len(units), *input_shape, dtype=torch.float64, requires_grad=True)
    out = network(x)
    assert isinstance(out, Tensor)
    total = sum(out[(b, 0, *unit)] for b, unit in enumerate(units))
    assert isinstance(total, Tensor)
    total.backward()
    assert x.grad is not None
    per_axis = []
    for axis in axes:
        spans = []
        for grad in x.grad:
            others = tuple(d for d in range(grad.dim()) if d != axis + 1)
            seen = grad.abs().sum(dim=others) > 0
            positions = torch.nonzero(seen).flatten().tolist()
            assert positions == list(range(positions[0], positions[-1] + 1))
            spans.append((positions[0], positions[-1]))
        per_axis.append(spans)
    return per_axis


def axis_field(result: Analysis, axis: int) -> tuple[int, Fraction, Fraction]:
    field = result.receptive_field
    assert field is not None
    return (
        field.size[axis],
        Fraction(field.effective_stride[axis]),
        Fraction(field.effective_padding[axis]),
    )


def test_resnet18_field_measured_by_gradients() -> None:
    # At 512×512 layer4 is 16×16; units 7, 8 and 9 see positions 7 … 505, inside.
    shape = (3, 512, 512)
    result = analysis("resnet18", shape)
    twin = linear_twin(ResNet(BasicBlock, [2, 2, 2, 2], width=4))
    units = [(7, 7), (8, 8), (9, 9)]  # on the diagonal: one backward serves both axes
    for axis, spans in enumerate(measured_fields(twin.features, shape, units, axes=(0, 1))):
        size, stride, padding = axis_field(result, axis)
        assert {last - first + 1 for first, last in spans} == {size} == {435}
        firsts = [first for first, _ in spans]
        assert firsts[1] - firsts[0] == firsts[2] - firsts[1] == stride == 32
        for y, first in zip((7, 8, 9), firsts, strict=True):
            assert y * stride - first == padding == 217
        # and what `convcalc net resnet18` reports at the model's own input (224×224)
        assert axis_field(analysis("resnet18"), axis) == (435, 32, 217)


def test_unet_field_measured_by_gradients() -> None:
    # Four transposed convolutions of stride 2 make the field of a unit depend on its
    # position modulo 16: units come in blocks that share one window, and the window
    # moves by 16 from one period to the next (effective stride 16 / 16 = 1). Measure
    # two periods of consecutive units well inside the input.
    shape = (1, 256, 256)
    result = analysis("unet", shape)
    twin = linear_twin(UNet(n_channels=1, n_classes=1, width=2))
    ys = list(range(96, 128))
    units = [(y, y) for y in ys]  # on the diagonal: one backward serves both axes
    for axis, measured in enumerate(measured_fields(twin, shape, units, axes=(0, 1))):
        size, stride, padding = axis_field(result, axis)
        spans = dict(zip(ys, measured, strict=True))
        assert all(first > 0 and last < 255 for first, last in spans.values())
        # size: the largest field over the units
        sizes = {y: last - first + 1 for y, (first, last) in spans.items()}
        assert max(sizes.values()) == size == 204
        # effective stride: one period further on, every window has moved by 16 · S
        for y in ys[:16]:
            assert spans[y + 16][0] - spans[y][0] == 16 * stride == 16
            assert spans[y + 16][1] - spans[y][1] == 16 * stride
        # effective padding: that of a widest unit, which sees y·S − P … y·S − P + r − 1
        # (convcalc reports the first widest unit of a period, here y ≡ 2 mod 16)
        widest = [y for y in ys if sizes[y] == size]
        assert padding in {y * stride - spans[y][0] for y in widest}
        first_widest = min(widest, key=lambda y: y % 16)
        assert first_widest * stride - spans[first_widest][0] == padding == 96
        # and what `convcalc net unet` reports at the model's own input (3×256×256)
        assert axis_field(analysis("unet"), axis) == (204, 1, 96)


def test_wavenet_field_measured_by_gradients() -> None:
    shape = (4, 6000)
    result = analysis("wavenet", shape)
    twin = linear_twin(wavenet(channels=2, skip=2, quantization=4))
    size, stride, padding = axis_field(result, 0)
    ys = [5500, 5501]
    (spans,) = measured_fields(twin, shape, [(y,) for y in ys], axes=(0,))
    for y, (first, last) in zip(ys, spans, strict=True):
        assert last == y  # causal: nothing from the future
        assert (last - first + 1, y * stride - first) == (size, padding) == (5117, 5116)
    assert spans[1][0] - spans[0][0] == stride == 1
    # and what `convcalc net wavenet` reports at the model's own input (256×16000)
    assert axis_field(analysis("wavenet"), 0) == (5117, 1, 5116)


# --- every bundled model's field by gradients ------------------------------------------
#
# Each thin twin is measured on an input large enough that a few neighbouring units of
# the probed layer see nothing of the border: their whole field lies inside the input,
# which torch itself confirms (a span touching the first or last position could be
# cut short, and is refused). Probing units y, y + 1, … on the diagonal, on every axis:
# - size: the span of the nonzero input gradient of one unit (the same for each);
# - effective stride: how far the span moves from one unit to the next (constant);
# - effective padding: y·S − the span's first position (the same for each).
# convcalc's field is read at the same input shape and, because the layers up to the
# probed one have no size-dependent geometry, equals the field of the model's default
# input too: the number `convcalc net NAME --json` prints.

Triple = tuple[int, Fraction, Fraction]


def measured_field(
    network: Callable[..., object],
    input_shape: tuple[int, ...],
    ys: Sequence[int],
    axes: Sequence[int] | None = None,
) -> list[Triple]:
    """Per spatial axis in `axes` (default: all), (size, effective stride, effective
    padding) measured on the consecutive units `ys`: unit y has index y on every axis
    measured and 0 on the others."""
    spatial = len(input_shape) - 1
    axes = tuple(range(spatial)) if axes is None else tuple(axes)
    units = [tuple(y if axis in axes else 0 for axis in range(spatial)) for y in ys]
    fields = []
    for axis, spans in zip(axes, measured_fields(network, input_shape, units, axes), strict=True):
        length = input_shape[axis + 1]
        # a span reaching the first or last position may be cut short by the border
        assert all(first > 0 and last < length - 1 for first, last in spans), spans
        (size,) = {last - first + 1 for first, last in spans}
        firsts = [first for first, _ in spans]
        (stride,) = {b - a for a, b in pairwise(firsts)}
        (padding,) = {y * stride - first for y, first in zip(ys, firsts, strict=True)}
        fields.append((size, Fraction(stride), Fraction(padding)))
    return fields


def convcalc_field(field: ReceptiveField | None) -> list[Triple]:
    """convcalc's field, per spatial axis."""
    assert field is not None
    return [
        (size, Fraction(stride), Fraction(padding))
        for size, stride, padding in zip(
            field.size, field.effective_stride, field.effective_padding, strict=True
        )
    ]


def row_field(result: Analysis, key: str, kind: str) -> list[Triple]:
    """convcalc's field of the row with path or name `key`."""
    (row,) = (row for row in result.rows if key in (row.path, row.name))
    assert row.kind == kind
    return convcalc_field(row.receptive_field)


def axis(size: int, stride: int, padding: int) -> Triple:
    return (size, Fraction(stride), Fraction(padding))


def square(size: int, stride: int, padding: int) -> list[Triple]:
    return 2 * [axis(size, stride, padding)]


def sequential(module: nn.Module) -> nn.Sequential:
    assert isinstance(module, nn.Sequential)
    return module


def thin_resnet(name: str) -> Callable[..., object]:
    block, counts = RESNETS[name]
    twin = linear_twin(ResNet(block, counts, width=1))
    assert isinstance(twin, ResNet)
    return twin.features


def thin_mobilenet_v2() -> Callable[..., object]:
    # torchvision's own width multiplier, without rounding to multiples of 8: the widths
    # 2, 1, 2, 2, 4, 6, 10, 20 (and 1280 at the end) keep every block's shortcut, and
    # every depthwise convolution has as many groups as channels.
    return sequential(linear_twin(mobilenet_v2(width_mult=1 / 16, round_nearest=1)))[0]


# name: (input shape, probed units, the twin up to the probed layer, the field torch
# measures, written out for the reader). ResNets: the output of layer4, before the
# global pool; MobileNetV2: the output of features (its last 1×1 convolution), before
# the global pool. Each input holds the three units' whole fields with a margin.
NETWORK_FIELDS: dict[
    str, tuple[tuple[int, ...], range, Callable[[], Callable[..., object]], list[Triple]]
] = {
    "resnet34": (
        (3, 1024, 1024),
        range(15, 18),
        partial(thin_resnet, "resnet34"),
        square(899, 32, 449),
    ),
    "resnet50": (
        (3, 640, 640),
        range(9, 12),
        partial(thin_resnet, "resnet50"),
        square(427, 32, 213),
    ),
    "resnet101": (
        (3, 1088, 1088),
        range(16, 19),
        partial(thin_resnet, "resnet101"),
        square(971, 32, 485),
    ),
    "resnet152": (
        (3, 1536, 1536),
        range(23, 26),
        partial(thin_resnet, "resnet152"),
        square(1451, 32, 725),
    ),
    "mobilenet_v2": ((3, 640, 640), range(9, 12), thin_mobilenet_v2, square(491, 32, 245)),
}


@pytest.mark.parametrize("name", list(NETWORK_FIELDS))
def test_network_field_measured_by_gradients(name: str) -> None:
    shape, ys, twin, expected = NETWORK_FIELDS[name]
    measured = measured_field(twin(), shape, ys)
    assert measured == convcalc_field(analysis(name, shape).receptive_field) == expected
    # and what `convcalc net NAME` reports at the model's own input (224×224)
    assert measured == convcalc_field(analysis(name).receptive_field)


def test_r3d_18_field_measured_by_gradients() -> None:
    # The output of layer4, before the global pool. Float64 3-D convolutions are slow
    # on the CPU, and a clip holding the whole field on every axis at once (120 frames
    # of 240×240) takes a minute and a half: the time axis is measured on a long clip of
    # small frames, the spatial axes on a short clip of large frames. Every kernel is a
    # centred box (odd size, padding half of it) with positive weights, so which
    # positions a unit sees factors into one interval per axis, and cutting one axis
    # short at the border does not change what is seen on the others.
    twin = sequential(linear_twin(r3d_18(width=1)))[:5]
    long_clip, large_frames = (3, 120, 16, 16), (3, 8, 240, 240)
    (time,) = measured_field(twin, long_clip, range(7, 9), axes=(0,))
    height, width = measured_field(twin, large_frames, range(7, 9), axes=(1, 2))
    assert [time, height, width] == [axis(109, 8, 54), *square(219, 16, 109)]
    assert time == convcalc_field(analysis("r3d_18", long_clip).receptive_field)[0]
    assert [height, width] == convcalc_field(analysis("r3d_18", large_frames).receptive_field)[1:]
    # and what `convcalc net r3d_18` reports at the model's own input (16 × 112×112)
    assert [time, height, width] == convcalc_field(analysis("r3d_18").receptive_field)


# AlexNet and VGG end their features with a max pool, then an adaptive average pool to
# 6×6 / 7×7, an identity at 224×224. On the larger inputs the field needs, that pool is
# a real one, uneven where the sizes do not divide (15 → 6, 16 → 7 here): the features'
# last max pool is probed and compared with convcalc's row for it.
FEATURE_FIELDS: dict[
    str, tuple[str, tuple[int, ...], range, Callable[[], nn.Module], list[Triple]]
] = {
    "alexnet": (
        "features.12",
        (3, 512, 512),
        range(6, 9),
        partial(alexnet, width=1),
        square(195, 32, 66),
    ),
    "vgg16": (
        "layers[9]",
        (3, 512, 512),
        range(7, 10),
        partial(vgg16, width=1),
        square(212, 32, 90),
    ),
    "vgg16_bn": (
        "layers[9]",
        (3, 512, 512),
        range(7, 10),
        partial(vgg16, batch_norm=True, width=1),
        square(212, 32, 90),
    ),
}


@pytest.mark.parametrize("name", list(FEATURE_FIELDS))
def test_last_feature_layer_field_measured_by_gradients(name: str) -> None:
    key, shape, ys, build, expected = FEATURE_FIELDS[name]
    twin = sequential(linear_twin(build()))
    features, pool = sequential(twin[0]), twin[1]
    assert isinstance(features[-1], nn.AvgPool2d)  # the last max pool, as an average pool
    measured = measured_field(features, shape, ys)
    assert measured == row_field(analysis(name, shape), key, "max_pool") == expected
    # At the model's own input (224×224) the adaptive pool is an identity, so the
    # network's field, what `convcalc net NAME` reports, is the max pool's.
    default = analysis(name)
    out = features(torch.rand(1, *default.input_shape, dtype=torch.float64))
    assert torch.equal(pool(out), out)
    assert measured == convcalc_field(default.receptive_field)


# Where the adaptive pool divides evenly (12 → 6, 14 → 7) it is a 2×2 pool of stride 2,
# and the network's field is that of the features and the pool together.
POOLED_FIELDS: dict[str, tuple[tuple[int, ...], range, Callable[[], nn.Module], list[Triple]]] = {
    "alexnet": ((3, 418, 418), range(2, 5), partial(alexnet, width=1), square(227, 64, 66)),
    "vgg16": ((3, 448, 448), range(2, 5), partial(vgg16, width=1), square(244, 64, 90)),
}


@pytest.mark.parametrize("name", list(POOLED_FIELDS))
def test_field_through_an_even_adaptive_pool_measured_by_gradients(name: str) -> None:
    shape, ys, build, expected = POOLED_FIELDS[name]
    twin = sequential(linear_twin(build()))
    network = twin[:2]  # features, adaptive pool
    out = twin[0](torch.rand(1, *shape, dtype=torch.float64))
    assert torch.equal(twin[1](out), nn.functional.avg_pool2d(out, 2))
    measured = measured_field(network, shape, ys)
    assert measured == convcalc_field(analysis(name, shape).receptive_field) == expected
