"""Phase 2: active label cleaning with an expert in the loop.

:class:`ActiveLabelCleaner` runs phase 1 (robust training on the noisy labels), then spends the expert's
budget round by round: a query strategy ranks the *noisy pool* (samples phase 1 did not keep and nobody has
relabelled yet), the oracle answers, the answers join the clean set, network 1 is recalibrated on the clean
set, and the model is evaluated. Only queried samples receive oracle labels and only they spend budget;
samples phase 1 kept as clean keep their *given* label (the reference code's free restoration of true labels
is an oracle leak we do not reproduce).

Every accepted answer is appended to a JSONL journal and fsync'ed before recalibration starts. The whole
loop is deterministic on the CPU for a fixed ``random_state``, so :meth:`ActiveLabelCleaner.resume` rebuilds
the state from phase 1 (loaded from the snapshot saved beside the journal, or retrained) and the journalled
rounds (answers from the journal, not the oracle) and then continues with the oracle: a run killed at any
moment and resumed ends in the same labels and metrics as an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from modal_noisy._journal import RelabelJournal, dataset_fingerprint
from modal_noisy._snapshot import Phase1Snapshot, estimator_digest
from modal_noisy._validation import (
    check_choice,
    check_finite_array,
    check_fraction,
    check_labels,
    check_positive_int,
    check_same_length,
)
from modal_noisy.audit import audit_noise_rate, draw_audit
from modal_noisy.metrics import CleaningReport, classification_metrics, selection_metrics
from modal_noisy.strategies import STRATEGIES, get_strategy, keywords_for

__all__ = ["ActiveLabelCleaner"]

#: Settings whose change makes a journal's recorded rounds meaningless for a resumed run.
_REPLAY_SETTINGS = (
    "strategy",
    "budget_per_round",
    "rounds",
    "recalibration_epochs",
    "lr",
    "momentum",
    "weight_decay",
    "recalibrate",
    "recalibrate_from",
    "random_state",
)


class ActiveLabelCleaner:
    """Budgeted, expert-in-the-loop relabelling of the samples phase 1 could not trust.

    Parameters
    ----------
    estimator : CoTeachingClassifier
        The phase-1 estimator (unfitted; it is cloned). It must provide ``clean_mask_`` after ``fit``,
        ``fine_tune(X, y, epochs=..., lr=..., momentum=..., weight_decay=...)`` and ``predict_proba``.
    strategy : str or callable, default="vog"
        A name from :data:`modal_noisy.strategies.STRATEGIES` or a callable following the query strategy
        contract ``strategy(classifier, X_pool, n_instances, *, labels, random_state, **kw)``.
    budget_per_round : int, default=70
        Labels the expert gives per round.
    rounds : int, default=9
        Number of relabelling rounds.
    audit_size : int, default=0
        Labels the expert checks *before* phase 1, drawn uniformly at random (journalled as round 0,
        counted in the spent budget, excluded from later queries). The share the expert changes
        estimates the noise rate (:func:`modal_noisy.audit.audit_noise_rate`, reported as
        ``report_.phase1["audit"]``); when the estimator's ``forget_rate`` is ``"auto"``, phase 1 uses
        it instead of the loss-based estimate, which overshoots on data the network fits poorly (see
        :mod:`modal_noisy.audit`). Phase 1 trains on the audited samples' corrected labels.
    recalibration_epochs : int, default=25
        Epochs of fine-tuning network 1 on the clean set after each round (SGD, cosine schedule).
    lr, momentum, weight_decay : float
        Recalibration optimiser settings (paper: 0.01, 0.9, 1e-4).
    recalibrate : {"both", "first"}, default="both"
        Which networks are fine-tuned and predict afterwards. ``"first"`` is the paper (network 1
        alone); ``"both"`` keeps phase 1's two-network ensemble, which measured better: fine-tuning
        network 1 alone on a small, imbalanced clean set fell below the phase-1 ensemble.
    recalibrate_from : {"phase1", "previous"}, default="phase1"
        ``"phase1"`` fine-tunes a copy of the phase-1 model on the whole clean set every round, so
        errors of early rounds do not accumulate; ``"previous"`` continues from the last round's model
        (the paper).
    journal : str or Path, optional
        JSONL file receiving every accepted relabel (fsync'ed) and each round's metrics. Without it
        nothing survives a crash. The fitted phase-1 model is saved beside it (``<journal>.phase1.pt``)
        so that :meth:`resume` skips phase 1 when data, labels and estimator parameters are unchanged.
    random_state : int, optional
        Seed of the per-round query generators. The estimator's own ``random_state`` seeds training.
    verbose : int, default=1
        0 silent, 1 one line per round.

    Attributes
    ----------
    estimator_ : CoTeachingClassifier
        The fitted (and recalibrated) model.
    labels_ : ndarray of shape (n_samples,)
        The refined labels: given labels, with the oracle's answers for every queried sample.
    clean_mask_ : ndarray of bool
        Phase 1's clean selection.
    relabelled_mask_ : ndarray of bool
        Samples the oracle answered.
    report_ : CleaningReport
        Per-round figures (also returned by :meth:`fit`).
    """

    def __init__(
        self,
        estimator: Any,
        strategy: str | Callable[..., np.ndarray] = "vog",
        *,
        budget_per_round: int = 70,
        rounds: int = 9,
        audit_size: int = 0,
        recalibration_epochs: int = 25,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        recalibrate: str = "both",
        recalibrate_from: str = "phase1",
        journal: str | Path | None = None,
        random_state: int | None = None,
        verbose: int = 1,
    ) -> None:
        self.estimator = estimator
        self.strategy = strategy
        self.budget_per_round = budget_per_round
        self.rounds = rounds
        self.audit_size = audit_size
        self.recalibration_epochs = recalibration_epochs
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.recalibrate = recalibrate
        self.recalibrate_from = recalibrate_from
        self.journal = journal
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        X: Any,
        y_noisy: Any,
        oracle: Callable[..., np.ndarray],
        *,
        X_val: Any = None,
        y_val: Any = None,
        X_test: Any = None,
        y_test: Any = None,
        y_true: Any = None,
    ) -> CleaningReport:
        """Run phase 1 and the relabelling rounds; return the report.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W)
            Training images.
        y_noisy : array-like of shape (n_samples,)
            The given, possibly wrong, labels.
        oracle : callable
            ``oracle(indices, *, current_labels, round_index) -> labels``; see :mod:`modal_noisy.oracles`.
        X_val, y_val : array-like
            Clean validation split: the model is evaluated on it after phase 1 and after every round.
        X_test, y_test : array-like, optional
            Clean test split; when given, it is evaluated as well (``test_`` columns of the report).
        y_true : array-like, optional
            The true training labels, for evaluation only (selection precision, noisy labels remaining).
            Defaults to the oracle's ``y_true`` when the oracle is a simulation. Never used for training.

        Raises
        ------
        ValueError
            On invalid settings or inputs, before any training; when the journal already holds relabels
            (use :meth:`resume`) or belongs to another data set.
        """
        return self._run(X, y_noisy, oracle, X_val, y_val, X_test, y_test, y_true, resume=False)

    @classmethod
    def resume(
        cls,
        journal: str | Path,
        estimator: Any,
        X: Any,
        y_noisy: Any,
        oracle: Callable[..., np.ndarray],
        *,
        strategy: str | Callable[..., np.ndarray] | None = None,
        **fit_kwargs: Any,
    ) -> tuple[ActiveLabelCleaner, CleaningReport]:
        """Continue a run from its journal and return ``(cleaner, report)``.

        The settings come from the journal's header; pass ``strategy`` again only when the run used a
        callable (a name is stored). Journalled answers are replayed instead of asking the oracle again,
        so no relabel is lost and none is paid for twice.

        Raises
        ------
        FileNotFoundError
            When ``journal`` does not exist.
        ValueError
            When the journal was written for another data set or by other settings.
        """
        path = Path(journal)
        if not path.is_file():
            raise FileNotFoundError(f"journal {str(path)!r} does not exist; nothing to resume")
        settings = RelabelJournal(path).read().header["settings"]
        recorded_strategy = settings["strategy"]
        if strategy is None:
            if recorded_strategy.startswith("<callable"):
                raise ValueError(
                    f"the journal {str(path)!r} was written with a callable strategy "
                    f"({recorded_strategy}); pass it again as strategy="
                )
            strategy = recorded_strategy
        cleaner = cls(
            estimator,
            strategy,
            budget_per_round=settings["budget_per_round"],
            rounds=settings["rounds"],
            audit_size=settings.get("audit_size", 0),
            recalibration_epochs=settings["recalibration_epochs"],
            lr=settings["lr"],
            momentum=settings["momentum"],
            weight_decay=settings["weight_decay"],
            recalibrate=settings.get("recalibrate", "first"),
            recalibrate_from=settings.get("recalibrate_from", "previous"),
            journal=path,
            random_state=settings["random_state"],
            verbose=settings.get("verbose", 1),
        )
        report = cleaner._run(
            X,
            y_noisy,
            oracle,
            fit_kwargs.pop("X_val", None),
            fit_kwargs.pop("y_val", None),
            fit_kwargs.pop("X_test", None),
            fit_kwargs.pop("y_test", None),
            fit_kwargs.pop("y_true", None),
            resume=True,
        )
        if fit_kwargs:
            raise TypeError(f"resume() got unexpected keyword arguments {sorted(fit_kwargs)}")
        return cleaner, report

    # ------------------------------------------------------------------ validation
    def _strategy_function(self) -> Callable[..., np.ndarray]:
        if callable(self.strategy):
            return self.strategy
        if not isinstance(self.strategy, str) or self.strategy not in STRATEGIES:
            valid = ", ".join(repr(name) for name in sorted(STRATEGIES))
            raise ValueError(f"strategy must be one of {valid} or a callable (got {self.strategy!r})")
        return get_strategy(self.strategy)

    def _settings(self) -> dict[str, Any]:
        strategy = self.strategy
        if callable(strategy):
            strategy = f"<callable {getattr(strategy, '__qualname__', type(strategy).__name__)}>"
        return {
            "strategy": strategy,
            "budget_per_round": self.budget_per_round,
            "rounds": self.rounds,
            "audit_size": self.audit_size,
            "recalibration_epochs": self.recalibration_epochs,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "recalibrate": self.recalibrate,
            "recalibrate_from": self.recalibrate_from,
            "random_state": self.random_state,
            "estimator": type(self.estimator).__name__,
            "estimator_random_state": getattr(self.estimator, "random_state", None),
        }

    def _validate(self, X, y_noisy, oracle, X_val, y_val, X_test, y_test, y_true):
        query = self._strategy_function()
        budget = check_positive_int(self.budget_per_round, "budget_per_round")
        rounds = check_positive_int(self.rounds, "rounds")
        audit_size = check_positive_int(self.audit_size, "audit_size", minimum=0)
        check_positive_int(self.recalibration_epochs, "recalibration_epochs")
        check_fraction(self.lr, "lr", low=0.0, high=np.inf, low_inclusive=False)
        check_fraction(self.momentum, "momentum", high_inclusive=False)
        check_fraction(self.weight_decay, "weight_decay", high=np.inf)
        check_choice(self.recalibrate, "recalibrate", ("both", "first"))
        check_choice(self.recalibrate_from, "recalibrate_from", ("phase1", "previous"))
        if not callable(oracle):
            raise TypeError(f"oracle must be callable (got {type(oracle).__name__})")
        for method in ("fit", "fine_tune", "predict_proba"):
            if not hasattr(self.estimator, method):
                raise TypeError(
                    f"estimator must provide {method}() (got {type(self.estimator).__name__}); "
                    "use modal_noisy.CoTeachingClassifier"
                )

        X = check_finite_array(X, "X")
        n_samples = check_same_length(X, y_noisy, "X", "y_noisy")
        n_classes = _n_classes(self.estimator)
        y_noisy = check_labels(y_noisy, "y_noisy", n_classes=n_classes)
        if self.journal is not None and getattr(self.estimator, "random_state", None) is None:
            raise ValueError(
                "estimator.random_state must be an integer when a journal is kept (got None): "
                "resuming replays phase 1 and the journalled rounds, which needs a seeded run"
            )
        if budget > n_samples:
            raise ValueError(
                f"budget_per_round must be <= the number of training samples "
                f"(got {budget}, the training set has {n_samples})"
            )
        if audit_size + budget * rounds > n_samples:
            raise ValueError(
                f"audit_size + budget_per_round * rounds must be <= the number of training samples "
                f"(got {audit_size} + {budget} * {rounds} = {audit_size + budget * rounds}, the "
                f"training set has {n_samples})"
            )
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val are required: the clean split every round is evaluated on")
        X_val = check_finite_array(X_val, "X_val")
        check_same_length(X_val, y_val, "X_val", "y_val")
        y_val = check_labels(y_val, "y_val", n_classes=n_classes)
        if (X_test is None) != (y_test is None):
            raise ValueError("X_test and y_test must be given together")
        if X_test is not None:
            X_test = check_finite_array(X_test, "X_test")
            check_same_length(X_test, y_test, "X_test", "y_test")
            y_test = check_labels(y_test, "y_test", n_classes=n_classes)
        if y_true is None:
            y_true = getattr(oracle, "y_true", None)
        if y_true is not None:
            check_same_length(X, y_true, "X", "y_true")
            y_true = check_labels(y_true, "y_true", n_classes=n_classes)
        return query, X, y_noisy, X_val, y_val, X_test, y_test, y_true, n_classes

    # ------------------------------------------------------------------ the loop
    def _run(self, X, y_noisy, oracle, X_val, y_val, X_test, y_test, y_true, *, resume):
        query, X, y_noisy, X_val, y_val, X_test, y_test, y_true, n_classes = self._validate(
            X, y_noisy, oracle, X_val, y_val, X_test, y_test, y_true
        )
        lock = RelabelJournal(self.journal).lock() if self.journal is not None else nullcontext()
        with lock:  # one run per journal at a time
            return self._loop(
                query, X, y_noisy, oracle, X_val, y_val, X_test, y_test, y_true, n_classes, resume=resume
            )

    def _loop(self, query, X, y_noisy, oracle, X_val, y_val, X_test, y_test, y_true, n_classes, *, resume):
        settings = self._settings()
        # one pass over X: the journal's data check and the phase-1 snapshot's key share it
        fingerprint = dataset_fingerprint(X, y_noisy) if self.journal is not None else None
        journal, replay = self._open_journal(fingerprint, settings, resume=resume)

        started = time.perf_counter()
        rng = check_random_state(self.random_state)
        labels = y_noisy.copy()
        relabelled = np.zeros(len(labels), dtype=bool)
        estimator = clone(self.estimator)
        audit = None
        if self.audit_size:
            seed = rng.randint(np.iinfo(np.int32).max)
            audited = draw_audit(len(labels), self.audit_size, random_state=seed)
            answers = self._answers(0, audited, labels, oracle, replay, journal, n_classes)
            audit = audit_noise_rate(labels[audited], answers)
            labels[audited] = answers
            relabelled[audited] = True
            if getattr(estimator, "forget_rate", None) == "auto":
                # the audited labels are now right: the rest keeps the audited rate
                remaining = audit.noise_rate * (len(labels) - len(audited)) / len(labels)
                estimator.set_params(forget_rate=remaining)
        estimator = self._phase1(estimator, X, labels, fingerprint, resume=resume)
        n_classes = n_classes or len(estimator.classes_)
        clean_mask = np.asarray(estimator.clean_mask_, dtype=bool).copy()
        phase1_model = copy.deepcopy(estimator) if self.recalibrate_from == "phase1" else None

        report = CleaningReport(
            phase1=self._phase1_summary(estimator, clean_mask, y_noisy, y_true, n_classes, audit),
            rounds=[],
            settings=settings,
            class_names=[str(c) for c in range(n_classes)],
        )
        spent = int(relabelled.sum())
        report.rounds.append(
            self._evaluate(
                estimator, 0, spent, None, 0, labels, y_true, X_val, y_val, X_test, y_test, started
            )
        )
        self._log(report.rounds[-1])

        for round_index in range(1, self.rounds + 1):
            round_seed = int(rng.randint(np.iinfo(np.int32).max))
            pool = np.flatnonzero(~clean_mask & ~relabelled)
            n_query = min(self.budget_per_round, len(pool))
            if n_query == 0:
                break
            positions = np.asarray(
                query(
                    estimator,
                    X[pool],
                    n_query,
                    labels=labels[pool],
                    random_state=round_seed,
                    **keywords_for(query, pool_indices=pool),
                )
            )
            queried = pool[positions]
            answers = self._answers(round_index, queried, labels, oracle, replay, journal, n_classes)
            old_labels = labels[queried].copy()
            labels[queried] = answers
            relabelled[queried] = True
            spent += len(queried)

            trusted = clean_mask | relabelled
            if phase1_model is not None:
                estimator = copy.deepcopy(phase1_model)
            estimator.fine_tune(
                X[trusted],
                labels[trusted],
                epochs=self.recalibration_epochs,
                lr=self.lr,
                momentum=self.momentum,
                weight_decay=self.weight_decay,
                networks=self.recalibrate,
            )
            precision = None if y_true is None else float(np.mean(old_labels != y_true[queried]))
            entry = self._evaluate(
                estimator, round_index, spent, precision, len(queried), labels, y_true,
                X_val, y_val, X_test, y_test, started,
            )
            entry["n_changed"] = int(np.sum(old_labels != answers))
            report.rounds.append(entry)
            if journal is not None:
                journal.append_event("round_completed", **_jsonable(entry))
            self._log(entry)

        self.estimator_ = estimator
        self.labels_ = labels
        self.clean_mask_ = clean_mask
        self.relabelled_mask_ = relabelled
        self.n_classes_ = n_classes
        self.report_ = report
        return report

    def _phase1(self, estimator, X, labels, fingerprint, *, resume):
        """Fit phase 1, or load it from the snapshot beside the journal when resuming the same run."""
        if self.journal is None:
            return estimator.fit(X, labels)
        # the given labels are in the fingerprint; the audit's answers change only the phase-1 labels
        labels_digest = hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()
        key = f"{fingerprint}:{labels_digest}:{estimator_digest(estimator)}"
        snapshot = Phase1Snapshot(self.journal, key)
        saved = snapshot.load() if resume else None
        if saved is not None:
            if self.verbose:
                print(f"phase 1 loaded from {snapshot.path}", flush=True)
            return saved
        estimator.fit(X, labels)
        try:
            snapshot.save(estimator)
        except (pickle.PicklingError, TypeError, AttributeError, OSError, RuntimeError) as error:
            # only a speed-up for resume: an estimator that cannot be pickled must not stop the run
            warnings.warn(
                f"phase 1 could not be saved to {snapshot.path} ({type(error).__name__}: {error}); "
                "a resumed run will retrain it",
                RuntimeWarning,
                stacklevel=3,
            )
        return estimator

    def _open_journal(self, fingerprint, settings, *, resume):
        """Open (or create) the journal; return it and the recorded answers ``{round: (idx, labels)}``."""
        if self.journal is None:
            if resume:
                raise ValueError("resume needs a journal path")
            return None, {}
        journal = RelabelJournal(self.journal)
        state = journal.start(
            fingerprint,
            settings,
            # journals written before the audit existed stay resumable when it is off
            compare_settings=_REPLAY_SETTINGS + (("audit_size",) if self.audit_size else ()),
        )
        recorded = {
            round_index: (
                np.array([index for index, _ in pairs], dtype=np.int64),
                np.array([label for _, label in pairs], dtype=np.int64),
            )
            for round_index, pairs in state.relabels.items()
        }
        if recorded and not resume:
            n_recorded = sum(len(idx) for idx, _ in recorded.values())
            raise ValueError(
                f"journal {str(self.journal)!r} already holds {n_recorded} relabels; continue it with "
                "ActiveLabelCleaner.resume(...) or choose a new journal path"
            )
        return journal, recorded

    def _answers(self, round_index, queried, labels, oracle, replay, journal, n_classes):
        """Journalled answers for this round first; the oracle only for what the journal lacks."""
        answers = np.empty(len(queried), dtype=np.int64)
        known = np.zeros(len(queried), dtype=bool)
        if round_index in replay:
            recorded_idx, recorded_labels = replay[round_index]
            lookup = dict(zip(recorded_idx.tolist(), recorded_labels.tolist(), strict=True))
            foreign = set(lookup) - set(queried.tolist())
            if foreign:
                raise ValueError(
                    f"the journal's round {round_index} answers samples this run did not query "
                    f"(e.g. index {min(foreign)}): the data, the estimator or its random_state differ "
                    "from the journalled run"
                )
            for position, index in enumerate(queried.tolist()):
                if index in lookup:
                    answers[position] = lookup[index]
                    known[position] = True
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
            if journal is not None:
                # durable before recalibration: an expert's answers are never lost
                journal.append_relabels(round_index, todo, labels[todo], given)
            answers[missing] = given
        return answers

    # ------------------------------------------------------------------ evaluation
    def _phase1_summary(self, estimator, clean_mask, y_noisy, y_true, n_classes, audit):
        summary: dict[str, Any] = {
            "n_samples": len(y_noisy),
            "n_selected_clean": int(clean_mask.sum()),
            "noise_rate_estimate": _optional_float(getattr(estimator, "noise_rate_", None)),
        }
        if audit is not None:
            summary["audit"] = dataclasses.asdict(audit)
        if y_true is not None:
            is_noisy = y_noisy != y_true
            summary["true_noise_rate"] = float(is_noisy.mean())
            # the base rate a query strategy must beat: the share of wrong labels in the noisy pool
            summary["noisy_pool_noise_rate"] = (
                float(is_noisy[~clean_mask].mean()) if (~clean_mask).any() else 0.0
            )
            summary["selection"] = selection_metrics(clean_mask, is_noisy, y_true, n_classes=n_classes)
        return summary

    def _evaluate(
        self, estimator, round_index, spent, precision, n_queried, labels, y_true,
        X_val, y_val, X_test, y_test, started,
    ):
        entry: dict[str, Any] = {
            "round": round_index,
            "labels_spent": spent,
            "n_queried": n_queried,
            "relabel_precision": precision,
            "noisy_remaining": None if y_true is None else int(np.sum(labels != y_true)),
        }
        # score the decisions the estimator's predict makes (decision="balanced" divides by a prior)
        prior = getattr(estimator, "decision_prior_", None)
        entry.update(classification_metrics(y_val, estimator.predict_proba(X_val), class_prior=prior))
        if X_test is not None:
            test = classification_metrics(y_test, estimator.predict_proba(X_test), class_prior=prior)
            entry.update({f"test_{key}": value for key, value in test.items()})
        entry["time_s"] = round(time.perf_counter() - started, 3)
        return entry

    def _log(self, entry: dict[str, Any]) -> None:
        if not self.verbose:
            return
        noisy = "" if entry["noisy_remaining"] is None else f"  noisy labels left {entry['noisy_remaining']}"
        precision = entry["relabel_precision"]
        precision_text = "" if precision is None else f"  relabel precision {precision:.2f}"
        print(
            f"round {entry['round']:>2}  labels spent {entry['labels_spent']:>5}"
            f"  balanced acc {entry['balanced_accuracy']:.3f}{precision_text}{noisy}",
            flush=True,
        )


def _n_classes(estimator: Any) -> int | None:
    """Number of classes the estimator's module is built for, when it says."""
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    value = params.get("module__n_classes")
    return int(value) if value is not None else None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _jsonable(entry: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in entry.items():
        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out
