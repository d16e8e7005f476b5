"""What a stage trains and what moves it: the models on their device, Adam and the learning-rate decay per model,
the precision's scaler, the noise generator, and eq. 7's step over them.

Why an object of its own: this is the state a checkpoint must carry for an exact resume of the optimisation
(weights, optimizer moments, schedules, the fp16 loss scale, the noise stream), and it is built once from the
recipe; the loop (:class:`mgsr.training.trainer.Trainer`) only steps it, reads its losses back and saves it,
beside the state that is the loop's own (the step, the data position, the validation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.optim import Adam
from torch.optim.lr_scheduler import LambdaLR

from mgsr.assembly.build import Built
from mgsr.errors import TrainingError
from mgsr.model.state import load_module_state
from mgsr.recipe import TrainingSpec
from mgsr.runtime.distributed import Context
from mgsr.training.mixed_precision import MixedPrecision, channels_last
from mgsr.training.schedule import set_base_lr, sqrt_decay
from mgsr.training.step import TrainStep


class Optimization:
    """G and D (D None when no loss trains one) on ``device``, their optimizers and schedules, and the step.

    ``spec`` is the recipe's training table with its schedule resolved to steps.
    """

    def __init__(self, built: Built, spec: TrainingSpec, device: torch.device, ctx: Context) -> None:
        self.spec, self.device = spec, device
        self.generator = built.generator.to(device).train()
        self.discriminator = built.discriminator.to(device).train() if built.discriminator is not None else None
        self.losses = [loss.to(device) for loss in built.losses]
        self.amp = MixedPrecision(spec.precision, device)
        self.to_batch = channels_last(spec.channels_last)
        if spec.channels_last:  # 4-d weights as NHWC; G's outputs and the feature networks follow
            for module in (self.generator, self.discriminator, *self.losses):
                if module is not None:
                    module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch 2.13 stubs omit memory_format
        g_call, d_call = self._callers(ctx)
        self.opt_g, self.sched_g, self.opt_d, self.sched_d = self._optimizers()
        self.noise_rng = torch.Generator(device=device).manual_seed(spec.seed + 1)
        self.step = TrainStep(
            generator=self.generator,
            discriminator=self.discriminator,
            g_call=g_call,
            d_call=d_call,
            losses=self.losses,
            scales=spec.scales,
            optimizers=(self.opt_g, self.opt_d),
            schedulers=(self.sched_g, self.sched_d),
            amp=self.amp,
            noise_rng=self.noise_rng,
            device=device,
            ctx=ctx,
            discriminator_warmup_steps=spec.discriminator_warmup_steps,
        )

    def _callers(self, ctx: Context) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
        """What the step calls for G and D: DistributedDataParallel wrappers when data-parallel, compiled when
        ``training.compile``, the modules themselves otherwise."""
        g_call: Callable[..., Any] = self.generator
        d_call: Callable[..., Any] | None = self.discriminator
        if ctx.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            g_call = DistributedDataParallel(self.generator, device_ids=ids)
            if self.discriminator is not None:
                d_call = DistributedDataParallel(self.discriminator, device_ids=ids)
        if self.spec.compile:  # inductor's options: see mgsr.training.compiling
            from mgsr.training.compiling import compiled_pair

            g_call, d_call = compiled_pair(g_call, d_call)
        return g_call, d_call

    def _optimizers(self) -> tuple[Adam, LambdaLR, Adam | None, LambdaLR | None]:
        """Adam for G (its trainable parameters) and D, each with the square-root learning-rate decay."""
        betas = tuple(self.spec.adam_betas)
        if len(betas) != 2:
            raise TrainingError(f"training.adam_betas needs two numbers, got {list(betas)}")
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        opt_g = Adam(trainable, lr=self.spec.lr, betas=betas)
        sched_g = sqrt_decay(opt_g, self.spec.lr_decay_steps)
        opt_d = sched_d = None
        if self.discriminator is not None:
            opt_d = Adam(self.discriminator.parameters(), lr=self.spec.discriminator_lr, betas=betas)
            sched_d = sqrt_decay(opt_d, self.spec.lr_decay_steps)
        return opt_g, sched_g, opt_d, sched_d

    def lr(self) -> float:
        """The generator's learning rate now (logged with the losses)."""
        return float(self.opt_g.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        """The optimisation's part of a checkpoint (the file's layout is the trainer's: it keeps ``noise``, the
        noise generator's state, under ``rng`` beside torch's)."""
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict() if self.discriminator is not None else None,
            "optimizers": {
                "generator": self.opt_g.state_dict(),
                "discriminator": self.opt_d.state_dict() if self.opt_d else None,
            },
            "schedulers": {
                "generator": self.sched_g.state_dict(),
                "discriminator": self.sched_d.state_dict() if self.sched_d else None,
            },
            "noise": self.noise_rng.get_state(),
            "scaler": self.amp.state_dict(),  # fp16's loss scale and growth counter ({} otherwise): exact resume
        }

    def load_state_dict(self, state: Mapping[str, Any], path: Path) -> None:
        """Weights, optimizer moments, schedules, the noise stream and the loss scale from ``state`` (as
        :meth:`state_dict` gives it; checkpoint ``path``'s, named in errors); the learning rates then follow this
        recipe from the checkpoint's step on."""
        if not isinstance(state.get("generator"), dict):
            raise TrainingError(f"checkpoint {path} holds no generator state")
        load_module_state(self.generator, state["generator"], f"checkpoint {path} (generator)")
        if self.discriminator is not None:
            if state.get("discriminator") is None:
                raise TrainingError(f"checkpoint {path} has no discriminator but the recipe has one")
            load_module_state(self.discriminator, state["discriminator"], f"checkpoint {path} (discriminator)")
        try:
            self.opt_g.load_state_dict(state["optimizers"]["generator"])
            self.sched_g.load_state_dict(state["schedulers"]["generator"])
            if self.opt_d is not None and self.sched_d is not None:
                self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
                self.sched_d.load_state_dict(state["schedulers"]["discriminator"])
            self.noise_rng.set_state(state["noise"])
            self.amp.load_state_dict(state.get("scaler"))
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise TrainingError(f"checkpoint {path}: optimizer or RNG state does not fit ({exc})") from None
        set_base_lr(self.sched_g, self.spec.lr)
        if self.sched_d is not None:
            set_base_lr(self.sched_d, self.spec.discriminator_lr)
