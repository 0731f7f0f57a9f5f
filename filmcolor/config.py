"""Typed, frozen configurations for every stage of filmcolor.

Configs are plain dataclasses with defaults and checks; TOML recipes and CLI options only
override fields. Example::

    cfg = load_train_config(Path("pipelines/flowers.toml"), {"steps": 100})
    print(cfg.generator.blocks, cfg.lambda_cycle)
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError


def require_finite(cfg: Any) -> None:
    """Refuse a float field of a config that is NaN or infinite (``start = nan`` would pass
    every range check, since comparisons with NaN are all false)."""
    for item in dataclasses.fields(cfg):
        value = getattr(cfg, item.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(
                f"{item.name} must be a finite number, got {value}", fields=(item.name,)
            )


ENCODERS = ("none", "efficientnet_lite0")
"""G's encoders: none (the ResNet generator) or an ImageNet-pretrained one."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of the ResNet generator (Johnson et al., as used by CycleGAN)."""

    filters: int = 64
    """Channels after the first convolution (the paper's ngf)."""
    blocks: int = 9
    """Residual blocks at the bottleneck (paper: 9 for 256 px, 6 for 128 px)."""
    downsamplings: int = 2
    """Stride-2 convolutions before the blocks (and as many up-convolutions after)."""
    bins: int = 0
    """The colorizer's head. 0: a 7x7 convolution and tanh regress the chroma (the paper's
    generator). N > 0: a 1x1 convolution scores N x N chroma bins spread evenly over
    -bin_range..bin_range on each axis, and the chroma is their annealed mean (Zhang et al.
    2016, "Colorful Image Colorization": softmax at ``temperature``, then the mean of the bin
    centres); trained by cross-entropy, it paints the likeliest colour rather than the average
    of the possible ones. F, the decolorizer, always regresses."""
    bin_range: float = 0.7
    """Centre of the outermost bins on each chroma axis (chroma in -1..1)."""
    temperature: float = 0.38
    """Softmax temperature of the annealed mean (1: the plain mean; towards 0: the mode)."""
    encoder: str = "none"
    """G's encoder. 'none': the ResNet generator above, trained from scratch. One of
    :data:`ENCODERS` (``efficientnet_lite0``): a U-Net on that ImageNet-pretrained encoder
    (filmcolor.training.networks.UNetColorizer), ``filters`` wide in its decoder (``blocks`` and
    ``downsamplings`` unused); F stays the ResNet generator."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.encoder not in ENCODERS:
            raise UsageError(
                f"unknown generator encoder {self.encoder!r}; use one of {', '.join(ENCODERS)}"
            )
        if self.filters < 1 or self.blocks < 0 or self.downsamplings < 0:
            raise UsageError(f"invalid generator shape {self}; use positive filters and blocks")
        if self.bins < 0 or self.bins == 1 or not 0 < self.bin_range <= 1 or self.temperature <= 0:
            raise UsageError(
                f"invalid generator head {self}; use bins 0 or >= 2, bin_range in (0, 1] and "
                f"temperature > 0"
            )

    @property
    def size_multiple(self) -> int:
        """Height and width the generator keeps unchanged must be multiples of this."""
        return 32 if self.encoder != "none" else 2**self.downsamplings

    @classmethod
    def paper(cls) -> GeneratorConfig:
        """9 residual blocks x 64 filters, the paper's 256 px generator (11.4 M weights)."""
        return cls(filters=64, blocks=9)

    @classmethod
    def light(cls) -> GeneratorConfig:
        """6 residual blocks x 32 filters (2 M weights), about 4x faster on a CPU."""
        return cls(filters=32, blocks=6)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of the PatchGAN discriminator (70x70 receptive field with 3 layers)."""

    filters: int = 64
    """Channels of the first convolution (the paper's ndf)."""
    layers: int = 3
    """Stride-2 convolutions; 3 gives the paper's 70x70 patches."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.filters < 1 or self.layers < 1:
            raise UsageError(f"invalid discriminator shape {self}")


@dataclass(frozen=True)
class TrainConfig:
    """A CycleGAN training run. The defaults are the paper's settings (Zhu et al. 2017, sec. 4)."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    """Shape of both generators (G: B&W -> colour and F: colour -> B&W)."""
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    """Shape of both discriminators (D_A, D_B)."""
    steps: int = 200_000
    """Total optimisation steps (the paper: 200 epochs of ~1,000 images at batch 1)."""
    decay_start: int | None = None
    """Step where the learning rate starts its linear decay to zero; None = half of steps."""
    batch_size: int = 1
    """Images per domain per step (paper: 1)."""
    load_size: int = 286
    """Images are resized so their short side is this, then randomly cropped."""
    crop_size: int = 256
    """Square training crop (must be a multiple of the generator's size_multiple)."""
    flip: bool = True
    """Random horizontal flips."""
    lr: float = 2e-4
    """Adam learning rate for all four networks."""
    beta1: float = 0.5
    """Adam beta1."""
    beta2: float = 0.999
    """Adam beta2."""
    gan_loss: str = "lsgan"
    """'lsgan' (least squares, the paper) or 'vanilla' (binary cross-entropy)."""
    lambda_cycle: float = 10.0
    """Weight of both cycle-consistency L1 losses (the paper's lambda)."""
    lambda_identity: float = 0.5
    """Identity loss weight, relative to lambda_cycle (F(gray frame) = its luminance)."""
    lambda_supervised: float = 0.0
    """Supervised chroma L1 on domain B's own luminance; only when A is desaturated B."""
    lambda_gan: float = 1.0
    """Weight of both adversarial losses."""
    init_from: str = ""
    """A run folder or checkpoint file whose networks start this run (fine-tuning a trained
    model further: fresh optimisers and schedule from step 0); the networks must have this
    config's shapes. Networks the checkpoint lacks start fresh. Not used with --resume."""
    degrade: float = 0.0
    """Share of the supervised term's inputs shown as old film would show them (grain, blur,
    faded contrast, dust and scratches on the luminance; the target chroma stays the photo's
    own): teaches G to colour through damage instead of colouring the grain itself. 0 = off."""
    rebalance: float = 0.0
    """How strongly the supervised term favours rare colours (0 = plain L1, 1 = the class
    rebalancing of Zhang et al. 2016): each pixel's L1 is weighted by the inverse of how common
    its target colour is in the batch (a 24x24 histogram of the chroma plane, mixed half with a
    uniform one), raised to this power. Plain L1 paints what it cannot tell apart (a shirt, a
    car) in the median colour, near gray; weighting rare colours up makes G commit to them."""
    encoder_frozen_steps: int = 0
    """With a pretrained encoder (``generator.encoder``): steps during which it keeps its
    ImageNet weights while the decoder learns; after them it is fine-tuned too."""
    encoder_lr: float = 0.1
    """The encoder's learning rate as a share of ``lr`` once it trains (its BatchNorm
    statistics are ImageNet's throughout)."""
    gan_start: int = 0
    """Step where the adversarial losses switch on (a supervised warm-up before it)."""
    cycle_start: int = 0
    """Step where F, D_A and the cycle/identity terms start; before it only the supervised
    term trains G (a warm-up; needs lambda_supervised > 0)."""
    pool_size: int = 50
    """Image pool of past fakes shown to the discriminators (Shrivastava et al.)."""
    seed: int = 0
    """Seeds the weights, the data order and every augmentation."""
    workers: int = 2
    """DataLoader worker processes (0 = load in the main process)."""
    set_weights: dict[str, float] = field(default_factory=dict)
    """How often each set of images is drawn, relative to the others: a set is a top-level
    folder of trainA/ or trainB/ (images directly in them form the set ''), and one not named
    here weighs 1; inside a set every image is as likely. Empty (the default): every image is
    as likely, whatever its folder. E.g. ``{scenes = 4, people = 2, flowers = 1}``: a kind of
    picture with many images does not drown the others."""
    skip_bad_images: bool = False
    """Skip and count unreadable images instead of stopping with an error naming them."""
    preload: bool = False
    """Decode every image once into memory (small data sets, CPU training)."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (one is also written at the end and on Ctrl-C)."""
    log_every: int = 50
    """Steps between TensorBoard scalar writes."""
    image_every: int = 500
    """Steps between TensorBoard image grids."""
    device: str = "auto"
    """'auto' (CUDA when present), 'cpu' or 'cuda'."""
    amp: bool = True
    """Mixed precision: float16 on CUDA, bfloat16 on CPUs with native bf16 (else fp32)."""
    channels_last: bool = True
    """channels_last memory format on CUDA (ignored on CPU, where it gave nothing)."""
    compile: bool = False
    """torch.compile the generators and discriminators."""
    threads: int = 0
    """CPU threads for torch (0 = leave torch's default)."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.steps < 1:
            raise UsageError(f"steps must be >= 1, got {self.steps}")
        if self.crop_size % self.generator.size_multiple:
            raise UsageError(
                f"crop_size {self.crop_size} must be a multiple of "
                f"{self.generator.size_multiple} for this generator"
            )
        if self.load_size < self.crop_size:
            raise UsageError(
                f"load_size {self.load_size} is smaller than crop_size {self.crop_size}"
            )
        if self.gan_loss not in ("lsgan", "vanilla"):
            raise UsageError(f"gan_loss must be 'lsgan' or 'vanilla', got {self.gan_loss!r}")
        if not 0.0 <= self.rebalance <= 1.0:
            raise UsageError(f"rebalance must be within 0..1 (0 = plain L1), got {self.rebalance}")
        if not 0.0 <= self.degrade <= 1.0:
            raise UsageError(
                f"degrade must be within 0..1 (a share of the samples), got {self.degrade}"
            )
        if self.cycle_start > 0 and self.lambda_supervised <= 0:
            raise UsageError(
                "cycle_start > 0 needs lambda_supervised > 0 (nothing trains before it)"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"device must be auto, cpu or cuda, got {self.device!r}")
        bad = {
            k: v
            for k, v in self.set_weights.items()
            if not isinstance(v, int | float) or not 0 <= v < math.inf
        }
        if bad:
            raise UsageError(f"set_weights must be finite numbers >= 0, got {bad}")
        if self.encoder_frozen_steps < 0 or not 0 <= self.encoder_lr <= 10:
            raise UsageError(
                "encoder_frozen_steps must be >= 0 and encoder_lr within 0..10 (a share of lr)"
            )

    @property
    def decay_start_step(self) -> int:
        """The step where the linear learning-rate decay begins."""
        return self.steps // 2 if self.decay_start is None else self.decay_start


@dataclass(frozen=True)
class ExportConfig:
    """How a generator is written to ONNX."""

    opset: int = 17
    """ONNX opset (>= 17)."""
    fp16: bool = False
    """Store weights and compute in float16 (for GPUs)."""
    working_size: int | None = None
    """Short side of the luminance the model expects (written into its contract, which every
    tool reads); None = the run's ``load_size``, what it was trained at."""
    tolerance: float = 1e-3
    """Largest allowed |onnxruntime - PyTorch| difference on the parity input."""
    temperature: float | None = None
    """Softmax temperature of a binned head's annealed mean in the exported model; None = the
    run's ``[generator] temperature``. Lower paints bolder, likelier colours, higher safer,
    paler averages (the weights are the same)."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.temperature is not None and self.temperature <= 0:
            raise UsageError(
                f"temperature {self.temperature} is not positive; give a value such as 0.38",
                fields=("temperature",),
            )


@dataclass(frozen=True)
class SceneConfig:
    """How shot cuts are found (PySceneDetect detectors on a downscaled stream)."""

    detector: str = "content"
    """'content' (ContentDetector, hard cuts) or 'adaptive' (AdaptiveDetector, camera motion)."""
    threshold: float | None = None
    """Detector threshold; None = PySceneDetect's default (27 content, 3.0 adaptive)."""
    min_scene_len: int = 15
    """Frames a shot lasts at least (shorter flashes do not cut)."""
    width: int = 192
    """Width of the frames the detector sees (it is faster small; cuts are large changes)."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.detector not in ("content", "adaptive"):
            raise UsageError(
                f"detector must be content or adaptive, got {self.detector!r}", fields=("detector",)
            )
        if self.width < 32:
            raise UsageError("the scene detection width must be at least 32")


@dataclass(frozen=True)
class ExtractConfig:
    """How `filmcolor extract` turns films into the trainA/trainB frame sets."""

    domain: str = "auto"
    """'auto' (measured saturation decides), 'bw' (A) or 'color' (B) for every input."""
    per_shot: int = 3
    """Frames kept per shot, spread evenly inside it."""
    max_per_film: int = 500
    """At most this many frames from one film (evenly thinned over the film)."""
    every: float = 0.5
    """At least this many seconds between two frames kept from one shot."""
    size: int = 286
    """Short side of the written images (the paper's 286 load size)."""
    test_fraction: float = 0.1
    """Share of films (not frames) held out in testA/testB."""
    saturation_threshold: float = 2.5
    """Colour not explained by brightness (chroma std, 0..255 scale) above which a film is
    colour. Measured: B&W and toned/sepia films and photos 0-0.6, colour films 13-17."""
    margin: float = 0.25
    """Seconds skipped after each cut and before the next one (no frames from transitions)."""
    duplicate_distance: float = 4.0
    """Mean absolute difference (0..255) of 16x16 thumbnails below which frames are duplicates."""
    jobs: int = 1
    """Films processed at once (processes)."""
    quality: int = 95
    """JPEG quality of the written images."""
    scenes: SceneConfig = field(default_factory=SceneConfig)
    """Shot detection settings."""
    repair: RepairConfig = field(default_factory=lambda: RepairConfig())
    """Repairs of the B&W films before their frames are taken (none by default), so a model
    learns on repaired frames, as ``restore --repair`` will show it them."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.domain not in ("auto", "bw", "color"):
            raise UsageError(
                f"domain must be auto, bw or color, got {self.domain!r}", fields=("domain",)
            )
        if self.per_shot < 1 or self.max_per_film < 1:
            raise UsageError(
                "per_shot and max_per_film must be >= 1", fields=("per_shot", "max_per_film")
            )
        if not 0 <= self.test_fraction < 1:
            raise UsageError("test_fraction must be in [0, 1)", fields=("test_fraction",))
        if self.size < 32:
            raise UsageError("size must be at least 32", fields=("size",))
        if self.jobs < 1:
            raise UsageError("jobs must be >= 1", fields=("jobs",))


@dataclass(frozen=True)
class TemporalConfig:
    """How restore keeps colour steady from frame to frame (see filmcolor.restore.temporal)."""

    mode: str = "flow"
    """A colour stage of filmcolor.restore.stages.COLOR_STAGES: 'flow' (chroma blended along
    optical flow, reset at cuts) or 'none' (frame by frame)."""
    strength: float = 1.0
    """0 = no blending, 1 = the default weight of the neighbours (up to 2 is allowed)."""
    radius: int = 2
    """Look-ahead: frame t also takes colour from t+1 .. t+radius (and from t-1's result)."""
    keyframe_interval: int = 0
    """Run the model on every N-th frame of a shot and carry colour along the flow between
    them; 1 = every frame (what mode 'none' always does); 0 = automatic, the default (a frame gets
    the model when the carried
    colour covers too little of it, at most ``max_interval`` apart: 2-3x faster restores at
    the same measured quality, see docs/benchmarks.md)."""
    max_interval: int = 16
    """Automatic keyframes: the longest run of frames without the model (16: two thirds of a
    second; colour carried along the flow holds that long, see docs/benchmarks.md)."""
    flow_width: int = 256
    """Width of the luminance the optical flow is computed on (colour is low-frequency)."""
    cut_threshold: float | None = None
    """ContentDetector threshold for the cuts that reset blending; None = PySceneDetect's."""

    def __post_init__(self) -> None:
        require_finite(self)
        from .restore.stages import COLOR_STAGES  # here: that module reads this one

        if self.mode not in COLOR_STAGES:
            raise UsageError(
                f"mode must be one of {', '.join(COLOR_STAGES)}, got {self.mode!r}",
                fields=("mode",),
            )
        if self.mode == "none" and self.keyframe_interval == 0:
            object.__setattr__(
                self, "keyframe_interval", 1
            )  # frame by frame: the model on every frame
        if not 0.0 <= self.strength <= 2.0:
            raise UsageError(
                f"strength must be between 0 and 2, got {self.strength}", fields=("strength",)
            )
        if self.radius < 0 or self.radius > 8:
            raise UsageError(f"the temporal radius must be 0..8 frames, got {self.radius}")
        if self.keyframe_interval < 0:
            raise UsageError(
                "keyframe_interval must be auto (0), 1 (every frame) or more",
                fields=("keyframe_interval",),
            )
        if self.keyframe_interval > 1 and self.mode == "none":
            raise UsageError(
                "keyframe_interval needs mode flow (colour is carried along the flow)",
                fields=("keyframe_interval", "mode"),
            )
        if self.max_interval < 1 or self.flow_width < 32:
            raise UsageError("max_interval must be >= 1 and flow_width >= 32")


@dataclass(frozen=True)
class ShotsConfig:
    """How `filmcolor shots` picks and colours each shot's frame (filmcolor.restore.shots)."""

    model: Path | None = None
    """The colorizer for the starting points; None = the shipped default."""
    scenes: SceneConfig = field(default_factory=lambda: SceneConfig())
    """Cut detection (as restore's)."""
    samples_per_second: float = 4.0
    """Candidate frames looked at per second of a shot."""
    overwrite: bool = False
    """Replace pictures the colourist changed (kept by default), or another film's shots."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.samples_per_second <= 0:
            raise UsageError("samples_per_second must be > 0", fields=("samples_per_second",))


REPAIRS: tuple[str, ...] = ("deflicker", "stabilize", "dust", "scratches", "degrain")
"""The repairs of filmcolor.restore.repair, in the order they run."""

DEFAULT_REPAIRS: tuple[str, ...] = ("deflicker", "dust", "scratches", "degrain")
"""What ``--repair`` alone runs: all but stabilize, which moves the picture (opt in by name)."""


def parse_repairs(text: str | None) -> tuple[str, ...]:
    """``--repair``'s value as steps: None -> none; '' or 'default' -> :data:`DEFAULT_REPAIRS`;
    'all' -> :data:`REPAIRS`; else comma-separated names (checked by :class:`RepairConfig`)."""
    if text is None:
        return ()
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names or names == ["default"]:
        return DEFAULT_REPAIRS
    if names == ["all"]:
        return REPAIRS
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class RepairConfig:
    """Which repairs of old film run before the colour (see filmcolor.restore.repair)."""

    steps: tuple[str, ...] = ()
    """Some of :data:`REPAIRS`; empty = none (the film's luminance is kept exactly)."""
    strength: float = 1.0
    """0..1: the share of the repair in the result (1: repaired, 0: the input)."""

    def __post_init__(self) -> None:
        require_finite(self)
        known = [name for name in REPAIRS if name in self.steps]  # in the order they run
        object.__setattr__(
            self, "steps", tuple(known + [n for n in self.steps if n not in REPAIRS])
        )
        unknown = [name for name in self.steps if name not in REPAIRS]
        if unknown:
            raise UsageError(
                f"unknown repair {unknown[0]!r}; choose from {', '.join(REPAIRS)} (or all)",
                fields=("repair",),
            )
        if not 0.0 <= self.strength <= 1.0:
            raise UsageError(
                f"repair_strength must be between 0 and 1, got {self.strength}",
                fields=("repair_strength",),
            )

    @property
    def enabled(self) -> bool:
        return bool(self.steps) and self.strength > 0.0


@dataclass(frozen=True)
class RestoreConfig:
    """How `filmcolor restore` colorizes a film."""

    model: Path | None = None
    """An exported generator (.onnx); None = the default model shipped in the package."""
    device: str = "auto"
    """'auto' (CUDA only when a session really gets it), 'cpu' or 'cuda'."""
    working_size: int | None = None
    """Short side of the luminance the model sees; None = the model file's (its contract's
    ``working_size``, what it was trained at)."""
    batch_size: int = 4
    """Frames per model call."""
    codec: str | None = None
    """Video encoder; None = libx264 (libvpx-vp9 for .webm)."""
    crf: int = 18
    """Encoder quality (x264/x265 CRF; lower is better)."""
    preset: str = "medium"
    """Encoder preset."""
    start: float | None = None
    """Start time in seconds (try a piece of the film)."""
    duration: float | None = None
    """Length in seconds to restore from start."""
    overwrite: bool = False
    """Replace an existing output file."""
    threads: int = 0
    """onnxruntime intra-op threads (0 = half the cores on a CPU, ffmpeg encoding beside the
    model; 1 with the model on a GPU)."""
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    """Blending of colour between neighbouring frames, reset at cuts."""
    repair: RepairConfig = field(default_factory=RepairConfig)
    """Repairs of the film's luminance before the colour (none by default: it is kept as is)."""
    colour: bool = True
    """False: no colour, the chroma written neutral (``filmcolor repair``: repair alone)."""
    references: tuple[Path, ...] = ()
    """Colour pictures of frames (or folders of them, such as ``filmcolor shots``'s): each is
    placed at its frame and its colour carried through its shot (filmcolor.restore.references)."""
    reference_palette: tuple[str, ...] = ()
    """``IMAGE[@SHOT]``: colour pictures that are not frames of the film, whose palette the shot
    (counted from 1; every shot without ``@SHOT``) takes on top of the model's colour."""
    precision: str = "auto"
    """'auto' (the model's int8 sibling on a CPU when there is one), 'fp32' or 'int8'."""
    saturation: float = 1.0
    """Colour strength: a factor on the model's calibrated chroma (0 = black and white)."""
    jobs: int = 1
    """Segments restored at once, each in its own worker process (many-core and GPU machines);
    0 = auto (the CLI's default): one process per 4 cores from 8 cores up, at most 8, and one
    with the model on a GPU."""
    resume: bool = False
    """Continue an interrupted restore of the same output from its last finished segment, and
    keep the finished segments if this run is interrupted too."""
    segment_seconds: float | None = None
    """Length of the pieces a restore is written in (the unit of --resume); None = auto: 60 s,
    shorter with jobs > 1 so that each process gets about four (2 s at least)."""
    accept_truncated: bool = False
    """Restore what a truncated or damaged file holds (with a warning) instead of refusing a
    film that ends before its declared length or decodes to fewer frames than it holds."""

    def __post_init__(self) -> None:
        require_finite(self)
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(
                f"device must be auto, cpu or cuda, got {self.device!r}", fields=("device",)
            )
        if self.working_size is not None and self.working_size < 16:
            raise UsageError(
                f"working_size {self.working_size} is too small; use at least 16 (default: the "
                f"model's)",
                fields=("working_size",),
            )
        if self.batch_size < 1:
            raise UsageError("batch_size must be >= 1", fields=("batch_size",))
        if self.segment_seconds is not None and self.segment_seconds <= 0:
            raise UsageError("segment_seconds must be > 0", fields=("segment_seconds",))
        if self.precision not in ("auto", "fp32", "int8"):
            raise UsageError(
                f"precision must be auto, fp32 or int8, got {self.precision!r}",
                fields=("precision",),
            )
        if not 0 <= self.jobs <= 64:
            raise UsageError(
                f"jobs must be 'auto' (0) or a number of processes from 1 to 64, got {self.jobs}",
                fields=("jobs",),
            )
        if not 0.0 <= self.saturation <= 10.0:
            raise UsageError(
                f"saturation must be between 0 and 10 (1 = the model's own), got {self.saturation}",
                fields=("saturation",),
            )
        if self.start is not None and self.start < 0:
            raise UsageError("start must be >= 0 seconds", fields=("start",))
        if self.duration is not None and self.duration <= 0:
            raise UsageError("duration must be > 0 seconds", fields=("duration",))


def _merge(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclass fields."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise UsageError(f"unknown setting {key!r} in {where}; known: {', '.join(known)}")
        default = (
            known[key].default_factory
            if known[key].default_factory is not dataclasses.MISSING
            else None
        )  # noqa: E501
        if isinstance(value, dict) and default is not None and dataclasses.is_dataclass(default):
            value = _merge(default, value, f"{where} [{key}]")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise UsageError(f"bad setting in {where}: {err}") from err


def train_config_from_dict(values: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build a :class:`TrainConfig` from nested dicts (as TOML gives them)."""
    return _merge(TrainConfig, values, where)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse a ``key.sub=value`` override; the value is read as TOML (numbers, booleans)."""
    if "=" not in text:
        raise UsageError(f"override {text!r} must look like key=value, e.g. generator.blocks=6")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def load_train_config(path: Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a TOML recipe (or the defaults when ``path`` is None) and apply overrides.

    Args:
        path: a TOML file whose top-level keys are :class:`TrainConfig` fields and whose
            ``[generator]``/``[discriminator]`` tables hold those shapes.
        overrides: dotted keys (``"generator.blocks"``) or plain field names to values.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as err:
            raise ConfigError(f"config '{path}' does not exist; check the path") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config '{path}' is not valid TOML: {err}") from err
    for dotted, value in (overrides or {}).items():
        keys = dotted.split(".") if isinstance(dotted, str) else list(dotted)
        node = values
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return train_config_from_dict(values, str(path) if path else "defaults")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain dicts (TOML/JSON-ready; None values dropped)."""
    out = dataclasses.asdict(cfg)

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if v is not None}
        if isinstance(node, Path):
            return str(node)
        return node

    return clean(out)
