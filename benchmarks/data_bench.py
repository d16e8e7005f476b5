"""Patches per second of the training stream from raw PNGs vs from a prepared store (CI runs only --smoke).

    python benchmarks/data_bench.py [--images 4] [--megapixels 0.29] [--patch 128]
    python benchmarks/data_bench.py --smoke    # seconds: small images, few patches (checks it runs)

It writes DIV2K-size PNGs (2040x1356, synthetic but textured: smooth gradients,
edges and noise, so PNG compresses them about as badly as photos), prepares
them into the cache as training does (``mgsr.training.prepared.training_sources``
with ``MGSR_CACHE`` in a temporary folder; then once more, which must decode
nothing), and times
``PatchDataset.__getitem__`` in this one process with one torch thread — what
one DataLoader worker does.  For the raw stream the decoded-image cache is
emptied before every patch: with thousands of images and a random
permutation it never hits, and with the few images here it would.  The last
line is ``patches/s per worker: raw R, prepared P``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def textured_image(rng: np.random.Generator, height: int = 1356, width: int = 2040) -> np.ndarray:
    """A photo-like uint8 RGB image: gradients, sinusoidal texture, hard-edged blocks and sensor-like noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [0.5 + 0.3 * np.sin(x / rng.uniform(40, 200) + c) * np.cos(y / rng.uniform(40, 200) - c) for c in range(3)],
        axis=2,
    )
    base += 0.1 * np.sin((x + y) / rng.uniform(2, 6))[..., None]
    for _ in range(40):
        top, left = int(rng.integers(0, height - 64)), int(rng.integers(0, width - 64))
        base[top : top + int(rng.integers(16, 300)), left : left + int(rng.integers(16, 300))] = rng.random(3)
    base += rng.normal(0, 0.03, base.shape).astype(np.float32)
    return (np.clip(base, 0, 1) * 255).astype(np.uint8)


def patches_per_second(dataset, keys, clear_cache: bool) -> float:
    from mgsr.training.data import PatchDataset

    start = time.perf_counter()
    for key in keys:
        if clear_cache:
            PatchDataset._decoded.cache_clear()
        dataset[key]
    return len(keys) / (time.perf_counter() - start)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--megapixels", type=float, default=0.29, help="target_megapixels; 0 = no resize")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--raw-patches", type=int, default=8)
    parser.add_argument("--prepared-patches", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=None, help="processes for the prepare step (default: all)")
    parser.add_argument(
        "--smoke", action="store_true", help="2 images of 400x300, 0.03 Mpx (unless 0), 32-pixel patches"
    )
    args = parser.parse_args()
    if args.smoke:
        args.images, args.patch, args.raw_patches, args.prepared_patches = 2, 32, 2, 50
        args.megapixels = args.megapixels and 0.03
    return args


def patch_rates(args: argparse.Namespace, raw: Path, store: str, megapixels: float | None) -> None:
    """Patches per second from the raw folder (decoded each time) and from the store (memory-mapped)."""
    from mgsr.training.data import PatchDataset, ResumableSampler, scan_images

    sampler = ResumableSampler(args.images, seed=0)
    keys = [sampler.key(i) for i in range(max(args.raw_patches, args.prepared_patches))]
    raw_set = PatchDataset(scan_images([raw], args.patch, megapixels).usable, args.patch, megapixels, True)
    stored = PatchDataset(scan_images([store], args.patch, megapixels).usable, args.patch, megapixels, True)
    assert torch.equal(raw_set[keys[0]], stored[keys[0]]), "store and raw folder disagree"
    patches_per_second(stored, keys[:50], clear_cache=False)  # warm the page cache and imports
    raw_rate = patches_per_second(raw_set, keys[: args.raw_patches], clear_cache=True)
    prepared_rate = patches_per_second(stored, keys[: args.prepared_patches], clear_cache=False)
    print(
        f"{args.patch}x{args.patch} patches, target_megapixels={megapixels}, 1 process, 1 torch thread; "
        f"prepared / raw = {prepared_rate / raw_rate:.0f}x"
    )
    print(f"patches/s per worker: raw {raw_rate:.1f}, prepared {prepared_rate:.0f}")


def main() -> None:
    args = _arguments()
    size = (300, 400) if args.smoke else (1356, 2040)
    torch.set_num_threads(1)

    from mgsr.training.prepared import training_sources
    from mgsr.training.store import open_store, prepare

    megapixels = args.megapixels or None
    with tempfile.TemporaryDirectory(prefix="mgsr-data-bench-") as tmp:
        os.environ["MGSR_CACHE"] = str(Path(tmp) / "cache")
        raw = Path(tmp) / "raw"
        raw.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            Image.fromarray(textured_image(rng, *size)).save(raw / f"{i:04d}.png")
        png_mb = sum(p.stat().st_size for p in raw.iterdir()) / args.images / 1e6
        t = time.perf_counter()
        if megapixels is None:  # training keeps such folders raw; `mgsr data prepare` still makes a store
            store = str(prepare([raw], Path(tmp) / "store", workers=args.workers, progress=False).store.folder)
        else:
            [store] = training_sources([str(raw)], megapixels, progress=False, workers=args.workers)
        prepare_s = time.perf_counter() - t
        t = time.perf_counter()
        assert training_sources([str(raw)], megapixels, progress=False) == [store if megapixels else str(raw)]
        reuse_s = time.perf_counter() - t
        first = open_store(store).images[0]
        store_mb = sum(p.stat().st_size for p in Path(store).rglob("*.npy")) / args.images / 1e6
        print(
            f"{args.images} PNGs {size[1]}x{size[0]} ({png_mb:.1f} MB each); prepared to {first.width}x"
            f"{first.height} ({store_mb:.2f} MB each) in {prepare_s:.1f} s ({args.images / prepare_s:.2f} "
            f"images/s, all workers); the next run found it up to date in {reuse_s * 1e3:.0f} ms"
        )

        patch_rates(args, raw, store, megapixels)


if __name__ == "__main__":
    main()
