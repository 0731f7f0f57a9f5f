"""filmcolor: bring black-and-white films back in colour.

Restore a film with the shipped default model (no PyTorch needed)::

    from pathlib import Path
    from filmcolor.config import RestoreConfig
    from filmcolor.restore import restore

    restore(Path("reel1.mp4"), Path("reel1_color.mp4"), RestoreConfig())

Train a CycleGAN of your own with ``filmcolor train`` (``pip install filmcolor[train]``).
"""

__version__ = "0.1.0"
