"""Phase 2: active label cleaning with an expert in the loop.

- :mod:`~modal_noisy.cleaning.loop` — :class:`ActiveLabelCleaner`, the method: validate, audit, phase 1,
  then rounds of query, ask, journal, recalibrate, evaluate;
- :mod:`~modal_noisy.cleaning.session` — journal, lock, replay of recorded answers and the phase-1
  snapshot of a run (:mod:`~modal_noisy.cleaning.journal`, :mod:`~modal_noisy.cleaning.snapshot`);
- :mod:`~modal_noisy.cleaning.oracles` and :mod:`~modal_noisy.cleaning.file_oracle` — who answers;
- :mod:`~modal_noisy.cleaning.audit` — the noise rate from an expert's random audit;
- :mod:`~modal_noisy.cleaning.report` — :class:`CleaningReport`, its tables and plots.
"""

from modal_noisy.cleaning.audit import NoiseAudit, audit_noise_rate, draw_audit
from modal_noisy.cleaning.file_oracle import AwaitingExpertAnswers, FileOracle, QueueFiles
from modal_noisy.cleaning.journal import JournalState, RelabelJournal, dataset_fingerprint
from modal_noisy.cleaning.loop import ActiveLabelCleaner
from modal_noisy.cleaning.oracles import NoisyOracle, Oracle, SimulatedOracle
from modal_noisy.cleaning.report import CleaningReport
from modal_noisy.cleaning.session import CleaningSession

__all__ = [
    "ActiveLabelCleaner",
    "AwaitingExpertAnswers",
    "CleaningReport",
    "CleaningSession",
    "FileOracle",
    "JournalState",
    "NoiseAudit",
    "NoisyOracle",
    "Oracle",
    "QueueFiles",
    "RelabelJournal",
    "SimulatedOracle",
    "audit_noise_rate",
    "dataset_fingerprint",
    "draw_audit",
]
