"""The torch-free half: restore a film (pipeline), the colorizer, the colour stages (stages,
temporal), the segments (resume, worker pool) and the preview sheet.

    from filmcolor.restore import restore
    restore(Path("reel1.mp4"), Path("reel1_color.mp4"), RestoreConfig())
"""

from __future__ import annotations

from typing import Any

__all__ = ["RestoreResult", "restore"]


def __getattr__(name: str) -> Any:
    """``restore`` and ``RestoreResult`` are loaded when first asked for: the command line reads
    the light ``restore.stages`` at start without loading OpenCV and onnxruntime."""
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'filmcolor.restore' has no attribute {name!r}")
