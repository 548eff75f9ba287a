"""The real CNNs that issue 12's coverage is measured on: every classification,
segmentation and video CNN of torchvision 0.28, and one small model of each of 40 timm
families; each with an input small enough to be quick and valid for the model.

`test_real_import.py` checks every import against the module itself; `survey.py` counts
what imports. Which models the importer is expected to refuse, and why, is `REFUSED`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "EXCLUDED",
    "MODELS",
    "REFUSED",
    "TIMM",
    "TORCHVISION",
    "TORCHVISION_MODULES",
    "RealModel",
    "build",
]


class RealModel(NamedTuple):
    """A model by its library ("torchvision" or "timm") and builder's name, the input it
    is imported at (channels first, without the batch), and whether it is among the
    slow ones (pytest's `slow` marker)."""

    library: str
    name: str
    input_shape: tuple[int, ...]
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.library}.{self.name}"


#: The torchvision modules whose models are surveyed: `torchvision.models.list_models`
#: of each, less `EXCLUDED`.
TORCHVISION_MODULES = ("models", "models.segmentation", "models.video")

#: torchvision models that are not CNNs: transformers, whose attention (a product of two
#: activations, a softmax over positions) convcalc does not describe.
EXCLUDED = {
    **dict.fromkeys(
        ("vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32"), "Vision Transformer"
    ),
    **dict.fromkeys(
        ("swin_b", "swin_s", "swin_t", "swin_v2_b", "swin_v2_s", "swin_v2_t"),
        "Swin Transformer (windowed attention)",
    ),
    "maxvit_t": "MaxViT (a convolution stem and blocks, then block and grid attention)",
    **dict.fromkeys(("mvit_v1_b", "mvit_v2_s"), "Multiscale Vision Transformer"),
    **dict.fromkeys(("swin3d_b", "swin3d_s", "swin3d_t"), "Video Swin Transformer"),
}

IMAGE = (3, 64, 64)
VIDEO = (3, 8, 64, 64)

# The slow ones: those whose graph alone takes torch.export 4 s or more on 2 busy cores
# (EfficientNet-B7: 6.7 s; 252 s for all 118; test_real_import.py's docstring says more),
# and S3D, whose input is 16×224×224.
_SLOW_TORCHVISION = {
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_s",
    "efficientnet_v2_m", "efficientnet_v2_l", "densenet161", "densenet169", "densenet201",
    "s3d",
}  # fmt: skip

# Inception v3 needs 75×75 at least (its stem and reductions leave nothing smaller);
# S3D's last pool is 2×7×7 frames by pixels, after its input is divided by 8 and 32.
_SHAPES = {"inception_v3": (3, 75, 75), "s3d": (3, 16, 224, 224)}

_TORCHVISION_NAMES = {
    "models": [
        "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny",
        "densenet121", "densenet161", "densenet169", "densenet201", "efficientnet_b0",
        "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
        "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l",
        "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3", "mnasnet0_5",
        "mnasnet0_75", "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large",
        "mobilenet_v3_small", "regnet_x_16gf", "regnet_x_1_6gf", "regnet_x_32gf",
        "regnet_x_3_2gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_8gf", "regnet_y_128gf",
        "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf",
        "regnet_y_800mf", "regnet_y_8gf", "resnet101", "resnet152", "resnet18", "resnet34",
        "resnet50", "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d",
        "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
        "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
        "vgg16_bn", "vgg19", "vgg19_bn", "wide_resnet101_2", "wide_resnet50_2",
    ],
    "models.segmentation": [
        "deeplabv3_mobilenet_v3_large", "deeplabv3_resnet101", "deeplabv3_resnet50",
        "fcn_resnet101", "fcn_resnet50", "lraspp_mobilenet_v3_large",
    ],
    "models.video": ["mc3_18", "r2plus1d_18", "r3d_18", "s3d"],
}  # fmt: skip

#: 78 CNNs: 68 classifiers, 6 segmentation models, 4 video models.
TORCHVISION = tuple(
    RealModel(
        "torchvision",
        name,
        _SHAPES.get(name, VIDEO if module == "models.video" else IMAGE),
        name in _SLOW_TORCHVISION,
    )
    for module, names in _TORCHVISION_NAMES.items()
    for name in names
)

#: One small model per family, by timm's name: the issue's 36 families (ResNet and
#: ResNet-D, EfficientNet and its TF "same"-padded port, MobileNetV3 and V4, CSPDarkNet
#: and CSPResNet counted apart), and RegNetX, SE-ResNeXt, NF-ResNet and CS3-DarkNet.
_TIMM_FAMILIES = {
    "ResNet": "resnet18",
    "ResNet-D": "resnet18d",
    "SE-ResNet": "seresnet18",
    "ResNeXt": "resnext50_32x4d",
    "EfficientNet": "efficientnet_b0",
    "EfficientNet (TF 'same' padding)": "tf_efficientnet_b0",
    "MobileNetV3": "mobilenetv3_small_100",
    "MobileNetV4": "mobilenetv4_conv_small",
    "RegNetY": "regnety_002",
    "ConvNeXt": "convnext_atto",
    "DenseNet": "densenet121",
    "Inception-v3": "inception_v3",
    "Xception": "xception41",
    "DLA": "dla34",
    "HRNet": "hrnet_w18_small",
    "CSPDarkNet": "cspdarknet53",
    "CSPResNet": "cspresnet50",
    "GhostNet": "ghostnet_100",
    "ReXNet": "rexnet_100",
    "VoVNet": "ese_vovnet19b_dw",
    "Res2Net": "res2net50_14w_8s",
    "ResNeSt": "resnest14d",
    "SelecSLS": "selecsls42b",
    "DPN": "dpn48b",
    "NFNet": "nfnet_l0",
    "MixNet": "mixnet_s",
    "GENet": "gernet_s",
    "RepVGG": "repvgg_a0",
    "HardCoReNAS": "hardcorenas_a",
    "LCNet": "lcnet_050",
    "TinyNet": "tinynet_e",
    "FBNet": "fbnetc_100",
    "MNASNet": "mnasnet_small",
    "DarkNet": "darknet17",
    "SKNet": "skresnet18",
    "ECA-ResNet": "ecaresnet26t",
    "RegNetX": "regnetx_002",
    "SE-ResNeXt": "seresnext26d_32x4d",
    "NF-ResNet": "nf_resnet26",
    "CS3-DarkNet": "cs3darknet_s",
}

#: 40 models, one per family.
TIMM = tuple(RealModel("timm", name, _SHAPES.get(name, IMAGE)) for name in _TIMM_FAMILIES.values())

MODELS = TORCHVISION + TIMM

#: Models convcalc is expected to refuse (issue 12 allows 3 of torchvision's and 4 of
#: timm's), by id, and why: what they compute has no kind in convcalc (SPEC §6.4).
REFUSED = {
    "timm.ecaresnet26t": "ECA's gate is a 1-D convolution across the channels of a pooled "
    "vector: a convolution over the channel axis",
}


def build(model: RealModel, library: Any) -> Any:
    """The model's module with random weights (weights=None), in eval mode, on the CPU,
    its parameters not initialised: nothing convcalc or the checks compute reads their
    values, and a random initialisation of the largest takes seconds and gigabytes.
    `library` is the imported torchvision or timm."""

    with warnings.catch_warnings(), _parameters_on_meta():
        # googlenet and inception_v3 warn that their initialisation will change.
        warnings.simplefilter("ignore", FutureWarning)
        if model.library == "timm":
            module = library.create_model(model.name, pretrained=False)
        else:
            extra = {"weights_backbone": None} if _segmentation(model.name) else {}
            module = library.models.get_model(model.name, weights=None, **extra)
    return module.to_empty(device="cpu").eval()


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Every parameter a module registers moves to the meta device at once, so that
    initialising it costs nothing. (Building under `torch.device("meta")` would do more:
    it would put every tensor there, and torchvision's RegNet builders compute their
    widths with tensors they read back.)"""
    from torch import nn

    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, parameter: nn.Parameter | None) -> None:
        if parameter is not None and parameter.device.type != "meta":
            parameter = nn.Parameter(parameter.to("meta"), parameter.requires_grad)
        register(module, name, parameter)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


def _segmentation(name: str) -> bool:
    return name in _TORCHVISION_NAMES["models.segmentation"]
