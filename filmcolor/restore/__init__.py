"""The torch-free half: restore a film (pipeline), the colorizer, the temporal colour stages, the
segments (resume, worker pool) and the preview sheet.

    from filmcolor.restore import restore
    restore(Path("reel1.mp4"), Path("reel1_color.mp4"), RestoreConfig())
"""

from .pipeline import RestoreResult, restore

__all__ = ["RestoreResult", "restore"]
