"""The perception-distortion table of the bundled models on photographs downscaled x4 (pirm2018 protocol).

    python benchmarks/pirm_table.py [HR_DIR]        # default: ../shared/reference/images
    python benchmarks/pirm_table.py --smoke         # seconds: 112x112 crops of samples:val (checks it runs)

Rows: MATLAB bicubic, R3 at W = 0, R1 at its W 0.0632, R2 at 0.275, R3 at 1; set RMSE (sqrt of the mean
per-image MSE) and mean NIQE, plus the seconds each row took; the last line is R3 at W = 1.  Not run in CI at
full size (minutes on two CPU cores); tests/evaluation/test_perception_distortion.py asserts the paper's ordering on the
same numbers (``-m slow``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

import mgsr
from mgsr.errors import MgsrError
from mgsr.evaluation.protocol import PIRM2018
from mgsr.evaluation.upscalers import SetEvaluator, make_upscaler
from mgsr.samples import sample_folder

ROWS = (("bicubic", None), ("pirm-r3", 0.0), ("pirm-r1", 0.0632), ("pirm-r2", 0.275), ("pirm-r3", 1.0))
DEFAULT_HR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "images"
SMOKE_SIDE = 112  # the least that NIQE scores: one 96x96 block after the protocol shaves 4 pixels a side


def smoke_images(folder: Path) -> Path:
    """Top-left SMOKE_SIDE-pixel crops of the bundled samples:val images, written into ``folder``."""
    for path in sorted(sample_folder("val").glob("*.png")):
        Image.open(path).crop((0, 0, SMOKE_SIDE, SMOKE_SIDE)).save(folder / path.name)
    return folder


def table(hr_dir: Path) -> list[tuple[str, float | None, dict[str, float], float]]:
    """Each row scored under the protocol, with the seconds it took (model loading included: a user waits for it)."""
    registry = mgsr.default_registry()
    rows = []
    for model, noise in ROWS:
        start = time.perf_counter()
        upscale, _ = make_upscaler(model, 4, PIRM2018.seed)
        evaluation = SetEvaluator.create(upscale, hr_dir, 4, PIRM2018, registry).evaluate(noise)
        rows.append((model, noise, dict(evaluation.aggregate), time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hr_dir", nargs="?", type=Path, help=f"folder of HR images (default: {DEFAULT_HR})")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_SIDE}x{SMOKE_SIDE} crops of the bundled samples:val images instead",
    )
    args = parser.parse_args()
    if args.smoke and args.hr_dir is not None:
        parser.error("--smoke scores crops of the bundled samples:val images; leave out HR_DIR")
    if not args.smoke:
        report(args.hr_dir or DEFAULT_HR)
        return
    with tempfile.TemporaryDirectory(prefix="pirm-table-smoke-") as tmp:
        report(smoke_images(Path(tmp)))


def report(hr_dir: Path) -> None:
    """Print the table for the HR images of ``hr_dir``; an unusable folder is a one-line error."""
    print(f"pirm2018 protocol, x4, HR images in {hr_dir}")
    print(f"{'method':<10}{'W':>8}{'RMSE':>9}{'PSNR':>9}{'SSIM':>8}{'NIQE':>8}{'seconds':>9}")
    try:
        rows = table(hr_dir)
    except MgsrError as exc:
        sys.exit(f"pirm_table: {exc}")
    for model, noise, scores, seconds in rows:
        w = "-" if noise is None else f"{noise:g}"
        print(
            f"{model:<10}{w:>8}{scores['rmse']:>9.3f}{scores['psnr']:>9.3f}{scores['ssim']:>8.4f}"
            f"{scores['niqe']:>8.3f}{seconds:>9.1f}"
        )


if __name__ == "__main__":
    main()
