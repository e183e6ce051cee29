"""One co-teaching step's per-sample rows, gathered across processes by dataset index.

Under multi-process training (Hugging Face Accelerate, ``torch.distributed``) each rank trains on its
shard of a global batch. The clean-sample selection, the noise-rate statistics and the VoG ring buffers
must nevertheless see the whole global batch, exactly as a single process would, so every rank:

1. packs the rows of its shard (dataset index, label, both networks' losses, summed logits, VoG
   gradients) into one tensor and all-gathers it (:func:`gather_rows`);
2. drops the padding a distributed sampler adds to even out the last batch: a row whose dataset index
   was already trained on in this epoch, or repeats an earlier row of the same global batch;
3. runs the single-process code on the deduplicated global rows, so every rank holds the same
   per-sample state and ends with the same ``clean_mask_``, ``vog_`` and ``noise_rate_``;
4. maps the global selection back to its own rows (:meth:`BatchShard.local`) for the backward pass.

Only ``torch.distributed`` collectives are used here (Accelerate sets up the process group); the
merging itself (:func:`merge_chunks`) is a pure function, tested without processes.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "BatchRows",
    "BatchShard",
    "from_main_process",
    "gather_rows",
    "is_distributed",
    "is_main_process",
    "merge_chunks",
    "on_main_process",
]

T = TypeVar("T")


@dataclass
class BatchRows:
    """Per-sample rows of one training step (one row per sample, aligned across fields).

    ``grad1`` / ``grad2`` (the VoG gradients) are None when no VoG is taken from the training pass.
    """

    index: torch.Tensor
    y: torch.Tensor
    loss1: torch.Tensor
    loss2: torch.Tensor
    logits: torch.Tensor
    grad1: torch.Tensor | None = None
    grad2: torch.Tensor | None = None


@dataclass
class BatchShard:
    """Where this rank's rows sit in the deduplicated global batch.

    Attributes
    ----------
    position : LongTensor of shape (local rows,)
        Row of each local sample in the global batch; -1 for padding (a duplicate).
    world_size : int
        Number of processes; a rank's loss is scaled by it because data-parallel training averages
        the gradients of the ranks, and the single-process loss is a mean over the global batch.
    """

    position: torch.Tensor
    world_size: int

    def local(self, values: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global per-sample tensor; padding rows get zero (False)."""
        valid = self.position >= 0
        picked = values[self.position.clamp(min=0)]
        return torch.where(valid, picked, torch.zeros((), dtype=picked.dtype, device=picked.device))


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """True on rank 0 of a process group, and always outside one: the process that writes files."""
    return not is_distributed() or dist.get_rank() == 0


def on_main_process(work: Callable[[], T]) -> T:
    """Run ``work()`` on the main process only and hand its result (or its exception) to every process.

    The main process is the one that talks to the expert and writes journals; the others must go on
    with the same answers, or stop with the same error instead of waiting for a collective forever.
    Outside a process group this is just ``work()``.
    """
    if not is_distributed():
        return work()
    outcome: tuple[str, object] | None = None
    own_error: Exception | None = None
    if dist.get_rank() == 0:
        try:
            outcome = ("result", work())
        except Exception as error:  # handed to every process, re-raised below
            own_error = error
            outcome = ("error", error)
        try:
            pickle.loads(pickle.dumps(outcome))  # what the other processes will unpickle
        except Exception:  # what does not survive the trip travels as its message
            value = outcome[1]
            outcome = ("error", RuntimeError(f"{type(value).__name__}: {value}"))
    box = [outcome]
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if own_error is not None:
        raise own_error
    if kind == "error":
        raise value
    return value  # type: ignore[return-value]


def from_main_process(method: Callable[..., T]) -> Callable[..., T]:
    """Decorate a method so that it runs on the main process only (see :func:`on_main_process`)."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> T:
        return on_main_process(lambda: method(*args, **kwargs))

    return run


def _present(rows: BatchRows) -> list[str]:
    return [f.name for f in fields(rows) if getattr(rows, f.name) is not None]


def merge_chunks(
    chunks: list[torch.Tensor], rank: int, seen: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate every rank's packed rows in rank order and drop the padding.

    Parameters
    ----------
    chunks : list of Tensor of shape (rows of rank r, width)
        Packed rows of each rank; column 0 is the dataset index.
    rank : int
        This process's rank (which chunk is its own).
    seen : BoolTensor of shape (n_samples,)
        Samples already trained on in this epoch.

    Returns
    -------
    rows : Tensor of shape (global rows, width)
        The global batch without padding, in rank order (a sampler's global batch order).
    position : LongTensor of shape (rows of this rank,)
        Row of each of this rank's samples in ``rows``; -1 for padding.
    """
    packed = torch.cat(chunks)
    index = packed[:, 0].long()
    n = len(index)
    order = torch.arange(n, device=index.device)
    _, inverse = torch.unique(index, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1 if n else 0,), n, dtype=torch.long, device=index.device)
    first = first.scatter_reduce(0, inverse, order, reduce="amin")
    keep = (first[inverse] == order) & ~seen.to(index.device)[index]
    global_row = torch.where(keep, torch.cumsum(keep.long(), 0) - 1, torch.full_like(order, -1))
    start = sum(len(c) for c in chunks[:rank])
    return packed[keep], global_row[start : start + len(chunks[rank])]


def _all_gather_rows(packed: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``packed`` (the row counts may differ), in rank order."""
    world = dist.get_world_size()
    size = torch.tensor([len(packed)], dtype=torch.long, device=packed.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s) for s in sizes]
    padded = packed.new_zeros((max(counts), packed.shape[1]))
    padded[: len(packed)] = packed
    out = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(out, padded)
    return [chunk[:count] for chunk, count in zip(out, counts, strict=True)]


def gather_rows(rows: BatchRows, seen: torch.Tensor) -> tuple[BatchRows, BatchShard]:
    """All-gather one step's rows across the process group and drop the padding (see module docstring).

    Every rank gets the same global rows (a float64 round trip is exact for the integer indices and
    labels and for float32/bfloat16/float16 values). With a single process the rows come back as
    they are, minus padding.

    Parameters
    ----------
    rows : BatchRows
        This rank's rows.
    seen : BoolTensor of shape (n_samples,)
        Samples already trained on in this epoch (identical on every rank).
    """
    names = _present(rows)
    columns = [getattr(rows, name).detach() for name in names]
    n = len(rows.index)
    flat = [c.reshape(n, -1) for c in columns]
    packed = torch.cat([c.to(torch.float64) for c in flat], dim=1)
    if is_distributed():
        chunks, rank, world = _all_gather_rows(packed), dist.get_rank(), dist.get_world_size()
    else:
        chunks, rank, world = [packed], 0, 1
    merged, position = merge_chunks(chunks, rank, seen)
    out = {}
    start = 0
    for name, column, part in zip(names, columns, flat, strict=True):
        width = part.shape[1]
        value = merged[:, start : start + width].to(column.dtype)
        out[name] = value.reshape(len(merged), *column.shape[1:])
        start += width
    return replace(rows, **out), BatchShard(position, world)
