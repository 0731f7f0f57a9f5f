"""The model contract: what an exported generator promises (stored as JSON in the ONNX metadata,
see docs/contract.md), and where the shipped model and int8 siblings live.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import EngineError, MissingDependencyError
from ..io.files import atomic_write

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
    """Factor on the network's chroma, set by ``filmcolor calibrate`` (see
    filmcolor.model.calibrate)."""
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
            raise EngineError(
                f"model '{where}' has an unreadable filmcolor contract: {err}"
            ) from err
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
    """Where the int8 sibling of ``model`` lives (``NAME_int8.onnx``, see
    filmcolor.model.quantize)."""
    return model.with_name(f"{model.stem}_int8{model.suffix}")


def contract_of(proto: Any, where: Path) -> ModelContract:
    """The contract stored in a loaded ONNX model (an ``onnx.ModelProto``).

    Raises:
        EngineError: it has none, or an unreadable one.
    """
    meta = {p.key: p.value for p in proto.metadata_props}
    if CONTRACT_KEY not in meta:
        raise EngineError(
            f"model '{where}' carries no filmcolor contract (metadata key '{CONTRACT_KEY}'); "
            "export generators with 'filmcolor export'"
        )
    return ModelContract.from_json(meta[CONTRACT_KEY], where)


def set_contract(proto: Any, contract: ModelContract) -> None:
    """Store ``contract`` in a loaded ONNX model, keeping its other metadata."""
    props = {p.key: p.value for p in proto.metadata_props}
    props[CONTRACT_KEY] = contract.to_json()
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def update_contract(path: Path, **changes: Any) -> ModelContract:
    """Change fields of the contract in the ONNX file ``path`` (atomically); returns the new one.

    Raises:
        MissingDependencyError: the onnx package (the [train] extra) is missing.
        EngineError: the file has no readable contract.
    """
    try:
        import onnx
    except ImportError as err:
        raise MissingDependencyError(
            "changing a model file needs the onnx package; pip install 'filmcolor[train]'"
        ) from err
    proto = onnx.load(str(path))
    contract = dataclasses.replace(contract_of(proto, path), **changes)
    set_contract(proto, contract)
    with atomic_write(path) as partial:
        onnx.save(proto, str(partial))
    return contract
