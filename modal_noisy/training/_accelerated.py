"""Co-teaching on several processes or GPUs through Hugging Face Accelerate (skorch's ``AccelerateMixin``)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from skorch.hf import AccelerateMixin
from torch import nn

from modal_noisy._validation import check_bool
from modal_noisy.training._coteaching import CoTeachingClassifier
from modal_noisy.training._distributed import BatchRows, BatchShard, gather_rows

__all__ = ["AcceleratedCoTeachingClassifier"]


def _discard(*args: Any, **kwargs: Any) -> None:
    """The epoch log's sink on the processes other than the main one."""


class AcceleratedCoTeachingClassifier(AccelerateMixin, CoTeachingClassifier):
    """:class:`~modal_noisy.CoTeachingClassifier` trained by an ``accelerate.Accelerator``.

    Run the same script on every process with ``accelerate launch`` (``--num_processes N``, ``--cpu``
    for processes on the CPU); with one process, or under plain ``python``, it trains as
    :class:`~modal_noisy.CoTeachingClassifier` does, with the accelerator's mixed precision. Each process
    trains both networks (wrapped in ``DistributedDataParallel``) on its shard of every training batch;
    the per-sample rows of the step (dataset index, label, losses, logits, VoG gradients) are gathered
    from all processes (:mod:`modal_noisy.training._distributed`, the padding of the last batch
    dropped), the selection runs on the whole global batch, and every process writes the same rows
    into its per-sample state. So the noise-rate and class-reserve statistics, the VoG ring buffers,
    ``clean_mask_``, ``vog_`` and ``noise_rate_`` are identical on every process, and they match a
    single-process run of the same global batches and seed up to floating-point reduction order
    (BatchNorm on the CPU normalises each process's shard; on GPUs the networks are converted to
    :class:`torch.nn.SyncBatchNorm` when there is more than one process).

    Build the accelerator with ``DataLoaderConfiguration(split_batches=True)`` so that
    ``batch_size`` is the global batch whatever the number of processes (it must then be divisible
    by it); with Accelerate's default each process draws ``batch_size`` samples and the global batch
    is ``num_processes × batch_size``. Validation, prediction and the ``vog_source="checkpoint"``
    pass are not sharded: every process computes them in full, so their results need no gathering.
    :meth:`fine_tune` (phase-2 recalibration) shards its batches and averages gradients the same
    way. Saving (``save_params``, skorch's ``Checkpoint``) happens on the main process only
    (``accelerator.is_main_process``); guard your own writes the same way.

    Parameters
    ----------
    module, **kwargs
        As for :class:`~modal_noisy.CoTeachingClassifier`.
    accelerator : accelerate.Accelerator
        Its ``mixed_precision`` (``"bf16"``, ``"fp16"``) sets the autocast of the forward passes; its
        ``device`` is the training device.
    channels_last : bool, default=False
        Keep both networks' weights in channels-last memory format (faster convolutions on
        tensor-core GPUs, mainly under bf16; convolution outputs follow the weights' format).
    device : None or the accelerator's device, default=None
        None takes ``accelerator.device`` when the net is initialised (``device`` is then set to it).
    unwrap_after_train : bool, default=True
        As in skorch: unwrap the networks after training (needed to pickle the net).
    callbacks__print_log__sink : "auto" or callable, default="auto"
        ``"auto"``: the epoch log is printed by the main process only (and not with ``verbose=0``).
    """

    def __init__(
        self,
        module: Any,
        *args: Any,
        accelerator: Any,
        channels_last: bool = False,
        device: Any = None,
        unwrap_after_train: bool = True,
        callbacks__print_log__sink: Any = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            module,
            *args,
            accelerator=accelerator,
            device=device,
            unwrap_after_train=unwrap_after_train,
            callbacks__print_log__sink=callbacks__print_log__sink,
            **kwargs,
        )
        self.channels_last = channels_last

    # the co-teaching step and the plain evaluation step, not the mixin's replacements
    train_step_single = CoTeachingClassifier.train_step_single
    evaluation_step = CoTeachingClassifier.evaluation_step

    def initialize(self) -> AcceleratedCoTeachingClassifier:
        """Initialise as :class:`CoTeachingClassifier`, then prepare networks and optimizers."""
        if self.device is None:
            self.device = self._accelerator_device()
        check_bool(self.channels_last, "channels_last")
        self._wrapped_with_accelerator = False  # new networks: prepare them again
        CoTeachingClassifier.initialize(self)
        self._initialize_accelerator()
        return self

    def _initialize_callbacks(self) -> AcceleratedCoTeachingClassifier:
        # "auto": the main process prints (and honours verbose=0); the others print nothing
        if self.callbacks__print_log__sink == "auto":
            self.callbacks__print_log__sink = print if self.accelerator.is_main_process else _discard
        return super()._initialize_callbacks()

    def _initialize_accelerator(self) -> AcceleratedCoTeachingClassifier:
        # the criterion has no parameters: DistributedDataParallel refuses to wrap it
        criteria, self._criteria = self._criteria, []
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def _validate_params(self) -> None:
        # skorch's own checks; the mixin's "device must be None" does not apply once device is the
        # accelerator's (set by initialize)
        super(AccelerateMixin, self)._validate_params()
        expected = self._accelerator_device()
        if torch.device(self.device) != torch.device(expected):
            raise ValueError(
                f"device must be None or the accelerator's device {expected!r} (got {self.device!r})"
            )

    def _accelerator_device(self) -> str:
        # Accelerate names CPU processes "cpu:0", which skorch's unpickling cannot map: plain "cpu"
        device = torch.device(self.accelerator.device)
        return "cpu" if device.type == "cpu" else str(device)

    def initialize_module(self) -> AcceleratedCoTeachingClassifier:
        """Both networks, with SyncBatchNorm on several GPUs and channels-last weights on request."""
        super().initialize_module()
        sync = self.accelerator.num_processes > 1 and torch.device(self.accelerator.device).type == "cuda"
        for name in ("module_", "module2_"):
            module = getattr(self, name)
            if sync:
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            if self.channels_last:
                module = module.to(memory_format=torch.channels_last)
            setattr(self, name, module)
        return self

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Training batches are sharded across processes; evaluation batches are not."""
        iterator = CoTeachingClassifier.get_iterator(self, dataset, training=training)
        return self.accelerator.prepare(iterator) if training else iterator

    def _step_optimizer(self, step_fn: Any) -> None:
        # no closure: Accelerate's gradient scaler does not take one
        for name in self._optimizers:
            getattr(self, name + "_").step()

    def _gather_rows(self, rows: BatchRows) -> tuple[BatchRows, BatchShard | None]:
        return gather_rows(rows, self.run_state_.seen)

    def _backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return self.accelerator.autocast()

    def _prepare_fine_tune(self, *objects: Any) -> tuple[Any, ...]:
        return tuple(self.accelerator.prepare(*objects))

    def _finish_fine_tune(self, trained: nn.Module) -> None:
        # restore the network's own forward (preparing it under mixed precision patched it)
        self.accelerator.unwrap_model(trained, keep_fp32_wrapper=False)

    def _sum_across_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(tensor, reduction="sum")
