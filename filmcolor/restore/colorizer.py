"""Runs an exported generator with onnxruntime: luminance in, chroma out.

The model file carries its contract in ONNX metadata (key ``filmcolor``, see
docs/contract.md): tensor names, layout, colour space, value range and working size.
:class:`Colorizer` checks it and refuses a model that does not fit. Example::

    engine = Colorizer(None)                      # the default model shipped in the package
    chroma = engine.chroma(y_planes, full_range=False)  # (N, 2, H, W) float32 in [-1, 1]
    rgb = engine.colorize(gray_rgb_frames)              # RGB in, RGB out (previews, evaluation)

PyTorch is never imported here: restore runs on numpy, OpenCV and onnxruntime alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..color import fit_colour, luma_from_plane, merge_rgb, split_rgb
from ..errors import DeviceError, EngineError
from ..model.contract import CONTRACT_KEY, ModelContract, default_model_path, int8_path


def gpu_present() -> bool:
    """True when an NVIDIA GPU device node exists (onnxruntime-gpu lists CUDA even without one)."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


def area_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Shrink by pixel-area averaging, fast at any ratio.

    OpenCV's INTER_AREA is a plain block mean (fast) at whole-number ratios and a much slower
    general kernel at others (1.8 ms against 0.3 ms for 720p to 228x128): the picture is halved
    while it stays at least twice the target, then shrunk by the small rest.
    """
    h, w = image.shape[:2]
    if w % width == 0 and h % height == 0 and w // width == h // height:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)  # a block mean
    while w >= 2 * width and h >= 2 * height and (w, h) != (2 * width, 2 * height):
        w, h = w // 2, h // 2
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def working_shape(height: int, width: int, size: int, multiple: int) -> tuple[int, int]:
    """(h, w) for the model: short side ``size`` (never upscaled), both multiples of
    ``multiple``."""
    short = min(height, width)
    scale = min(1.0, size / short)
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


class Colorizer:
    """One onnxruntime session over an exported generator.

    Args:
        model: path to an .onnx file; None = the default model shipped in the package.
        device: 'auto' (CUDA only when a session really gets it), 'cpu' or 'cuda'.
        working_size: short side of the luminance the model sees; None = the model file's
            (its contract's ``working_size``, what it was trained at).
        threads: intra-op threads (0 = half the cores: the other half decodes and encodes).
        precision: 'fp32' (the file as given), 'int8' (its ``NAME_int8.onnx`` sibling, made by
            ``filmcolor quantize``) or 'auto' (the int8 sibling on a CPU when it exists, faster
            there; the file as given on a GPU).
        saturation: colour strength, a factor on the model's calibrated chroma (1 = as
            calibrated, 0 = black and white). The model's chroma is multiplied by
            ``contract.chroma_gain * saturation`` (:attr:`gain`).
        gain: the factor on the network's chroma, instead of the contract's ``chroma_gain``
            (``filmcolor calibrate`` measures the network's own chroma with 1).

    The chain is the Colorizer's alone, in this order: :meth:`shrink_plane` (to the working
    size), :meth:`run` (the network, times :attr:`gain`), :meth:`fit` (into each pixel's gamut,
    none on title cards) and :meth:`enlarge`; :meth:`chroma_for_luma` runs all of it. Restore's
    colour stages call ``run`` and ``fit`` between their own steps (carrying colour along the
    flow); nothing changes the gain from outside.
    """

    def __init__(
        self,
        model: Path | None = None,
        device: str = "auto",
        working_size: int | None = None,
        threads: int = 0,
        precision: str = "fp32",
        saturation: float = 1.0,
        gain: float | None = None,
    ) -> None:
        import onnxruntime as ort

        if not 0.0 <= saturation <= 10.0:
            raise EngineError(
                f"saturation must be between 0 and 10, got {saturation}", fields=("saturation",)
            )

        self.model_path = Path(model) if model is not None else default_model_path()
        cuda = self._wants_cuda(ort, device)
        if precision not in ("auto", "fp32", "int8"):
            raise EngineError(
                f"precision must be auto, fp32 or int8, got {precision!r}", fields=("precision",)
            )
        if precision != "fp32":
            quantized = int8_path(self.model_path)
            on_gpu = (
                cuda or device == "cuda"
            )  # (--device cuda without the provider is refused below)
            if quantized.is_file() and (precision == "int8" or not on_gpu):
                self.model_path = quantized
            elif precision == "int8":
                raise EngineError(
                    f"precision int8: no '{quantized.name}' beside '{self.model_path}'; make it "
                    f"with "
                    f"'filmcolor quantize {self.model_path} --footage FILM' or use precision fp32",
                    fields=("precision", "precision"),
                )
        if not self.model_path.is_file():
            if model is None:
                raise EngineError(
                    f"the default model '{self.model_path}' is missing from this install; "
                    "reinstall filmcolor or pass --model PATH"
                )
            raise EngineError(f"model '{self.model_path}' does not exist; check the --model path")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        # Default: half the cores. Restore runs the model beside ffmpeg's decoder and encoder,
        # which need the other half. On CUDA one: the GPU does the work, and a pool of CPU
        # threads waiting on it would take cores from the encoder.
        half = max(1, (os.cpu_count() or 2) // 2)
        options.intra_op_num_threads = threads or (1 if cuda else half)
        options.log_severity_level = 3
        self.session = self._open(ort, options, device, cuda)
        if cuda and not threads and self.session.get_providers()[0] != "CUDAExecutionProvider":
            options.intra_op_num_threads = half  # the GPU could not be used after all
            self.session = self._open(ort, options, device, cuda)
        self.device = (
            "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        if CONTRACT_KEY not in meta:
            raise EngineError(
                f"model '{self.model_path}' carries no filmcolor contract (metadata key "
                f"'{CONTRACT_KEY}'); export generators with 'filmcolor export'"
            )
        self.contract = ModelContract.from_json(meta[CONTRACT_KEY], self.model_path)
        self._check_tensors()
        self.working_size = working_size or self.contract.working_size
        self._gain = (self.contract.chroma_gain if gain is None else gain) * saturation

    @property
    def gain(self) -> float:
        """What the network's chroma is multiplied by (calibrated gain x saturation)."""
        return self._gain

    @staticmethod
    def fit(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """Chroma (2, h, w) at working size fitted into what each pixel of ``luma`` (h, w) can
        show, none on title cards and less on frames faded toward black (:func:`fit_colour`)."""
        return fit_colour(luma, chroma)

    @staticmethod
    def _wants_cuda(ort: Any, device: str) -> bool:
        """Whether a CUDA session is tried: --device cuda, or auto with a GPU, and the provider."""
        want_cuda = device == "cuda" or (device == "auto" and gpu_present())
        return want_cuda and "CUDAExecutionProvider" in ort.get_available_providers()

    def _open(self, ort: Any, options: Any, device: str, cuda: bool) -> Any:
        providers = ["CPUExecutionProvider"]
        if cuda:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        # Keep the CUDA loader's error lines away from the user while we find out.
        ort.set_default_logger_severity(4)
        try:
            session = ort.InferenceSession(str(self.model_path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EngineError(
                f"model '{self.model_path}' cannot be loaded by onnxruntime ({first[:200]}); "
                "check that it is an ONNX file exported with 'filmcolor export'"
            ) from err
        finally:
            ort.set_default_logger_severity(2)
        if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
            raise DeviceError(
                f"device cuda was asked for, but onnxruntime could not use a GPU for "
                f"'{self.model_path}'; install onnxruntime-gpu with CUDA 12 and cuDNN 9, "
                "or use device cpu",
                fields=("device", "device"),
            )
        return session

    def _check_tensors(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        c = self.contract
        if c.input_name not in inputs or c.output_name not in outputs:
            raise EngineError(
                f"model '{self.model_path}' does not match its contract: expected input "
                f"'{c.input_name}' and output '{c.output_name}', found {list(inputs)} -> "
                f"{list(outputs)}; re-export it with 'filmcolor export'"
            )
        in_shape, out_shape = inputs[c.input_name].shape, outputs[c.output_name].shape
        if len(in_shape) != 4 or in_shape[1] != 1 or len(out_shape) != 4 or out_shape[1] != 2:
            raise EngineError(
                f"model '{self.model_path}' maps {in_shape} -> {out_shape}; a filmcolor generator "
                "maps (N, 1, H, W) luminance to (N, 2, H, W) chroma"
            )
        self._dtype = np.float16 if "float16" in inputs[c.input_name].type else np.float32

    def run(self, luma: np.ndarray) -> np.ndarray:
        """Run the model on luminance already at a valid size.

        Args:
            luma: float32 (N, H, W) in [-1, 1]; H and W multiples of the contract's size_multiple.

        Returns:
            float32 chroma (N, 2, H, W) in [-1, 1]: the network's, times :attr:`gain` (the
            calibrated colour strength; 1 for a model straight from ``filmcolor export``), clipped.
            Restore's colour stage then fits it into what each frame can show
            (:func:`~filmcolor.color.fit_colour`).

        Raises:
            EngineError: the network returned NaN or infinity (a colour that is not there
                would otherwise be written as a solid green film).
        """
        feed = {self.contract.input_name: luma[:, None].astype(self._dtype, copy=False)}
        (out,) = self.session.run([self.contract.output_name], feed)
        if out.shape[0] != luma.shape[0] or out.shape[2:] != luma.shape[1:]:
            raise EngineError(
                f"model '{self.model_path}' returned {out.shape} for input {luma.shape}; it must "
                "keep the frame size"
            )
        out = out.astype(np.float32, copy=False)
        if not np.isfinite(out).all():  # 0.1 ms a call: cheap beside the model
            raise EngineError(
                f"model '{self.model_path}' returned NaN/inf; it is damaged or was exported from a "
                "diverged training run: export it again from a good checkpoint or use another "
                "--model"
            )
        if self._gain != 1.0:
            out = out * np.float32(self._gain)
        return np.clip(out, -1.0, 1.0)

    def shrink(self, luma: np.ndarray) -> np.ndarray:
        """Full-resolution luminance (H, W) in [-1, 1] at the model's working size (h, w)."""
        height, width = luma.shape
        h, w = working_shape(height, width, self.working_size, self.contract.size_multiple)
        if (h, w) == (height, width):
            return luma
        return area_resize(luma, w, h)

    def shrink_plane(self, y_plane: np.ndarray, full_range: bool) -> np.ndarray:
        """A video's uint8 Y plane as working-size luminance in [-1, 1] (scaled while still
        uint8)."""
        height, width = y_plane.shape
        h, w = working_shape(height, width, self.working_size, self.contract.size_multiple)
        if (h, w) != (height, width):
            y_plane = area_resize(y_plane, w, h)
        return luma_from_plane(y_plane, full_range)

    @staticmethod
    def enlarge(chroma: np.ndarray, height: int, width: int) -> np.ndarray:
        """Chroma (2, h, w) at working size, bilinearly upsampled to (2, height, width)."""
        if chroma.shape[1:] == (height, width):
            return chroma
        hwc = cv2.resize(chroma.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_LINEAR)
        return hwc.transpose(2, 0, 1)

    def chroma_for_luma(self, luma: np.ndarray) -> np.ndarray:
        """Chroma at full resolution for full-resolution luminance (N, H, W) in [-1, 1].

        Colour that a pixel's luminance cannot show is scaled toward gray
        and title cards stay gray (:func:`~filmcolor.color.fit_colour`, at working size), as
        restore does.
        """
        n, height, width = luma.shape
        small = np.stack([self.shrink(f) for f in luma])
        chroma = self.fit(small, self.run(small))
        return np.stack([self.enlarge(c, height, width) for c in chroma])

    def chroma(self, y_planes: np.ndarray, full_range: bool) -> np.ndarray:
        """Chroma for a batch of a video's Y planes (uint8 (N, H, W)), at full resolution."""
        return self.chroma_for_luma(np.stack([luma_from_plane(y, full_range) for y in y_planes]))

    def colorize(self, frames: np.ndarray) -> np.ndarray:
        """Colorize RGB frames (uint8 (N, H, W, 3)); their luminance is kept exactly."""
        luma, _ = split_rgb(frames)
        return merge_rgb(luma, self.chroma_for_luma(luma))
