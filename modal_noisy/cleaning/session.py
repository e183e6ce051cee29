"""The durable side of a cleaning run: journal, lock, replay of recorded answers, phase-1 snapshot.

A :class:`CleaningSession` stands between :class:`~modal_noisy.cleaning.ActiveLabelCleaner` and the
oracle. It holds the journal's lock for the whole run (one run per journal), checks that an existing
journal belongs to this data set and these settings, answers a round from the journal when the round
was recorded (so a resumed run never asks the expert twice), asks the oracle only for what is missing
and makes those answers durable before the run goes on, and keeps the fitted phase-1 model beside the
journal so that a resumed run skips phase 1. Without a journal it only asks the oracle and trains.

Under several processes (:class:`~modal_noisy.AcceleratedCoTeachingClassifier` launched with
``accelerate launch``) only the main process holds the lock, reads and writes the journal and the
snapshot and asks the oracle; the other processes receive what it found and the expert's answers, so
every process runs the same rounds.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from modal_noisy._validation import check_labels
from modal_noisy.cleaning.journal import RelabelJournal, dataset_fingerprint
from modal_noisy.cleaning.snapshot import Phase1Snapshot, estimator_digest
from modal_noisy.training._distributed import from_main_process, is_main_process, on_main_process

__all__ = ["CleaningSession"]


class CleaningSession:
    """Journal, lock, replay and phase-1 snapshot of one cleaning run.

    Parameters
    ----------
    journal : str or Path or None
        The JSONL journal; ``None`` keeps nothing (nothing survives a crash).
    settings : mapping
        The run's settings, written to a new journal's header.
    replay_keys : sequence of str
        Settings that must equal an existing journal's: a change makes its recorded rounds meaningless.
    resume : bool
        Whether the run continues a journal that already holds answers (``fit`` refuses such a journal).
    verbose : int, default=0
        Whether to say when phase 1 is loaded from its snapshot.
    """

    def __init__(
        self,
        journal: str | Path | None,
        *,
        settings: Mapping[str, Any],
        replay_keys: Sequence[str],
        resume: bool,
        verbose: int = 0,
    ) -> None:
        if journal is None and resume:
            raise ValueError("resume needs a journal path")
        self.journal = None if journal is None else RelabelJournal(journal)
        self.settings = dict(settings)
        self.replay_keys = tuple(replay_keys)
        self.resume = resume
        self.verbose = verbose
        self._fingerprint: str | None = None
        self._recorded: dict[int, dict[int, int]] = {}

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the journal's lock (see :meth:`RelabelJournal.lock`); nothing to hold without a journal."""
        if self.journal is None or not is_main_process():
            yield
            return
        with self.journal.lock():
            yield

    def open(self, X: np.ndarray, y_noisy: np.ndarray, *, n_classes: int | None = None) -> None:
        """Create the journal, or open it after checking data and settings; load its recorded answers.

        Recorded labels must lie in ``[0, n_classes)`` when ``n_classes`` is given.

        Raises
        ------
        ValueError
            When the journal belongs to another data set or other settings, holds a label out of
            range, or already holds answers and the run is not a resume.
        """
        if self.journal is None:
            return
        self._fingerprint, self._recorded = on_main_process(lambda: self._open(X, y_noisy, n_classes))

    def _open(
        self, X: np.ndarray, y_noisy: np.ndarray, n_classes: int | None
    ) -> tuple[str, dict[int, dict[int, int]]]:
        # one pass over X: the journal's data check and the phase-1 snapshot's key share it
        fingerprint = dataset_fingerprint(X, y_noisy)
        state = self.journal.start(fingerprint, self.settings, compare_settings=self.replay_keys)
        state.check_relabels(self.journal.path, len(y_noisy), n_classes)
        recorded = {round_index: dict(pairs) for round_index, pairs in state.relabels.items()}
        if recorded and not self.resume:
            raise ValueError(
                f"journal {str(self.journal.path)!r} already holds {state.n_relabels} relabels; continue it "
                "with ActiveLabelCleaner.resume(...) or choose a new journal path"
            )
        return fingerprint, recorded

    @from_main_process  # the main process asks the expert; every process gets the answers
    def ask(
        self,
        round_index: int,
        queried: np.ndarray,
        labels: np.ndarray,
        oracle: Callable[..., np.ndarray],
        n_classes: int | None,
    ) -> np.ndarray:
        """The answers for ``queried``: recorded ones from the journal, the oracle's for the rest.

        The oracle's answers are journalled (fsync'ed) before this returns: an expert's answer is
        never lost to a crash in the recalibration that follows.

        Parameters
        ----------
        round_index : int
            The round (0 is the audit).
        queried : ndarray of int
            Positions of the queried samples in the training set.
        labels : ndarray of int
            The current labels of the whole training set.
        oracle : callable
            ``oracle(indices, *, current_labels, round_index) -> labels``.
        n_classes : int or None
            The answers must lie in ``[0, n_classes)``.
        """
        answers = np.empty(len(queried), dtype=np.int64)
        known = self._replay(round_index, queried, answers)
        missing = np.flatnonzero(~known)
        if len(missing):
            todo = queried[missing]
            given = np.asarray(oracle(todo, current_labels=labels[todo].copy(), round_index=round_index))
            given = check_labels(given, "oracle answers", n_classes=n_classes)
            if len(given) != len(todo):
                raise ValueError(
                    f"oracle answers must have one label per queried sample (got {len(given)} for "
                    f"{len(todo)})"
                )
            if self.journal is not None:
                self.journal.append_relabels(round_index, todo, labels[todo], given)
            answers[missing] = given
        return answers

    def _replay(self, round_index: int, queried: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """Fill ``answers`` from the journal's record of the round; return where it knew the answer."""
        recorded = self._recorded.get(round_index, {})
        foreign = set(recorded) - set(queried.tolist())
        if foreign:
            raise ValueError(
                f"the journal's round {round_index} answers samples this run did not query "
                f"(e.g. index {min(foreign)}): the data, the estimator or its random_state differ "
                "from the journalled run"
            )
        known = np.zeros(len(queried), dtype=bool)
        for position, index in enumerate(queried.tolist()):
            if index in recorded:
                answers[position] = recorded[index]
                known[position] = True
        return known

    def record_round(self, entry: Mapping[str, Any]) -> None:
        """Append a finished round's figures to the journal (a ``round_completed`` event)."""
        if self.journal is not None and is_main_process():
            self.journal.append_event("round_completed", **entry)

    def fit_phase1(self, estimator: Any, X: np.ndarray, labels: np.ndarray) -> Any:
        """Fit phase 1, or load it from the snapshot beside the journal when resuming the same run."""
        if self.journal is None:
            return estimator.fit(X, labels)
        # the given labels are in the fingerprint; the audit's answers change only the phase-1 labels
        labels_digest = hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()
        key = f"{self._fingerprint}:{labels_digest}:{estimator_digest(estimator)}"
        snapshot = Phase1Snapshot(self.journal.path, key)
        saved = snapshot.load() if self.resume and is_main_process() else None
        # the main process decides; the others then read the same snapshot (or train as it does)
        if on_main_process(lambda: saved is not None):
            saved = saved if saved is not None else snapshot.load()
            if saved is None:
                raise RuntimeError(f"phase 1 snapshot {snapshot.path} could not be read by this process")
            if self.verbose:
                print(f"phase 1 loaded from {snapshot.path}", flush=True)
            return saved
        estimator.fit(X, labels)
        if not is_main_process():
            return estimator
        try:
            snapshot.save(estimator)
        except (pickle.PicklingError, TypeError, AttributeError, OSError, RuntimeError) as error:
            # only a speed-up for resume: an estimator that cannot be pickled must not stop the run
            warnings.warn(
                f"phase 1 could not be saved to {snapshot.path} ({type(error).__name__}: {error}); "
                "a resumed run will retrain it",
                RuntimeWarning,
                stacklevel=4,
            )
        return estimator
