"""The colour stage's interface and the registry of its kinds (``--temporal``).

A colour stage takes a film's frames one by one (the luminance at the model's working size, and
a payload it hands back untouched) and gives out each frame's chroma, in order, possibly some
frames later. Config, the command line and restore all read :data:`COLOR_STAGES`: a new temporal
method is one class (in restore/temporal.py or a module of its own) and one ``@register`` line::

    @register("mine")
    def _mine(cfg, model, fps, batch_size, background, fit):
        return MyStage(model, fit, ...)

This module stays light (not even numpy at run time): the command line reads the names at start.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ..config import TemporalConfig
    from .temporal import StageTimes

Model = Callable[["np.ndarray"], "np.ndarray"]
"""The colorizer as a stage sees it: working-size luminance (N, h, w) -> chroma (N, 2, h, w)."""


class ColorStage(Protocol):
    """What restore needs of a colour stage."""

    times: StageTimes
    """CPU seconds of its model and temporal work, and how many frames the model ran on."""
    cuts: list[int]
    """Frames (counted from its first) where it found a cut and started afresh."""

    def push(self, payload: Any, luma: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """Take the next frame; give out the frames finished so far, in order."""
        ...

    def finish(self) -> list[tuple[Any, np.ndarray]]:
        """Give out every frame still held back."""
        ...

    def close(self) -> None:
        """Stop any thread of its own (also after an error)."""
        ...


Fit = Callable[["np.ndarray", "np.ndarray"], "np.ndarray"]
"""Working-size luminance (h, w), chroma (2, h, w) -> the chroma to show (Colorizer.fit)."""
StageFactory = Callable[["TemporalConfig", Model, Fraction, int, bool, Fit], ColorStage]
COLOR_STAGES: dict[str, StageFactory] = {}
"""``--temporal`` name -> factory(cfg, model, fps, batch_size, background, fit)."""


def register(name: str) -> Callable[[StageFactory], StageFactory]:
    """Add a colour stage under ``name`` (a decorator of its factory)."""

    def add(factory: StageFactory) -> StageFactory:
        COLOR_STAGES[name] = factory
        return factory

    return add


@register("flow")
def _flow(
    cfg: TemporalConfig, model: Model, fps: Fraction, batch_size: int, background: bool, fit: Fit
) -> ColorStage:
    """Chroma blended with the neighbours' along optical flow, reset at cuts, keyframes."""
    from .temporal import FlowBlender

    return FlowBlender(cfg, model, fps, batch_size, background, fit=fit)


@register("none")
def _per_frame(
    cfg: TemporalConfig, model: Model, fps: Fraction, batch_size: int, background: bool, fit: Fit
) -> ColorStage:  # noqa: ARG001
    """The model on every frame, in batches."""
    from .temporal import PerFrameColor

    return PerFrameColor(model, batch_size, fit=fit)


def make_color_stage(
    cfg: TemporalConfig,
    model: Model,
    fps: Fraction,
    batch_size: int = 4,
    background: bool = False,
    fit: Fit | None = None,
) -> ColorStage:
    """The colour stage ``cfg.mode`` names (``background``: the model may run in a thread of its
    own). Each frame's colour comes out through ``fit`` (restore: its Colorizer's; by default
    the same rule, :func:`~filmcolor.color.fit_colour`: into what its luminance can show, none
    on title cards)."""
    if fit is None:
        from ..color import fit_colour as fit
    return COLOR_STAGES[cfg.mode](cfg, model, fps, batch_size, background, fit)
