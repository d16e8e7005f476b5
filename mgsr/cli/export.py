"""``mgsr export``: write a model as a standard ONNX graph for onnxruntime, OpenVINO or TensorRT."""

from __future__ import annotations

import argparse
from pathlib import Path

from mgsr.inference.outsize import LEVEL_SCALES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as an ONNX graph (dynamic height/width, explicit noise and W)",
        description="Write MODEL at --scale as an ONNX graph. Inputs: image (N,3,H,W) in [0,1], "
        "noise_j per 2x level at the padded resolution ((H+2s)*2^j, (W+2s)*2^j), "
        "w (one W per level; zeros give the W = 0 result). Reflect padding and "
        "cropping are inside the graph. With --noise W: one input, image, and one "
        "output, sr (one image in, one image out), W fixed and the noise of --seed "
        "baked into the graph (the same input always gives the same output). The file's "
        "metadata records the model, scale, W, seed and mgsr version.",
    )
    p.add_argument("model", help="pirm-r1, pirm-r2, pirm-r3, a .safetensors file, a run folder or a checkpoint .pt")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--scale", type=int, default=4, choices=LEVEL_SCALES)
    p.add_argument(
        "--noise",
        default=None,
        help="W fixed in the graph (e.g. 0.5, one per 2x level as 0.3,1.0, or a calibration .json): "
        "the graph has the one input image; default: noise_j and w inputs",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="with --noise: whose noise is baked in (mgsr upscale --seed's values for images up to "
        "1024/scale - 2*scale pixels a side, 248 at 4x; the grain repeats beyond); default 0",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    from mgsr.assembly.loading import load_generator
    from mgsr.cli.options import check_calibration_model, refuse_folder_output, refuse_writing_over_inputs
    from mgsr.cli.upscale import parse_noise
    from mgsr.errors import MgsrError
    from mgsr.inference.adaptive import AdaptiveRule
    from mgsr.inference.export import export_onnx, input_names

    refuse_writing_over_inputs([args.output], model=args.model, noise=args.noise)
    refuse_folder_output(args.output, f"{Path(args.model).stem}_x{args.scale}.onnx")
    if not args.output.lower().endswith(".onnx"):
        warnings.warn(f"-o {args.output}: writing an ONNX graph to a name without .onnx", stacklevel=2)
    noise = parse_noise(args.noise)
    if isinstance(noise, AdaptiveRule):
        raise MgsrError(
            f"--noise {args.noise}: an adaptive calibration sets W per pixel of each image; an exported "
            f"graph takes W per level: give --noise W (or W1,W2,... one per 2x level)"
        )
    if noise is None and args.seed is not None:
        raise MgsrError("--seed chooses the noise baked in with --noise W; give --noise too (or leave out --seed)")
    generator = load_generator(args.model)
    check_calibration_model(args.noise, args.model, generator)
    path = export_onnx(
        generator, args.output, scale=args.scale, noise=noise, seed=0 if args.seed is None else args.seed
    )
    inputs = ", ".join(input_names(args.scale)) if noise is None else f"image; W = {args.noise} fixed"
    print(f"wrote {path} (inputs: {inputs}; output: sr; metadata: model, scale, w, seed, mgsr_version)")
    return 0
