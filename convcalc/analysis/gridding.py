"""Gridding: whether a run of dilated layers leaves holes in the field.

Stacked dilated convolutions whose dilations share a factor read only a lattice of the
input, "gridding" (Wang et al., *Understanding Convolution for Semantic Segmentation*,
2018). Rather than guess from the dilations, `Run` tracks exactly which offsets one unit
reads on each axis since the resolution last changed, so a run that an earlier dense
layer fills (WaveNet's 1, 2, 4, 8) is not flagged, and 2, 4, 8 on its own is.
"""

from __future__ import annotations

from dataclasses import dataclass

from convcalc.model.axes import Sliding, Window

__all__ = ["Run"]

_POINTWISE = Sliding(span=1, stride=1, before=0)

#: Past this many distinct offsets a run is no longer tracked (it is then assumed dense).
MAX_OFFSETS = 4096

# Offsets one unit reads relative to its first: n for the dense run 0 … n − 1, a set
# where there are holes, None once too large to track.
Offsets = int | frozenset[int] | None


def _spread(offsets: Offsets, window: Sliding) -> Offsets:
    """The offsets after one more layer: every offset plus every tap of the kernel."""
    kernel = (window.span - 1) // window.dilation + 1
    if offsets is None or kernel == 1:
        return offsets
    if isinstance(offsets, int) and window.dilation <= offsets:
        return offsets + (kernel - 1) * window.dilation  # the taps' gaps are filled
    base = range(offsets) if isinstance(offsets, int) else offsets
    if len(base) > MAX_OFFSETS or kernel > MAX_OFFSETS:
        return None  # the spread has at least as many offsets as either
    spread = frozenset(a + tap * window.dilation for a in base for tap in range(kernel))
    if len(spread) > MAX_OFFSETS:
        return None
    return len(spread) if max(spread) + 1 == len(spread) else spread


@dataclass(frozen=True)
class Run:
    """Layers at one resolution: per axis, the offsets a unit reads, and the dilated
    layers met since the last dense one (path, dilations)."""

    offsets: tuple[Offsets, ...]
    dilated: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @staticmethod
    def start(ndim: int) -> Run:
        return Run((1,) * ndim)

    def through(self, windows: tuple[Window, ...], path: str) -> tuple[Run, Run | None]:
        """This run one layer further on, and the stretch of dilated layers that the
        layer ends, if any: a dense layer with a kernel ends it (its own taps are not
        counted, for the stretch's output already grids), and so does any change of
        resolution (a stride, a transposed convolution, a resampling)."""
        ndim = len(windows)
        if all(w == _POINTWISE for w in windows):
            return self, None
        sliding = [w for w in windows if isinstance(w, Sliding)]
        if len(sliding) < ndim:
            return Run.start(ndim), self
        dilated = any(w.dilation > 1 and w.span > 1 for w in sliding)
        ended = None
        run = self
        if self.dilated and not dilated and any(w.span > 1 for w in sliding):
            ended, run = self, Run(self.offsets)
        offsets = tuple(_spread(o, w) for o, w in zip(run.offsets, sliding, strict=True))
        trail = run.dilated + (((path, tuple(w.dilation for w in sliding)),) if dilated else ())
        run = Run(offsets, trail)
        if any(w.stride != 1 for w in sliding):
            return Run.start(ndim), ended or run
        return run, ended

    def holes(self) -> list[int]:
        """The axes on which a unit's field has holes."""
        return [axis for axis, o in enumerate(self.offsets) if isinstance(o, frozenset)]
