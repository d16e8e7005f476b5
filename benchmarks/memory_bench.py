"""Peak memory of `mgsr upscale` against its target: the final 8-bit image plus one tile's working set.

    python benchmarks/memory_bench.py [--size 1000x750] [--scale 8] [--noise 1] [--tile auto] [--backend auto] [--write]
    python benchmarks/memory_bench.py --size 200x150 --tile 16 --margin 4 --model tiny.safetensors --json
    python benchmarks/memory_bench.py --explain [--size 64x64 --scale 4]
    python benchmarks/memory_bench.py --smoke    # seconds: 32x24 at 4x, tiles of 16, torch (checks it runs)

Each measurement runs in a fresh subprocess that loads the model and the input, upscales a tiny image once (one-time
setup: oneDNN kernels, thread pool), resets the kernel's resident-set high-water mark (``/proc/self/clear_refs``),
runs one job, and reports ``VmHWM`` minus the resident set just before the job: torch's allocations are malloc'd, so
only the resident set sees them all. Jobs: ``picture`` (what `mgsr upscale` does: into a buffer of the final dtype,
tile by tile), ``tile`` (one tile's region upscaled whole: the working set of one tile) and ``float`` (the float32
assembly of ``upscale_tensor``, for comparison). The breakdown printed: final size + one tile (measured) against the
job's measured increase; its last line (without ``--float``) is ``measured peak increase of the job: M MiB (R x the
sum, S s)``.

``--explain`` counts the bytes of live torch tensors during one untiled forward (a dispatch mode
tracking every storage) and prints, at the peak, which tensors are live: what the bytes per output
pixel of the eager path are made of.

The measurements behind the constants of :mod:`mgsr.inference.tiles` (2-core AMD EPYC):

* ``DEFAULT_MARGIN``: pirm-r3 at 4x, W = 1, 96x96 input in 48-pixel tiles, max |tiled - untiled|: 0.06 at 8
  pixels of context, 8e-3 at 12, 8e-4 at 16, 1e-4 at 20, 1.1e-5 at 24 (at 32: float rounding); 24 costs 16 %
  less context work than 32 for the automatic tile.
* ``MARGIN_8BIT``: astronaut.png (160x160 crop, pirm-r3, 4x, W = 1, 48-pixel tiles) against the untiled
  result: 16 -> max |diff| 1.5e-3, 0.11 % of the 8-bit values one level off (none more); 20 -> 0.012 %;
  24 -> 0.003 %.  16 computes 12 % less than 24 for a 16 Mpx output.  At 8x (72x72 crop, 24-pixel tiles):
  16 -> max 4.2e-3, 0.43 % one level off; 24 -> 4.7e-5, 0.007 %, so 8x keeps 24.
* ``BYTES_PER_OUTPUT_PIXEL``: peak RSS growth, 128 -> 512 untiled: 2900 with freed memory kept for reuse,
  2450 without; 3380 for one interior 8x tile.  ~1870 B/px are live tensors (``--explain``: a full-resolution
  dense block's feature buffer, its bias+ReLU copy and the loop's last maps), the rest freed blocks the
  allocator keeps.
* ``OPENVINO_BYTES_PER_OUTPUT_PIXEL``: 1130 at 200x200 in, 4x, compiled for the shape; 1700 with dynamic
  shapes; with one constant per use 1236 at 294x294 in, 4x, and 1228 at 126x126 in, 8x.
* ``AUTO_MEMORY_BUDGET``: the process holds ~345 MiB before a job (torch, OpenVINO, the model); a 16 Mpx 4x
  upscale peaks at 1948 MiB (``benchmarks/upscale_bench.py --sizes 16``; 2249 MiB with a 1750 MiB budget).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024**2


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux >= 4.0); False when the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(job: dict) -> dict:
    """Run one job in this (fresh) process; bytes of resident-set growth at its peak, and what it made."""
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(job["threads"])
    from mgsr.assembly.loading import resolve_model
    from mgsr.inference.core import choose_backend
    from mgsr.inference.pictures import super_resolve, upscale_picture
    from mgsr.inference.tiles import auto_tile, margin_for
    from mgsr.io.images import decode, write_picture

    model = resolve_model(job["model"], "cpu")
    h, w = job["height"], job["width"]
    rng = np.random.default_rng(0)  # a smooth random photo stand-in: noise at 1/8 resolution, bicubic up
    base = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    picture = decode(Image.fromarray(base).resize((w, h), Image.BICUBIC))
    scale = job["scale"]
    margin = margin_for(8, scale) if job["margin"] is None else job["margin"]  # default: mgsr upscale's for 8-bit
    backend = choose_backend(job["backend"], "cpu")  # auto: what `mgsr upscale` runs (OpenVINO when installed)
    tile = auto_tile(scale, "cpu", margin, backend=backend) if job["tile"] == "auto" else job["tile"]
    options = dict(scale=scale, noise=job["noise"], seed=0, margin=margin, backend=backend)
    if job["kind"] == "tile":  # one tile's padded region (tile + 2 margin), run whole
        side = tile + 2 * margin - 2 * scale
        if side < 1:
            raise SystemExit(f"tile {tile} + 2 x margin {margin} must exceed 2 x scale {scale} to run alone")
        picture = decode(Image.fromarray(base).resize((side, side), Image.BICUBIC))
    # one small call first: oneDNN's kernels, torch's thread pool and caches are made once per process and
    # belong to the baseline, not to the job
    super_resolve(model, np.zeros((2 * scale, 2 * scale, 3), np.float32), tile=None, **options)
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak()
    start = time.perf_counter()
    if job["kind"] == "picture":
        result = upscale_picture(model, picture, tile=tile, **options)
        final = result.color.nbytes
        if job["write"]:
            with tempfile.TemporaryDirectory() as folder:
                write_picture(Path(folder) / "out.png", result)
    elif job["kind"] == "float":
        out = super_resolve(model, picture.rgb(), tile=tile, **options)
        final = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8).nbytes
    else:
        out = super_resolve(model, picture.rgb(), tile=None, **options)
        final = out.nbytes
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "kind": job["kind"],
        "increase": (peak - rss_before) * 1024,
        "rss_before": rss_before * 1024,
        "final_bytes": final,
        "tile": tile,
        "seconds": seconds,
        "hwm_reset": reset,
        "backend": backend,
        "margin": margin,
    }


def measure(job: dict) -> dict:
    """Run ``job`` in a fresh interpreter (so no earlier allocation hides in its high-water mark)."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS=str(job["threads"])),
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory_bench child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def explain(model_ref: str, height: int, width: int, scale: int) -> None:
    """Live torch tensor bytes during one untiled forward; the tensors live at the peak, largest first."""
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    from mgsr.assembly.loading import resolve_model
    from mgsr.inference.core import upscale_tensor

    model = resolve_model(model_ref, "cpu")
    live: dict[int, tuple[int, str]] = {}
    state = {"now": 0, "peak": 0, "at_peak": []}

    class Track(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                    storage = t.untyped_storage()
                    key = storage.data_ptr()
                    if key and key not in live:
                        live[key] = (storage.nbytes(), f"{func.__name__} {tuple(t.shape)}")
                        state["now"] += storage.nbytes()
                        weakref.finalize(storage, _release, key)
                        if state["now"] > state["peak"]:
                            state["peak"], state["at_peak"] = state["now"], sorted(live.values(), reverse=True)
            return out

    def _release(key: int) -> None:
        if key in live:
            state["now"] -= live.pop(key)[0]

    lr = torch.rand(1, 3, height, width)
    with torch.inference_mode(), Track():
        upscale_tensor(model, lr, scale=scale, noise_amp=1.0, seed=0)
    pixels = (height + 2 * scale) * (width + 2 * scale) * scale * scale
    print(
        f"untiled {height}x{width} at {scale}x: live torch tensors peak at {state['peak'] / MIB:.1f} MiB = "
        f"{state['peak'] / pixels:.0f} B per padded output pixel; live at the peak:"
    )
    for size, what in state["at_peak"][:16]:
        print(f"  {size / pixels:7.0f} B/px  {size / MIB:8.2f} MiB  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="1000x750", help="input WIDTHxHEIGHT")
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--tile", default="auto")
    parser.add_argument("--margin", type=int, default=None, help="tile context (default: mgsr upscale's for 8-bit)")
    parser.add_argument("--model", default="pirm-r3")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="auto", help="torch, openvino or auto (as mgsr upscale)")
    parser.add_argument("--write", action="store_true", help="also write the result as PNG (Pillow's copy)")
    parser.add_argument("--float", action="store_true", help="also measure the float32 assembly")
    parser.add_argument("--json", action="store_true", help="print the measurements as one JSON line")
    parser.add_argument("--explain", action="store_true", help="what the eager working set is made of")
    parser.add_argument("--smoke", action="store_true", help="32x24 at 4x, tiles of 16, torch backend, no --float")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.scale, args.tile, args.backend, args.float = "32x24", 4, "16", "torch", False
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.explain:
        explain(args.model, height, width, args.scale)
        return
    job = {
        "model": args.model,
        "height": height,
        "width": width,
        "scale": args.scale,
        "noise": args.noise,
        "tile": args.tile if args.tile == "auto" else int(args.tile),
        "margin": args.margin,
        "threads": args.threads,
        "write": args.write,
        "backend": args.backend,
    }
    results = {kind: measure({**job, "kind": kind}) for kind in ("tile", "picture", *(["float"] if args.float else []))}
    if args.json:
        print(json.dumps(results))
        return
    picture, one_tile = results["picture"], results["tile"]
    expected = picture["final_bytes"] + one_tile["increase"]
    print(
        f"{width}x{height} at {args.scale}x, W = {args.noise}, tile {picture['tile']} (margin {picture['margin']}), "
        f"{args.threads} thread(s), backend {picture['backend']}, {os.uname().machine}"
    )
    print(f"  before the job (torch, model, input): {picture['rss_before'] / MIB:8.0f} MiB resident")
    print(f"  final 8-bit image:                    {picture['final_bytes'] / MIB:8.0f} MiB")
    print(f"  one tile's working set (measured):    {one_tile['increase'] / MIB:8.0f} MiB")
    print(f"  sum:                                  {expected / MIB:8.0f} MiB")
    print(
        f"  measured peak increase of the job:    {picture['increase'] / MIB:8.0f} MiB "
        f"({picture['increase'] / expected:.2f} x the sum, {picture['seconds']:.0f} s)"
    )
    if args.float:
        print(f"  float32 assembly instead:             {results['float']['increase'] / MIB:8.0f} MiB")


if __name__ == "__main__":
    main()
