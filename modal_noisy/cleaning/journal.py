"""Crash-safe, append-only relabel journal (JSON lines).

The journal is the only precious state of an active-label-cleaning run: every label an expert gave is
written here, flushed and ``fsync``-ed before the run goes on, so that a killed run can be resumed
without asking the expert again.

Layout: the first line is a header ``{"type": "header", "format": 1, "fingerprint", "settings",
"created", "modal_noisy_version"}``; every following line is one record, either a relabel
``{"type": "relabel", "round", "index", "old", "new", "time", "batch_pos", "batch_size"}`` or an event
written by :meth:`RelabelJournal.append_event` (``{"type": <any other name>, "time", ...}``).

One call to :meth:`RelabelJournal.append_relabels` is one *batch*, written with a single ``write``;
``batch_pos`` / ``batch_size`` let :meth:`RelabelJournal.read` tell a batch that a crash cut short.
A torn tail (an incomplete last line, an unparsable last line, or the lines of an unfinished last
batch) is ignored on reading and cut off before the next append, so a batch is applied all or nothing
and the file stays valid. Damage anywhere else is reported with its line number.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from modal_noisy import __version__
from modal_noisy._locking import exclusive_lock
from modal_noisy._validation import check_labels, check_positive_int
from modal_noisy.jsonable import to_jsonable

__all__ = ["JOURNAL_FORMAT", "JournalState", "RelabelJournal", "dataset_fingerprint"]

JOURNAL_FORMAT = 1
_RELABEL_KEYS = ("round", "index", "old", "new")
# bytes fed to the hash per update: bounds the temporary copy made for non-contiguous arrays
_HASH_CHUNK = 1 << 24


def dataset_fingerprint(X: object, y: object) -> str:
    """Return a SHA-256 fingerprint of a data set (features and labels).

    The hash covers the shape, dtype and raw bytes of both arrays, so a journal written for one data
    set (or one label vector) is refused for another. Large arrays are hashed in chunks, without a
    copy of the whole array, at the speed of one SHA-256 pass over their bytes.

    Parameters
    ----------
    X : array-like
        The training inputs (any numeric dtype, any shape).
    y : array-like
        The labels the run started from (the *given*, possibly noisy labels). The dtype is part of the
        hash: pass the same validated array (``int64``) every time.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    digest = hashlib.sha256(b"modal_noisy.dataset_fingerprint.v1\n")
    for name, value in (("X", X), ("y", y)):
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"{name} must be a numeric array to be fingerprinted (got dtype object)")
        digest.update(f"{name}|{arr.dtype.str}|{arr.shape}\n".encode())
        flat = arr.reshape(-1)  # a view when contiguous, one copy otherwise
        step = max(1, _HASH_CHUNK // max(arr.itemsize, 1))
        for start in range(0, flat.size, step):
            digest.update(np.ascontiguousarray(flat[start : start + step]).view(np.uint8))
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(to_jsonable(record), allow_nan=False, separators=(",", ":"))


def _fsync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class JournalState:
    """What a journal holds.

    Attributes
    ----------
    header : dict
        The header record (fingerprint, settings, creation time, writer version).
    relabels : dict[int, list[tuple[int, int]]]
        ``round -> [(index, new_label), ...]`` in the order they were written.
    records : list[dict]
        Every valid record in file order, the header first.
    torn_tail : bool
        True when an incomplete tail (from a crash during a write) was ignored.
    valid_size : int
        Byte length of the valid part of the file; a later append cuts the file to this length.
    lines : list[int]
        The line number of each of ``records`` in the file (1 is the header's).
    """

    header: dict[str, Any]
    relabels: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_tail: bool = False
    valid_size: int = 0
    lines: list[int] = field(default_factory=list)

    @property
    def rounds(self) -> list[int]:
        """Sorted round indices that have relabels."""
        return sorted(self.relabels)

    @property
    def n_relabels(self) -> int:
        return sum(len(items) for items in self.relabels.values())

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Records other than the header and relabels, optionally only those of one ``type``."""
        return [
            rec
            for rec in self.records
            if rec["type"] not in ("header", "relabel") and (type is None or rec["type"] == type)
        ]

    def check_relabels(self, path: str | os.PathLike[str], n_samples: int, n_classes: int | None) -> None:
        """Check every relabel names a training sample and, given ``n_classes``, a class in range.

        Raises
        ------
        ValueError
            Naming the journal's ``path``, the line and the value: an edited or foreign journal.
        """
        for record, line in zip(self.records, self.lines, strict=True):
            if record["type"] != "relabel":
                continue
            if record["index"] >= n_samples:
                raise ValueError(
                    f"journal {path}, line {line}: relabel index {record['index']} is out of range for "
                    f"a training set of {n_samples} samples; was the journal written for other data?"
                )
            if n_classes is not None and record["new"] >= n_classes:
                raise ValueError(
                    f"journal {path}, line {line}: label {record['new']} must lie in [0, {n_classes}) "
                    f"for n_classes={n_classes}; was the journal edited?"
                )

    def apply(self, labels: object) -> np.ndarray:
        """Return a copy of ``labels`` with every journalled relabel applied, in journal order."""
        out = check_labels(labels, "labels").copy()
        for round_index in self.rounds:
            for index, new in self.relabels[round_index]:
                if index >= out.size:
                    raise ValueError(f"journal relabels index {index} but labels has only {out.size} entries")
                out[index] = new
        return out


class RelabelJournal:
    """Append-only JSONL journal of the labels an oracle gave, safe against crashes.

    Parameters
    ----------
    path : str or os.PathLike
        The journal file. Its folder is created when missing.

    Examples
    --------
    >>> journal = RelabelJournal(tmp / "journal.jsonl")                       # doctest: +SKIP
    >>> state = journal.start(dataset_fingerprint(X, y), {"budget_per_round": 70})  # doctest: +SKIP
    >>> y_now = state.apply(y)                                                # doctest: +SKIP
    >>> journal.append_relabels(1, idx, y_now[idx], answers)                  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._valid_size: int | None = None

    def __repr__(self) -> str:
        return f"RelabelJournal({str(self.path)!r})"

    @property
    def lock_path(self) -> Path:
        """The lock file beside the journal (``<journal>.lock``, beside its target when it is a link)."""
        target = self.path.resolve()
        return target.with_name(target.name + ".lock")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the journal while a run writes to it.

        Two processes appending to one journal would interleave the expert's answers of different
        runs, so a second ``lock()`` fails at once instead of waiting. The lock file is keyed by the
        journal's resolved real path, so a journal reached through a symbolic link is locked under
        its target's name. A process that dies, however abruptly, releases it, and the ``.lock``
        file left behind is harmless (see :func:`modal_noisy._locking.exclusive_lock`).

        Raises
        ------
        RuntimeError
            When another open lock holds the journal; the message names the holder's process id.
        """
        lock_path = self.lock_path
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(lock_path, f"journal {str(self.path)!r}"):
            yield

    # ------------------------------------------------------------------ start / read
    def start(
        self,
        fingerprint: str,
        settings: Mapping[str, Any],
        *,
        compare_settings: Iterable[str] | None = None,
    ) -> JournalState:
        """Create the journal, or open an existing one after checking it belongs to this run.

        Parameters
        ----------
        fingerprint : str
            :func:`dataset_fingerprint` of the data the run works on.
        settings : mapping
            The run's settings (JSON-serialisable; numpy values, paths and functions are converted).
        compare_settings : iterable of str, optional
            Settings keys that must equal those stored in an existing journal (e.g. the budget, the
            strategy, the seed). Default: every key of ``settings``. Keys outside it may differ
            (e.g. the device, an output folder).

        Returns
        -------
        JournalState
            The existing records (only the header for a new journal).

        Raises
        ------
        ValueError
            When an existing journal was written for another data set or with other settings, or is
            not a journal.
        """
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ValueError(f"fingerprint must be a non-empty string (got {fingerprint!r})")
        if not isinstance(settings, Mapping):
            raise TypeError(f"settings must be a mapping (got {type(settings).__name__})")
        keys = list(settings) if compare_settings is None else list(compare_settings)
        unknown = [key for key in keys if key not in settings]
        if unknown:
            raise ValueError(f"compare_settings names keys missing from settings: {unknown}")

        if self.path.exists() and self.path.stat().st_size > 0:
            state = self.read()
            self._check_header(state.header, fingerprint, settings, keys)
            return state
        return self._create(fingerprint, settings)

    def _create(self, fingerprint: str, settings: Mapping[str, Any]) -> JournalState:
        header = {
            "type": "header",
            "format": JOURNAL_FORMAT,
            "fingerprint": fingerprint,
            "settings": to_jsonable(dict(settings)),
            "created": _now(),
            "modal_noisy_version": __version__,
        }
        data = (_dumps(header) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # write a temporary file and rename it: the journal never exists without a whole header
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_directory(self.path.parent)
        self._valid_size = len(data)
        return JournalState(header=header, records=[header], valid_size=len(data), lines=[1])

    def _check_header(
        self,
        header: Mapping[str, Any],
        fingerprint: str,
        settings: Mapping[str, Any],
        keys: list[str],
    ) -> None:
        if header["fingerprint"] != fingerprint:
            raise ValueError(
                f"journal {self.path} was written for a different data set (fingerprint "
                f"{str(header['fingerprint'])[:16]}... != {fingerprint[:16]}...); "
                "use a new journal path"
            )
        stored = header.get("settings") or {}
        now = to_jsonable({key: settings[key] for key in keys})
        diffs = []
        for key in keys:
            if key not in stored:
                diffs.append(f"{key}: missing in the journal, {now[key]!r} now")
            elif stored[key] != now[key]:
                diffs.append(f"{key}: {stored[key]!r} in the journal, {now[key]!r} now")
        if diffs:
            raise ValueError(
                f"journal {self.path} was written with different settings ("
                + "; ".join(diffs)
                + "); resume with the journal's settings or use a new journal path"
            )

    def read(self) -> JournalState:
        """Parse the journal.

        A torn tail left by a crash during a write is ignored (and cut off by the next append).

        Raises
        ------
        FileNotFoundError
            When the journal does not exist.
        ValueError
            When a line other than the torn tail is damaged (the message gives its line number),
            or the file is not a modal_noisy journal.
        """
        if not self.path.exists():
            raise FileNotFoundError(f"journal {self.path} does not exist; call start() first")
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        # a file that ends with "\n" splits into [..., b""]: the last element is then no line
        complete = lines[:-1]
        partial = lines[-1]

        header: dict[str, Any] | None = None
        records: list[dict[str, Any]] = []
        lines: list[int] = []
        relabels: dict[int, list[tuple[int, int]]] = {}
        offset = 0
        valid_size = 0
        torn = bool(partial.strip())
        batch: list[tuple[int, int, int]] = []  # (round, index, new) of the unfinished batch
        batch_records: list[dict[str, Any]] = []
        batch_lines: list[int] = []
        batch_start = 0
        batch_size = 0

        for number, raw in enumerate(complete, start=1):
            line_end = offset + len(raw) + 1
            is_last = number == len(complete) and not partial.strip()
            try:
                record = json.loads(raw) if raw.strip() else None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if is_last and header is not None:
                    torn = True  # garbage on the last line only: a crash mid-write
                    break
                raise ValueError(
                    f"journal {self.path} is damaged at line {number}: not valid JSON ({exc})"
                ) from None
            offset = line_end
            if record is None:  # blank line
                if not batch:
                    valid_size = offset
                continue
            if not isinstance(record, dict) or not isinstance(record.get("type"), str):
                raise ValueError(
                    f"journal {self.path} is damaged at line {number}: expected an object with a 'type' field"
                )
            if header is None:
                header = self._parse_header(record, number)
                records.append(record)
                lines.append(number)
                valid_size = offset
                continue
            if record["type"] == "header":
                raise ValueError(f"journal {self.path} is damaged at line {number}: a second header")
            if record["type"] != "relabel":
                if batch:
                    raise ValueError(
                        f"journal {self.path} is damaged at line {number}: an event inside an "
                        "unfinished relabel batch"
                    )
                records.append(record)
                lines.append(number)
                valid_size = offset
                continue

            round_index, index, new, pos, size = self._parse_relabel(record, number)
            if pos != len(batch) or (batch and size != batch_size):
                raise ValueError(
                    f"journal {self.path} is damaged at line {number}: relabel batch position "
                    f"{pos} of {size} does not follow the previous line"
                )
            if not batch:
                batch_start, batch_size = valid_size, size
            batch.append((round_index, index, new))
            batch_records.append(record)
            batch_lines.append(number)
            if len(batch) == batch_size:
                for r, i, n in batch:
                    relabels.setdefault(r, []).append((i, n))
                records.extend(batch_records)
                lines.extend(batch_lines)
                batch, batch_records, batch_lines = [], [], []
                valid_size = offset
        if header is None:
            raise ValueError(f"journal {self.path} has no header line; it is not a journal")
        if batch:  # the last batch was cut short by a crash: all or nothing
            torn = True
            valid_size = batch_start
        self._valid_size = valid_size
        return JournalState(
            header=header,
            relabels=relabels,
            records=records,
            torn_tail=torn,
            valid_size=valid_size,
            lines=lines,
        )

    def _parse_header(self, record: dict[str, Any], number: int) -> dict[str, Any]:
        if record.get("type") != "header" or "fingerprint" not in record:
            raise ValueError(
                f"journal {self.path} does not start with a modal_noisy journal header (line "
                f"{number}); is it a journal?"
            )
        fmt = record.get("format")
        if fmt != JOURNAL_FORMAT:
            raise ValueError(
                f"journal {self.path} has format {fmt!r}; this version of modal_noisy reads "
                f"format {JOURNAL_FORMAT}"
            )
        return record

    def _parse_relabel(self, record: dict[str, Any], number: int) -> tuple[int, int, int, int, int]:
        values = []
        for key in (*_RELABEL_KEYS, "batch_pos", "batch_size"):
            value = record.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"journal {self.path} is damaged at line {number}: relabel field {key!r} must "
                    f"be an integer >= 0 (got {value!r})"
                )
            values.append(value)
        round_index, index, _old, new, pos, size = values
        if pos >= size:
            raise ValueError(
                f"journal {self.path} is damaged at line {number}: batch_pos {pos} >= batch_size {size}"
            )
        return round_index, index, new, pos, size

    # ------------------------------------------------------------------ append
    def append_relabels(
        self,
        round_index: int,
        indices: object,
        old_labels: object,
        new_labels: object,
    ) -> int:
        """Durably append one relabel record per sample, as one all-or-nothing batch.

        Returns only after the records are written, flushed and ``fsync``-ed.

        Parameters
        ----------
        round_index : int
            The cleaning round (>= 0).
        indices : array-like of int
            Positions of the relabelled samples in the training set.
        old_labels, new_labels : array-like of int
            Labels before and after, aligned with ``indices``.

        Returns
        -------
        int
            The number of records written.
        """
        round_index = check_positive_int(round_index, "round_index", minimum=0)
        idx = check_labels(indices, "indices")
        old = check_labels(old_labels, "old_labels")
        new = check_labels(new_labels, "new_labels")
        if not (idx.size == old.size == new.size):
            raise ValueError(
                "indices, old_labels and new_labels must have the same length "
                f"(got {idx.size}, {old.size} and {new.size})"
            )
        if idx.size == 0:
            return 0
        time = _now()
        size = int(idx.size)
        lines = [
            _dumps(
                {
                    "type": "relabel",
                    "round": round_index,
                    "index": int(i),
                    "old": int(o),
                    "new": int(n),
                    "time": time,
                    "batch_pos": pos,
                    "batch_size": size,
                }
            )
            for pos, (i, o, n) in enumerate(zip(idx.tolist(), old.tolist(), new.tolist(), strict=True))
        ]
        self._append("".join(line + "\n" for line in lines).encode())
        return size

    def append_event(self, type: str, **fields: Any) -> None:
        """Durably append one event record, e.g. ``append_event("round_completed", round=3, ...)``.

        ``fields`` must be JSON-serialisable (numpy values, paths and functions are converted); NaN
        and infinity are stored as ``null``.
        """
        if not isinstance(type, str) or type in ("header", "relabel", ""):
            raise ValueError(f"type must be a name other than 'header' and 'relabel' (got {type!r})")
        if "type" in fields or "time" in fields:
            raise ValueError("fields must not contain 'type' or 'time'; they are set by the journal")
        record = {"type": type, "time": _now(), **to_jsonable(fields)}
        self._append((_dumps(record) + "\n").encode())

    def _append(self, data: bytes) -> None:
        if not self.path.exists():
            raise FileNotFoundError(f"journal {self.path} does not exist; call start() first")
        with open(self.path, "r+b") as fh:
            size = os.fstat(fh.fileno()).st_size
            if self._valid_size != size:
                # first append, a torn tail left by a crash, or records appended through another
                # RelabelJournal object: parse the file to find where its valid part ends
                self.read()
            valid = self._valid_size
            if not valid:
                raise ValueError(f"journal {self.path} has no header; call start() first")
            if size > valid:  # cut the torn tail of a crashed write before going on
                fh.truncate(valid)
            fh.seek(valid)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._valid_size = valid + len(data)

