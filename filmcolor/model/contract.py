"""The model contract: what an exported generator promises (stored as JSON in the ONNX metadata,
see docs/contract.md), and where the shipped model and int8 siblings live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import EngineError

CONTRACT_KEY = "filmcolor"
CONTRACT_VERSION = 1
COLOR_SPACE = "ycbcr-bt601-full"


@dataclass(frozen=True)
class ModelContract:
    """What an exported generator promises (stored as JSON in ONNX ``metadata_props``)."""

    input_name: str = "luma"
    """Input tensor: (N, 1, H, W) luminance Y' in [-1, 1]."""
    output_name: str = "chroma"
    """Output tensor: (N, 2, H, W) chroma Cb, Cr in [-1, 1]."""
    color_space: str = COLOR_SPACE
    """Colour space of luminance and chroma (BT.601 full-range YCbCr)."""
    working_size: int = 256
    """Short side of the luminance the model was trained for."""
    size_multiple: int = 4
    """Height and width must be multiples of this."""
    generator: dict[str, Any] | None = None
    """The generator's shape (GeneratorConfig as a dict), for the record."""
    trained_steps: int | None = None
    """Training steps behind the weights, for the record."""
    chroma_gain: float = 1.0
    """Factor on the network's chroma, set by ``filmcolor calibrate`` (see filmcolor.model.calibrate)."""
    calibration: dict[str, Any] | None = None
    """How ``chroma_gain`` was chosen, for the record."""

    def to_json(self) -> str:
        """The contract as the JSON string stored in the model file."""
        return json.dumps(
            {
                "contract": CONTRACT_VERSION,
                "input": self.input_name,
                "output": self.output_name,
                "layout": "NCHW",
                "color_space": self.color_space,
                "value_range": [-1.0, 1.0],
                "working_size": self.working_size,
                "size_multiple": self.size_multiple,
                "generator": self.generator,
                "trained_steps": self.trained_steps,
                "chroma_gain": self.chroma_gain,
                "calibration": self.calibration,
            }
        )

    @classmethod
    def from_json(cls, text: str, where: Path) -> ModelContract:
        """Parse and check the stored contract of the model at ``where``."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise EngineError(f"model '{where}' has an unreadable filmcolor contract: {err}") from err
        if raw.get("contract") != CONTRACT_VERSION:
            raise EngineError(
                f"model '{where}' uses contract version {raw.get('contract')!r}, this filmcolor "
                f"reads version {CONTRACT_VERSION}; re-export it with 'filmcolor export'"
            )
        if raw.get("layout") != "NCHW" or raw.get("color_space") != COLOR_SPACE:
            raise EngineError(
                f"model '{where}' expects {raw.get('layout')} {raw.get('color_space')}, not NCHW "
                f"{COLOR_SPACE}; re-export it with 'filmcolor export'"
            )
        gain = raw.get("chroma_gain", 1.0)
        if not isinstance(gain, int | float) or not 0.0 < gain < 100.0:
            raise EngineError(
                f"model '{where}' has chroma_gain {gain!r} in its contract; it must be a number "
                "above 0: recalibrate it with 'filmcolor calibrate'"
            )
        return cls(
            input_name=str(raw.get("input", "luma")),
            output_name=str(raw.get("output", "chroma")),
            working_size=int(raw.get("working_size", 256)),
            size_multiple=int(raw.get("size_multiple", 4)),
            generator=raw.get("generator"),
            trained_steps=raw.get("trained_steps"),
            chroma_gain=float(gain),
            calibration=raw.get("calibration"),
        )


def default_model_path() -> Path:
    """The generator shipped inside the package (filmcolor/weights/default.onnx)."""
    return Path(str(resources.files("filmcolor") / "weights" / "default.onnx"))


def int8_path(model: Path) -> Path:
    """Where the int8 sibling of ``model`` lives (``NAME_int8.onnx``, see filmcolor.model.quantize)."""
    return model.with_name(f"{model.stem}_int8{model.suffix}")
