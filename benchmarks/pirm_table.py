"""The perception-distortion table of the bundled models on photographs downscaled x4 (pirm2018 protocol).

    python benchmarks/pirm_table.py [HR_DIR]        # default: ../shared/reference/images

Rows: MATLAB bicubic, R3 at W = 0, R1 at its W 0.0632, R2 at 0.275, R3 at 1; set RMSE (sqrt of the mean
per-image MSE) and mean NIQE, plus the seconds each row took.  Not run in CI (minutes on two CPU cores);
tests/test_perception_distortion.py asserts the paper's ordering on the same numbers (``-m slow``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mgsr.evaluation.upscalers import SetEvaluator, make_upscaler
from mgsr.evaluation.protocol import PIRM2018
from mgsr.registry import default_registry

ROWS = (("bicubic", None), ("pirm-r3", 0.0), ("pirm-r1", 0.0632), ("pirm-r2", 0.275), ("pirm-r3", 1.0))


def table(hr_dir: Path) -> list[tuple[str, float | None, dict[str, float], float]]:
    registry = default_registry()
    rows = []
    for model, noise in ROWS:
        start = time.perf_counter()
        upscale, _ = make_upscaler(model, 4, PIRM2018.seed)
        evaluation = SetEvaluator.create(upscale, hr_dir, 4, PIRM2018, registry).evaluate(noise)
        rows.append((model, noise, dict(evaluation.aggregate), time.perf_counter() - start))
    return rows


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "reference" / "images"
    hr_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    print(f"pirm2018 protocol, x4, HR images in {hr_dir}")
    print(f"{'method':<10}{'W':>8}{'RMSE':>9}{'PSNR':>9}{'SSIM':>8}{'NIQE':>8}{'seconds':>9}")
    for model, noise, scores, seconds in table(hr_dir):
        w = "-" if noise is None else f"{noise:g}"
        print(f"{model:<10}{w:>8}{scores['rmse']:>9.3f}{scores['psnr']:>9.3f}{scores['ssim']:>8.4f}"
              f"{scores['niqe']:>8.3f}{seconds:>9.1f}")


if __name__ == "__main__":
    main()
