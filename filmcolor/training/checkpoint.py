"""Training checkpoints: atomic saves, loading, and the colorizer's weights from an exported
model."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..config import (
    GeneratorConfig,
)
from ..errors import CheckpointError, EngineError
from ..io.files import atomic_write
from ..model.contract import contract_of

CHECKPOINT_NAME = "last.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a killed write leaves the last whole one in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def checkpoint_path(source: Path) -> Path:
    """A checkpoint file, or the last checkpoint of a run folder."""
    if source.is_dir():
        source = source / "checkpoints" / CHECKPOINT_NAME
    if not source.is_file():
        raise CheckpointError(f"no checkpoint at '{source}'; train first or check the run folder")
    return source


def load_checkpoint(source: Path) -> dict[str, Any]:
    """Load a checkpoint file or a run folder's last checkpoint (on the CPU)."""
    path = checkpoint_path(source)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint '{path}' cannot be read ({err}); it is damaged") from err
    if not isinstance(state, dict) or "networks" not in state or "config" not in state:
        raise CheckpointError(f"'{path}' is not a filmcolor checkpoint")
    return state


def colorizer_state_from_onnx(
    source: Path, generator: GeneratorConfig, wanted: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The colorizer's weights in a float ONNX export of ``filmcolor export``, as a state dict.

    The export keeps the PyTorch parameter names as the graph's initializers; the contract
    records the generator's shape, which must be ``generator``, or the same with a regressing
    head where ``generator`` has a binned one: then the trunk is loaded and the head keeps its
    values in ``wanted``, the state dict of the colorizer to fill (its names, shapes and dtypes).
    """
    import onnx  # the [train] extra; only this way of starting needs it
    from onnx import numpy_helper

    if not source.is_file():
        raise CheckpointError(f"init_from: no model at '{source}'; check the path")
    try:
        proto = onnx.load(str(source))
    except Exception as err:  # onnx raises DecodeError and others for a damaged file
        raise CheckpointError(f"init_from: '{source}' cannot be read as ONNX ({err})") from err
    try:
        shape = contract_of(proto, source).generator
    except EngineError as err:
        raise CheckpointError(f"init_from: {err}") from err
    if not isinstance(shape, dict):
        raise CheckpointError(
            f"init_from: '{source}' does not record its generator's shape; start from a model "
            f"written by 'filmcolor export'"
        )
    saved = GeneratorConfig(**shape)
    new_head = (
        saved.bins == 0 and generator.bins > 0
    )  # a regressing model's trunk under a binned head
    if saved != generator and not (new_head and dataclasses.replace(generator, bins=0) == saved):
        raise CheckpointError(
            f"init_from: the generator in '{source}' ({saved}) differs from the "
            f"config's ({generator}); set [generator] to match"
        )
    weights = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    for node in proto.graph.node:  # the exporter keeps one copy of equal weights, under Identity
        if node.op_type == "Identity" and node.input[0] in weights:
            weights.setdefault(node.output[0], weights[node.input[0]])
    # A new head keeps its values; so do BatchNorm's step counters, which no export holds (the
    # encoder's statistics stay frozen, so they count nothing).
    fresh = {
        k
        for k in wanted
        if (new_head and k.startswith("head.")) or k.endswith(".num_batches_tracked")
    }
    missing = [
        k
        for k in wanted
        if k not in fresh and (k not in weights or weights[k].shape != tuple(wanted[k].shape))
    ]
    if missing:
        raise CheckpointError(
            f"init_from: '{source}' lacks {len(missing)} of the colorizer's float weights (e.g. "
            f"'{missing[0]}'); start from the float export, not its int8 copy"
        )
    return {
        k: wanted[k] if k in fresh else torch.from_numpy(weights[k].copy()).to(wanted[k].dtype)
        for k in wanted
    }


def generator_config_of(state: dict[str, Any]) -> GeneratorConfig:
    """The colorizer's shape stored in a checkpoint."""
    return GeneratorConfig(**state["config"]["generator"])
