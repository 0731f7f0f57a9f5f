"""The CycleGAN training loop: unpaired B&W frames (A) against colour frames (B).

Losses follow Zhu et al. 2017 and their reference code (``cycle_gan_model.py``):
least-squares GAN losses, L1 cycle consistency in both directions (lambda = 10), an
identity term where it applies, a pool of 50 past fakes, Adam 2e-4 with betas (0.5, 0.999),
and a constant learning rate followed by a linear decay to zero. See
:mod:`filmcolor.training.networks`
for the mapping of G, F, D_X, D_Y to the code's names.

* A = luminance of B&W frames, (1, H, W); B = Y'CbCr colour frames, (3, H, W); see color.py.
* colorizer G(a) gives chroma; the fake colour frame is ``cat(a, G(a))`` (restore's contract).
* decolorizer F(b) gives luminance; the identity term asks F(cat(a, 0)) = a.
* optional supervised term (``lambda_supervised``): G(luma(b)) = chroma(b), for data sets
  where A is made from B by desaturation (the seed's flowers experiment); with ``degrade``
  a share of those luminances is first worn like old film (:func:`degrade_luma`).

Every sample is drawn from a generator seeded by (seed, sample number), so a run resumed
from a checkpoint sees exactly the data it would have seen uninterrupted. Example::

    cfg = load_train_config(Path("pipelines/flowers.toml"))
    train(cfg, data=Path("data/flowers"), run_dir=Path("runs/flowers"), max_steps=100)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as nnf
from torch import nn
from torch.utils.data import DataLoader

from ..color import YCC_TO_RGB
from ..config import (
    TrainConfig,
    config_to_dict,
    train_config_from_dict,
)
from ..errors import CheckpointError, DataError, DeviceError, TrainingDivergedError, UsageError
from ..io.files import atomic_write
from .checkpoint import (
    CHECKPOINT_NAME,
    colorizer_state_from_onnx,
    load_checkpoint,
    save_checkpoint,
)
from .data import UnpairedFrames, collate, domain_folders, find_images, image_set
from .efficientnet import load_imagenet_weights
from .losses import BINNED_STRIDE, gan_loss, supervised_loss
from .networks import build_discriminator, build_generator

log = logging.getLogger(__name__)


class ImagePool:
    """A buffer of past fakes (Shrivastava et al. 2017): half the time D sees an old one."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size = size
        self.rng = rng
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                index = self.rng.randrange(self.size)
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)


def ycbcr_to_rgb(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) Y'CbCr in [-1, 1] -> RGB in [0, 1] (same matrix as color.py)."""
    matrix = torch.from_numpy(YCC_TO_RGB).to(frames)
    ycc = torch.stack([(frames[:, 0] + 1) * 0.5, frames[:, 1] * 0.5, frames[:, 2] * 0.5], dim=1)
    return torch.einsum("ij,njhw->nihw", matrix, ycc).clamp(0, 1)


def image_grid(rows: list[torch.Tensor]) -> torch.Tensor:
    """Rows of (N, C, H, W) images in [0, 1] (C = 1 or 3) as one (3, H', W') grid."""
    lines = []
    for row in rows:
        row = row.detach().float().cpu()
        if row.shape[1] == 1:
            row = row.repeat(1, 3, 1, 1)
        row = nnf.pad(row, (2, 2, 2, 2), value=1.0)
        lines.append(torch.cat(list(row), dim=2))
    return torch.cat(lines, dim=1)


@dataclass
class Networks:
    """The four networks and what optimises them."""

    colorizer: nn.Module
    decolorizer: nn.Module
    critic_a: nn.Module
    critic_b: nn.Module

    def generators(self) -> list[nn.Module]:
        return [self.colorizer, self.decolorizer]

    def critics(self) -> list[nn.Module]:
        return [self.critic_a, self.critic_b]

    def named(self) -> dict[str, nn.Module]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def build_networks(cfg: TrainConfig) -> Networks:
    """G, F, D_A and D_B with the paper's initialisation (seeded by cfg.seed)."""
    torch.manual_seed(cfg.seed)
    return Networks(
        colorizer=build_generator(cfg.generator, "colorizer"),
        decolorizer=build_generator(cfg.generator, "decolorizer"),
        critic_a=build_discriminator(cfg.discriminator, 1),
        critic_b=build_discriminator(cfg.discriminator, 3),
    )


def unwrap(module: nn.Module) -> nn.Module:
    module = getattr(module, "_orig_mod", module)  # torch.compile
    return getattr(module, "module", module)  # DistributedDataParallel


@dataclass(frozen=True)
class TrainResult:
    """What a training call did."""

    run_dir: Path
    step: int
    seconds: float
    checkpoint: Path
    interrupted: bool = False
    skipped_images: int = 0


def cpu_bf16_supported() -> bool:
    """True when oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _choose_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' was asked for but PyTorch sees no GPU; use device cpu",
            fields=("device", "device"),
        )
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


class Trainer:
    def __init__(self, cfg: TrainConfig, data: Path, run_dir: Path, resume: bool) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = _choose_device(cfg.device)
        if self.world > 1:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if self.device.type == "cuda":
                self.device = torch.device("cuda", local)
                torch.cuda.set_device(self.device)
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        files_a, files_b = (find_images(folder) for folder in domain_folders(data))
        for files, folder in ((files_a, "trainA"), (files_b, "trainB")):
            if len(files) == 1 and self.rank == 0:
                log.warning(
                    "'%s' holds a single image: G and F learn that one picture by heart, not "
                    "films; add more (filmcolor extract)",
                    data / folder,
                )
        roots = domain_folders(data)
        found = {
            image_set(p, root)
            for files, root in zip((files_a, files_b), roots, strict=True)
            for p in files
        }
        unknown = sorted(set(cfg.set_weights) - found)
        if unknown:
            raise UsageError(
                f"set_weights names {unknown}, which are not folders of trainA/ or trainB/ in "
                f"'{data}'"
            )
        self.dataset = UnpairedFrames(
            files_a, files_b, cfg, cfg.steps * cfg.batch_size * self.world, roots=roots
        )
        if cfg.preload:
            self.dataset.preload()
        self.nets = build_networks(cfg)
        # Mixed precision: float16 (with loss scaling) on CUDA, bfloat16 on CPUs that compute
        # it natively (AVX512-BF16 / AMX; docs/benchmarks.md, training speed).
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.use_amp = cfg.amp and (self.device.type == "cuda" or cpu_bf16_supported())
        memory = torch.channels_last if cfg.channels_last and self.device.type == "cuda" else None
        for net in self.nets.named().values():
            net.to(self.device)
            if memory is not None:
                net.to(memory_format=memory)
        # A pretrained encoder learns in a group of its own, at encoder_lr x lr (once it trains).
        self.encoder = getattr(self.nets.colorizer, "encoder", None)
        encoder_params = list(self.encoder.parameters()) if self.encoder is not None else []
        own = {id(p) for p in encoder_params}
        params_g = [
            p for net in self.nets.generators() for p in net.parameters() if id(p) not in own
        ]
        groups: list[dict[str, Any]] = [{"params": params_g}]
        if encoder_params:
            groups.append({"params": encoder_params, "lr": cfg.lr * cfg.encoder_lr})
        params_d = [p for net in self.nets.critics() for p in net.parameters()]
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(groups, lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(params_d, lr=cfg.lr, betas=betas)
        rule = self._lr_factor
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, rule)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, rule)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.device.type == "cuda"
        )
        self.py_rng = random.Random(cfg.seed)
        self.pool_a = ImagePool(cfg.pool_size, self.py_rng)
        self.pool_b = ImagePool(cfg.pool_size, self.py_rng)
        self.step = 0
        if resume:
            self._resume()
        elif cfg.init_from:
            self._init_from(Path(cfg.init_from))
        elif self.encoder is not None:
            count = load_imagenet_weights(self.encoder)
            log.info(
                "the colorizer's %s encoder starts from its ImageNet weights (%d tensors)",
                cfg.generator.encoder,
                count,
            )
        self.train_nets = self.nets
        if self.world > 1:
            ddp = torch.nn.parallel.DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            # A frozen encoder gets no gradients: those parameters are then unused.
            unused = self.encoder is not None and cfg.encoder_frozen_steps > 0
            self.train_nets = Networks(
                **{
                    k: ddp(v, device_ids=ids, find_unused_parameters=unused and k == "colorizer")
                    for k, v in self.nets.named().items()
                }
            )
        if cfg.compile:
            self.train_nets = Networks(
                **{k: torch.compile(v) for k, v in self.train_nets.named().items()}
            )

    def _lr_factor(self, step: int) -> float:
        start, total = self.cfg.decay_start_step, self.cfg.steps
        if step < start:
            return 1.0
        return max(0.0, (total - step) / max(1, total - start))

    @property
    def checkpoint_file(self) -> Path:
        return self.run_dir / "checkpoints" / CHECKPOINT_NAME

    def state(self) -> dict[str, Any]:
        return {
            "format": 1,
            "step": self.step,
            "config": config_to_dict(self.cfg),
            "networks": {k: unwrap(v).state_dict() for k, v in self.nets.named().items()},
            "optimizers": {"g": self.opt_g.state_dict(), "d": self.opt_d.state_dict()},
            "schedulers": {"g": self.sched_g.state_dict(), "d": self.sched_d.state_dict()},
            "scaler": self.scaler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "python": self.py_rng.getstate(),
            },
            "pools": {"a": self.pool_a.images, "b": self.pool_b.images},
        }

    def save(self) -> Path:
        if self.rank == 0:
            save_checkpoint(self.checkpoint_file, self.state())
        return self.checkpoint_file

    def _load_matching(self, source: Path, what: str, fix: str) -> dict[str, Any]:
        """A checkpoint whose networks have this config's shapes (else one line naming both)."""
        state = load_checkpoint(source)
        saved = train_config_from_dict(state["config"], str(source))
        if saved.generator != self.cfg.generator or saved.discriminator != self.cfg.discriminator:
            raise CheckpointError(
                f"{what}: the networks in '{source}' ({saved.generator}, {saved.discriminator}) "
                f"differ from the config's ({self.cfg.generator}, {self.cfg.discriminator}); {fix}"
            )
        return state

    def _init_from(self, source: Path) -> None:
        """Start from the networks of another run (``init_from``): weights only.

        ``source`` may also be an exported float model (``.onnx``, e.g. the shipped default):
        then only the colorizer G starts from it.
        """
        if source.suffix.lower() == ".onnx":
            colorizer = unwrap(self.nets.colorizer)
            colorizer.load_state_dict(
                colorizer_state_from_onnx(source, self.cfg.generator, colorizer.state_dict())
            )
            log.info("started the colorizer from the exported model '%s'", source)
            return
        state = self._load_matching(
            source, "init_from", "set [generator] and [discriminator] to match"
        )
        loaded = []
        for name, net in self.nets.named().items():
            if name in state["networks"]:
                net.load_state_dict(state["networks"][name])  # a half-precision copy is cast
                loaded.append(name)
        log.info(
            "started from the %s of '%s' (step %d)", ", ".join(loaded), source, int(state["step"])
        )

    def _resume(self) -> None:
        if not self.checkpoint_file.is_file():
            raise CheckpointError(
                f"resume: no checkpoint in '{self.run_dir}'; start without resume",
                fields=("resume", "resume"),
            )
        state = self._load_matching(
            self.checkpoint_file, "--resume", "use the run's own config.toml"
        )
        for name, net in self.nets.named().items():
            net.load_state_dict(state["networks"][name])
        self.opt_g.load_state_dict(state["optimizers"]["g"])
        self.opt_d.load_state_dict(state["optimizers"]["d"])
        # The schedule follows the (possibly longer) configured run, from the saved step.
        self.sched_g.load_state_dict(state["schedulers"]["g"])
        self.sched_d.load_state_dict(state["schedulers"]["d"])
        encoder_lr = self.cfg.lr * self.cfg.encoder_lr
        for sched in (self.sched_g, self.sched_d):
            groups = sched.optimizer.param_groups
            sched.lr_lambdas = [self._lr_factor for _ in groups]
            # the configured rates: the first group's lr, a pretrained encoder's group its share
            sched.base_lrs = [self.cfg.lr if i == 0 else encoder_lr for i in range(len(groups))]
            for group, base in zip(groups, sched.base_lrs, strict=True):
                group["lr"] = base * self._lr_factor(sched.last_epoch)
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.py_rng.setstate(state["rng"]["python"])
        self.pool_a.images = [t.to(self.device) for t in state["pools"]["a"]]
        self.pool_b.images = [t.to(self.device) for t in state["pools"]["b"]]
        self.step = int(state["step"])
        log.info("resumed '%s' at step %d", self.run_dir, self.step)

    def loader(self) -> DataLoader:
        cfg = self.cfg
        start = self.step * cfg.batch_size * self.world
        indices = range(start + self.rank, len(self.dataset), self.world)
        workers = 0 if cfg.preload else cfg.workers
        return DataLoader(
            self.dataset,
            batch_size=cfg.batch_size,
            sampler=list(indices),
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
        )

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        cfg, nets = self.cfg, self.train_nets
        if self.encoder is not None:
            unwrap(self.nets.colorizer).frozen_encoder = self.step < cfg.encoder_frozen_steps
        real_a = batch["a"].to(self.device, non_blocking=True)
        real_b = batch["b"].to(self.device, non_blocking=True)
        use_cycle = self.step >= cfg.cycle_start
        use_gan = self.step >= cfg.gan_start and cfg.lambda_gan > 0
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)
        for critic in nets.critics():
            critic.requires_grad_(False)
        losses: dict[str, torch.Tensor] = {}
        fake_b = fake_a = None
        n = real_a.shape[0]
        supervised = cfg.lambda_supervised > 0
        identity = use_cycle and cfg.lambda_identity > 0
        # Calls of the same network on different inputs are batched into one call: instance
        # norm works per sample, so this is the same computation in fewer, larger kernels.
        with autocast:
            colorizer_in = []
            if use_cycle or use_gan:
                colorizer_in.append(real_a)
            if supervised:
                worn = batch.get("b_luma")
                colorizer_in.append(
                    real_b[:, :1] if worn is None else worn.to(self.device, non_blocking=True)
                )
            binned = cfg.generator.bins > 0
            if binned and supervised:  # the bins' scores on a quarter of the pixels (BINNED_STRIDE)
                phase = self.step % BINNED_STRIDE**2
                scores = nets.colorizer(
                    colorizer_in.pop(), logits=True, stride=BINNED_STRIDE, phase=phase
                )
            chroma = list(nets.colorizer(torch.cat(colorizer_in)).split(n)) if colorizer_in else []
            if use_cycle or use_gan:
                fake_b = torch.cat([real_a, chroma.pop(0)], dim=1)
            if supervised and binned:
                target = unwrap(self.nets.colorizer).logits_target(
                    real_b[:, 1:], BINNED_STRIDE, phase
                )
                losses["supervised_b"] = (
                    supervised_loss(scores, target, cfg.rebalance, cfg.generator)
                    * cfg.lambda_supervised
                )
            elif supervised:
                losses["supervised_b"] = (
                    supervised_loss(chroma.pop(0), real_b[:, 1:], cfg.rebalance)
                    * cfg.lambda_supervised
                )
            if use_cycle:
                assert fake_b is not None
                decolorizer_in = [fake_b, real_b]
                if identity:
                    decolorizer_in.append(
                        torch.cat([real_a, torch.zeros_like(real_a).repeat(1, 2, 1, 1)], 1)
                    )
                outs = nets.decolorizer(torch.cat(decolorizer_in)).split(n)
                rec_a, fake_a = outs[0], outs[1]
                rec_b = torch.cat([fake_a, nets.colorizer(fake_a)], dim=1)
                losses["cycle_a"] = nnf.l1_loss(rec_a, real_a) * cfg.lambda_cycle
                losses["cycle_b"] = nnf.l1_loss(rec_b, real_b) * cfg.lambda_cycle
                if identity:
                    weight = cfg.lambda_cycle * cfg.lambda_identity
                    losses["identity_a"] = nnf.l1_loss(outs[2], real_a) * weight
            if use_gan:
                assert fake_b is not None
                losses["gan_b"] = (
                    gan_loss(nets.critic_b(fake_b), True, cfg.gan_loss) * cfg.lambda_gan
                )
                if fake_a is not None:
                    losses["gan_a"] = (
                        gan_loss(nets.critic_a(fake_a), True, cfg.gan_loss) * cfg.lambda_gan
                    )
            total_g = sum(losses.values())
        assert isinstance(total_g, torch.Tensor)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(total_g).backward()
        self.scaler.step(self.opt_g)
        if use_gan:
            assert fake_b is not None
            for critic in nets.critics():
                critic.requires_grad_(True)
            with autocast:
                loss_d = self._critic_loss(nets.critic_b, real_b, self.pool_b.query(fake_b))
                losses["critic_b"] = loss_d.detach()
                if fake_a is not None:
                    loss_da = self._critic_loss(nets.critic_a, real_a, self.pool_a.query(fake_a))
                    losses["critic_a"] = loss_da.detach()
                    loss_d = loss_d + loss_da
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.scaler.step(self.opt_d)
        self.scaler.update()
        with warnings.catch_warnings():
            # sched_d also steps while the critics wait for gan_start: the schedule is by step.
            warnings.simplefilter("ignore", UserWarning)
            self.sched_g.step()
            self.sched_d.step()
        self.step += 1
        values = {k: float(v.detach()) for k, v in losses.items()}
        values["total_g"] = float(total_g.detach())
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDivergedError(
                f"training diverged at step {self.step} ({', '.join(bad)} not finite); lower lr "
                f"or resume from the last checkpoint in '{self.run_dir}'"
            )
        self._last_batch = (real_a, real_b)
        return values

    def _critic_loss(
        self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor:
        """0.5 (GAN(D(real), real) + GAN(D(fake), fake)), with real and fake in one call."""
        scores_real, scores_fake = critic(torch.cat([real, fake.detach()])).split(real.shape[0])
        mode = self.cfg.gan_loss
        return 0.5 * (gan_loss(scores_real, True, mode) + gan_loss(scores_fake, False, mode))

    @torch.no_grad()
    def log_images(self, writer: Any) -> None:
        """Real A, fake B, reconstructed A / real B, fake A, reconstructed B, as one grid.

        Uses the plain networks, never their DistributedDataParallel wrappers: only rank 0
        logs, and a wrapper's forward may start a collective that the other ranks never join.
        """
        nets = self.nets
        real_a, real_b = (t[:4] for t in self._last_batch)
        for net in nets.named().values():
            net.eval()
        fake_b = torch.cat([real_a, nets.colorizer(real_a)], dim=1)
        rec_a = nets.decolorizer(fake_b)
        fake_a = nets.decolorizer(real_b)
        rec_b = torch.cat([fake_a, nets.colorizer(fake_a)], dim=1)
        supervised = torch.cat([real_b[:, :1], nets.colorizer(real_b[:, :1])], dim=1)
        grid = image_grid(
            [
                (real_a + 1) / 2,
                ycbcr_to_rgb(fake_b),
                (rec_a + 1) / 2,
                ycbcr_to_rgb(real_b),
                ycbcr_to_rgb(supervised),
                (fake_a + 1) / 2,
                ycbcr_to_rgb(rec_b),
            ]
        )
        writer.add_image("rows: A, G(A), F(G(A)), B, G(luma B), F(B), G(F(B))", grid, self.step)
        for net in self.train_nets.named().values():
            net.train()


class _StopSignals:
    """Ctrl-C, SIGTERM (timeout, a scheduler, a lent machine taken back) and SIGHUP (the
    terminal closed) while training.

    In one process the first signal asks the loop to stop after the current step, a second
    stops at once; either way the step reached is saved. Stopping between steps, not inside
    one, keeps TensorBoard's writer thread consistent: an interrupt raised inside its queue's
    ``put`` can leave ``close()`` waiting forever (a test hung once after SIGTERM under heavy
    load). With several processes (torchrun) every signal stops at once, since the ranks must
    not leave at different steps. Outside the main thread nothing is installed.
    """

    def __init__(self, at_once: bool) -> None:
        self.at_once = at_once
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002 - signal handler signature
        if self.at_once or self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(
    cfg: TrainConfig,
    data: Path,
    run_dir: Path,
    *,
    max_steps: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> TrainResult:
    """Train (or continue) a CycleGAN run.

    Args:
        cfg: the resolved configuration (also written to ``run_dir/config.toml``).
        data: a folder with ``trainA`` (B&W images) and ``trainB`` (colour images).
        run_dir: where checkpoints (``checkpoints/last.pt``) and TensorBoard logs (``tb/``) go.
        max_steps: stop at this step (a piece of the schedule; ``--resume`` continues).
        resume: continue from ``run_dir``'s last checkpoint.
        overwrite: start over in a ``run_dir`` that holds a checkpoint, removing its
            checkpoints and TensorBoard logs (without it, or ``resume``, such a folder is refused).
        progress: called with (start step, stop step); returns an object with
            ``update(n)``, ``set_postfix(dict)`` and ``close()`` (e.g. a tqdm bar).

    Returns:
        A :class:`TrainResult`. Ctrl-C saves a checkpoint and returns with ``interrupted``.
    """
    from torch.utils.tensorboard import SummaryWriter

    started = time.perf_counter()
    _claim_run_dir(run_dir, resume, overwrite)
    trainer = Trainer(cfg, data, run_dir, resume)
    stop = min(cfg.steps, max_steps) if max_steps else cfg.steps
    if trainer.rank == 0:
        _write_config(run_dir / "config.toml", cfg)
    writer = SummaryWriter(str(run_dir / "tb")) if trainer.rank == 0 else None
    bar = progress(trainer.step, stop) if progress and trainer.rank == 0 else None
    interrupted = False
    skipped = 0
    tick, tick_step = time.perf_counter(), trainer.step
    # The CLI's own SIGTERM handler raises an exception this loop would not catch: both
    # signals are handled here while training runs (see _StopSignals).
    try:
        with _StopSignals(at_once=trainer.world > 1) as signals:
            for batch in trainer.loader() if trainer.step < stop else ():
                if "error" in batch:
                    raise DataError(batch["error"])
                skipped += batch["skipped"]
                for net in trainer.train_nets.named().values():
                    net.train()
                values = trainer.train_step(batch)
                step = trainer.step
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({"G": f"{values['total_g']:.3f}"}, refresh=False)
                if writer is not None and (step % cfg.log_every == 0 or step == stop):
                    now = time.perf_counter()
                    for key, value in values.items():
                        writer.add_scalar(f"loss/{key}", value, step)
                    writer.add_scalar("lr", trainer.opt_g.param_groups[0]["lr"], step)
                    writer.add_scalar(
                        "iterations_per_second", (step - tick_step) / max(1e-9, now - tick), step
                    )
                    tick, tick_step = now, step
                if writer is not None and (step % cfg.image_every == 0 or step == stop):
                    trainer.log_images(writer)
                if step % cfg.checkpoint_every == 0 and step < stop:
                    trainer.save()
                if step >= stop:
                    break
                if signals.requested:
                    interrupted = True
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    path = trainer.save()
    if writer is not None:
        writer.flush()
        writer.close()
    if skipped:
        log.warning("skipped %d unreadable images (skip_bad_images = true)", skipped)
    if trainer.world > 1:
        # Every rank leaves together: a rank that exits while another still talks to it
        # makes gloo abort.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return TrainResult(
        run_dir, trainer.step, time.perf_counter() - started, path, interrupted, skipped
    )


def _claim_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Make ``run_dir``, refusing one that holds a checkpoint unless asked to resume or start
    over."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"run folder '{run_dir}' is a file; give out a folder", fields=("out",))
    checkpoint = run_dir / "checkpoints" / CHECKPOINT_NAME
    if checkpoint.is_file() and not resume:
        if not overwrite:
            raise UsageError(
                f"run folder '{run_dir}' already holds a checkpoint ('{checkpoint}'); continue it "
                "with resume, or pass overwrite to start over (its checkpoints and logs are "
                "removed)",
                fields=("resume", "overwrite"),
            )
        if int(os.environ.get("RANK", "0")) == 0:
            for folder in (checkpoint.parent, run_dir / "tb"):
                shutil.rmtree(folder, ignore_errors=True)
            log.info(
                "overwrite: removed the checkpoints and logs of '%s'",
                run_dir,
                extra={"fields": ("overwrite",)},
            )
    run_dir.mkdir(parents=True, exist_ok=True)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _write_config(path: Path, cfg: TrainConfig) -> None:
    """The resolved config as TOML (train with it again: ``filmcolor train RUN/config.toml``)."""
    values = config_to_dict(cfg)
    lines = ["# Resolved configuration of this run (written by filmcolor train)."]
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
    for name, table in tables.items():
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
