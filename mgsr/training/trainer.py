"""The training loop: the noise-adaptive multi-scale training of section 5 (eq. 7), resumable and observable.

What trains and its state (the models, optimizers, schedules, eq. 7's step under the recipe's precision) is
:class:`mgsr.training.optimization.Optimization`; the data and the validation are sessions the loop is given. The
loop reads the losses back only every ``log_every`` steps and before it validates, writes samples or saves: a
non-finite loss is then reported with the step and term that produced it, and no checkpoint is ever written after
it (the last good one is kept). Which terms, weights, amplitudes and scales: all from the recipe.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs
import tomli_w
import torch

from mgsr.assembly.build import Built
from mgsr.errors import Interrupted, TrainingError
from mgsr.io.atomic import atomic_file
from mgsr.model.weights import RUN_GENERATOR_FILE, ModelCard, save_generator
from mgsr.runtime.distributed import SINGLE, Context, any_rank, barrier
from mgsr.training.checkpoint import (
    checkpoint_name,
    list_checkpoints,
    save_checkpoint,
)
from mgsr.training.data_session import DataSession
from mgsr.training.interrupt import StopRequest
from mgsr.training.logbook import Logbook
from mgsr.training.loss_log import NonFiniteLoss
from mgsr.training.optimization import Optimization
from mgsr.training.schedule import resolve_schedule
from mgsr.training.stages import PRETRAIN
from mgsr.training.summary import StepTimes, run_summary
from mgsr.training.validation_session import ValidationSession
from mgsr.training.validation_watch import own_start


class ProgressBar(Protocol):
    """What the loop uses of its tqdm bar (tqdm ships no type information): lines above it, and a status."""

    def write(self, s: str) -> None: ...

    def set_postfix(self, **values: str) -> None: ...


class Trainer:
    """The training loop: the schedule, the steps, checkpoints and the export, over an :class:`Optimization`.

    It is given its data (a :class:`~mgsr.training.data_session.DataSession`; None: it can step on patches it
    is handed, score and export, not train) and its validation (a
    :class:`~mgsr.training.validation_session.ValidationSession`); the run builds both from the recipe
    (:func:`mgsr.training.run.stage_trainer`).  ``built`` must be trainable
    (:func:`mgsr.training.preflight.trainable`).  A checkpoint is :meth:`state_dict`; resuming is
    :meth:`load_state_dict`.  ``run()`` trains to ``training.steps``.
    """

    def __init__(
        self,
        built: Built,
        run_dir: Path,
        *,
        data: DataSession | None = None,
        validation: ValidationSession | None = None,
        device: str = "cpu",
        progress: bool = True,
        ctx: Context = SINGLE,
        stage: str = "train",
        log_dir: Path | None = None,
    ) -> None:
        self.recipe = built.recipe
        self.data = data
        self.validation = validation if validation is not None else ValidationSession.none()
        # epochs -> steps once the data is known (resolving changes no value the models or optimizers read)
        self.spec = resolve_schedule(built.recipe.training, len(data)) if data is not None else built.recipe.training
        self.ctx = ctx
        self.local_batch = self.spec.batch_size // ctx.world_size
        self.device = torch.device(device)
        self.progress = progress
        self.run_dir = Path(run_dir)
        self.stage = stage
        self.logbook = Logbook(Path(log_dir) if log_dir is not None else self.run_dir, stage)
        self.optimization = Optimization(built, self.spec, self.device, ctx)
        self.generator = self.optimization.generator  # what validation scores and the run exports
        self.step = 0
        self.samples_seen = 0  # position in the global patch stream (batch sizes may change on resume)
        self.stop = StopRequest()  # installed while run() runs
        self.times = StepTimes()

    def _training_data(self) -> DataSession:
        """The patches to train on; an error when the trainer was built without its data."""
        if self.data is None:
            raise TrainingError("this trainer was built without data: it can score and export, not train")
        return self.data

    # --- one step and its losses ---------------------------------------------------------------
    def train_step(self, hr: torch.Tensor) -> None:
        """One optimisation step on the HR patches ``hr``; its losses stay on the device (see ``read_losses``)."""
        step = self.optimization.step
        step(self.optimization.to_batch(hr.to(self.device, non_blocking=True)), self.step + 1)

    def read_losses(self, *, flush: bool) -> dict[str, float]:
        """The loss means since the last flush (``flush``) or only the non-finite check, in one read-back.

        Raises TrainingError naming the step and term of the first non-finite
        loss (on every rank when any rank met one, so all stop before saving).
        """
        bad, logs = None, {}
        try:
            logs = self.optimization.step.read_losses(flush)
        except NonFiniteLoss as exc:
            bad = exc
        if any_rank(self.ctx, bad is not None, self.device):  # every rank asks: all stop, none saves
            last = list_checkpoints(self.run_dir / "checkpoints")
            kept = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
            if bad is None:
                raise TrainingError(
                    f"another rank met a non-finite loss by step {self.step}; stopping without saving ({kept})"
                )
            term, levels = self.optimization.step.term_of(bad.term)
            raise TrainingError(
                f"step {bad.step}: loss term '{term}' at L={levels} is {bad.value}; stopping without saving ({kept})"
            )
        if logs:
            generator_terms = [v for k, v in logs.items() if k.startswith("loss/")]
            if generator_terms:  # none while only the discriminator warms up
                logs["loss/total"] = sum(generator_terms)
            logs["lr"] = self.optimization.lr()
        return logs

    # --- validation and samples ------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Validation scores and the classic upscaler's phase spread (rank 0 only); a warning names the step
        and the number when either shows a period-2 grid (see :mod:`mgsr.training.watch`)."""
        return self.validation.validate(self.step, self.generator) if self.ctx.is_main else {}

    def write_samples(self) -> Path | None:
        """The sample grid of this step (rank 0 only: the other ranks' sessions hold no images)."""
        return self.validation.write_samples(self.generator, self.run_dir / "samples" / f"step-{self.step:09d}.png")

    # --- the loop --------------------------------------------------------------------------------
    def checkpoint(self) -> Path:
        """Rank 0 writes; every rank waits for it, so a resumed job finds the same file everywhere.

        The losses since the last read are checked first: never a checkpoint after a non-finite loss.
        """
        self.read_losses(flush=False)
        path = self.run_dir / "checkpoints" / checkpoint_name(self.step)
        if self.ctx.is_main:
            path = save_checkpoint(
                self.run_dir / "checkpoints", self.step, self.state_dict(), keep=self.spec.keep_checkpoints
            )
        barrier(self.ctx)
        return path

    # --- the state a checkpoint holds ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs (see :meth:`load_state_dict`): tensors and plain containers only."""
        optimization = self.optimization.state_dict()
        noise = optimization.pop("noise")
        return {
            "recipe": json.dumps(self.recipe.to_dict(), sort_keys=True),
            "recipe_digest": self.recipe.digest(),
            **optimization,  # weights, optimizer moments, schedules, fp16's loss scale
            "samples_seen": self.samples_seen,
            "rng": {"torch": torch.get_rng_state(), "noise": noise},
            "watch": self.validation.state_dict(),  # the period-2 limits and training.export's choice so far
            "images": self.data.image_list() if self.data is not None else None,  # see load_state_dict
        }

    def load_state_dict(self, state: Mapping[str, Any], path: Path) -> None:
        """Continue from ``state``, checkpoint ``path``'s: the optimisation (weights, optimizer moments, schedules,
        noise stream), torch's RNG, the watch and the data position carry over; the learning rates follow this
        trainer's recipe from the checkpoint's step on (a recipe changed since: see
        :func:`mgsr.training.resume.restore`)."""
        found = state.get("rng")
        rng: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        self.optimization.load_state_dict({**state, "noise": rng.get("noise")}, path)
        try:
            torch.set_rng_state(rng["torch"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise TrainingError(f"checkpoint {path}: optimizer or RNG state does not fit ({exc})") from None
        self.validation.load_state_dict(state.get("watch") or {})
        self.step = int(state["step"])
        self.samples_seen = int(state.get("samples_seen", self.step * self.spec.batch_size))
        if self.data is not None:  # the data position means other patches when the images changed
            self.data.check_images(path, state.get("images"))

    def export_generator(self) -> ModelCard:
        """Write the run's generator, without its curve yet: the last step's weights, or those
        ``training.export`` chose (loaded into ``self.generator``: the run is over)."""
        card = ModelCard(
            name=self.run_dir.name,
            default_noise=self.recipe.model.default_noise,
            source=f"trained by mgsr, recipe sha256 {self.recipe.digest()[:16]}, "
            + self.validation.exported(self.generator, self.step),
        )
        save_generator(self.run_dir / RUN_GENERATOR_FILE, self.generator, self.recipe.model, card)
        return card

    def add_curve(self, card: ModelCard) -> None:
        """The exported card's perception-distortion curve, when the validation measures one (see
        :meth:`ValidationSession.curve`); the file keeps none otherwise."""
        path = self.run_dir / RUN_GENERATOR_FILE
        curve = self.validation.curve(self.generator, self.recipe.model.default_noise, path)
        if curve is not None:
            save_generator(path, self.generator, self.recipe.model, attrs.evolve(card, curve=curve))

    def _log(self, record: dict[str, Any]) -> None:
        if self.ctx.is_main:
            self.logbook.write(record)

    def _batches(self) -> Iterator[torch.Tensor]:
        """This rank's batches from the stream's current position."""
        return self._training_data().batches(
            self.local_batch,
            self.spec.seed,
            self.samples_seen,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
            pin_memory=self.device.type == "cuda",
        )

    def _next_batch(self, batches: Iterator[torch.Tensor]) -> torch.Tensor | None:
        """The next batch (its wait counted), or None when a stop was requested while waiting for it."""
        waiting = time.perf_counter()
        try:
            batch = next(batches)
        except RuntimeError:  # a Ctrl-C sent to the process group also stops the loader's workers
            if not self.stop.requested:
                raise
            return None  # the loop's stop check saves and exits
        self.times.waited(time.perf_counter() - waiting)
        return batch

    def _log_interval(self, bar: ProgressBar, steps: int, seconds: float) -> None:
        """The one loss read-back of the last ``steps`` steps, logged with the rate and the step times."""
        logs = self.read_losses(flush=True)
        rate = steps * self.spec.batch_size / seconds
        self._log({"step": self.step, "samples_per_s": rate, **logs, **self.times.interval(steps)})
        bar.set_postfix(loss=f"{logs['loss/total']:.4g}" if "loss/total" in logs else "D warm-up", rate=f"{rate:.1f}/s")

    def _periodic(self, bar: ProgressBar) -> None:
        """Validation, sample grids and checkpoints due at this step (their time is not the step's)."""
        aside = time.perf_counter()
        last = self.step == self.spec.steps
        validating = self.step % self.spec.validate_every == 0 or last
        if validating or self.step % self.spec.sample_every == 0:
            self.read_losses(flush=False)  # nothing is scored or drawn from weights a NaN reached
        if validating and (scores := self.validate()):
            self._log({"step": self.step, **scores})
            bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        if self.step % self.spec.sample_every == 0:
            self.write_samples()
        if self.step % self.spec.checkpoint_every == 0 and not last:
            self.checkpoint()
        self.times.set_aside(time.perf_counter() - aside)

    def run(self) -> Path:
        """Train to ``training.steps``; returns the exported generator file."""
        from tqdm import tqdm

        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with atomic_file(self.run_dir / "recipe.toml") as fh:
                tomli_w.dump(self.recipe.to_dict(), fh)
        data = self._training_data()
        if self.ctx.is_main:
            data.announce()
        limits = {}
        if self.ctx.is_main and self.step == 0:  # a resumed run has its limits from the checkpoint
            own = own_start(self.recipe.model.weights, self.run_dir / PRETRAIN)
            limits = self.validation.start(self.generator, own)
        bar = tqdm(
            total=self.spec.steps,
            initial=self.step,
            unit="step",
            desc=self.stage,
            disable=(not self.progress or not self.ctx.is_main) or None,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        try:
            with self.stop:
                self._log({"step": self.step, **data.record(), **limits})
                if data.skipped and self.ctx.is_main:
                    bar.write(
                        f"{data.skipped} training image(s) skipped (warnings above name them); training on {len(data)}"
                    )
                batches = self._batches()
                started, done_since = time.perf_counter(), 0
                self.times.restart()
                while self.step < self.spec.steps:
                    if any_rank(self.ctx, self.stop.requested, self.device):
                        path = self.checkpoint()
                        raise Interrupted(
                            f"stopped at step {self.step}; checkpoint {path}; continue with --resume auto"
                        )
                    if (batch := self._next_batch(batches)) is None:
                        continue
                    self.train_step(batch)
                    self.step += 1
                    self.samples_seen += self.spec.batch_size
                    done_since += 1
                    bar.update(1)
                    if self.step % self.spec.log_every == 0 or self.step == self.spec.steps:
                        self._log_interval(bar, done_since, time.perf_counter() - started)
                        started, done_since = time.perf_counter(), 0
                    self._periodic(bar)
                return self._finish()
        finally:
            bar.close()
            self.logbook.close()

    def _finish(self) -> Path:
        """The last checkpoint and samples, the exported generator and the summary (rank 0)."""
        self.checkpoint()
        self.write_samples()
        card = self.export_generator() if self.ctx.is_main else None
        barrier(self.ctx)  # the other ranks go on (a next stage reads the file) while rank 0 measures the curve
        if card is not None:
            self.add_curve(card)
            metrics = self.logbook.run_dir / "metrics.jsonl"
            screen = run_summary(
                self.run_dir, self.step, self.times, self.device, self.validation.describe(), metrics, self.stage
            )
            print(screen, file=sys.stderr)
        return self.run_dir / RUN_GENERATOR_FILE
