"""Measure colorization quality on real footage, with baselines in the same run.

    python pipelines/evaluate.py                       # the default model, all sets
    python pipelines/evaluate.py --model my.onnx --limit 50 --markdown table.md --pictures
    docs/images
    python pipelines/evaluate.py --model my.onnx --saturation 1.6 --sets reds,bsds,cuts   # stronger
    colour
    python pipelines/evaluate.py --repair --markdown repair.md --pictures docs/images   # repair:
    clean clips worn by the damage model and repaired; real old films before and after

Ground-truth sets (colour footage made gray, restored, compared with the original):
  reds      REDS street scene, 21 frames 320x180 (frame sequence)
  bsds      BSDS500 test photos (not used for training), --limit of them
  cuts      the PySceneDetect test video (720p, hard cuts), first 8 s, through `restore`
  bunny     Big Buck Bunny (animation), first 8 s, through `restore`
Real B&W films (no ground truth), through `restore`:
  chaplin, abomb    colourfulness, CDC, warp error, luminance fidelity to the input

Rows: `gray` (the input itself), `untrained` (a freshly initialised generator, needs torch),
`default` (the shipped model with restore's defaults: temporal blending along the flow with
automatic keyframes, and the int8 model on this CPU) and each --model; then variants of the
last model: `... /fp32` (the float model, `--precision fp32`) and, on the sequences,
`... /none` (frame by frame, `--temporal none`), `... /every-frame` (blending with the model
on every frame, `--keyframe-interval 1`) and `... /fp32-none` (per-frame fp32: the reference
for the speed levers' quality cost). The goals of the
model issue (vs gray) and of the temporal issue (flow vs frame by frame) are checked and printed.
Through `restore`, the output is written losslessly (x264 `--crf 0`): the `gray` row is the
gray clip itself, never re-encoded, so the model rows must not lose to it on the encoder's
account (at restore's default --crf 18 a zero-colour restore reads 34.35 dB per frame against
the gray clip's 35.61 on the cuts video, all of it from re-encoding near-black title frames).
CDC leaves out the pairs of frames that straddle a cut (found by PySceneDetect on the source):
those compare two shots, not the steadiness of one (TCVC measures it on single-shot clips).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from filmcolor.color import merge_rgb, split_rgb
from filmcolor.config import RestoreConfig, SceneConfig, TemporalConfig
from filmcolor.evaluate.measures import Sample, columns, measure_all, truth_row
from filmcolor.io.files import load_rgb
from filmcolor.io.probe import probe
from filmcolor.io.reader import FrameReader
from filmcolor.model.contract import default_model_path
from filmcolor.restore.colorizer import Colorizer
from filmcolor.restore.pipeline import restore
from filmcolor.restore.temporal import blend
from filmcolor.scenes import detect_scenes


@dataclass
class Model:
    name: str
    path: Path | None  # None: the gray baseline (output = input)
    engine: Colorizer | None = None
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    sequences_only: bool = False  # a temporal variant: rows on frame sequences only
    precision: str = "auto"  # restore's default: the int8 sibling on this CPU when there is one
    saturation: float = 1.0  # restore's --saturation (a factor on the model's calibrated colour)

    def colorize(self, frames: np.ndarray) -> np.ndarray:
        """Single pictures, each on its own."""
        if self.engine is None:
            gray = cv2.cvtColor(frames.reshape(-1, frames.shape[-2], 3), cv2.COLOR_RGB2GRAY)
            return np.repeat(gray.reshape(frames.shape[:-1])[..., None], 3, axis=-1)
        return np.concatenate(
            [self.engine.colorize(frames[i : i + 8]) for i in range(0, len(frames), 8)]
        )

    def colorize_sequence(self, frames: np.ndarray) -> np.ndarray:
        """Frames of one film, through the same colour stage as restore (temporal blending)."""
        if self.engine is None:
            return self.colorize(frames)
        engine = self.engine
        luma, _ = split_rgb(frames)
        small = np.stack([engine.shrink(f) for f in luma])
        chroma = np.stack(
            [engine.enlarge(c, *luma.shape[1:]) for c in blend(small, engine.run, self.temporal)]
        )
        return merge_rgb(luma, chroma)

    def restore_config(self, **kwargs: object) -> RestoreConfig:
        return RestoreConfig(
            model=self.path,
            device="cpu",
            preset="veryfast",
            crf=0,
            overwrite=True,
            temporal=self.temporal,
            precision=self.precision,
            saturation=self.saturation,
            **kwargs,
        )  # type: ignore[arg-type]


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: dict[str, dict[str, float]] = field(default_factory=dict)

    def render(self) -> str:
        head = f"| {self.title} | " + " | ".join(self.columns) + " |"
        sep = "|---|" + "---|" * len(self.columns)
        lines = [head, sep]
        for name, values in self.rows.items():
            cells = [_fmt(values.get(c)) for c in self.columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) < 0.1 and value != 0:
        return f"{value:.3g}"
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"


def to_gray(frames: np.ndarray) -> np.ndarray:
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    return np.repeat(gray[..., None], 3, axis=-1)


def load_images(paths: list[Path], short: int | None = None) -> list[np.ndarray]:
    """Pictures as RGB, with ``short`` their short side shrunk to it (sides made even)."""
    images = []
    for path in paths:
        image = load_rgb(path, short)
        images.append(
            image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2] if short else image
        )
    return images


def read_rgb(
    path: Path, seconds: float | None = None, size: tuple[int, int] | None = None
) -> np.ndarray:
    info = probe(path)
    with FrameReader(info, pix_fmt="rgb24", duration=seconds, size=size) as reader:
        return np.stack(list(reader))


def restore_frames(
    model: Model, source: Path, work: Path, seconds: float | None, size: tuple[int, int] | None
) -> np.ndarray:
    """Run the real `restore` on a clip and read its frames back as RGB."""
    if model.path is None:
        return to_gray(read_rgb(source, seconds, size))
    out = work / f"{model.name.replace('/', '-')}_{source.stem}.mkv"
    restore(source, out, model.restore_config(duration=seconds))
    return read_rgb(out, None, size)


def shot_starts(source: Path, frames: int, luma_only: bool = False) -> list[int]:
    """Where shots start within the first ``frames`` frames (PySceneDetect on the source): CDC
    leaves out the pairs of frames across them."""
    return [
        s.start_frame
        for s in detect_scenes(source, SceneConfig(), luma_only)
        if 0 < s.start_frame < frames
    ]


def ffmpeg(*args: str) -> None:
    """ffmpeg quietly, overwriting, failing loudly."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_gray_clip(source: Path, target: Path, seconds: float) -> Path:
    ffmpeg(
        "-t", str(seconds), "-i", str(source), "-vf", "hue=s=0", "-c:v", "libx264",
        "-crf", "12", "-preset", "veryfast", "-an", str(target),
    )  # fmt: skip
    return target


def untrained_model(work: Path) -> Path | None:
    """A freshly initialised light generator, exported like a trained one (needs torch)."""
    try:
        import torch

        from filmcolor.config import GeneratorConfig
        from filmcolor.model.contract import ModelContract, set_contract
        from filmcolor.training.networks import build_generator
    except ImportError:
        return None
    import warnings

    import onnx

    torch.manual_seed(0)
    net = build_generator(GeneratorConfig.light()).eval()
    path = work / "untrained.onnx"
    warnings.simplefilter("ignore")
    torch.onnx.export(
        net,
        (torch.zeros(1, 1, 64, 64),),
        str(path),
        input_names=["luma"],
        output_names=["chroma"],
        dynamic_axes={"luma": {0: "n", 2: "h", 3: "w"}, "chroma": {0: "n", 2: "h", 3: "w"}},
        opset_version=17,
        dynamo=False,
    )
    model = onnx.load(str(path))
    # the default model's working size: the same pictures as the model it is compared with
    working_size = Colorizer(None, device="cpu").contract.working_size
    set_contract(model, ModelContract(working_size=working_size))
    onnx.save(model, str(path))
    return path


def preview(model: Model, source: Path, target: Path, seconds: float | None = None) -> None:
    """restore's own before/after sheet of a film, saved as JPEG."""
    with tempfile.TemporaryDirectory() as tmp:
        sheet = Path(tmp) / "sheet.png"
        restore(
            source,
            Path(tmp) / "o.mkv",
            RestoreConfig(model=model.path, device="cpu", duration=seconds, preset="ultrafast"),
            preview=sheet,
        )
        write_picture(target, cv2.cvtColor(cv2.imread(str(sheet)), cv2.COLOR_BGR2RGB))


def frames_preview(model: Model, frames: list[np.ndarray], target: Path) -> None:
    rows = []
    for frame in frames:
        gray = to_gray(frame[None])[0]
        out = model.colorize(gray[None])[0]
        h = 240
        w = round(frame.shape[1] * h / frame.shape[0])
        pair = [cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) for x in (gray, out)]
        rows.append(np.concatenate([pair[0], np.full((h, 8, 3), 255, np.uint8), pair[1]], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_picture(target, np.concatenate(rows))


def write_picture(target: Path, rgb: np.ndarray) -> None:
    """A JPEG (quality 85) for the docs: small enough to commit."""
    cv2.imwrite(str(target), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, action="append", default=[], help="extra .onnx models to measure"
    )
    parser.add_argument(
        "--shared",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent / "shared" / "data",
    )
    parser.add_argument(
        "--limit", type=int, default=100, help="BSDS500 test photos to use (of 200)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the video sets")
    parser.add_argument(
        "--sets",
        default="reds,bsds,cuts,bunny,chaplin,abomb",
        help="comma-separated; 'none' for pictures only",
    )
    parser.add_argument("--no-untrained", action="store_true")
    parser.add_argument(
        "--no-temporal-variants", action="store_true", help="skip the /none and /key-auto rows"
    )
    parser.add_argument(
        "--saturation",
        type=float,
        default=1.0,
        help="restore's --saturation for every model row (1 = each model's calibrated colour)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument(
        "--pictures", type=Path, help="write before/after sheets of real B&W footage here"
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="measure repair instead of colour (clean clips worn and repaired, real old films)",
    )
    parser.add_argument(
        "--references",
        action="store_true",
        help="measure restore --reference: the truth's frame given at each shot's start (and "
        "middle), against no reference, on REDS and the cuts video",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    shared, sets = args.shared, set(args.sets.split(","))
    if not shared.is_dir():
        sys.exit(f"evaluate: {shared} is absent; pass --shared PATH to the footage")
    if args.repair:
        evaluate_repair(shared, args.seconds, args.markdown, args.pictures)
        return
    if args.references:
        evaluate_references(shared, args.seconds, args.model, args.markdown, args.pictures)
        return
    work = Path(tempfile.mkdtemp(prefix="filmcolor-eval-"))
    models = [Model("gray", None)]
    if not args.no_untrained and (path := untrained_model(work)) is not None:
        models.append(Model("untrained", path))
    models.append(Model("default", default_model_path()))
    models += [Model(p.stem, p) for p in args.model]
    last = models[-1]
    models.append(Model(f"{last.name}/fp32", last.path, precision="fp32"))
    if not args.no_temporal_variants:
        models.append(
            Model(f"{last.name}/none", last.path, None, TemporalConfig(mode="none"), True)
        )
        models.append(
            Model(
                f"{last.name}/every-frame",
                last.path,
                None,
                TemporalConfig(keyframe_interval=1),
                True,
            )
        )
        models.append(
            Model(
                f"{last.name}/fp32-none", last.path, None, TemporalConfig(mode="none"), True, "fp32"
            )
        )
    engines: dict[tuple[Path, str], Colorizer] = {}
    for m in models:
        if m.path is not None:
            key = (m.path, m.precision)
            m.saturation = args.saturation
            if (
                key not in engines
            ):  # one session per model file and precision (setdefault would open one each time)
                engines[key] = Colorizer(
                    m.path, device="cpu", precision=m.precision, saturation=args.saturation
                )
            m.engine = engines[key]
    tables: list[Table] = []

    def gt_set(
        title: str,
        truth: list[np.ndarray],
        sequence: bool,
        run: Callable[[Model], list[np.ndarray]],
        cuts: list[int] = (),
    ) -> None:
        kind = "film" if sequence else "photos"
        table = Table(title, columns(kind))
        table.rows["ground truth"] = truth_row(kind, Sample(truth, truth=truth, cuts=list(cuts)))
        for m in models:
            if sequence or not m.sequences_only:
                table.rows[m.name] = measure_all(kind, Sample(run(m), truth=truth, cuts=list(cuts)))
        tables.append(table)
        print(table.render(), "\n", flush=True)

    if "reds" in sets:
        truth = load_images(sorted((shared / "colorvideo_gt/reds_demo_000_lr").glob("*.png")))
        gray = to_gray(np.stack(truth))
        gt_set(
            f"REDS ({len(truth)} frames)", truth, True, lambda m: list(m.colorize_sequence(gray))
        )
    if "bsds" in sets:
        paths = sorted((shared / "color_photos/bsds500/test").glob("*.jpg"))[: args.limit]
        truth = load_images(paths)
        gt_set(
            f"BSDS500 test ({len(truth)} photos)",
            truth,
            False,
            lambda m: [m.colorize(to_gray(t[None]))[0] for t in truth],
        )
    for key, rel, title in (
        ("cuts", "colorvideo_gt/pyscenedetect_testvideo.mp4", "cuts video 720p"),
        ("bunny", "av_clips/big_buck_bunny_0_30.webm", "Big Buck Bunny 720p"),
    ):
        if key in sets:
            source = shared / rel
            size = (640, 360)
            truth = list(read_rgb(source, args.seconds, size))
            gray_clip = make_gray_clip(source, work / f"{key}_gray.mp4", args.seconds)
            cuts = shot_starts(source, len(truth))
            gt_set(
                f"{title} ({len(truth)} frames, {len(cuts)} cuts)",
                truth,
                True,
                lambda m, g=gray_clip, s=size: list(restore_frames(m, g, work, None, s)),
                cuts,
            )
    for key, rel in (
        ("chaplin", "oldfilm_video/chaplin.mp4"),
        ("abomb", "oldfilm_video/a-bomb_blast_effects_part.mp4"),
    ):
        if key not in sets:
            continue
        source = shared / rel
        info = probe(source)
        with FrameReader(info) as reader:
            y_in = np.stack([f[0] for f in reader])
        cuts = shot_starts(source, len(y_in), luma_only=True)
        table = Table(
            f"{source.name} (real B&W, {len(y_in)} frames, {len(cuts)} cuts)", columns("bw")
        )
        gray_rgb = read_rgb(source)
        for m in models:
            if m.path is None:
                out = to_gray(gray_rgb)
                y_out = y_in
            else:
                out_path = work / f"{m.name.replace('/', '-')}_{source.stem}.mkv"
                restore(source, out_path, m.restore_config())
                out = read_rgb(out_path)
                with FrameReader(probe(out_path)) as reader:
                    y_out = np.stack([f[0] for f in reader])
            sample = Sample(list(out), source=list(gray_rgb), cuts=list(cuts), luma=(y_in, y_out))
            table.rows[m.name] = measure_all("bw", sample)
        tables.append(table)
        print(table.render(), "\n", flush=True)

    goals = check_goals(
        tables,
        [m.name for m in models if m.name not in ("gray", "untrained") and not m.sequences_only],
    )
    if not args.no_temporal_variants:
        goals += check_temporal_goals(tables, last.name)
        goals += check_speed_quality(tables, last.name)
    print("\n".join(goals))
    if args.markdown:
        args.markdown.write_text(
            "\n\n".join(t.render() for t in tables)
            + "\n\n"
            + "\n".join(f"- {g}" for g in goals)
            + "\n"
        )
    if args.pictures:
        args.pictures.mkdir(parents=True, exist_ok=True)
        best = models[-1]
        preview(
            best, shared / "oldfilm_video/chaplin.mp4", args.pictures / "chaplin_before_after.jpg"
        )
        preview(
            best,
            shared / "oldfilm_video/a-bomb_blast_effects_part.mp4",
            args.pictures / "abomb_before_after.jpg",
        )
        frames = load_images(
            [
                sorted((shared / "oldfilm_frames" / d).glob("*.png"))[5]
                for d in ("rtn_001", "rtn_002_first40", "rtn_003")
            ]
        )
        frames_preview(best, frames, args.pictures / "oldfilm_frames_before_after.jpg")
        photos = sorted((shared / "oldphotos_ddcolor").glob("*.jp*g"))[:4]
        frames_preview(
            best, load_images(photos, short=360), args.pictures / "oldphotos_before_after.jpg"
        )
        print(f"pictures in {args.pictures}")


def evaluate_references(
    shared: Path,
    seconds: float,
    models: list[Path],
    markdown: Path | None,
    pictures: Path | None,
) -> None:
    """restore --reference on ground truth: each shot's true colour frame given at its start
    (the protocol exemplar methods report), then at its middle; the same restore without a
    reference in the same run. The output is 4:2:0, so a row is also given for the truth
    itself through 4:2:0 (the most any restore can score)."""
    work = Path(tempfile.mkdtemp(prefix="filmcolor-eval-ref-"))
    model = models[-1] if models else None
    sets = {}
    reds = sorted((shared / "colorvideo_gt/reds_demo_000_lr").glob("*.png"))
    ffmpeg(
        "-framerate", "25", "-i", str(reds[0].parent / "%08d.png"), "-c:v", "libx264",
        "-crf", "0", "-pix_fmt", "yuv444p", str(work / "reds.mkv"),
    )  # fmt: skip
    sets[f"REDS ({len(reds)} frames)"] = work / "reds.mkv"
    cuts = work / "cuts.mkv"
    ffmpeg(
        "-t", str(seconds), "-i", str(shared / "colorvideo_gt/pyscenedetect_testvideo.mp4"),
        "-an", "-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p", str(cuts),
    )  # fmt: skip
    sets["cuts video 720p"] = cuts
    tables, goals = [], []
    for title, colour in sets.items():
        truth = list(read_rgb(colour))
        gray_clip = make_gray_clip(colour, work / f"{colour.stem}_gray.mp4", seconds)
        starts = [0, *shot_starts(colour, len(truth))]
        bounds = list(zip(starts, [*starts[1:], len(truth)], strict=True))
        table = Table(f"{title}, {len(bounds)} shots", columns("film"))
        table.rows["ground truth"] = truth_row("film", Sample(truth, truth=truth, cuts=starts[1:]))
        ceiling = read_rgb(restore_through_420(colour, work))
        table.rows["truth through 4:2:0 (the ceiling)"] = measure_all(
            "film", Sample(list(ceiling), truth=truth, cuts=starts[1:])
        )
        for label, where in (("no reference", None), ("reference at each shot's start", 0.0),
                             ("reference mid-shot", 0.5)):  # fmt: skip
            folder = None
            if where is not None:
                folder = work / f"{colour.stem}_refs_{where}"
                folder.mkdir(exist_ok=True)
                for a, b in bounds:
                    k = a + int((b - a - 1) * where)
                    cv2.imwrite(
                        str(folder / f"ref_{k}.png"), cv2.cvtColor(truth[k], cv2.COLOR_RGB2BGR)
                    )
            out = work / f"{colour.stem}_{label.replace(' ', '_')}.mkv"
            cfg = RestoreConfig(
                model=model, device="cpu", preset="veryfast", crf=0, overwrite=True,
                references=(folder,) if folder else (),
            )  # fmt: skip
            restore(gray_clip, out, cfg)
            frames = list(read_rgb(out))
            table.rows[label] = measure_all("film", Sample(frames, truth=truth, cuts=starts[1:]))
        tables.append(table)
        print(table.render(), "\n", flush=True)
        start = table.rows["reference at each shot's start"]
        middle = table.rows["reference mid-shot"]
        goal = 35.0 if title.startswith("REDS") else 33.0
        cdc = start["CDC"] / table.rows["ground truth"]["CDC"]
        goals.append(
            f"{title}: reference at shot starts PSNR {start['PSNR']:.2f} (goal >= {goal}): "
            f"{'PASS' if start['PSNR'] >= goal else 'MISS'}; CDC {cdc:.2f} x the truth's (goal <= "
            f"1.2): {'PASS' if cdc <= 1.2 else 'MISS'}; mid-shot within "
            f"{start['PSNR'] - middle['PSNR']:.2f} dB (goal <= 1): "
            f"{'PASS' if start['PSNR'] - middle['PSNR'] <= 1.0 else 'MISS'}"
        )
    print("\n".join(goals))
    if markdown:
        markdown.write_text(
            "\n\n".join(t.render() for t in tables)
            + "\n\n"
            + "\n".join(f"- {g}" for g in goals)
            + "\n"
        )


def restore_through_420(colour: Path, work: Path) -> Path:
    """The colour clip itself as restore writes it (x264, 4:2:0, lossless otherwise)."""
    out = work / f"{colour.stem}_420.mkv"
    ffmpeg("-i", str(colour), "-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv420p", str(out))
    return out


def read_luma(path: Path, seconds: float | None = None) -> list[np.ndarray]:
    """A film's luminance planes (uint8)."""
    with FrameReader(probe(path), duration=seconds) as reader:
        return [frame[0] for frame in reader]


def evaluate_repair(
    shared: Path, seconds: float, markdown: Path | None, pictures: Path | None
) -> None:
    """The repair tables: clean clips worn by the damage model and repaired (the default
    repairs on damage without weave; all of them with the weave), and real old films."""
    from filmcolor.config import DEFAULT_REPAIRS, REPAIRS
    from filmcolor.evaluate.damage import Damage
    from filmcolor.evaluate.repair import score_clip, score_film

    clips = {
        "REDS 320x180": [
            cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            for p in sorted((shared / "colorvideo_gt/reds_demo_000_lr").glob("*.png"))
        ],
        "cuts video 720p": read_luma(shared / "colorvideo_gt/pyscenedetect_testvideo.mp4", seconds),
        "DAVIS blackswan 854x480": [
            cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            for p in sorted((shared / "colorvideo_gt/davis_blackswan_gray_input").glob("*.png"))
        ],
    }
    head = (
        "| clip | repairs | damage | PSNR worn | PSNR repaired | gain | SSIM worn | SSIM repaired "
        "| flicker clean / worn / repaired | flicker removed | clean kept (PSNR) | ms/frame |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    goals = []
    for name, frames in clips.items():
        for label, steps, damage in (
            ("default", DEFAULT_REPAIRS, Damage(weave=0.0)),
            ("all", REPAIRS, Damage()),
        ):
            score = score_clip(name, frames, steps, damage)
            removed = 1.0 - score.flicker_repaired / max(score.flicker_worn, 1e-6)
            gain = score.psnr_repaired - score.psnr_worn
            lines.append(
                f"| {name} ({score.frames}) | {label} | "
                f"{'all' if damage.weave else 'no weave'} | {score.psnr_worn:.2f} | "
                f"{score.psnr_repaired:.2f} | {gain:+.2f} | {score.ssim_worn:.3f} | "
                f"{score.ssim_repaired:.3f} | {score.flicker_clean:.2f} / "
                f"{score.flicker_worn:.2f} / {score.flicker_repaired:.2f} | {removed:.0%} | "
                f"{score.psnr_clean_kept:.1f} | {score.ms_per_frame:.1f} |"
            )
            goals.append(
                f"{name} / {label}: {'PASS' if gain >= 4.0 else 'MISS'} PSNR +{gain:.2f} dB "
                f"(goal +4), {'PASS' if removed >= 0.8 else 'MISS'} flicker -{removed:.0%} "
                f"(goal -80%), {'PASS' if score.psnr_clean_kept >= 40 else 'MISS'} clean "
                f"footage kept {score.psnr_clean_kept:.1f} dB (goal >= 40)"
            )
    films = [
        ("chaplin.mp4", read_luma(shared / "oldfilm_video/chaplin.mp4")),
        (
            "a-bomb_blast_effects_part.mp4",
            read_luma(shared / "oldfilm_video/a-bomb_blast_effects_part.mp4"),
        ),
    ]
    for folder in sorted((shared / "oldfilm_frames").iterdir()):
        if folder.is_dir():
            films.append(
                (
                    f"oldfilm_frames/{folder.name}",
                    [
                        cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
                        for p in sorted(folder.glob("*.png"))
                    ],
                )
            )
    real = [
        "| real film | frames | flicker before / after | dust specks / frame | scratch columns / "
        "frame | flashes before / after | ms/frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, frames in films:
        film = score_film(name, frames, DEFAULT_REPAIRS)
        real.append(
            f"| {name} | {film.frames} | {film.flicker_before:.2f} / {film.flicker_after:.2f} | "
            f"{film.specks_per_frame:.1f} | {film.scratches_per_frame:.2f} | "
            f"{film.flashes_before} / {film.flashes_after} | {film.ms_per_frame:.1f} |"
        )
    text = "\n".join(lines) + "\n\n" + "\n".join(real) + "\n\n" + "\n".join(f"- {g}" for g in goals)
    print(text)
    if markdown:
        markdown.write_text(text + "\n")
    if pictures:
        pictures.mkdir(parents=True, exist_ok=True)
        for name, frames in films[:1] + films[2:3]:
            repair_sheet(frames, pictures / f"repair_{Path(name).stem}.jpg")
        print(f"pictures in {pictures}")


def repair_sheet(frames: list[np.ndarray], target: Path) -> None:
    """Before (left) and after (right) crops of three frames of a film, repaired by default."""
    from filmcolor.config import DEFAULT_REPAIRS
    from filmcolor.evaluate.repair import repair_frames

    repaired, _ = repair_frames(frames, DEFAULT_REPAIRS)
    rows = []
    for index in np.linspace(len(frames) * 0.2, len(frames) * 0.8, 3).astype(int):
        before, after = frames[index], repaired[index]
        h, w = before.shape
        crop = np.s_[h // 6 : h // 6 + h // 2, w // 4 : w // 4 + w // 2]  # the middle, enlarged
        pair = [cv2.resize(x[crop], (w, h), interpolation=cv2.INTER_CUBIC) for x in (before, after)]
        rows.append(np.hstack([pair[0], np.full((h, 8), 255, np.uint8), pair[1]]))
    cv2.imwrite(str(target), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 90])


def check_goals(tables: list[Table], names: list[str]) -> list[str]:
    """The issue's goals on ground-truth sets, as PASS/MISS lines."""
    lines = []
    for table in tables:
        if "PSNR" not in table.columns:
            continue
        gray = table.rows.get("gray", {})
        for name in names:
            row = table.rows.get(name)
            if not row:
                continue
            checks = [
                (f"{key} above gray", row[key] > gray.get(key, float("inf")))
                for key in ("PSNR", "PSNR-seq")
            ]
            checks.append(("colourfulness >= 0.5 x GT", row["colour/GT"] >= 0.5))
            if "CDC/GT" in row:
                checks.append(("CDC <= 2 x GT", row["CDC/GT"] <= 2.0))
            verdict = ", ".join(f"{'PASS' if ok else 'MISS'} {label}" for label, ok in checks)
            lines.append(f"{table.title} / {name}: {verdict}")
    return lines


def check_temporal_goals(tables: list[Table], name: str) -> list[str]:
    """The temporal issue's goals: flow blending against frame by frame, same model, same run."""
    lines = []
    for table in tables:
        flow, none = table.rows.get(name), table.rows.get(f"{name}/none")
        if not flow or not none or "warp" not in table.columns:
            continue
        checks = [
            (f"{key} -30%", flow[key] <= 0.7 * none[key], flow[key] / none[key] - 1)
            for key in ("warp", "CDC", "warp-c", "CDC-c")
        ] + [
            (
                "colourfulness at most -10%",
                flow["colour"] >= 0.9 * none["colour"],
                flow["colour"] / none["colour"] - 1,
            ),
        ]
        if "PSNR" in flow:
            for key in ("PSNR", "PSNR-seq"):
                gain = flow[key] - none[key]
                checks.append((f"{key} not lower", gain >= -0.005, gain))
        verdict = ", ".join(
            f"{'PASS' if ok else 'MISS'} {label} ({change:+.3g})" for label, ok, change in checks
        )
        lines.append(f"{table.title} / temporal flow vs none: {verdict}")
        truth = table.rows.get("ground truth", {})
        floors = [
            f"{key} -30% would be {0.7 * none[key]:.3g}, below the ground truth's own "
            f"{truth[key]:.3g}"
            for key in ("CDC", "CDC-c")
            if truth.get(key) is not None
            and flow[key] > 0.7 * none[key]
            and 0.7 * none[key] < truth[key]
        ]
        if (
            floors
        ):  # steadier than the real colour footage would mean colour frozen where it changes
            lines.append(f"{table.title} / floor: " + "; ".join(floors))
    return lines


def check_speed_quality(tables: list[Table], name: str) -> list[str]:
    """The speed issue's quality bound: restore's fast settings within 5% of per-frame fp32.

    Within 5% means no more than 5% worse: PSNR and SSIM at most 5% lower, and colourfulness
    at most 5% (of the per-frame value) further from the ground truth's own colourfulness.
    More colour where the output is paler than the truth is not a loss: the change is printed
    beside the verdict either way.
    """
    lines = []
    for table in tables:
        reference = table.rows.get(f"{name}/fp32-none")
        if not reference or "PSNR" not in table.columns:
            continue
        for variant in (name, f"{name}/every-frame"):
            row = table.rows.get(variant)
            if not row:
                continue
            cells = []
            for key in ("PSNR", "SSIM"):
                change = row[key] / reference[key] - 1
                cells.append(f"{'PASS' if change >= -0.05 else 'MISS'} {key} {change:+.1%}")
            change = row["colour"] / reference["colour"] - 1
            if reference.get("colour/GT"):
                truth = reference["colour"] / reference["colour/GT"]
                further = (
                    abs(row["colour"] - truth) - abs(reference["colour"] - truth)
                ) / reference["colour"]
                cells.append(
                    f"{'PASS' if further <= 0.05 else 'MISS'} colour {change:+.1%} "
                    f"(distance to the truth's {further:+.1%})"
                )
            else:
                cells.append(f"{'PASS' if abs(change) <= 0.05 else 'MISS'} colour {change:+.1%}")
            lines.append(
                f"{table.title} / {variant} vs per-frame fp32 (no more than 5% worse): "
                f"{', '.join(cells)}"
            )
    return lines


if __name__ == "__main__":
    main()
