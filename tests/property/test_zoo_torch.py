"""The bundled U-Net and WaveNet against the same networks written by hand in torch.nn.

They are not torchvision models (tests/zoo/test_torchvision.py checks those against
torchvision itself), so the builders below follow their model files' sources
(milesial/Pytorch-UNet without batch norm; ibab/tensorflow-wavenet with the documented
simplifications). For each:

- `sum(p.numel())` of the torch build equals convcalc's params;
- on the meta device, at the default input, the output shape and the multiply-
  accumulates counted from the modules torch ran (forward hooks) equal convcalc's;
- a real forward pass (float32) gives convcalc's output shape at a smaller or odd input;
- the receptive field measured by gradients on a linear twin (tests/zoo/twin.py)
  equals convcalc's, on an input large enough to hold the probed units'
  whole fields, and equals the field convcalc reports at the model's own input. The
  twin is built thin (a few channels: the builders take a width): which input positions
  a unit sees does not depend on the channel counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import Tensor, nn  # noqa: E402

import convcalc  # noqa: E402
from convcalc.analysis.analyze import Analysis, analyze  # noqa: E402
from convcalc.loader import build_model  # noqa: E402
from convcalc.source import parse  # noqa: E402
from tests.zoo.twin import Twin, extent, linear_twin, measure, module_macs  # noqa: E402

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


BUILDERS: dict[str, Callable[[], nn.Module]] = {"unet": UNet, "wavenet": wavenet}


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_params_equal_the_torch_build(name: str) -> None:
    with torch.device("meta"):
        model = BUILDERS[name]()
    assert count_params(model) == analysis(name).totals.params


@pytest.mark.parametrize("name", list(BUILDERS))
def test_macs_and_output_shape_equal_the_torch_build_on_the_meta_device(name: str) -> None:
    # Shapes propagate on the meta device without any arithmetic: the full-size
    # networks at their default inputs, in no time.
    result = analysis(name)
    with torch.device("meta"):
        model = BUILDERS[name]().eval()
        out = model(torch.empty(1, *result.input_shape))
    assert tuple(out.shape[1:]) == result.output_shape
    assert sum(module_macs(model, result.input_shape).values()) == result.totals.macs


# Output shapes by a real forward pass (float32, batch 1), at a smaller or odd input
# (given to convcalc as well).
FORWARDS = [("unet", (3, 128, 96)), ("wavenet", (256, 6000))]


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


def measured_fields(
    twin: Twin, input_shape: tuple[int, ...], units: Sequence[tuple[int, ...]]
) -> list[list[tuple[int, int]]]:
    """Per spatial axis, per output unit (its spatial index, every channel summed): the
    first and last input position on that axis whose gradient is not zero (see
    `measure`), with every position between them seen."""
    per_axis: list[list[tuple[int, int]]] = [[] for _ in input_shape[1:]]
    for seen in measure(twin, input_shape, [("", unit) for unit in units]):
        for axis, span in enumerate(extent(seen.local)):
            assert span is not None
            others = tuple(d for d in range(seen.local.dim()) if d != axis)
            along = seen.local.any(dim=others) if others else seen.local
            assert int(along.sum()) == span[1] - span[0] + 1
            per_axis[axis].append(span)
    return per_axis


def axis_field(result: Analysis, axis: int) -> tuple[int, Fraction, Fraction]:
    field = result.receptive_field
    assert field is not None
    return (
        field.size[axis],
        Fraction(field.effective_stride[axis]),
        Fraction(field.effective_padding[axis]),
    )


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
    for axis, measured in enumerate(measured_fields(twin, shape, units)):
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
    (spans,) = measured_fields(twin, shape, [(y,) for y in ys])
    for y, (first, last) in zip(ys, spans, strict=True):
        assert last == y  # causal: nothing from the future
        assert (last - first + 1, y * stride - first) == (size, padding) == (5117, 5116)
    assert spans[1][0] - spans[0][0] == stride == 1
    # and what `convcalc net wavenet` reports at the model's own input (256×16000)
    assert axis_field(analysis("wavenet"), 0) == (5117, 1, 5116)
