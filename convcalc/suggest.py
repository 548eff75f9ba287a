"""Did you mean …: the known names a misspelt one was likely meant as.

People write the names they know from elsewhere: PyTorch's module and function names
(`Conv2d`, `nn.BatchNorm2d`, `max_pool2d`), Keras's (`Dense`, `filters`), or a model's
name with other punctuation (`ResNet-50`). Names are compared in one spelling: lower
case, without `_`, `-` or PyTorch's module prefix (`nn.`, `F.`), and without the
1d/2d/3d that tells a PyTorch module's dimensions (convcalc's layers take any). Then, in
this order: the same name; another framework's word for it; a name that begins with the
other (`resnet5`, `conv2d_layer`); the closest in spelling (difflib).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from convcalc.text import quote

__all__ = ["did_you_mean", "suggest"]

#: Other frameworks' words (in the compared spelling) for convcalc's kinds and parameters.
_ALIASES = {
    "convolution": "conv",
    "deconv": "conv_transpose",
    "deconvolution": "conv_transpose",
    "transposedconv": "conv_transpose",
    "dense": "linear",
    "fc": "linear",
    "bn": "batch_norm",
    "zeropad": "pad",
    "constantpad": "pad",
    "reflectionpad": "pad",
    "replicationpad": "pad",
    "circularpad": "pad",
    "zeropadding": "pad",
    "interpolate": "upsample",
    "upsampling": "upsample",
    "upsamplingnearest": "upsample",
    "upsamplingbilinear": "upsample",
    "swish": "silu",
    "maxpooling": "max_pool",
    "averagepooling": "avg_pool",
    "avgpooling": "avg_pool",
    "globalavgpool": "adaptive_avg_pool",
    "globalaveragepool": "adaptive_avg_pool",
    "globalaveragepooling": "adaptive_avg_pool",
    "globalmaxpool": "adaptive_max_pool",
    "globalmaxpooling": "adaptive_max_pool",
    "stochasticdepth": "drop_path",
    "droppath": "drop_path",
    "filters": "out_channels",
    "features": "out_features",
    "units": "out_features",
    "strides": "stride",
    "dilationrate": "dilation",
    "poolsize": "kernel_size",
    "usebias": "bias",
}

#: Names longer than this are compared whole only: difflib's time grows with the square
#: of the length, and no one misspells a name of 200 characters.
_LONGEST = 64
#: How alike two names must be (difflib's ratio) to be suggested on spelling alone.
_CUTOFF = 0.75
#: At most this many names in one suggestion.
_MOST = 5
#: A name must be this long to be taken as the start of another.
_SHORTEST_PREFIX = 3

_PREFIX = re.compile(r"^(?:torch\.)?(?:nn\.functional\.|nn\.|F\.)")  # PyTorch's modules
# 2d after a word of three letters at least (conv2d, not r3d), at its end or before
# "transpose" (Keras's Conv2DTranspose).
_DIMENSIONS = re.compile(r"(?<=[a-z]{3})[123]d(?=$|[^a-z0-9]|transpose)")


def _spelling(name: str) -> str:
    """A name in the spelling names are compared in: nn.BatchNorm2d → batchnorm."""
    name = _PREFIX.sub("", name).lower()
    return _DIMENSIONS.sub("", name).replace("_", "").replace("-", "")


def suggest(name: str, known: Iterable[str]) -> list[str]:
    """The known names `name` was likely meant as, best first (none if none is close)."""
    if len(name) > _LONGEST:
        return []
    by_spelling: dict[str, list[str]] = {}
    for other in sorted(set(known)):
        by_spelling.setdefault(_spelling(other), []).append(other)
    typed = _spelling(name)
    if not typed:
        return []
    if typed in by_spelling:
        return by_spelling[typed][:_MOST]
    alias = _ALIASES.get(typed)
    if alias is not None and _spelling(alias) in by_spelling:
        return by_spelling[_spelling(alias)][:_MOST]

    import difflib  # only on the way to an error

    def likeness(spelling: str) -> float:
        return difflib.SequenceMatcher(None, typed, spelling).ratio()

    starts = [
        spelling
        for spelling in by_spelling
        if (len(typed) >= _SHORTEST_PREFIX and spelling.startswith(typed))
        or (len(spelling) >= _SHORTEST_PREFIX and typed.startswith(spelling))
    ]
    if not starts:
        starts = difflib.get_close_matches(typed, list(by_spelling), n=1, cutoff=_CUTOFF)
    ranked = sorted(starts, key=likeness, reverse=True)
    return [other for spelling in ranked for other in by_spelling[spelling]][:_MOST]


def did_you_mean(names: list[str], quoted: bool = True) -> str:
    """ "did you mean 'conv'?", "did you mean 'vgg16' or 'vgg16_bn'?"; flags (--input)
    are shown unquoted."""
    shown = [quote(name) if quoted else name for name in names]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return f"did you mean {listed}?"
