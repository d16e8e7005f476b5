"""Throughput, peak memory and FLOP efficiency of `mgsr upscale` (CI runs only --smoke).

    python benchmarks/upscale_bench.py [--sizes 0.25,1,4,16] [--scale 4] [--tile auto] [--backend auto]
    python benchmarks/upscale_bench.py --vs-release [--repeats 3]
    python benchmarks/upscale_bench.py --precisions fp32,fp16,bf16 --device cuda [--side 256]
    python benchmarks/upscale_bench.py --smoke [--vs-release | --precisions ...]   # seconds (checks it runs)

For each output size (megapixels) it upscales a synthetic 8-bit photo as
``mgsr upscale`` does (tiles, their 8-bit context, into a uint8 image) in a fresh
subprocess (so peak RSS belongs to that size alone) and reports output
megapixels per second, peak resident memory, and the GFLOP/s the network
achieved (FLOPs counted by torch's FlopCounterMode) against the machine's own
peak measured in the same run with a large 3x3 convolution.  Ratios, not
absolute times, are the figures to compare across machines.  Its last line reads
``Mpx per CPU-second from A to B Mpx: min/max = R (flat within P %)``.

``--vs-release`` times the authors' release (imported, never copied, from
``../shared/reference/official-code`` or ``$MGSR_REFERENCE/official-code``) and
mgsr's default ``mgsr upscale`` path in one process on the same inputs (W = 1,
R3): 128->512 and 256->1024 at 4x and 64->512 at 8x, alternating the two
so that load from other processes hits both alike.  Each repeat gives one
ratio; the median is reported.  Its last line reads
``speed-up vs release: A (128->512), B (256->1024)``.

``--precisions`` upscales one synthetic photo at each precision on ``--device``
(the card's name, or the CPU's, is printed) and reports each one's time and
its 8-bit difference from float32 on the same device: the check that fp16/bf16
stay within one grey level where a GPU exists.

``--smoke`` runs any of the three modes at toy size with one repeat and the torch backend: one output size
of 0.01 Mpx, release and mgsr on 32->128, or a 32-pixel side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def conv_peak_gflops(repeats: int = 5, side: int = 512) -> float:
    """GFLOP/s of a large 3x3 convolution (64 -> 64 channels, 512x512): the machine's practical peak."""
    x = torch.randn(1, 64, side, side)
    w = torch.randn(64, 64, 3, 3)
    with torch.inference_mode():
        torch.nn.functional.conv2d(x, w, padding=1)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            torch.nn.functional.conv2d(x, w, padding=1)
            best = min(best, time.perf_counter() - t)
    return 2 * 64 * 64 * 9 * side * side / best / 1e9


def model_flops_per_output_pixel(scale: int) -> float:
    import mgsr
    from mgsr.inference.core import levels_for

    model = mgsr.pretrained("pirm-r3")
    side = 32
    x = torch.rand(1, 3, side, side)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, levels_for(scale), noise_amp=1.0)
    return counter.get_total_flops() / (side * scale) ** 2


def one_size(megapixels: float, scale: int, tile: str, backend: str = "auto") -> dict:
    """Run in a child process: upscale one synthetic 8-bit image as `mgsr upscale` does; time and peak RSS.

    A small image first converts/loads the backend's model, so the time is that of the upscale alone.
    """
    import mgsr
    from mgsr.inference.openvino import resolve_backend
    from mgsr.inference.pictures import picture_from_array, upscale_picture
    from mgsr.inference.tiles import auto_tile, margin_for

    backend = resolve_backend(backend, "cpu")

    side_out = int((megapixels * 1e6) ** 0.5) // scale * scale
    side_in = side_out // scale
    picture = picture_from_array(np.round(synthetic_photo(side_in) * 255).astype(np.uint8))
    model = mgsr.pretrained("pirm-r3")
    tile_px = (
        auto_tile(scale, torch.device("cpu"), margin_for(8, scale), backend=backend)
        if tile == "auto"
        else (None if tile == "0" else int(tile))
    )
    upscale_picture(
        model, picture_from_array(np.zeros((16, 16, 3), np.uint8)), scale=scale, noise=1.0, seed=0, backend=backend
    )
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t, c = time.perf_counter(), time.process_time()
    upscale_picture(model, picture, scale=scale, noise=1.0, seed=0, tile=tile_px, backend=backend)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "megapixels_out": side_out * side_out / 1e6,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "tile": tile_px,
        "backend": backend,
        "peak_rss_mib": peak / 1024,
        "rss_before_mib": base_rss / 1024,
    }


def synthetic_photo(side: int) -> np.ndarray:
    """A smooth colour pattern with a little grain, (side, side, 3) float32 in [0, 1]."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side] / side
    rgb = np.stack([np.sin(9 * x), np.cos(7 * y), x * y], 2) * 0.4 + 0.5 + 0.05 * rng.random((side, side, 3))
    return np.clip(rgb, 0, 1).astype(np.float32)


def reference_root() -> Path:
    """The shared reference folder: $MGSR_REFERENCE, else ../shared/reference next to the repository."""
    env = os.environ.get("MGSR_REFERENCE")
    root = Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
    if not (root / "official-code" / "models.py").is_file():
        sys.exit(
            f"upscale_bench: {root / 'official-code'} has no models.py; set MGSR_REFERENCE to the reference folder"
        )
    return root.resolve()


def load_release(root: Path, scale: int) -> torch.nn.Module:
    """The authors' G_MGBP with the R3 weights, driven as their README says (imported, not copied)."""
    sys.path.insert(0, str(root / "official-code"))
    from models import G_MGBP

    path = next((root / "official-weights").glob("BOE-R3_*.model"))
    model_id = "CH" + path.stem.split("_CH", 1)[1]
    release = G_MGBP(model_id, vlevel=0)
    release.set_factor([scale, scale])
    release.set_mu(2)
    release.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return release.eval()


def vs_release(repeats: int, cases: list[tuple[int, int]], backend: str) -> None:
    import mgsr
    from mgsr.inference.openvino import resolve_backend
    from mgsr.inference.pictures import super_resolve
    from mgsr.inference.tiles import auto_tile

    root = reference_root()
    model = mgsr.pretrained("pirm-r3")
    releases = {s: load_release(root, s) for s in sorted({s for _, s in cases})}
    backend = resolve_backend(backend, "cpu")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; W = 1, R3; {repeats} repeats, "
        f"release and mgsr (backend {backend}) alternating"
    )
    medians = {}
    for side, scale in cases:
        rgb = synthetic_photo(side)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        tile = auto_tile(scale, torch.device("cpu"), backend=backend)
        t = time.perf_counter()  # first use converts/loads the backend's model: timed apart, once per scale
        super_resolve(model, synthetic_photo(16), scale=scale, noise=1.0, seed=0, backend=backend)
        warm = time.perf_counter() - t
        eager = super_resolve(model, rgb, scale=scale, noise=1.0, seed=0, tile=tile, backend="torch")
        ratios, cpu_ratios, t_rel, t_ours = [], [], [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            with torch.no_grad():
                releases[scale](x, noise_amp=torch.tensor(1.0), pad=True)
            t_rel.append(time.perf_counter() - t)
            c_rel = time.process_time() - c
            t, c = time.perf_counter(), time.process_time()
            ours = super_resolve(model, rgb, scale=scale, noise=1.0, seed=0, tile=tile, backend=backend)
            t_ours.append(time.perf_counter() - t)
            ratios.append(t_rel[-1] / t_ours[-1])
            cpu_ratios.append(c_rel / (time.process_time() - c))
        medians[(side, scale)] = statistics.median(ratios)
        grey = np.abs(np.round(np.clip(ours, 0, 1) * 255) - np.round(np.clip(eager, 0, 1) * 255)).max()
        print(
            f"{side}->{side * scale} ({scale}x): first use {warm:.1f} s; vs eager fp32: max |diff| "
            f"{np.abs(ours - eager).max():.1e}, {grey:.0f} grey levels"
        )
        # best of each: the least disturbed run of both (on a shared machine the medians swing +-15 %)
        print(
            f"{side}->{side * scale} ({scale}x): release {statistics.median(t_rel):6.2f} s, "
            f"mgsr {statistics.median(t_ours):6.2f} s, ratios {', '.join(f'{r:.2f}' for r in ratios)}, "
            f"median x{medians[(side, scale)]:.2f} (CPU time x{statistics.median(cpu_ratios):.2f}, "
            f"best of each x{min(t_rel) / min(t_ours):.2f})",
            flush=True,
        )
    named = ", ".join(f"{medians[c]:.2f} ({c[0]}->{c[0] * c[1]})" for c in cases if c[1] == 4)
    print(f"speed-up vs release: {named}")


def device_name(device: torch.device) -> str:
    """The card (CUDA) or the CPU model (lscpu's, else platform's): the figures are this machine's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        import platform

        return platform.processor() or platform.machine()


def precision_check(precisions: list[str], device: torch.device, side: int, scale: int, repeats: int) -> None:
    """Each precision's time and its 8-bit distance from float32 on ``device`` (torch backend: fp16/bf16)."""
    import mgsr
    from mgsr.inference.pictures import super_resolve

    model = mgsr.pretrained("pirm-r3", device=device)
    rgb = synthetic_photo(side)
    print(f"{device_name(device)} ({device}); torch {torch.__version__}; pirm-r3, W = 1, {side}->{side * scale}")

    def run(precision: str) -> tuple[np.ndarray, float]:
        best = float("inf")
        for attempt in range(repeats + 1):  # the first call warms up (kernels, autotuning): not timed
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            out = super_resolve(
                model, rgb, scale=scale, noise=1.0, seed=0, device=device, backend="torch", precision=precision
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if attempt:
                best = min(best, time.perf_counter() - t)
        return np.round(np.clip(out, 0, 1) * 255).astype(np.int16), best

    ref, t_ref = run("fp32")
    for precision in precisions:
        out, seconds = (ref, t_ref) if precision == "fp32" else run(precision)
        diff = np.abs(out - ref)
        print(
            f"  {precision}: {seconds:7.3f} s (x{t_ref / seconds:.2f} vs fp32), max {diff.max()} grey levels, "
            f"{(diff > 1).mean() * 100:.3f} % of values more than 1 off, mean {diff.mean():.3f}",
            flush=True,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="0.25,1,4,16", help="output megapixels, one fresh process each (16 takes minutes on 2 cores)"
    )
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", default="auto")
    parser.add_argument(
        "--vs-release",
        action="store_true",
        help="time the authors' release and mgsr side by side in this process (W = 1, R3)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="--vs-release: ratios per case (median reported)")
    parser.add_argument("--cases", default="128x4,256x4,64x8", help="--vs-release: input side x scale, comma-separated")
    parser.add_argument("--backend", default="auto", help="mgsr's backend (default: as mgsr upscale)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--precisions", default=None, help="compare these precisions (e.g. fp32,fp16,bf16) on --device against fp32"
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="--precisions: the device (default: cuda when there is one)",
    )
    parser.add_argument("--side", type=int, default=256, help="--precisions: input side in pixels")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: 0.01 Mpx, 32->128 (--vs-release) or a 32-pixel side (--precisions), one repeat, torch backend",
    )
    return parser


def _child_size(size: float, args: argparse.Namespace) -> dict:
    """One size timed in a fresh process (its peak RSS is then this size's alone)."""
    command = [sys.executable, __file__, "--child", str(size), "--scale", str(args.scale), "--tile", args.tile]
    command += ["--backend", args.backend] + (["--threads", str(args.threads)] if args.threads else [])
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    args = _parser().parse_args()
    if args.smoke:
        args.sizes, args.cases, args.side, args.repeats, args.backend = "0.01", "32x4", 32, 1, "torch"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.precisions:
        precision_check(args.precisions.split(","), torch.device(args.device), args.side, args.scale, args.repeats)
        return
    if args.vs_release:
        vs_release(args.repeats, [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")], args.backend)
        return
    if args.child is not None:
        print(json.dumps(one_size(float(args.child), args.scale, args.tile, args.backend)))
        return
    sizes_table(args)


def sizes_table(args: argparse.Namespace) -> None:
    """Time, memory and share of the convolution peak per output size, one fresh process each."""
    peak = conv_peak_gflops(*((1, 128) if args.smoke else ()))
    flops_px = model_flops_per_output_pixel(args.scale)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; 3x3 conv peak {peak:.1f} GFLOP/s; "
        f"model {flops_px / 1e6:.2f} MFLOP per output pixel at {args.scale}x; one fresh process per size"
    )
    print(
        f"{'out Mpx':>8} {'backend':>8} {'tile':>5} {'seconds':>8} {'Mpx/s':>7} {'Mpx/CPU-s':>9} {'peak RSS MiB':>13} "
        f"{'GFLOP/s':>8} {'% of peak':>9}"
    )
    rates = []
    for size in (float(s) for s in args.sizes.split(",")):
        r = _child_size(size, args)
        gflops = flops_px * r["megapixels_out"] * 1e6 / r["seconds"] / 1e9
        rates.append(r["megapixels_out"] / r["cpu_seconds"])
        print(
            f"{r['megapixels_out']:8.2f} {r['backend']:>8} {str(r['tile']):>5} {r['seconds']:8.2f} "
            f"{r['megapixels_out'] / r['seconds']:7.3f} {rates[-1]:9.4f} {r['peak_rss_mib']:13.0f} {gflops:8.1f} "
            f"{100 * gflops / peak:8.1f}%",
            flush=True,
        )
    # per CPU-second: on a shared machine wall time measures the neighbours as much as mgsr
    print(
        f"Mpx per CPU-second from {args.sizes.split(',')[0]} to {args.sizes.split(',')[-1]} Mpx: "
        f"min/max = {min(rates) / max(rates):.2f} (flat within {100 * (1 - min(rates) / max(rates)):.0f} %)"
    )


if __name__ == "__main__":
    main()
