"""``mgsr upscale``: files, folders and globs in; one clear line per failure; nothing partial out."""

from __future__ import annotations

import argparse
import glob
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgsr.cli.options import (
    add_device,
    check_calibration_model,
    names_a_folder,
    protected_inputs,
    run_noise,
    whole_number,
)
from mgsr.cli.upscale_video import add_video_options, run_videos
from mgsr.errors import ImageError, MgsrError
from mgsr.inference.outsize import LEVEL_SCALES
from mgsr.model.detail import refuse_noise_and_detail
from mgsr.number_formats import PRECISIONS

if TYPE_CHECKING:
    import numpy as np

    from mgsr.inference.adaptive import AdaptiveRule
    from mgsr.inference.outsize import SizeRequest
    from mgsr.io.jobs import Task
    from mgsr.model.generator import GMGBP
    from mgsr.runtime.distributed import Context

_FORMATS = ("png", "jpg", "jpeg", "webp", "tiff", "tif", "bmp")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="super-resolve images with a bundled or trained model",
        description="Super-resolve images. W = 0 gives the lowest distortion, W = 1 the most detail.",
    )
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    p.add_argument(
        "--model",
        default="pirm-r3",
        help="pirm-r1, pirm-r2, pirm-r3, a .safetensors file, a run folder or a training checkpoint .pt",
    )
    _add_size_options(p)
    _add_noise_options(p)
    _add_run_options(p)
    add_video_options(p)
    p.set_defaults(func=run)


def _add_size_options(p: argparse.ArgumentParser) -> None:
    """How large the output is: a network level, any factor, or a width and/or height."""
    p.add_argument(
        "--scale",
        type=int,
        default=None,
        choices=LEVEL_SCALES,
        help="the network's factor (default 4); for any other size use --outscale, --width, --height",
    )
    p.add_argument(
        "--outscale",
        type=float,
        default=None,
        metavar="F",
        help="any factor in (1, 8], e.g. 3 or 2.5: the next larger of 2x/4x/8x, then an antialiased "
        "bicubic downscale to the exact size (outputs photo_x3.png, photo_x2.5.png)",
    )
    p.add_argument(
        "--width",
        type=int,
        default=None,
        metavar="W",
        help="output width in pixels; the height follows the aspect ratio (outputs photo_1920w.png)",
    )
    p.add_argument(
        "--height",
        type=int,
        default=None,
        metavar="H",
        help="output height in pixels; with --width too, it must keep the aspect (no stretching)",
    )


def _add_noise_options(p: argparse.ArgumentParser) -> None:
    """How much detail the noise adds, where, and from which seed."""
    p.add_argument(
        "--noise",
        default=None,
        help="W (e.g. 0.5), one W per 2x level (e.g. 0.3,1.0), or a calibration .json from "
        "`mgsr calibrate`; default: the model's recorded W",
    )
    p.add_argument(
        "--detail",
        type=float,
        default=None,
        metavar="T",
        help="instead of --noise: T in [0, 1], how far along the model's measured perception-"
        "distortion curve to go (0: W = 0, 1: the model's recorded W); prints the W it means",
    )
    p.add_argument(
        "--noise-map", default=None, help="grayscale image whose values (black 0 .. white 1) multiply W per region"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws (same seed, same output)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """How the work runs (tiles, device, backend, precision) and how the results are written."""
    p.add_argument(
        "--tile",
        default="auto",
        help="input tile side in pixels (bounded memory; results are unchanged), 0 = whole image, default auto",
    )
    p.add_argument("--format", choices=_FORMATS, default=None, help="output format (default: the input's)")
    p.add_argument("--quality", type=whole_number(1, 100), default=None, help="JPEG/WebP quality 1-100")
    add_device(p)
    p.add_argument(
        "--backend",
        choices=("auto", "torch", "openvino"),
        default="auto",
        help='openvino: CPU only, pip install "mgsr[openvino]" (faster than torch on CPU: '
        "benchmarks/upscale_bench.py; same output to 1e-5; converted once per model and scale, "
        "cached); auto: openvino when installed, on CPU",
    )
    p.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="fp32",
        help="network in fp32 (default), bf16 or fp16 (for GPUs: on CPUs without bf16/fp16 "
        "instructions they run, ~6x slower; at W = 1 fp16 is ~2-4 grey levels off fp32, bf16 ~20)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo outputs that exist already (default: skip them, so an interrupted job continues)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no device line")


def parse_noise(value: str | None) -> float | list[float] | AdaptiveRule | None:
    """``0.5`` | ``0.3,1.0`` | ``calib.json`` -> W or an adaptive rule (None: the model's default)."""
    if value is None:
        return None
    if value.lower().endswith(".json"):
        from mgsr.evaluation.adaptive_fit import load_calibration

        return load_calibration(value)  # a global W, or an adaptive rule: W per pixel from each image
    from mgsr.model.amplitude import check_amplitude

    try:
        values = [float(v) for v in value.split(",")]
    except ValueError:
        raise MgsrError(f"--noise {value!r}: give a number, comma-separated numbers, or a .json file") from None
    values = [check_amplitude(v, f"--noise {value!r}") for v in values]  # before any model or image is read
    return values[0] if len(values) == 1 else values


def parse_tile(value: str) -> int | str | None:
    if value == "auto":
        return "auto"
    try:
        tile = int(value)
    except ValueError:
        raise MgsrError(f"--tile {value!r}: give a number of pixels, 0, or auto") from None
    if tile < 0:
        raise MgsrError(f"--tile must be >= 0, got {tile}")
    return None if tile == 0 else tile


def collect_inputs(patterns: list[str]) -> list[Path]:
    """Expand folders (their images, sorted) and glob patterns; keep missing paths to report them."""
    from mgsr.io.files import image_files

    found: list[Path] = []
    for raw in patterns:
        path = Path(raw)
        if path.is_dir():
            images = image_files(path)
            found.extend(images if images else [path])  # an empty folder is reported as a failure
        elif not path.exists() and glob.has_magic(raw):
            matches = sorted(Path(m) for m in glob.glob(raw))
            found.extend(matches if matches else [path])
        else:
            found.append(path)
    return found


def size_request(args: argparse.Namespace) -> SizeRequest:
    """--scale, or --outscale, or --width / --height, as one request (--scale S is outscale S: no resize)."""
    from mgsr.inference.outsize import SizeRequest

    sized = (args.outscale, args.width, args.height) != (None, None, None)
    if sized and args.scale is not None:
        raise MgsrError("--scale contradicts --outscale / --width / --height: give one way of sizing")
    if sized:
        return SizeRequest(args.outscale, args.width, args.height)
    return SizeRequest(outscale=float(args.scale or 4))


def _target(source: Path, out: Path, single_file: bool, tag: str, fmt: str | None) -> Path:
    if single_file:
        return out
    from mgsr.io.images import IMAGE_SUFFIXES

    suffix = f".{fmt}" if fmt else source.suffix.lower()
    if suffix not in IMAGE_SUFFIXES or suffix in (".gif", ".ppm", ".pgm"):
        suffix = ".png"
    return out / f"{source.stem}_{tag}{suffix}"


def refuse_unknown_file_name(output: str, single_file: bool) -> None:
    """An output that is neither an image file name nor a folder is refused before any work: ``-o clip.mp4``
    for pictures, or ``-o photo.jfif``, used to become a new folder of that name holding ``*_x4.png``.  An
    existing folder, or a name ending in ``/``, stays a folder whatever its suffix (``-o results.v2/``)."""
    from mgsr.io.images import IMAGE_SUFFIXES
    from mgsr.io.video import VIDEO_SUFFIXES

    out = Path(output)
    if single_file or not out.suffix or names_a_folder(output):
        return
    if out.suffix.lower() in VIDEO_SUFFIXES:
        raise MgsrError(
            f"-o {output} is a video file name, but the inputs are images: give an image file name or a folder"
        )
    raise MgsrError(
        f"-o {output}: {out.suffix} is not an image format mgsr writes ({', '.join(sorted(IMAGE_SUFFIXES))}); "
        f"for a new folder of that name, end it with '/'"
    )


def run(args: argparse.Namespace) -> int:
    from mgsr.io.images import IMAGE_SUFFIXES
    from mgsr.io.jobs import plan, refuse_overwriting_inputs
    from mgsr.io.video import is_video
    from mgsr.runtime.distributed import from_environment, shutdown

    refuse_noise_and_detail(args.noise, args.detail, options=True)  # before any work, the model's loading included
    noise = parse_noise(args.noise)
    tile = parse_tile(args.tile)
    request = size_request(args)
    inputs = collect_inputs(args.inputs)
    if any(is_video(p) for p in inputs):  # clips go their own way, frame by frame: mgsr.cli.upscale_video
        return run_videos(args, inputs, noise, tile)
    out = Path(args.output)
    single_file = out.suffix.lower() in IMAGE_SUFFIXES
    refuse_unknown_file_name(args.output, single_file)
    if single_file and len(inputs) > 1:
        raise MgsrError(f"{len(inputs)} inputs need an output folder, but {out} is a file name")
    same = {"jpg": "jpeg", "tif": "tiff"}
    if (
        single_file
        and args.format
        and same.get(out.suffix.lower().lstrip("."), out.suffix.lower().lstrip("."))
        != same.get(args.format, args.format)
    ):
        raise MgsrError(f"--format {args.format} contradicts the output file name {out.name}")
    tasks = plan(inputs, lambda source: _target(source, out, single_file, request.tag, args.format))
    refuse_overwriting_inputs(tasks, protected=protected_inputs(args))
    try:
        (out.parent if single_file else out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    # under torchrun: one process per rank (gloo on CPU, NCCL with each rank on cuda:LOCAL_RANK)
    ctx, device = from_environment(args.device, announce=not args.quiet)
    try:
        return _run_tasks(args, tasks, noise, tile, ctx, device, request)
    finally:
        shutdown(ctx)


def _pending(tasks: list[Task], overwrite: bool, ctx: Context) -> list[Task]:
    """The tasks still to do; rank 0 looks at the file system once and tells the others (one view for all)."""
    import torch.distributed as dist

    from mgsr.io.jobs import already_done

    done = [False] * len(tasks)
    if not overwrite and ctx.is_main:
        done = [t.source.is_file() and already_done(t) for t in tasks]
    if ctx.active:
        box = [done]
        dist.broadcast_object_list(box, src=0)
        done = box[0]
    return [t for t, d in zip(tasks, done, strict=True) if not d]


def _total(counts: dict[str, int], ctx: Context, device: str) -> dict[str, int]:
    """The counts summed over all ranks (the same dict where there is one process)."""
    if not ctx.active:
        return counts
    import torch
    import torch.distributed as dist

    keys = sorted(counts)
    values = torch.tensor([counts[k] for k in keys], dtype=torch.int64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return dict(zip(keys, (int(v) for v in values.tolist()), strict=True))


def _run_tasks(
    args: argparse.Namespace,
    tasks: list[Task],
    noise: float | list[float] | AdaptiveRule | None,
    tile: int | str | None,
    ctx: Context,
    device: str,
    request: SizeRequest,
) -> int:
    from tqdm import tqdm

    from mgsr.inference.core import check_precision, choose_backend
    from mgsr.io.jobs import describe, share, unexpected

    model, noise, noise_map = _model_and_noise(args, noise, ctx, device, request)
    check_precision(args.precision)
    backend = choose_backend(args.backend, device, args.precision)
    options = dict(
        noise=noise,
        noise_map=noise_map,
        seed=args.seed,
        tile=tile,
        device=device,
        backend=backend,
        precision=args.precision,
    )

    pending = _pending(tasks, args.overwrite, ctx)
    counts = {"written": 0, "failed": 0, "skipped": 0}
    if ctx.is_main:
        counts["skipped"] = len(tasks) - len(pending)
    mine = share(pending, ctx.rank, ctx.world_size)
    bar = tqdm(mine, unit="image", disable=args.quiet or not ctx.is_main or None, file=sys.stderr)
    for task in bar:
        try:
            _upscale_task(model, task, request, options, args.quality, bar)
            counts["written"] += 1
            if args.quiet or not sys.stderr.isatty():
                # one write per line, flushed: under torchrun the ranks share this pipe, and print's separate
                # newline write (PYTHONUNBUFFERED) let another rank's line land in between
                sys.stdout.write(f"{task.source} -> {task.target}\n")
                sys.stdout.flush()
        except MgsrError as exc:
            counts["failed"] += 1
            bar.write(f"mgsr: error: {exc}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - one image's unforeseen failure must not cost the others
            counts["failed"] += 1
            bar.write(f"mgsr: error: {unexpected(task.source, exc)}", file=sys.stderr)
    counts = _total(counts, ctx, device)
    if ctx.is_main:
        print(f"mgsr: {describe(counts)} (of {len(tasks)} images)", file=sys.stderr)
    return ImageError.exit_code if counts["failed"] else 0


def _model_and_noise(
    args: argparse.Namespace,
    noise: float | list[float] | AdaptiveRule | None,
    ctx: Context,
    device: str,
    request: SizeRequest,
) -> tuple[GMGBP, float | list[float] | AdaptiveRule, np.ndarray | None]:
    """The model, the W it runs at (``--noise``, ``--detail`` or its recorded one) and the ``--noise-map``,
    checked once before any image: a W that does not fit the requested level fails here, not per image."""
    from mgsr.assembly.loading import resolve_model
    from mgsr.inference.adaptive import AdaptiveRule
    from mgsr.inference.core import check_noise, levels_for
    from mgsr.io.images import noise_map_of, read_picture

    noise_map = None
    if args.noise_map:
        if isinstance(noise, AdaptiveRule):
            raise MgsrError(
                f"--noise {args.noise} makes its own W map: drop --noise-map {args.noise_map}, or give --noise a number"
            )
        noise_map = noise_map_of(read_picture(args.noise_map))
    model = resolve_model(args.model, device)
    check_calibration_model(args.noise, args.model, model)
    chosen = run_noise(model, noise, args.detail, announce=not args.quiet and ctx.is_main)
    if request.fixed_level is not None:
        levels = levels_for(request.fixed_level)
        if isinstance(chosen, AdaptiveRule) and len(chosen.levels) != levels:
            raise MgsrError(
                f"--noise {args.noise}: fitted for {len(chosen.levels)} 2x levels, {request.fixed_level}x "
                f"has {levels}; use the scale it was fitted at or calibrate at this one"
            )
        check_noise(chosen.levels if isinstance(chosen, AdaptiveRule) else chosen, levels)
    return model, chosen, noise_map


def _upscale_task(
    model: GMGBP, task: Task, request: SizeRequest, options: dict[str, Any], quality: int | None, bar: Any
) -> None:
    """Read, upscale and write one image; its warnings go through ``bar``, its failures raise MgsrError."""
    from mgsr.inference.pictures import upscale_picture_to
    from mgsr.io.images import IMAGE_SUFFIXES, read_picture, write_picture

    source, target = task.source, task.target
    if source.is_dir():
        raise ImageError(f"{source}: folder contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if task.clash is not None:
        raise ImageError(f"{source}: its output {target} is also the output of {task.clash}; rename one")
    heard: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as heard:  # read_picture's warnings name the source
            warnings.simplefilter("always")
            picture = read_picture(source)
    finally:
        for warning in heard:
            bar.write(f"mgsr: warning: {warning.message}", file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = upscale_picture_to(
            model,
            picture,
            request,
            where=str(source),
            on_tile=lambda done, total: bar.set_postfix_str(f"tile {done}/{total}"),
            **options,
        )
        try:
            write_picture(target, result, quality=quality)
        except ImageError as exc:
            raise ImageError(f"{exc} (output of {source})") from None
    for warning in caught:
        bar.write(f"mgsr: warning: {target}: {warning.message}", file=sys.stderr)
