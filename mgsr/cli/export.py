"""``mgsr export``: write a model as a standard ONNX graph for onnxruntime, OpenVINO or TensorRT.

(Old layout; with the package layout of issue 10 this module is ``mgsr/cli/export.py``.)
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model as an ONNX graph (dynamic height/width, explicit noise and W)",
                       description="Write MODEL at --scale as an ONNX graph. Inputs: image (N,3,H,W) in [0,1], "
                                   "noise_j per 2x level at the padded resolution ((H+2s)*2^j, (W+2s)*2^j), "
                                   "w (one W per level; zeros give the W = 0 result). Reflect padding and "
                                   "cropping are inside the graph.")
    p.add_argument("model", help="pirm-r1, pirm-r2, pirm-r3, a .safetensors file, a run folder or a checkpoint .pt")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--scale", type=int, default=4, choices=(2, 4, 8))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mgsr.model.export import export_onnx, input_names
    from mgsr.model.loading import load_generator

    generator = load_generator(args.model)
    path = export_onnx(generator, args.output, scale=args.scale)
    print(f"wrote {path} (inputs: {', '.join(input_names(args.scale))}; output: sr)")
    return 0
