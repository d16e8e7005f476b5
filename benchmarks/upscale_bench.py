"""Throughput, peak memory and FLOP efficiency of `mgsr upscale` (not run in CI).

    python benchmarks/upscale_bench.py [--sizes 0.25,1,4] [--scale 4] [--tile auto]

For each output size (megapixels) it upscales a synthetic photo in a fresh
subprocess (so peak RSS belongs to that size alone) and reports output
megapixels per second, peak resident memory, and the GFLOP/s the network
achieved (FLOPs counted by torch's FlopCounterMode) against the machine's own
peak measured in the same run with a large 3x3 convolution.  Ratios, not
absolute times, are the figures to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def conv_peak_gflops(repeats: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution (64 -> 64 channels, 512x512): the machine's practical peak."""
    x = torch.randn(1, 64, 512, 512)
    w = torch.randn(64, 64, 3, 3)
    with torch.inference_mode():
        torch.nn.functional.conv2d(x, w, padding=1)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            torch.nn.functional.conv2d(x, w, padding=1)
            best = min(best, time.perf_counter() - t)
    return 2 * 64 * 64 * 9 * 512 * 512 / best / 1e9


def model_flops_per_output_pixel(scale: int) -> float:
    import mgsr
    from mgsr.inference.core import levels_for

    model = mgsr.pretrained("pirm-r3")
    side = 32
    x = torch.rand(1, 3, side, side)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, levels_for(scale), noise_amp=1.0)
    return counter.get_total_flops() / (side * scale) ** 2


def one_size(megapixels: float, scale: int, tile: str) -> dict:
    """Run in a child process: upscale one synthetic image, report time and peak RSS."""
    import mgsr
    from mgsr.inference.core import auto_tile
    from mgsr.inference.pictures import super_resolve

    side_out = int((megapixels * 1e6) ** 0.5) // scale * scale
    side_in = side_out // scale
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side_in, 0:side_in] / side_in
    rgb = np.clip(np.stack([np.sin(9 * x), np.cos(7 * y), x * y], 2) * 0.4 + 0.5 + 0.05 * rng.random((side_in, side_in, 3)), 0, 1).astype(np.float32)
    model = mgsr.pretrained("pirm-r3")
    tile_px = auto_tile(scale, torch.device("cpu")) if tile == "auto" else (None if tile == "0" else int(tile))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    super_resolve(model, rgb, scale=scale, noise=1.0, seed=0, tile=tile_px)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"megapixels_out": side_out * side_out / 1e6, "seconds": seconds, "tile": tile_px,
            "peak_rss_mib": peak / 1024, "rss_before_mib": base_rss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.25,1,4")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", default="auto")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_size(float(args.child), args.scale, args.tile)))
        return
    peak = conv_peak_gflops()
    flops_px = model_flops_per_output_pixel(args.scale)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; 3x3 conv peak {peak:.1f} GFLOP/s; "
          f"model {flops_px / 1e6:.2f} MFLOP per output pixel at {args.scale}x")
    print(f"{'out Mpx':>8} {'tile':>6} {'seconds':>8} {'Mpx/s':>7} {'peak RSS MiB':>13} {'GFLOP/s':>8} {'% of peak':>9}")
    for size in (float(s) for s in args.sizes.split(",")):
        child = subprocess.run([sys.executable, __file__, "--child", str(size), "--scale", str(args.scale),
                                "--tile", args.tile], capture_output=True, text=True, check=True)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        gflops = flops_px * r["megapixels_out"] * 1e6 / r["seconds"] / 1e9
        print(f"{r['megapixels_out']:8.2f} {str(r['tile']):>6} {r['seconds']:8.2f} {r['megapixels_out'] / r['seconds']:7.3f} "
              f"{r['peak_rss_mib']:13.0f} {gflops:8.1f} {100 * gflops / peak:8.1f}%")


if __name__ == "__main__":
    main()
