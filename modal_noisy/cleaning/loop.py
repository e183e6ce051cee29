"""Phase 2: active label cleaning with an expert in the loop.

:class:`ActiveLabelCleaner` runs phase 1 (robust training on the noisy labels), then spends the expert's
budget round by round: a query strategy ranks the pool (every sample nobody has relabelled yet, or with
``pool="noisy"`` only those phase 1 did not keep), the oracle answers, the answers join the clean set, the
model is recalibrated on the clean set, evaluated, and adopted unless it does worse on the validation
split than the model in use (``keep_best``). Only queried samples receive oracle labels and only they
spend budget; samples phase 1 kept as clean keep their *given* label (the reference code's free
restoration of true labels is an oracle leak we do not reproduce).

Every accepted answer is journalled before recalibration starts (:mod:`modal_noisy.cleaning.session`).
The whole loop is deterministic on the CPU for a fixed ``random_state``, so
:meth:`ActiveLabelCleaner.resume` rebuilds the state from phase 1 (loaded from the snapshot saved beside
the journal, or retrained) and the journalled rounds (answers from the journal, not the oracle) and then
continues with the oracle: a run killed at any moment and resumed ends in the same labels and metrics as
an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state

from modal_noisy._validation import (
    check_bool,
    check_choice,
    check_finite_array,
    check_fraction,
    check_labels,
    check_nonnegative,
    check_positive_int,
    check_same_length,
)
from modal_noisy.cleaning.audit import NoiseAudit, audit_noise_rate, draw_audit
from modal_noisy.cleaning.journal import RelabelJournal
from modal_noisy.cleaning.report import CleaningReport
from modal_noisy.cleaning.session import CleaningSession
from modal_noisy.decision import prior_corrected_predict
from modal_noisy.metrics import classification_metrics, paired_balanced_accuracy_difference, selection_metrics
from modal_noisy.strategies import STRATEGIES, get_strategy, keywords_for

__all__ = ["ActiveLabelCleaner"]

#: The parameters a journal's header records (all but estimator, journal and verbose): a resumed run
#: repeats them, since a change makes the recorded rounds meaningless. RunConfig's phase-2 fields.
CLEANER_SETTINGS = (
    "strategy",
    "pool",
    "budget_per_round",
    "rounds",
    "audit_size",
    "recalibration_epochs",
    "lr",
    "momentum",
    "weight_decay",
    "recalibrate",
    "recalibrate_from",
    "keep_best",
    "keep_best_tolerance",
    "random_state",
)
#: Settings added after journals were first written, with the value that reproduces those journals.
_LATER_SETTINGS = {"keep_best_tolerance": 0.0}
#: What the journal's header records beside the settings above: which estimator ran phase 1.
_ESTIMATOR_SETTINGS = ("estimator", "estimator_random_state")


@dataclass(frozen=True)
class _Inputs:
    """The validated arrays and the oracle of one run."""

    X: np.ndarray
    y_noisy: np.ndarray
    oracle: Callable[..., np.ndarray]
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    y_true: np.ndarray | None
    n_classes: int | None


@dataclass
class _Labels:
    """The labels as the run refines them: the given ones, with the oracle's answers where asked."""

    current: np.ndarray
    relabelled: np.ndarray
    y_true: np.ndarray | None

    @classmethod
    def given(cls, inputs: _Inputs) -> _Labels:
        return cls(inputs.y_noisy.copy(), np.zeros(len(inputs.y_noisy), dtype=bool), inputs.y_true)

    @property
    def spent(self) -> int:
        return int(self.relabelled.sum())

    def pool(self, clean_mask: np.ndarray, which: str) -> np.ndarray:
        """The samples a round may query: nobody has relabelled them yet, and with ``which="noisy"``
        phase 1 did not keep them."""
        if which == "all":
            return np.flatnonzero(~self.relabelled)
        return np.flatnonzero(~clean_mask & ~self.relabelled)

    def relabel(self, indices: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """Apply the oracle's answers; return the labels they replaced."""
        old = self.current[indices].copy()
        self.current[indices] = answers
        self.relabelled[indices] = True
        return old

    def round_record(self, round_index: int, queried: np.ndarray, old: np.ndarray) -> dict[str, Any]:
        """The bookkeeping columns of a round's report record."""
        truth = self.y_true
        return {
            "round": round_index,
            "labels_spent": self.spent,
            "n_queried": len(queried),
            # the share of queried labels that were wrong: budget well spent
            "relabel_precision": None if truth is None or round_index == 0 else float(
                np.mean(old != truth[queried])
            ),
            "noisy_remaining": None if truth is None else int(np.sum(self.current != truth)),
        }


def adopts_candidate(
    y_val: np.ndarray, in_use: np.ndarray, candidate: np.ndarray, tolerance: float = 0.0
) -> bool:
    """``keep_best``'s rule: whether a recalibration with validation decisions ``candidate`` replaces
    the model in use (decisions ``in_use``).

    It is refused only when its balanced accuracy on ``y_val`` falls more than ``tolerance`` standard
    errors of the paired difference below the model in use's; ``tolerance=0`` refuses any loss.
    """
    difference, stderr = paired_balanced_accuracy_difference(y_val, in_use, candidate)
    # the small slack absorbs float rounding, so a tie is adopted
    return difference >= -tolerance * stderr - 1e-12


class ActiveLabelCleaner(BaseEstimator):
    """Budgeted, expert-in-the-loop relabelling of the samples phase 1 could not trust.

    Parameters
    ----------
    estimator : CoTeachingClassifier
        The phase-1 estimator (unfitted; it is cloned). It must provide ``clean_mask_`` after ``fit``,
        ``fine_tune(X, y, epochs=..., lr=..., momentum=..., weight_decay=...)`` and ``predict_proba``.
    strategy : str or callable, default="adaptive_mislabel"
        A name from :data:`modal_noisy.strategies.STRATEGIES` or a callable following the query strategy
        contract ``strategy(classifier, X_pool, n_instances, *, labels, random_state, **kw)``; a
        strategy that takes ``pool_indices`` gets the pool's positions in ``X``, and one that takes
        ``answered`` gets, per earlier round, the labels given and how many of them changed
        (:func:`~modal_noisy.strategies.adaptive_mislabel_query` sizes its shortlist by it). The
        default starts from ``"training_margin"``: cleanlab's normalized margin of the given label
        (its probability minus the largest other one) in the probabilities phase 1's networks gave
        each sample, averaged over the epochs of training (``training_proba_``). A network fits a
        wrong label late, so the average still holds the predictions it made before memorising it,
        where the final model, trained on most of the pool, often agrees with the wrong label
        (``"cleanlab_margin"`` ranks by the final model). While nearly every answer so far fixed a
        label, it asks about the most uncertain samples of a longer list of that ranking, which teach
        the model more; otherwise it keeps to the top of the ranking, so the share of answers that fix
        a label stays what the ranking gives (``benchmarks/RESULTS.md``, phase 2).
    pool : {"all", "noisy"}, default="all"
        Which samples a round ranks. ``"all"``: every sample nobody has answered yet, phase 1's
        selection included, so the expert also reaches the wrong labels phase 1 kept, which
        recalibration would otherwise train on. ``"noisy"`` is the paper: only those phase 1 did not
        keep.
    budget_per_round : int, default=70
        Labels the expert gives per round.
    rounds : int, default=9
        Number of relabelling rounds.
    audit_size : int, default=0
        Labels the expert checks *before* phase 1, drawn uniformly at random (journalled as round 0,
        counted in the spent budget, excluded from later queries). The share the expert changes
        estimates the noise rate (:func:`~modal_noisy.cleaning.audit.audit_noise_rate`, reported as
        ``report_.phase1["audit"]``); when the estimator's ``forget_rate`` is ``"auto"``, phase 1 uses
        it instead of the loss-based estimate, which overshoots on data the network fits poorly (see
        :mod:`modal_noisy.cleaning.audit`). Phase 1 trains on the audited samples' corrected labels.
    recalibration_epochs : int, default=10
        Epochs of fine-tuning (the networks ``recalibrate`` names) on the trusted set after each round
        (SGD, cosine schedule). Longer fine-tuning measured no better on the three benchmark sets
        (``benchmarks/RESULTS.md``, the phase-2 tables) and costs proportionally more per round.
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
    keep_best : bool, default=True
        Refuse a round's recalibrated model when its balanced accuracy on the clean validation split
        (of the estimator's decision) falls clearly below that of the model in use (phase 1's, or an
        earlier round's; see ``keep_best_tolerance``); the round's answers are kept and the model in
        use goes on (it ranks the next round and ends as ``estimator_``). Each round's record holds
        the candidate's metrics and ``model_kept``. Fine-tuning on a small clean set can fall below
        phase 1 where the network fits the data poorly; ``False`` always adopts the recalibration
        (the paper).
    keep_best_tolerance : float >= 0, default=2.0
        With ``keep_best``, how far below the model in use a candidate may score on the validation
        split and still be adopted, in standard errors of the paired difference of their balanced
        accuracies (:func:`modal_noisy.metrics.paired_balanced_accuracy_difference`). ``0`` adopts
        only a candidate that scores at least as well. On a small validation split the balanced
        accuracy of the rare classes rests on a handful of samples, so a candidate that is better on
        the whole often scores lower there, and a strict rule threw away recalibrations that were
        better on the test split; the default refuses only a loss the split can tell from noise
        (``benchmarks/RESULTS.md``, *Which recalibrations to adopt*).
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
    n_classes_ : int
        Number of classes.
    report_ : CleaningReport
        Phase-1 results and one record per round.

    Notes
    -----
    A scikit-learn-style estimator: ``__init__`` only stores the parameters, so ``get_params``,
    ``set_params``, :func:`sklearn.base.clone` and the repr work, and ``fit`` returns the cleaner.
    """

    def __init__(
        self,
        estimator: Any = None,
        strategy: str | Callable[..., np.ndarray] = "adaptive_mislabel",
        *,
        pool: str = "all",
        budget_per_round: int = 70,
        rounds: int = 9,
        audit_size: int = 0,
        recalibration_epochs: int = 10,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        recalibrate: str = "both",
        recalibrate_from: str = "phase1",
        keep_best: bool = True,
        keep_best_tolerance: float = 2.0,
        journal: str | Path | None = None,
        random_state: int | None = None,
        verbose: int = 1,
    ) -> None:
        self.estimator = estimator
        self.strategy = strategy
        self.pool = pool
        self.budget_per_round = budget_per_round
        self.rounds = rounds
        self.audit_size = audit_size
        self.recalibration_epochs = recalibration_epochs
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.recalibrate = recalibrate
        self.recalibrate_from = recalibrate_from
        self.keep_best = keep_best
        self.keep_best_tolerance = keep_best_tolerance
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
    ) -> ActiveLabelCleaner:
        """Run phase 1 and the relabelling rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W)
            Training images.
        y_noisy : array-like of shape (n_samples,)
            The given, possibly wrong, labels.
        oracle : callable
            ``oracle(indices, *, current_labels, round_index) -> labels``; see
            :mod:`modal_noisy.cleaning.oracles`.
        X_val, y_val : array-like
            Clean validation split: the model is evaluated on it after phase 1 and after every round.
        X_test, y_test : array-like, optional
            Clean test split; when given, it is evaluated as well (``test_`` columns of the report).
        y_true : array-like, optional
            The true training labels, for evaluation only (selection precision, noisy labels remaining).
            Defaults to the oracle's ``y_true`` when the oracle is a simulation. Never used for training.

        Returns
        -------
        ActiveLabelCleaner
            The fitted cleaner; the per-round figures are in ``report_``.

        Raises
        ------
        ValueError
            On invalid settings or inputs, before any training; when the journal already holds relabels
            (use :meth:`resume`) or belongs to another data set.
        """
        inputs = self._validate(X, y_noisy, oracle, X_val=X_val, y_val=y_val, X_test=X_test,
                                y_test=y_test, y_true=y_true)
        return self._run(inputs, resume=False)

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
        verbose: int = 1,
        X_val: Any = None,
        y_val: Any = None,
        X_test: Any = None,
        y_test: Any = None,
        y_true: Any = None,
    ) -> ActiveLabelCleaner:
        """Continue a run from its journal and return the fitted cleaner.

        The settings come from the journal's header; pass ``strategy`` again only when the run used a
        callable (a name is stored). Journalled answers are replayed instead of asking the oracle again,
        so no relabel is lost and none is paid for twice. The other arguments are those of :meth:`fit`.

        Raises
        ------
        FileNotFoundError
            When ``journal`` does not exist.
        ValueError
            When the journal was written for another data set, by other settings, or its header's
            settings are not this version's (the message names the unknown or missing keys).
        """
        path = Path(journal)
        if not path.is_file():
            raise FileNotFoundError(f"journal {str(path)!r} does not exist; nothing to resume")
        params = cls._params_from_header(RelabelJournal(path).read().header.get("settings") or {}, path)
        if strategy is None:
            if params["strategy"].startswith("<callable"):
                raise ValueError(
                    f"the journal {str(path)!r} was written with a callable strategy "
                    f"({params['strategy']}); pass it again as strategy="
                )
            strategy = params["strategy"]
        params.update(strategy=strategy, journal=path, verbose=verbose)
        cleaner = cls(estimator, **params)
        inputs = cleaner._validate(X, y_noisy, oracle, X_val=X_val, y_val=y_val, X_test=X_test,
                                   y_test=y_test, y_true=y_true)
        return cleaner._run(inputs, resume=True)

    # ------------------------------------------------------------------ settings
    @classmethod
    def _params_from_header(cls, settings: dict[str, Any], path: Path) -> dict[str, Any]:
        """The cleaner's parameters recorded in a journal header; other or missing keys are refused."""
        settings = {**_LATER_SETTINGS, **settings}
        expected = set(CLEANER_SETTINGS) | set(_ESTIMATOR_SETTINGS)
        unknown = sorted(set(settings) - expected)
        missing = sorted(expected - set(settings))
        if unknown or missing:
            problems = []
            if unknown:
                problems.append("unknown key(s) " + ", ".join(repr(key) for key in unknown))
            if missing:
                problems.append("missing key(s) " + ", ".join(repr(key) for key in missing))
            raise ValueError(
                f"the settings in journal {str(path)!r} have {' and '.join(problems)}; it was written by "
                "another version of modal_noisy and cannot be resumed: start a new journal"
            )
        return {key: settings[key] for key in CLEANER_SETTINGS}

    def _settings(self) -> dict[str, Any]:
        """The journal header's settings: what a resumed run must repeat, and the estimator's identity."""
        strategy = self.strategy
        if callable(strategy):
            strategy = f"<callable {getattr(strategy, '__qualname__', type(strategy).__name__)}>"
        settings = {key: getattr(self, key) for key in CLEANER_SETTINGS}
        settings["strategy"] = strategy
        settings["estimator"] = type(self.estimator).__name__
        settings["estimator_random_state"] = getattr(self.estimator, "random_state", None)
        return settings

    # ------------------------------------------------------------------ validation
    def _strategy_function(self) -> Callable[..., np.ndarray]:
        if callable(self.strategy):
            return self.strategy
        if not isinstance(self.strategy, str) or self.strategy not in STRATEGIES:
            valid = ", ".join(repr(name) for name in sorted(STRATEGIES))
            raise ValueError(f"strategy must be one of {valid} or a callable (got {self.strategy!r})")
        return get_strategy(self.strategy)

    def _check_params(self) -> None:
        """Check the cleaner's own parameters (not the estimator)."""
        self._strategy_function()
        check_choice(self.pool, "pool", ("all", "noisy"))
        check_positive_int(self.budget_per_round, "budget_per_round")
        check_positive_int(self.rounds, "rounds")
        check_positive_int(self.audit_size, "audit_size", minimum=0)
        check_positive_int(self.recalibration_epochs, "recalibration_epochs")
        check_fraction(self.lr, "lr", low=0.0, high=np.inf, low_inclusive=False)
        check_fraction(self.momentum, "momentum", high_inclusive=False)
        check_fraction(self.weight_decay, "weight_decay", high=np.inf)
        check_choice(self.recalibrate, "recalibrate", ("both", "first"))
        check_choice(self.recalibrate_from, "recalibrate_from", ("phase1", "previous"))
        check_bool(self.keep_best, "keep_best")
        check_nonnegative(self.keep_best_tolerance, "keep_best_tolerance")

    def _validate_settings(self) -> None:
        self._check_params()
        for method in ("fit", "fine_tune", "predict_proba"):
            if not hasattr(self.estimator, method):
                raise TypeError(
                    f"estimator must provide {method}() (got {type(self.estimator).__name__}); "
                    "use modal_noisy.CoTeachingClassifier"
                )
        check_hyperparams = getattr(self.estimator, "_validate_hyperparams", None)
        if callable(check_hyperparams):  # the estimator's own settings, before the audit asks anyone
            check_hyperparams()
        if self.journal is not None and getattr(self.estimator, "random_state", None) is None:
            raise ValueError(
                "estimator.random_state must be an integer when a journal is kept (got None): "
                "resuming replays phase 1 and the journalled rounds, which needs a seeded run"
            )

    def _validate(self, X, y_noisy, oracle, *, X_val, y_val, X_test, y_test, y_true) -> _Inputs:
        self._validate_settings()
        if not callable(oracle):
            raise TypeError(f"oracle must be callable (got {type(oracle).__name__})")
        X = check_finite_array(X, "X")
        n_samples = check_same_length(X, y_noisy, "X", "y_noisy")
        n_classes = _n_classes(self.estimator)
        y_noisy = check_labels(y_noisy, "y_noisy", n_classes=n_classes)
        if n_samples and np.unique(y_noisy).size < 2:
            warnings.warn(
                f"y_noisy holds a single class ({int(y_noisy[0])}): phase 1 learns nothing to tell "
                "classes apart, and every query ranks samples of that one class",
                UserWarning,
                stacklevel=4,
            )
        if self.budget_per_round > n_samples:
            raise ValueError(
                f"budget_per_round must be <= the number of training samples "
                f"(got {self.budget_per_round}, the training set has {n_samples})"
            )
        total = self.audit_size + self.budget_per_round * self.rounds
        if total > n_samples:
            raise ValueError(
                f"audit_size + budget_per_round * rounds must be <= the number of training samples "
                f"(got {self.audit_size} + {self.budget_per_round} * {self.rounds} = {total}, the "
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
        return _Inputs(X, y_noisy, oracle, X_val, y_val, X_test, y_test, y_true, n_classes)

    # ------------------------------------------------------------------ the method
    def _run(self, inputs: _Inputs, *, resume: bool) -> ActiveLabelCleaner:
        session = CleaningSession(
            self.journal,
            settings=self._settings(),
            # resuming, the estimator's identity too: another one would query other samples than the
            # journal's, which would only show after phase 1
            replay_keys=(*CLEANER_SETTINGS, *(_ESTIMATOR_SETTINGS if resume else ())),
            resume=resume,
            verbose=self.verbose,
        )
        with session.lock():  # one run per journal at a time
            session.open(inputs.X, inputs.y_noisy, n_classes=inputs.n_classes)
            self._clean(inputs, session)
        return self

    def _clean(self, inputs: _Inputs, session: CleaningSession) -> None:
        """Audit, phase 1, then rounds of query -> ask -> journal -> recalibrate -> evaluate."""
        started = time.perf_counter()
        query = self._strategy_function()
        rng = check_random_state(self.random_state)
        labels = _Labels.given(inputs)
        estimator = clone(self.estimator)

        audit = self._audit(estimator, inputs, labels, session, rng) if self.audit_size else None
        estimator = session.fit_phase1(estimator, inputs.X, labels.current)
        n_classes = inputs.n_classes or len(estimator.classes_)
        clean_mask = np.asarray(estimator.clean_mask_, dtype=bool).copy()
        phase1_model = copy.deepcopy(estimator) if self.recalibrate_from == "phase1" else None
        report = CleaningReport(
            phase1=self._phase1_summary(estimator, clean_mask, inputs, n_classes, audit),
            rounds=[],
            settings=session.settings,
            class_names=[str(c) for c in range(n_classes)],
        )
        nothing = np.zeros(0, dtype=np.int64)
        entry, in_use = self._evaluate(estimator, inputs, labels.round_record(0, nothing, nothing), started)
        self._record(report, entry)

        exhausted = False
        for round_index in range(1, self.rounds + 1):
            round_seed = int(rng.randint(np.iinfo(np.int32).max))
            pool = labels.pool(clean_mask, self.pool)
            if len(pool) < self.budget_per_round and not exhausted:
                exhausted = True
                _warn_pool_exhausted(round_index, len(pool), self.budget_per_round, self.rounds, self.pool)
            if len(pool) == 0:
                break
            positions = query(
                estimator,
                inputs.X[pool],
                min(self.budget_per_round, len(pool)),
                labels=labels.current[pool],
                random_state=round_seed,
                **keywords_for(query, pool_indices=pool, answered=_answer_history(report)),
            )
            queried = pool[np.asarray(positions)]
            _offer_predictions(inputs.oracle, estimator, inputs.X, queried)
            answers = session.ask(round_index, queried, labels.current, inputs.oracle, n_classes)
            old = labels.relabel(queried, answers)
            start = estimator if phase1_model is None else phase1_model
            candidate = self._recalibrate(start, inputs.X, labels, clean_mask)
            entry, decisions = self._evaluate(
                candidate, inputs, labels.round_record(round_index, queried, old), started
            )
            entry["n_changed"] = int(np.sum(old != answers))
            # keep_best: a recalibration that scores worse on the clean validation split than the
            # model in use is not adopted (the kept model ranks the next round's pool)
            entry["model_kept"] = self._adopts(inputs.y_val, in_use, decisions)
            if entry["model_kept"]:
                estimator, in_use = candidate, decisions
            session.record_round(entry)
            self._record(report, entry)

        self.estimator_ = estimator
        self.labels_ = labels.current
        self.clean_mask_ = clean_mask
        self.relabelled_mask_ = labels.relabelled
        self.n_classes_ = n_classes
        self.report_ = report

    def _audit(
        self, estimator: Any, inputs: _Inputs, labels: _Labels, session: CleaningSession, rng: Any
    ) -> NoiseAudit:
        """Round 0: the expert checks a random sample; its error rate becomes phase 1's forget rate."""
        seed = rng.randint(np.iinfo(np.int32).max)
        audited = draw_audit(len(labels.current), self.audit_size, random_state=seed)
        answers = session.ask(0, audited, labels.current, inputs.oracle, inputs.n_classes)
        audit = audit_noise_rate(labels.current[audited], answers)
        labels.relabel(audited, answers)
        if getattr(estimator, "forget_rate", None) == "auto":
            # the audited labels are now right: the rest keeps the audited rate
            n = len(labels.current)
            estimator.set_params(forget_rate=audit.noise_rate * (n - len(audited)) / n)
        return audit

    def _recalibrate(self, start: Any, X: np.ndarray, labels: _Labels, clean_mask: np.ndarray) -> Any:
        """Fine-tune (a copy of) ``start`` on the trusted set: phase 1's clean samples and the answers."""
        # "phase1": a fresh copy every round, so the errors of early rounds do not accumulate
        estimator = copy.deepcopy(start) if self.recalibrate_from == "phase1" else start
        trusted = clean_mask | labels.relabelled
        estimator.fine_tune(
            X[trusted],
            labels.current[trusted],
            epochs=self.recalibration_epochs,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            networks=self.recalibrate,
        )
        return estimator

    # ------------------------------------------------------------------ evaluation
    @staticmethod
    def _phase1_summary(
        estimator: Any, clean_mask: np.ndarray, inputs: _Inputs, n_classes: int, audit: NoiseAudit | None
    ) -> dict[str, Any]:
        noise_rate = getattr(estimator, "noise_rate_", None)
        summary: dict[str, Any] = {
            "n_samples": len(inputs.y_noisy),
            "n_selected_clean": int(clean_mask.sum()),
            "noise_rate_estimate": None if noise_rate is None else float(noise_rate),
        }
        class_rates = getattr(estimator, "class_noise_rates_", None)
        if class_rates is not None:
            summary["class_noise_rate_estimates"] = [float(r) for r in class_rates]
        if audit is not None:
            summary["audit"] = dataclasses.asdict(audit)
        if inputs.y_true is not None:
            is_noisy = inputs.y_noisy != inputs.y_true
            summary["true_noise_rate"] = float(is_noisy.mean())
            # the base rate a query strategy must beat: the share of wrong labels in the noisy pool
            summary["noisy_pool_noise_rate"] = (
                float(is_noisy[~clean_mask].mean()) if (~clean_mask).any() else 0.0
            )
            summary["selection"] = selection_metrics(clean_mask, is_noisy, inputs.y_true, n_classes=n_classes)
        return summary

    def _adopts(self, y_val: np.ndarray, in_use: np.ndarray, candidate: np.ndarray) -> bool:
        """Whether a candidate whose validation decisions are ``candidate`` replaces the model in use."""
        return not self.keep_best or adopts_candidate(y_val, in_use, candidate, self.keep_best_tolerance)

    @staticmethod
    def _evaluate(
        estimator, inputs: _Inputs, entry: dict[str, Any], started: float
    ) -> tuple[dict[str, Any], np.ndarray]:
        """``entry`` with the validation (and test) metrics of ``estimator`` and the time so far, and
        the estimator's decisions on the validation split."""
        # score the decisions the estimator's predict makes (decision="balanced" divides by a prior)
        prior = getattr(estimator, "decision_prior_", None)
        val = estimator.predict_proba(inputs.X_val)
        entry.update(classification_metrics(inputs.y_val, val, class_prior=prior))
        decisions = np.asarray(val).argmax(axis=1) if prior is None else prior_corrected_predict(val, prior)
        if inputs.X_test is not None:
            test = classification_metrics(inputs.y_test, estimator.predict_proba(inputs.X_test),
                                          class_prior=prior)
            entry.update({f"test_{key}": value for key, value in test.items()})
        entry["time_s"] = round(time.perf_counter() - started, 3)
        return entry, decisions

    def _record(self, report: CleaningReport, entry: dict[str, Any]) -> None:
        report.rounds.append(entry)
        if not self.verbose:
            return
        noisy = "" if entry["noisy_remaining"] is None else f"  noisy labels left {entry['noisy_remaining']}"
        precision = entry["relabel_precision"]
        precision_text = "" if precision is None else f"  relabel precision {precision:.2f}"
        kept = "" if entry.get("model_kept", True) else "  (below the model in use: not adopted)"
        print(
            f"round {entry['round']:>2}  labels spent {entry['labels_spent']:>5}"
            f"  balanced acc {entry['balanced_accuracy']:.3f}{precision_text}{noisy}{kept}",
            flush=True,
        )


def _answer_history(report: CleaningReport) -> np.ndarray:
    """Per round so far: labels the expert gave and how many of them changed (for adaptive strategies)."""
    rows = [(entry["n_queried"], entry["n_changed"]) for entry in report.rounds[1:]]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def _offer_predictions(oracle: Any, estimator: Any, X: np.ndarray, queried: np.ndarray) -> None:
    """Give an oracle that asks for them (``wants_predictions``) the model's probabilities of the queue.

    A :class:`~modal_noisy.cleaning.file_oracle.FileOracle` writing Label Studio tasks shows them as
    pre-annotations; other oracles never see the model.
    """
    if getattr(oracle, "wants_predictions", False):
        oracle.receive_predictions(queried, estimator.predict_proba(X[queried]))


def _warn_pool_exhausted(round_index: int, left: int, budget: int, rounds: int, pool: str) -> None:
    """Say that the rounds end early: the budget is larger than what is left to query in the pool."""
    warnings.warn(
        f"the pool (pool={pool!r}) is exhausted: round {round_index} of {rounds} finds {left} samples "
        f"left to query, fewer than budget_per_round={budget}; the rounds end "
        + ("here" if left == 0 else "after this one"),
        UserWarning,
        stacklevel=5,
    )


def _n_classes(estimator: Any) -> int | None:
    """Number of classes the estimator's module is built for, when it says."""
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    value = params.get("module__n_classes")
    return int(value) if value is not None else None
