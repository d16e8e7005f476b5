"""One optimisation step (eq. 7) under the recipe's precision, without a host synchronisation.

For every level count L of the recipe's scales: make the LR input and the
references X^1..X^L from the HR patches (eq. 5-6), run the generator once per
noise amplitude the losses read (W = 0 and W = 1 in the paper, batched into
one forward), let the adversarial losses give the discriminator its objective
(eq. 9), and sum the weighted generator terms (eq. 7).  Gradients are
accumulated level by level (one graph alive at a time) and both optimizers
step once.

Why it never synchronises: on a GPU the step of this small generator is
short, and reading a loss back (``float(t)``) or testing it (``isfinite``)
waits for the whole queue of kernels.  Every term goes to the
:class:`~mgsr.training.loss_log.LossLog` on the device instead, which the
trainer reads every ``log_every`` steps and before it validates or saves.

What runs in float32 under ``training.precision = "bf16" | "fp16"``:
autocast lowers the convolutions of G, D and the losses' feature networks.
G's outputs and D's logits are cast to float32 as they leave the networks,
so every loss term and its reduction (means, softplus, the VN+SC and colour
transforms of the losses) runs in float32; the numerics that would lose
digits inside the networks or on their way opt out themselves through
:func:`mgsr.ops.precision.full_precision`: the VN+SC local statistics
(``mgsr.ops.local_stats``, μ(I²) − μ² cancels), MATLAB's bicubic S_down of
eq. 5-6 and the cycle loss (``mgsr.ops.imresize``) and the contextual
similarity (``mgsr.ops.contextual``, relative cosine distances).  Backward
runs outside autocast, as PyTorch recommends.

The first ``training.discriminator_warmup_steps`` steps train D alone: G runs
forward without a graph only to produce the fakes, and neither G's optimizer
(its Adam moments) nor its learning-rate schedule moves.  A fresh
discriminator beside trained weights (fine-tuning) would otherwise push G with
the gradient of a random classifier from the first step.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch

from mgsr.errors import TrainingError
from mgsr.interfaces import AdversarialLoss, Discriminator, Loss
from mgsr.model.generator import GMGBP
from mgsr.runtime.distributed import Context
from mgsr.training.data import scale_pyramid
from mgsr.training.loss_log import LossLog
from mgsr.training.mixed_precision import MixedPrecision


def _float32_outputs(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
    """Forward hook: half-precision outputs leave the network as float32 (the losses reduce in float32)."""
    if isinstance(output, torch.Tensor):
        return output.float()
    if isinstance(output, (list, tuple)):
        return type(output)(y.float() for y in output)
    return output


class TrainStep:
    """The step's parts: the modules (and what calls them: DDP or compiled wrappers), losses, optimizers.

    ``optimizers`` and ``schedulers`` are the generator's and the discriminator's (None without one), in that
    order.  ``terms`` maps every log key (``loss/gan@L2``) to the loss's name and L,
    which the trainer's non-finite message names.
    """

    def __init__(
        self,
        *,
        generator: GMGBP,
        discriminator: torch.nn.Module | None,
        g_call: Callable[..., Any],
        d_call: Callable[..., Any] | None,
        losses: Sequence[Loss],
        scales: Sequence[int],
        optimizers: Sequence[torch.optim.Optimizer | None],
        schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler | None],
        amp: MixedPrecision,
        noise_rng: torch.Generator,
        device: torch.device,
        ctx: Context,
        discriminator_warmup_steps: int = 0,
    ) -> None:
        if discriminator_warmup_steps and (
            discriminator is None or not any(isinstance(loss, AdversarialLoss) for loss in losses)
        ):
            raise TrainingError(
                f"training.discriminator_warmup_steps = {discriminator_warmup_steps}, but no loss "
                f'trains a discriminator: add an adversarial loss (type = "gan") or set it to 0'
            )
        self.warmup_steps = discriminator_warmup_steps
        self.generator, self.discriminator = generator, discriminator
        self.g_call, self.d_call = g_call, d_call
        self.losses = list(losses)
        self.scales = [lv for lv in scales if any(loss.active(lv) for loss in self.losses)]
        self.optimizers, self.schedulers = list(optimizers), list(schedulers)
        self.amp, self.noise_rng, self.device, self.ctx = amp, noise_rng, device, ctx
        self.log = LossLog(device)
        self.terms: dict[str, tuple[str, int]] = {}
        if amp.dtype is not None and discriminator is not None:
            discriminator.register_forward_hook(_float32_outputs)

    def _noise(self, lr_in: torch.Tensor, levels: int) -> list[torch.Tensor]:
        """Unit draws for the *global* batch (same RNG on every rank), this rank's samples kept.

        Rank r holds samples r, r + world, ... of the global batch (see ResumableSampler), so a
        data-parallel run sees exactly the noise a single process would.
        """
        n, _, h, w = lr_in.shape
        world, rank = self.ctx.world_size, self.ctx.rank
        source, channels = self.generator.noise_source, self.generator.noise_channels
        return [
            source.sample(
                (n * world, channels, h << j, w << j), generator=self.noise_rng, device=self.device, dtype=lr_in.dtype
            )[rank::world]
            for j in range(levels)
        ]

    def _outputs(self, lr_in: torch.Tensor, levels: int, amplitudes: list[float]) -> dict[float, list[torch.Tensor]]:
        """Generator outputs at every W in one batched forward (one forward per backward, as DDP wants), float32."""
        if all(w == 0 for w in amplitudes):
            out = self._float32(self.g_call(lr_in, levels, noise_amp=0.0))
            return {w: out for w in amplitudes}
        n, k = lr_in.shape[0], len(amplitudes)
        draws = [z.repeat(k, 1, 1, 1) for z in self._noise(lr_in, levels)]
        amp = torch.tensor(amplitudes, dtype=lr_in.dtype, device=lr_in.device).repeat_interleave(n).view(-1, 1, 1, 1)
        out = self._float32(self.g_call(lr_in.repeat(k, 1, 1, 1), levels, noise_amp=[amp] * levels, noise=draws))
        return {w: [y[i * n : (i + 1) * n] for y in out] for i, w in enumerate(amplitudes)}

    def _float32(self, out: list[torch.Tensor]) -> list[torch.Tensor]:
        """G's outputs as float32 (the losses reduce in float32)."""
        return [y.float() for y in out]

    def _record(self, key: str, value: torch.Tensor, term: str, levels: int, step: int) -> None:
        self.terms[key] = (term, levels)
        self.log.add(key, value, step)

    def __call__(self, hr: torch.Tensor, step: int) -> None:
        """Step ``step`` (counted from 1) on the HR patches ``hr`` (already on the device)."""
        if step <= self.warmup_steps:
            self._discriminator_only(hr, step)
            return
        for optimizer in self.optimizers:
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
        for index, levels in enumerate(self.scales):
            last = index == len(self.scales) - 1
            lr_in, targets = scale_pyramid(hr, levels)
            active = [loss for loss in self.losses if loss.active(levels)]
            needed = sorted({w for loss in active for w in loss.config.noise})
            with self._accumulate(self.g_call, last):
                self._discriminator_trainable(False)  # the generator's terms must not move D
                with self.amp.autocast():
                    outputs = self._outputs(lr_in, levels, needed)
                    values = [loss(outputs, targets, discriminator=self.discriminator) for loss in active]
                for loss, value in zip(active, values, strict=True):
                    self._record(f"loss/{loss.name}@L{levels}", value, loss.name, levels, step)
                self.amp.backward(sum(values))
                self._discriminator_trainable(True)
            adversarial = [loss for loss in active if isinstance(loss, AdversarialLoss)]
            if adversarial:
                self._discriminator_backward(adversarial, outputs, targets, levels, step, last)
        self._step_optimizers(self.optimizers, self.schedulers)

    def _discriminator_only(self, hr: torch.Tensor, step: int) -> None:
        """A warm-up step: D learns from G's outputs; G runs without a graph, its optimizer and schedule stay."""
        opt_d, sched_d = self.optimizers[1], self.schedulers[1]
        if opt_d is None:  # __init__ refuses a warm-up without a discriminator; this names the fault if one slips by
            raise TrainingError("a discriminator warm-up step needs the discriminator's optimizer; none was given")
        opt_d.zero_grad(set_to_none=True)
        adversarial = {
            lv: [loss for loss in self.losses if isinstance(loss, AdversarialLoss) and loss.active(lv)]
            for lv in self.scales
        }
        levels_used = [lv for lv, found in adversarial.items() if found]
        for levels in levels_used:
            lr_in, targets = scale_pyramid(hr, levels)
            needed = sorted({w for loss in adversarial[levels] for w in loss.config.noise})
            with torch.no_grad(), self.amp.autocast():  # no graph of G: nothing flows back to it, and cheaper
                outputs = self._outputs(lr_in, levels, needed)
            self._discriminator_backward(adversarial[levels], outputs, targets, levels, step, levels == levels_used[-1])
        self._step_optimizers([opt_d], [sched_d])

    def _discriminator_backward(
        self,
        adversarial: list[AdversarialLoss],
        outputs: dict[float, list[torch.Tensor]],
        targets: list[torch.Tensor],
        levels: int,
        step: int,
        last: bool,
    ) -> None:
        """Eq. 9 at one level count: D's gradients accumulate; the losses detach G's outputs themselves."""
        if self.d_call is None:
            raise TrainingError(f"{adversarial[0].name}: an adversarial loss needs a discriminator; the model has none")
        # D itself, or its DDP / compiled wrapper: called exactly as D is, which is all a loss does with it
        d_call = cast(Discriminator, self.d_call)
        with self._accumulate(d_call, last):
            with self.amp.autocast():
                values = [loss.discriminator_loss(outputs, targets, discriminator=d_call) for loss in adversarial]
            for loss, value in zip(adversarial, values, strict=True):
                self._record(f"d_loss/{loss.name}@L{levels}", value, f"{loss.name} (discriminator)", levels, step)
            self.amp.backward(torch.stack(values).sum())

    def _step_optimizers(
        self,
        optimizers: Sequence[torch.optim.Optimizer | None],
        schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler | None],
    ) -> None:
        """Step ``optimizers`` and advance ``schedulers``; the step's losses are complete."""
        self.amp.step(*optimizers)
        with warnings.catch_warnings():
            # fp16: the scaler skips the optimizers' step on overflow (the first steps find the scale); the
            # schedule still counts every step, which is what a resumed run recomputes, so the warning is noise
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for scheduler in schedulers:
                if scheduler is not None:
                    scheduler.step()
        self.log.end_step()

    def read_losses(self, flush: bool) -> dict[str, float]:
        """The loss averages since the last flush (``flush``), or only the check that none was non-finite
        (``{}``): the one read-back of the losses, which stay on the device between reads.  Raises
        :class:`NonFiniteLoss` for the first non-finite one."""
        if flush:
            return self.log.flush()
        self.log.check()
        return {}

    def term_of(self, key: str) -> tuple[str, int]:
        """(loss term name, level count) of a logged loss key, for an error that names them."""
        return self.terms[key]

    def _accumulate(self, module: Any, last: bool):
        """DDP's no_sync for all but the last level: gradients are averaged across ranks once per step."""
        if self.ctx.active and not last and hasattr(module, "no_sync"):
            return module.no_sync()
        return contextlib.nullcontext()

    def _discriminator_trainable(self, flag: bool) -> None:
        if self.discriminator is not None:
            for p in self.discriminator.parameters():
                p.requires_grad_(flag)
