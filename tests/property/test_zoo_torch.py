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
- for ResNet-18, the U-Net and the WaveNet, the receptive field measured by gradients on
  a linear twin (float64, positive weights, no biases, max pools as average pools with
  the same window, batch norm and activations as identities) equals convcalc's. The
  twin is built thin (few channels): which input positions a unit sees does not depend
  on the channel counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from functools import partial
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import Tensor, nn  # noqa: E402

import convcalc  # noqa: E402
from convcalc.analysis.analyze import Analysis, analyze  # noqa: E402
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


def alexnet(num_classes: int = 1000) -> nn.Module:
    features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    classifier = nn.Sequential(
        nn.Dropout(p=0.5),
        nn.Linear(256 * 6 * 6, 4096),
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


def vgg16(batch_norm: bool = False, num_classes: int = 1000) -> nn.Module:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in VGG_D:
        if isinstance(v, int):
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
        else:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096),
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
        hidden_dim = inp * expand_ratio
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


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2]]
    setting += [[6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    input_channel, last_channel = 32, 1280  # width_mult 1.0: _make_divisible changes nothing
    features: list[nn.Module] = [conv_bn_relu6(3, input_channel, stride=2)]
    for t, c, n, s in setting:
        for i in range(n):
            features.append(InvertedResidual(input_channel, c, s if i == 0 else 1, t))
            input_channel = c
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


def r3d_18(num_classes: int = 400) -> nn.Module:
    stem = nn.Sequential(  # BasicStem
        nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )
    layers: list[nn.Module] = [stem]
    inplanes = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
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
    layers += [nn.AdaptiveAvgPool3d((1, 1, 1)), nn.Flatten(1), nn.Linear(512, num_classes)]
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
