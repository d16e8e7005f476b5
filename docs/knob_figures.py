"""Draw README's knob figures: the curves of trained models beside pirm-r3's, and zoomed crops at W = 0 and 1.

    python docs/knob_figures.py --model runs/knob_cpu --model runs/finetune \
        [--hr ../shared/reference/images] [--pages runs/finetune/pages_test]

* ``docs/knob_curves.png``: ``mgsr sweep --noise 0:1:9`` of each model (pirm-r3
  first) on the held-out photos, RMSE against NIQE, W written at the ends.
* ``docs/knob_crops.png``: per model, one 64x64 region of a held-out photo
  (chelsea's fur by default), HR and the 4x outputs at W = 0 and W = 1, each
  enlarged 4x with nearest neighbours, so the detail W adds is visible.
* with ``--pages``: ``docs/finetune_crops.png``, a held-out text page before
  (pirm-r3) and after fine-tuning, W = 0 and W = 1, enlarged 3x.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mgsr.assembly.loading import load_generator
from mgsr.evaluation.protocol import crop_to_multiple, make_lr
from mgsr.evaluation.upscalers import model_upscaler

DOCS = Path(__file__).resolve().parent
REFERENCE_IMAGES = DOCS.parent.parent / "shared" / "reference" / "images"


def sweep(model: str, hr: Path, into: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W, RMSE, NIQE) of ``mgsr sweep`` for one model."""
    out = into / Path(model).name
    command = ["mgsr", "sweep", "--model", model, "--hr", str(hr), "--noise", "0:1:9", "-o", str(out), "-q"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(out.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("noise", "rmse", "niqe"))  # type: ignore[return-value]


def curves(models: list[tuple[str, str]], hr: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in models:
            w, rmse, niqe = sweep(model, hr, Path(tmp))
            (line,) = ax.plot(rmse, niqe, "o-", ms=3, label=label)
            for i in (0, len(w) - 1):
                ax.annotate(
                    f"W={w[i]:g}",
                    (rmse[i], niqe[i]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                    color=line.get_color(),
                )
    ax.set_xlabel("RMSE (Y, lower is better)")
    ax.set_ylabel("NIQE (lower is better)")
    ax.set_title(f"W from 0 to 1 on held-out {', '.join(p.stem for p in sorted(hr.glob('*.png')))} (x4)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def zoom(image: np.ndarray, box: tuple[int, int, int], factor: int) -> Image.Image:
    top, left, side = box
    crop = Image.fromarray(image[top : top + side, left : left + side])
    return crop.resize((side * factor, side * factor), Image.Resampling.NEAREST)


def crop_sheet(
    rows: list[tuple[str, list[tuple[str, np.ndarray]]]], box: tuple[int, int, int], factor: int
) -> Image.Image:
    """One labelled row of zoomed crops per entry of ``rows``."""
    side = box[2] * factor
    columns = max(len(cells) for _, cells in rows)
    sheet = Image.new("RGB", (columns * (side + 4) + 4, len(rows) * (side + 22) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (title, cells) in enumerate(rows):
        for c, (label, image) in enumerate(cells):
            x, y = 4 + c * (side + 4), 4 + r * (side + 22)
            draw.text((x, y), f"{title}: {label}" if c == 0 else label, fill="black")
            sheet.paste(zoom(image, box, factor), (x, y + 16))
    return sheet


def outputs(model: str, hr: np.ndarray) -> list[tuple[str, np.ndarray]]:
    upscale = model_upscaler(load_generator(model), 4, seed=0)
    lr = make_lr(hr, 4)
    return [("W = 0", upscale(lr, 0.0)), ("W = 1", upscale(lr, 1.0))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="a trained model (run folder); repeatable")
    parser.add_argument("--label", action="append", help="its label in the figures (default: the folder's name)")
    parser.add_argument("--hr", type=Path, default=REFERENCE_IMAGES)
    parser.add_argument("--photo", default="chelsea.png", help="the held-out photo the crops come from")
    parser.add_argument("--box", type=int, nargs=3, default=(120, 180, 64), metavar=("TOP", "LEFT", "SIDE"))
    parser.add_argument("--pages", type=Path, help="held-out text pages: the fine-tuning figure")
    parser.add_argument("--finetuned", help="the fine-tuned model (default: the last --model)")
    args = parser.parse_args(argv)
    labels = args.label or [Path(m).name for m in args.model]
    models = [("pirm-r3 (released)", "pirm-r3"), *zip(labels, args.model, strict=True)]
    curves(models, args.hr, DOCS / "knob_curves.png")

    hr = crop_to_multiple(np.asarray(Image.open(args.hr / args.photo).convert("RGB")), 4)
    rows = [(label, [("HR", hr), *outputs(model, hr)]) for label, model in models]
    crop_sheet(rows, tuple(args.box), 4).save(DOCS / "knob_crops.png")
    print(f"wrote {DOCS / 'knob_crops.png'}")

    if args.pages:
        page = sorted(args.pages.glob("*.png"))[0]
        hr = crop_to_multiple(np.asarray(Image.open(page).convert("RGB")), 4)
        tuned = args.finetuned or args.model[-1]
        rows = [
            (label, [("HR", hr), *outputs(model, hr)])
            for label, model in (("pirm-r3", "pirm-r3"), ("fine-tuned", tuned))
        ]
        crop_sheet(rows, (40, 40, 80), 3).save(DOCS / "finetune_crops.png")
        print(f"wrote {DOCS / 'finetune_crops.png'}")


if __name__ == "__main__":
    sys.exit(main())
