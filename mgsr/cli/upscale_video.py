"""``mgsr upscale clip.mp4 -o clip_x4.mp4``: the video branch of ``mgsr upscale`` (one clip at a time, frames in order).

Kept apart from :mod:`mgsr.cli.upscale`, which only dispatches here when its inputs are videos, so the
picture path (batches, skipping, torchrun sharing) stays as it is.  A clip is one output file, written
whole or not at all; outputs that exist are skipped unless ``--overwrite``, as for pictures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgsr.errors import ImageError, MgsrError
from mgsr.io.video import DEFAULT_CRF, VIDEO_SUFFIXES, is_video

if TYPE_CHECKING:
    from mgsr.inference.adaptive import AdaptiveRule
    from mgsr.io.jobs import Task
    from mgsr.model.generator import GMGBP


def add_video_options(p: argparse.ArgumentParser) -> None:
    """The options only video inputs use (grouped under their own heading in ``--help``)."""
    group = p.add_argument_group('video (inputs .mp4 .m4v .mov .mkv .webm .avi; pip install "mgsr[video]")')
    group.add_argument(
        "--seed-per-frame",
        action="store_true",
        help="seed frame i with --seed + i: grain that changes every frame (default: the same seed "
        "for every frame, so W > 0 grain does not flicker on a static shot)",
    )
    group.add_argument(
        "--crf",
        type=int,
        default=DEFAULT_CRF,
        help=f"video quality, H.264 (VP9 for .webm) constant rate factor: 0 lossless .. 51, "
        f"default {DEFAULT_CRF} (near-lossless; +6 about halves the file)",
    )


def _progress_hooks(bar: Any) -> tuple[Callable[[int | None], None], Callable[[int], None], Callable[[str], None]]:
    """``upscale_video``'s on_start, on_frame and on_note for one clip's progress bar (each clip its own)."""

    def start(total: int | None) -> None:
        bar.total = total

    def frame(_: int) -> None:
        bar.update()

    def note(line: str) -> None:
        bar.write(f"mgsr: note: {line}", file=sys.stderr)

    return start, frame, note


def _target(source: Path, out: Path, single_file: bool, scale: int) -> Path:
    return out if single_file else out / f"{source.stem}_x{scale}{source.suffix.lower()}"


def run_videos(
    args: argparse.Namespace,
    inputs: list[Path],
    noise: float | list[float] | AdaptiveRule | None,
    tile: int | str | None,
) -> int:
    """Upscale each video in ``inputs`` to its output (``-o`` a video file for one clip, else a folder)."""
    from mgsr.assembly.loading import resolve_model
    from mgsr.cli.options import check_calibration_model
    from mgsr.io.jobs import describe
    from mgsr.io.video import require_av
    from mgsr.runtime.devices import announce_device, resolve_device

    require_av()  # before the model loads: the one thing a fresh install lacks
    tasks = _video_tasks(args, inputs)
    device = resolve_device(args.device)
    if not args.quiet:
        announce_device(args.device, device)
    model = resolve_model(args.model, device)
    check_calibration_model(args.noise, args.model, model)
    options = _clip_options(args, model, noise, tile, device)

    counts = {"written": 0, "skipped": 0, "incomplete": 0, "failed": 0}
    for task in tasks:
        if task.target.is_file() and not args.overwrite:
            counts["skipped"] += 1
            continue
        counts[_clip_outcome(model, task, options, args.quiet)] += 1
    print(f"mgsr: {describe(counts)} (of {len(tasks)} videos)", file=sys.stderr)
    return ImageError.exit_code if counts["failed"] or counts["incomplete"] else 0


def _clip_outcome(model: GMGBP, task: Task, options: dict[str, Any], quiet: bool) -> str:
    """Upscale one clip and say how it went ("written", "incomplete" or "failed"), each failure in one line:
    one clip's failure, foreseen or not, never stops the others."""
    from mgsr.io.jobs import unexpected
    from mgsr.io.video import IncompleteVideo

    try:
        frames = _upscale_clip(model, task, options, quiet=quiet)
    except IncompleteVideo as exc:
        print(f"mgsr: error: {exc}", file=sys.stderr)
        return "incomplete"
    except MgsrError as exc:
        print(f"mgsr: error: {exc}", file=sys.stderr)
        return "failed"
    except Exception as exc:  # noqa: BLE001 - a bug in one clip must not cost the others
        print(f"mgsr: error: {unexpected(task.source, exc)}", file=sys.stderr)
        return "failed"
    if quiet or not sys.stderr.isatty():
        sys.stdout.write(f"{task.source} -> {task.target} ({frames} frames)\n")
        sys.stdout.flush()
    return "written"


def _video_tasks(args: argparse.Namespace, inputs: list[Path]) -> list[Task]:
    """Each clip and its output file, checked before the model loads, with the output folder made; sets
    ``args.scale`` to the level the clips run at (default 4)."""
    from mgsr.cli.options import protected_inputs
    from mgsr.io.jobs import plan, refuse_overwriting_inputs

    others = [p for p in inputs if not is_video(p)]
    if others:
        raise MgsrError(
            f"{others[0]} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}): upscale videos and "
            f"images in separate commands"
        )
    if (args.outscale, args.width, args.height) != (None, None, None):
        raise MgsrError(
            "videos are upscaled by a network level: use --scale 2, 4 or 8 (--outscale, --width and "
            "--height apply to pictures)"
        )
    args.scale = args.scale or 4  # the default level of pictures too
    out = Path(args.output)
    single_file = is_video(out)
    if not single_file and out.suffix:
        raise MgsrError(f"-o {out}: a video output needs one of {', '.join(sorted(VIDEO_SUFFIXES))} (or a folder)")
    if single_file and len(inputs) > 1:
        raise MgsrError(f"{len(inputs)} videos need an output folder, but {out} is a file name")
    tasks = plan(inputs, lambda source: _target(source, out, single_file, args.scale))
    refuse_overwriting_inputs(tasks, protected=protected_inputs(args))
    try:
        (out.parent if single_file else out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    return tasks


def _clip_options(
    args: argparse.Namespace,
    model: GMGBP,
    noise: float | list[float] | AdaptiveRule | None,
    tile: int | str | None,
    device: str,
) -> dict[str, Any]:
    """:func:`~mgsr.inference.video.upscale_video`'s options from the command line, W resolved (``--noise``,
    ``--detail`` or the model's recorded one) and checked once for all clips."""
    from mgsr.cli.options import run_noise
    from mgsr.inference.adaptive import AdaptiveRule
    from mgsr.inference.core import check_noise, check_precision, choose_backend, levels_for
    from mgsr.io.images import noise_map_of, read_picture

    chosen = run_noise(model, noise, args.detail, announce=not args.quiet)
    check_noise(chosen.levels if isinstance(chosen, AdaptiveRule) else chosen, levels_for(args.scale))
    check_precision(args.precision)
    backend = choose_backend(args.backend, device, args.precision)
    return dict(
        scale=args.scale,
        seed=args.seed,
        seed_per_frame=args.seed_per_frame,
        crf=args.crf,
        noise=chosen,
        noise_map=noise_map_of(read_picture(args.noise_map)) if args.noise_map else None,
        tile=tile,
        device=device,
        backend=backend,
        precision=args.precision,
    )


def _upscale_clip(model: GMGBP, task: Task, options: dict[str, Any], *, quiet: bool) -> int:
    """Upscale one clip under its own progress bar; the number of frames written (failures raise MgsrError)."""
    from tqdm import tqdm

    from mgsr.inference.video import upscale_video

    bar = tqdm(unit="frame", desc=task.source.name, disable=quiet or None, file=sys.stderr)
    on_start, on_frame, on_note = _progress_hooks(bar)
    try:
        if task.clash is not None:
            raise ImageError(f"{task.source}: its output {task.target} is also the output of {task.clash}")
        return upscale_video(
            model,
            task.source,
            task.target,
            on_start=on_start,
            on_frame=on_frame,
            on_note=on_note,
            **options,
        )
    finally:
        bar.close()
