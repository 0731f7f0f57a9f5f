"""Export the colorizer G of a training run to ONNX, and prove it matches PyTorch.

The file gets dynamic batch/height/width axes, passes ``onnx.checker`` (full check), and
carries the filmcolor contract in its metadata (see docs/contract.md), so
``filmcolor restore --model out.onnx`` runs it unchanged. Example::

    report = export_onnx(Path("runs/films"), Path("films.onnx"), ExportConfig())
    print(report.max_abs_diff)     # onnxruntime vs PyTorch on a test input, must be <= 1e-3
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import ExportConfig, GeneratorConfig
from ..errors import ExportError
from ..training.checkpoint import generator_config_of, load_checkpoint
from ..training.networks import build_generator
from .contract import ModelContract, set_contract


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how close onnxruntime is to PyTorch."""

    path: Path
    max_abs_diff: float
    parity_shape: tuple[int, ...]
    trained_steps: int
    size_bytes: int


def _shape_record(cfg: GeneratorConfig) -> dict[str, Any]:
    """The generator's shape for the contract: fields of a head or an encoder it lacks left out
    (a ResNet generator's record reads as before those existed)."""
    record = dataclasses.asdict(cfg)
    if not cfg.bins:
        for key in ("bins", "bin_range", "temperature"):
            record.pop(key)
    if cfg.encoder == "none":
        record.pop("encoder")
    return record


def load_colorizer(
    source: Path, temperature: float | None = None
) -> tuple[torch.nn.Module, GeneratorConfig, dict]:
    """The colorizer G of a checkpoint (file or run folder), in eval mode, its shape and the
    state; ``temperature`` replaces the run's for a binned head's annealed mean."""
    state = load_checkpoint(source)
    gen_cfg = generator_config_of(state)
    if temperature is not None:
        if not gen_cfg.bins:
            raise ExportError(
                f"'{source}' has a regressing head, which has no temperature; leave temperature "
                "out",
                fields=("temperature",),
            )
        gen_cfg = dataclasses.replace(gen_cfg, temperature=temperature)
    net = build_generator(gen_cfg, "colorizer")
    net.load_state_dict(state["networks"]["colorizer"])
    return net.eval(), gen_cfg, state


def export_onnx(source: Path, out: Path, cfg: ExportConfig) -> ExportReport:
    """Write G to ``out`` as ONNX and check it against PyTorch.

    Args:
        source: a run folder (its last checkpoint) or a checkpoint file.
        out: the .onnx file to write (atomically).
        cfg: opset, fp16, parity tolerance, working size, temperature.

    Raises:
        ExportError: the export, the checker or the parity check failed.
    """
    import onnx
    import onnxruntime as ort

    if cfg.opset < 17:
        raise ExportError(f"opset {cfg.opset} is too old; use 17 or newer")
    net, gen_cfg, state = load_colorizer(source, cfg.temperature)
    size = cfg.working_size or int(state["config"]["load_size"])
    contract = ModelContract(
        working_size=size,
        size_multiple=gen_cfg.size_multiple,
        generator=_shape_record(gen_cfg),
        trained_steps=int(state["step"]),
    )
    dtype = torch.float16 if cfg.fp16 else torch.float32
    net = net.to(dtype)
    example = torch.zeros(1, 1, 64, 64, dtype=dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.filmcolor-part.onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (example,),
                str(tmp),
                input_names=[contract.input_name],
                output_names=[contract.output_name],
                dynamic_axes={
                    contract.input_name: {0: "batch", 2: "height", 3: "width"},
                    contract.output_name: {0: "batch", 2: "height", 3: "width"},
                },
                opset_version=cfg.opset,
                dynamo=False,
                # BatchNorm kept as its own nodes under its parameters' names (onnxruntime
                # folds it when it loads the model): init_from reads them back by name.
                training=torch.onnx.TrainingMode.PRESERVE,
            )
        model = onnx.load(str(tmp))
        # The chroma's two channels, stated (a Resize before the output leaves them symbolic).
        model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 2
        set_contract(model, contract)
        model.doc_string = (
            "filmcolor colorizer: luminance (N,1,H,W) -> chroma (N,2,H,W), see docs/contract.md"
        )
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
        diff, shape = _parity(net, tmp, dtype, gen_cfg.size_multiple, ort)
        tolerance = cfg.tolerance if not cfg.fp16 else max(cfg.tolerance, 2e-2)
        if not diff <= tolerance:
            raise ExportError(
                f"onnxruntime differs from PyTorch by {diff:.2e} (> {tolerance:.0e}) for '{out}'; "
                "the export is wrong, report it with the checkpoint"
            )
        os.replace(tmp, out)
    except ExportError:
        raise
    except Exception as err:  # torch.onnx, onnx and onnxruntime raise many types
        raise ExportError(f"exporting '{source}' to '{out}' failed: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(out, diff, shape, int(state["step"]), out.stat().st_size)


def _parity(
    net: torch.nn.Module, path: Path, dtype: torch.dtype, multiple: int, ort
) -> tuple[float, tuple[int, ...]]:  # noqa: ANN001
    """Largest |onnxruntime - PyTorch| on a fixed random input of another size than the export's."""
    generator = torch.Generator().manual_seed(0)
    shape = (2, 1, 24 * multiple, 40 * multiple)
    luma = (torch.rand(shape, generator=generator) * 2 - 1).to(dtype)
    with torch.no_grad():
        expected = net(luma).float().numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: luma.numpy()})
    return float(np.abs(got.astype(np.float32) - expected).max()), shape
