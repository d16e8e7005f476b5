"""Training steps/s of a recipe: mgsr's step against a bare hand-written one, at fp32 and bf16 (CI runs only --smoke).

    python benchmarks/train_step_bench.py recipes/quickstart.toml [--steps 3] [--rounds 3]
        [--precisions fp32,bf16] [--set key=value ...] [--device cpu|cuda] [--threads N]
    python benchmarks/train_step_bench.py --smoke    # seconds: benchmarks/smoke.toml, 1 x 1 step (checks it runs)
    python benchmarks/train_step_bench.py recipes/pirm_r3.toml --compile [--precisions fp32] [--warmup 2]

For each precision the same modules (G, D, the losses and their feature
networks, both Adam optimizers) take two kinds of step on the same random HR
patches, interleaved so that a shared machine's load hits both alike:

- *mgsr*: :meth:`Trainer.train_step` (LossLog, the fp16 scaler, schedulers,
  DDP/compile hooks) plus the one loss read-back a run does per ``log_every``
  steps;
- *bare*: the same forward/backward written out minimally below: the batched
  W forward, the loss sum, ``backward``, the discriminator's eq. 9, Adam.

It prints the framework's overhead (mgsr / bare − 1, target <= 5 %) and each
precision's steps/s, with the CPU model and, on CUDA, the card.  Random
patches stand in for data (the step's cost does not depend on the pixels);
the contextual loss's VGG-19 runs with random weights (same cost).  The last line
compares bf16 with fp32 (``bf16 / fp32 = R x``) when both are measured.

``--compile`` measures instead what ``training.compile = true`` buys: two trainers of the recipe from the same
initial weights, one eager and one compiled, take interleaved windows of mgsr steps in this one process.  The
compiled trainer's first ``--warmup`` steps (where inductor compiles, once per size of the patch pyramid) are
timed apart on the wall clock (compiling runs in worker processes) and excluded from its steps/s; the eager
one warms up as many steps.  The last line is ``compiled / eager = R x`` (steps/s), one figure per precision.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import mgsr
from mgsr.interfaces import AdversarialLoss
from mgsr.recipe.tables import apply_overrides, read_recipe_table
from mgsr.training.data import scale_pyramid
from mgsr.training.run import stage_trainer
from mgsr.training.trainer import Trainer

SMOKE_RECIPE = Path(__file__).resolve().parent / "smoke.toml"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def bare_step(trainer: Trainer, hr: torch.Tensor, dtype: torch.dtype | None) -> None:
    """eq. 7 and eq. 9 by hand on the trainer's modules and optimizers: what the framework is measured against."""
    run = trainer.optimization
    g, d, opt_g, opt_d = run.generator, run.discriminator, run.opt_g, run.opt_d
    autocast = torch.autocast(hr.device.type, dtype=dtype, enabled=dtype is not None)
    for optimizer in (opt_g, opt_d):
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
    for levels in trainer.spec.scales:
        lr_in, targets = scale_pyramid(hr, levels)
        active = [loss for loss in trainer.optimization.losses if loss.active(levels)]
        amps = sorted({w for loss in active for w in loss.config.noise})
        n, k, (h, w) = lr_in.shape[0], len(amps), lr_in.shape[-2:]
        noise = [torch.randn(n * k, g.noise_channels, h << j, w << j, device=hr.device) for j in range(levels)]
        amp = torch.tensor(amps, device=hr.device).repeat_interleave(n).view(-1, 1, 1, 1)
        if d is not None:
            d.requires_grad_(False)
        with autocast:
            out = [y.float() for y in g(lr_in.repeat(k, 1, 1, 1), levels, noise_amp=[amp] * levels, noise=noise)]
            outputs = {a: [y[i * n : (i + 1) * n] for y in out] for i, a in enumerate(amps)}
            total = sum(loss(outputs, targets, discriminator=d) for loss in active)
        total.backward()
        adversarial = [loss for loss in active if isinstance(loss, AdversarialLoss)]
        if adversarial:
            d.requires_grad_(True)
            with autocast:
                d_total = sum(loss.discriminator_loss(outputs, targets, discriminator=d) for loss in adversarial)
            d_total.backward()
    opt_g.step()
    if opt_d is not None:
        opt_d.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(table: dict, precision: str, device: str, steps: int, rounds: int) -> tuple[float, float]:
    """Median seconds per step of mgsr's step and of the bare one, ``rounds`` interleaved windows of ``steps``.

    On CPU the clock is the process's CPU time: on a shared machine the wall clock mostly measures the
    neighbours (with one thread, CPU time is the step's own cost); on CUDA it is the wall clock after a sync.
    """
    clock = time.perf_counter if torch.device(device).type == "cuda" else time.process_time
    recipe = mgsr.load_recipe(apply_overrides(table, [f'training.precision="{precision}"']))
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="mgsr-train-step-bench-") as run:
        built = mgsr.build(recipe, training=True)
        trainer = stage_trainer(built, Path(run), with_data=False, device=device, progress=False)
        return _interleaved(trainer, recipe, steps, rounds, clock)


def measure_compiled(
    table: dict, precision: str, device: str, steps: int, rounds: int, warmup: int
) -> tuple[float, float, float]:
    """Median seconds per step of the eager and of the compiled mgsr step (same recipe, same initial weights,
    interleaved windows as :func:`measure`), and the wall seconds of the compiled trainer's warm-up steps."""
    clock = time.perf_counter if torch.device(device).type == "cuda" else time.process_time
    trainers = []
    with tempfile.TemporaryDirectory(prefix="mgsr-train-step-bench-") as run:
        for compiled in (False, True):
            flags = [f'training.precision="{precision}"', f"training.compile={str(compiled).lower()}"]
            recipe = mgsr.load_recipe(apply_overrides(table, flags))
            torch.manual_seed(0)
            built = mgsr.build(recipe, training=True)
            folder = Path(run) / str(compiled)
            trainers.append(stage_trainer(built, folder, with_data=False, device=device, progress=False))
        eager, compiled_trainer = trainers
        hr = torch.rand(
            recipe.training.batch_size, 3, recipe.data.patch_size, recipe.data.patch_size, device=eager.device
        )
        _steps(eager, hr, warmup, time.perf_counter)
        compile_s = _steps(compiled_trainer, hr, warmup, time.perf_counter) * warmup
        times: list[list[float]] = [[], []]
        for _ in range(rounds):
            for trainer, kept in zip(trainers, times, strict=True):
                kept.append(_steps(trainer, hr, steps, clock))
    return statistics.median(times[0]), statistics.median(times[1]), compile_s


def _steps(trainer: Trainer, hr: torch.Tensor, steps: int, clock: Callable[[], float]) -> float:
    """Seconds per step of ``steps`` mgsr steps on ``hr``, with the loss read-back a run does once per window."""
    t = clock()
    for _ in range(steps):
        trainer.train_step(hr)
    trainer.read_losses(flush=True)
    sync(trainer.device)
    return (clock() - t) / steps


def _interleaved(
    trainer: Trainer, recipe: mgsr.Recipe, steps: int, rounds: int, clock: Callable[[], float]
) -> tuple[float, float]:
    """``measure``'s timed part: a warm-up of each kind of step, then ``rounds`` windows of each in turn."""
    dtype = trainer.optimization.amp.dtype
    hr = torch.rand(
        recipe.training.batch_size, 3, recipe.data.patch_size, recipe.data.patch_size, device=trainer.device
    )
    trainer.train_step(hr)  # warm-up (allocator, autocast caches, compile)
    trainer.read_losses(flush=True)
    bare_step(trainer, hr, dtype)
    sync(trainer.device)
    mine, bare = [], []
    for _ in range(rounds):
        t = clock()
        for _ in range(steps):
            trainer.train_step(hr)
        trainer.read_losses(flush=True)  # a run reads back once per log_every steps
        sync(trainer.device)
        mine.append((clock() - t) / steps)
        t = clock()
        for _ in range(steps):
            bare_step(trainer, hr, dtype)
        sync(trainer.device)
        bare.append((clock() - t) / steps)
    return statistics.median(mine), statistics.median(bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", help="recipe file (required unless --smoke)")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed window")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved windows per kind of step")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's); 1 on a shared CPU")
    parser.add_argument(
        "--compile", action="store_true", help="eager against compiled (training.compile) mgsr steps, not bare"
    )
    parser.add_argument("--warmup", type=int, default=2, help="--compile: untimed first steps (they compile)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"seconds: {SMOKE_RECIPE.name} (toy-size quickstart), 1 round of 1 step per precision",
    )
    args = parser.parse_args()
    if args.smoke:
        args.recipe, args.steps, args.rounds = args.recipe or str(SMOKE_RECIPE), 1, 1
    if args.recipe is None:
        parser.error("a recipe file is required (or --smoke)")
    if args.threads:
        torch.set_num_threads(args.threads)
    table = apply_overrides(read_recipe_table(args.recipe), args.set + ["data.train=['samples:train']", "data.val=[]"])
    for loss in table.get("losses", []):
        if "features" in loss:
            loss["features"]["pretrained"] = False
    where = f"CPU {cpu_model()}, {torch.get_num_threads()} threads"
    if torch.device(args.device).type == "cuda":
        where = f"{torch.cuda.get_device_name(torch.device(args.device))}; {where}"
    recipe = mgsr.load_recipe(table)
    spec = recipe.training
    print(
        f"{args.recipe}: batch {spec.batch_size}, patch {recipe.data.patch_size}, scales {list(spec.scales)}, "
        f"torch {torch.__version__}, {where}",
        flush=True,
    )
    if args.compile:
        report_compiled(args, table)
    else:
        report_bare(args, table)


def report_bare(args: argparse.Namespace, table: dict) -> None:
    """mgsr's step against the bare one at each precision, then bf16 (etc.) against fp32."""
    rates = {}
    for precision in args.precisions.split(","):
        mine, bare = measure(table, precision, args.device, args.steps, args.rounds)
        rates[precision] = 1 / mine
        print(
            f"  {precision}: mgsr {1 / mine:.3f} steps/s, bare {1 / bare:.3f} steps/s, "
            f"framework overhead {100 * (mine / bare - 1):+.1f} % (median of {args.rounds} x {args.steps} steps)",
            flush=True,
        )
    if "fp32" in rates and len(rates) > 1:
        print("  " + ", ".join(f"{p} / fp32 = {r / rates['fp32']:.2f}x" for p, r in rates.items() if p != "fp32"))


def report_compiled(args: argparse.Namespace, table: dict) -> None:
    """The compiled mgsr step against the eager one at each precision; the compile time apart."""
    ratios = []
    for precision in args.precisions.split(","):
        eager, compiled, compile_s = measure_compiled(
            table, precision, args.device, args.steps, args.rounds, args.warmup
        )
        ratios.append(f"{eager / compiled:.2f}x ({precision})")
        print(
            f"  {precision}: eager {1 / eager:.3f} steps/s, compiled {1 / compiled:.3f} steps/s "
            f"(median of {args.rounds} x {args.steps} steps); compiled warm-up {compile_s:.1f} s wall over "
            f"{args.warmup} steps (compiling, excluded)",
            flush=True,
        )
    print("  compiled / eager = " + ", ".join(ratios))


if __name__ == "__main__":
    main()
