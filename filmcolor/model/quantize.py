"""int8 models for CPUs: onnxruntime static quantisation calibrated on real footage.

A generator exported with ``filmcolor export`` is quantised (weights int8 per channel,
activations uint8, QOperator format: fused integer kernels that use VNNI where the CPU has it;
the first and the last convolution stay float, see :func:`float_ends`)
with calibration frames sampled evenly from films or pictures at the model's working size.
The contract is kept, so restore runs the result unchanged; restore picks ``NAME_int8.onnx``
beside ``NAME.onnx`` by itself on a CPU (``--precision auto``). Needs the ``onnx`` package
(``pip install 'filmcolor[train]'``), not torch. Example::

    report = quantize_model(Path("films.onnx"), [Path("reel1.mp4")], Path("films_int8.onnx"))
    print(report.mean_abs_diff)     # chroma difference to the float model on the calibration frames
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ExportError, MissingDependencyError, UsageError
from ..io.files import IMAGE_SUFFIXES, load_rgb, partial_path
from ..io.probe import probe
from ..io.reader import FrameReader
from ..restore.colorizer import Colorizer
from .contract import int8_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeReport:
    """What a quantisation wrote and how far it is from the float model."""

    path: Path
    calibration_frames: int
    mean_abs_diff: float
    max_abs_diff: float
    size_bytes: int


def _expand(sources: list[Path]) -> list[Path]:
    """Films and pictures, a folder standing for the pictures in it (recursively)."""
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found.extend(sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(source)
    return found


def calibration_frames(engine: Colorizer, sources: list[Path], count: int = 32) -> np.ndarray:
    """``count`` luminance frames at the model's working size, spread evenly over ``sources``
    (films, pictures, folders of pictures)."""
    frames: list[np.ndarray] = []
    sources = _expand(sources)
    if len(sources) > count:
        sources = [sources[int(i * len(sources) / count)] for i in range(count)]
    per_source = max(1, -(-count // max(1, len(sources))))
    for source in sources:
        if source.suffix.lower() in IMAGE_SUFFIXES:
            try:
                gray = cv2.cvtColor(load_rgb(source), cv2.COLOR_RGB2GRAY)
            except OSError:
                raise UsageError(
                    f"cannot read calibration picture '{source}'; give a PNG/JPEG or a film"
                ) from None
            frames.append(engine.shrink_plane(gray, True))
            continue
        info = probe(source)
        length = info.duration or 1.0
        for i in range(per_source):
            start = length * (i + 0.5) / per_source
            with FrameReader(
                info, pix_fmt="gray", start=start, duration=1.0, keyframe_seek=True
            ) as reader:
                frame = reader.read()
            if frame is not None:
                frames.append(engine.shrink_plane(frame, True))
    if not frames:
        raise UsageError(
            "no calibration frame could be read; give films or pictures with footage",
            fields=("footage",),
        )
    if len(frames) > count:
        frames = [frames[int(i * len(frames) / count)] for i in range(count)]
    # One shape per batch: the working shape of the first frame (crop/resize the others to it).
    h, w = frames[0].shape
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


class _QuietShapeOps(logging.Filter):
    """Drops the quantiser's warnings about the shape arithmetic of a network that resizes
    to its input's size (Gather, Slice, Unsqueeze on shapes): those are not quantised, rightly."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Inference failed or unsupported type")


def float_ends(model: Path) -> list[str]:
    """The first and the last convolution (the last two after a binned head's softmax), which
    stay float in the int8 copy (of a network with more convolutions than these).

    The input's luminance and the output's chroma are where 256 levels show: keeping these
    float makes the int8 copy several times closer to the float model for a little more time
    per frame (docs/training.md).
    """
    import onnx

    nodes = onnx.load(str(model)).graph.node
    convs = [node.name for node in nodes if node.op_type == "Conv"]
    # A binned head (models.py) ends in two: the bins' scores, and their annealed mean (after
    # the softmax's Exp).
    last = 2 if any(node.op_type == "Exp" for node in nodes) else 1
    return (
        [convs[0], *convs[-last:]] if len(convs) > 1 + last else []
    )  # else nothing would be left to quantise


def quantize_model(
    model: Path, footage: list[Path], out: Path | None = None, count: int = 32
) -> QuantizeReport:
    """Write an int8 copy of ``model`` calibrated on ``footage`` (films or pictures).

    Raises:
        ExportError: the onnx package is missing or quantisation failed.
        UsageError: no calibration frame could be read.
    """
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as err:
        raise MissingDependencyError(
            f"quantising needs the onnx package ({err.name} is missing); pip install "
            f"'filmcolor[train]'"
        ) from err
    out = out or int8_path(model)
    engine = Colorizer(model, device="cpu")
    frames = calibration_frames(engine, footage, count)
    name = engine.contract.input_name

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._iter = iter(frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self._iter, None)
            return None if frame is None else {name: frame[None, None].astype(np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        partial = partial_path(out)
        quiet = _QuietShapeOps()
        logging.getLogger().addFilter(quiet)
        try:
            quant_pre_process(str(model), str(prepared))
            quantize_static(
                str(prepared),
                str(partial),
                Frames(),
                quant_format=QuantFormat.QOperator,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=float_ends(prepared),
            )
            quantized = Colorizer(partial, device="cpu")
            diff = np.abs(quantized.run(frames) - engine.run(frames))
            partial.replace(out)
        except (ExportError, UsageError):
            partial.unlink(missing_ok=True)
            raise
        except Exception as err:  # onnxruntime's quantiser raises untyped errors
            partial.unlink(missing_ok=True)
            raise ExportError(f"quantising '{model}' failed: {err}") from err
        finally:
            logging.getLogger().removeFilter(quiet)
    report = QuantizeReport(
        out, len(frames), float(diff.mean()), float(diff.max()), out.stat().st_size
    )
    log.info(
        "wrote '%s' (%.1f MB): %d calibration frames, chroma difference to the float model "
        "mean %.4f, max %.4f",
        out,
        report.size_bytes / 1e6,
        report.calibration_frames,
        report.mean_abs_diff,
        report.max_abs_diff,
    )
    return report
