"""Label-preserving random flips, rotations and shifts of training batches, as a ``collate_fn``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import default_collate

from modal_noisy._validation import check_choice, check_positive_int
from modal_noisy.training._indexed import X_KEY

__all__ = ["FLIP_MODES", "RandomAugment"]

#: Values accepted for ``flips`` by :class:`RandomAugment` (and ``recommended_net_kwargs(augment=...)``).
FLIP_MODES: tuple[str, ...] = ("flips", "dihedral")


class RandomAugment:
    """A ``collate_fn`` that collates a batch, then flips, rotates and shifts each image at random.

    Use it for the training iterator only (skorch: ``iterator_train__collate_fn=RandomAugment()``);
    prediction and scoring stay unaugmented. Flips and rotations only for images whose label does
    not depend on orientation (fundus photographs, dermoscopy, histology), never for digits or
    text; small shifts suit almost any image.

    Parameters
    ----------
    flips : {"flips", "dihedral"} or None, default="flips"
        ``"flips"``: horizontal and vertical flip, each with probability 1/2 (4 variants).
        ``"dihedral"``: additionally a transpose with probability 1/2 (all 8 symmetries of the
        square; square images only). None: no flips.
    max_shift : int, default=0
        Translate each image by a uniform random offset in ``[-max_shift, max_shift]`` pixels along
        each axis, filling the border by reflection (it must be smaller than the image's sides).
    random_state : int or None, default=None
        Seed of a private ``torch.Generator`` (created at the first batch); None draws from torch's
        global generator (never seeding it).

    Notes
    -----
    Batches whose input is a tensor of shape ``(N, C, H, W)`` are augmented, and so are the
    images of batches from :class:`modal_noisy.training._indexed.IndexedDataset` (a mapping with
    the images under its reserved key); anything else raises :class:`TypeError`.
    """

    def __init__(
        self, flips: str | None = "flips", *, max_shift: int = 0, random_state: int | None = None
    ) -> None:
        self.flips = flips
        self.max_shift = max_shift
        self.random_state = random_state

    def _generator(self) -> torch.Generator | None:
        if self.random_state is None:
            return None
        gen = getattr(self, "_gen", None)
        if gen is None:
            gen = torch.Generator().manual_seed(int(self.random_state))
            self._gen = gen
        return gen

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Return a randomly flipped, rotated and shifted copy of an NCHW batch."""
        if self.flips is not None:
            check_choice(self.flips, "flips", FLIP_MODES)
        check_positive_int(self.max_shift, "max_shift", minimum=0)
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"RandomAugment needs image batches of shape (N, C, H, W) (got {shape})")
        gen = self._generator()
        if self.flips is not None:
            x = self._flip(x, gen)
        if self.max_shift:
            x = self._shift(x, gen)
        return x

    def _flip(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        draws = torch.rand(x.shape[0], 3, generator=gen).view(-1, 3, 1, 1, 1) < 0.5
        x = torch.where(draws[:, 0], x.flip(-1), x)
        x = torch.where(draws[:, 1], x.flip(-2), x)
        if self.flips == "dihedral":
            if x.shape[-1] != x.shape[-2]:
                raise ValueError(
                    f"flips='dihedral' needs square images (got {x.shape[-2]}×{x.shape[-1]}); "
                    "use flips='flips'"
                )
            # with both flips, one transpose completes the 8 symmetries of the square
            x = torch.where(draws[:, 2], x.transpose(-1, -2), x)
        return x

    def _shift(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.max_shift
        if s >= min(h, w):
            raise ValueError(f"max_shift must be smaller than the image's sides (got {s} for {h}×{w})")
        padded = torch.nn.functional.pad(x, (s, s, s, s), mode="reflect")
        offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=gen)
        # one gather for the whole batch: per-image row and column windows into the padded maps
        rows = (offsets[:, 0:1] + torch.arange(h)).view(n, 1, h, 1)
        cols = (offsets[:, 1:2] + torch.arange(w)).view(n, 1, 1, w)
        return padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(c).view(1, c, 1, 1), rows, cols]

    def __call__(self, batch: list[Any]) -> Any:
        collated = default_collate(batch)
        if not isinstance(collated, (list, tuple)) or len(collated) != 2:
            return self._augment_input(collated)
        xb, yb = collated
        return self._augment_input(xb), yb

    def _augment_input(self, xb: Any) -> Any:
        if isinstance(xb, Mapping) and X_KEY in xb:
            out = dict(xb)
            out[X_KEY] = self.augment(xb[X_KEY])
            return out
        return self.augment(xb)

    def __repr__(self) -> str:
        return (
            f"RandomAugment(flips={self.flips!r}, max_shift={self.max_shift!r}, "
            f"random_state={self.random_state!r})"
        )
