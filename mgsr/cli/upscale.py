"""``mgsr upscale``: files, folders and globs in; one clear line per failure; nothing partial out."""

from __future__ import annotations

import argparse
import glob
import sys
import warnings
from pathlib import Path


from mgsr.errors import ImageError, MgsrError

_FORMATS = ("png", "jpg", "jpeg", "webp", "tiff", "tif", "bmp")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="super-resolve images with a bundled or trained model",
                       description="Super-resolve images. W = 0 gives the lowest distortion, W = 1 the most detail.")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    p.add_argument("--model", default="pirm-r3", help="pirm-r1, pirm-r2, pirm-r3, a .safetensors file, a run folder or a training checkpoint .pt")
    p.add_argument("--scale", type=int, default=4, choices=(2, 4, 8))
    p.add_argument("--noise", default=None,
                   help="W (e.g. 0.5), one W per 2x level (e.g. 0.3,1.0), or a calibration .json from "
                        "`mgsr calibrate`; default: the model's recorded W")
    p.add_argument("--noise-map", default=None,
                   help="grayscale image whose values (black 0 .. white 1) multiply W per region")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws (same seed, same output)")
    p.add_argument("--tile", default="auto",
                   help="input tile side in pixels (bounded memory; results are unchanged), 0 = whole image, "
                        "default auto")
    p.add_argument("--format", choices=_FORMATS, default=None, help="output format (default: the input's)")
    p.add_argument("--quality", type=int, default=None, help="JPEG/WebP quality 1-100")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--backend", choices=("auto", "torch", "openvino"), default="auto",
                   help="openvino: CPU only, pip install \"mgsr[openvino]\" (~2.8x faster here, same output to "
                        "1e-5; converted once per model and scale, cached); auto: openvino when installed, on CPU")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="network in fp32 (default), bf16 or fp16 (for GPUs: on CPUs without bf16/fp16 "
                        "instructions they run, ~6x slower)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_noise(value: str | None) -> float | list[float] | None:
    """``0.5`` | ``0.3,1.0`` | ``calib.json`` -> W (None: the model's default)."""
    if value is None:
        return None
    if value.lower().endswith(".json"):
        from mgsr.evaluation.tradeoff import Calibration

        return Calibration.load_noise(value)
    try:
        values = [float(v) for v in value.split(",")]
    except ValueError:
        raise MgsrError(f"--noise {value!r}: give a number, comma-separated numbers, or a .json file") from None
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


def _target(source: Path, out: Path, single_file: bool, scale: int, fmt: str | None) -> Path:
    if single_file:
        return out
    from mgsr.io.images import IMAGE_SUFFIXES

    suffix = f".{fmt}" if fmt else source.suffix.lower()
    if suffix not in IMAGE_SUFFIXES or suffix in (".gif", ".ppm", ".pgm"):
        suffix = ".png"
    return out / f"{source.stem}_x{scale}{suffix}"


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from mgsr.io.images import IMAGE_SUFFIXES, noise_map_of, read_picture, write_picture
    from mgsr.inference.core import auto_tile, check_noise, check_precision, choose_backend, levels_for
    from mgsr.inference.pictures import upscale_picture
    from mgsr.model.loading import resolve_model

    noise = parse_noise(args.noise)
    tile = parse_tile(args.tile)
    inputs = collect_inputs(args.inputs)
    out = Path(args.output)
    single_file = out.suffix.lower() in IMAGE_SUFFIXES
    if single_file and len(inputs) > 1:
        raise MgsrError(f"{len(inputs)} inputs need an output folder, but {out} is a file name")
    same = {"jpg": "jpeg", "tif": "tiff"}
    if single_file and args.format and same.get(out.suffix.lower().lstrip("."), out.suffix.lower().lstrip(".")) \
            != same.get(args.format, args.format):
        raise MgsrError(f"--format {args.format} contradicts the output file name {out.name}")
    try:
        (out.parent if single_file else out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    noise_map = None
    if args.noise_map:
        noise_map = noise_map_of(read_picture(args.noise_map))
    model = resolve_model(args.model, args.device)
    if noise is None:
        noise = model.default_noise
    check_noise(noise, levels_for(args.scale))  # once, before any image, not once per image
    check_precision(args.precision)
    backend = choose_backend(args.backend, args.device, args.precision)
    tile_px = auto_tile(args.scale, torch.device(args.device), backend=backend) if tile == "auto" else tile

    failures, written = 0, set()
    bar = tqdm(inputs, unit="image", disable=args.quiet or None, file=sys.stderr)
    for source in bar:
        target = _target(source, out, single_file, args.scale, args.format)
        try:
            if source.is_dir():
                raise ImageError(f"{source}: folder contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            if target in written:
                raise ImageError(f"{source}: its output {target} was already written by another input; rename one")
            picture = read_picture(source)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = upscale_picture(model, picture, scale=args.scale, noise=noise, noise_map=noise_map,
                                         seed=args.seed, tile=tile_px, device=args.device, backend=backend,
                                         precision=args.precision,
                                         on_tile=lambda done, total: bar.set_postfix_str(f"tile {done}/{total}"))
                try:
                    write_picture(target, result, quality=args.quality)
                except ImageError as exc:
                    raise ImageError(f"{exc} (output of {source})") from None
            for warning in caught:
                bar.write(f"mgsr: warning: {target}: {warning.message}", file=sys.stderr)
            written.add(target)
            if args.quiet or not sys.stderr.isatty():
                print(f"{source} -> {target}")
        except MgsrError as exc:
            failures += 1
            bar.write(f"mgsr: error: {exc}", file=sys.stderr)
    if failures:
        print(f"mgsr: {failures} of {len(inputs)} images failed", file=sys.stderr)
        return ImageError.exit_code
    return 0
