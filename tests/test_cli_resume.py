"""`modal-noisy run` continues a killed run from its folder, and one folder or journal holds one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from modal_noisy import cli
from modal_noisy.cleaning.journal import RelabelJournal

SCRIPT = str(Path(sys.executable).with_name("modal-noisy"))
# the smallest run that still has rounds to kill: each round takes a moment of recalibration
SMALL = ["run", "--digits", "--max-epochs", "2", "--budget-per-round", "10", "--rounds", "4",
         "--recalibration-epochs", "3"]
needs_fcntl = pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX only")


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [SCRIPT, *SMALL, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()},
    )


def _wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended (status {process.returncode}) before {what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _rounds_completed(journal: Path) -> int:
    if not journal.is_file():
        return 0
    return journal.read_text(encoding="utf-8", errors="replace").count('"type":"round_completed"')


def _rounds(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "rounds.csv").drop(columns=["time_s"])


@needs_fcntl
def test_a_killed_run_continues_with_the_same_command(tmp_path, cli_without_training):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    uninterrupted = _start(whole)  # the reference, beside the run to kill (one thread each)
    first = _start(killed)
    # a second run on the folder the first one holds is refused, before it writes anything
    _wait_for(lambda: (killed / "settings.json").is_file(), first, "the first run took the folder")
    before = {p.name: p.stat().st_mtime_ns for p in killed.iterdir() if p.name == "settings.json"}
    # refused before training: a fit in this process would fail the test
    code, _, error = cli_without_training(*SMALL, "--out", str(killed))
    assert code == 2
    assert "in use by another run" in error and error.count("\n") == 1 and "Traceback" not in error
    assert {p.name: p.stat().st_mtime_ns for p in killed.iterdir() if p.name == "settings.json"} == before

    # SIGKILL once a round is journalled, with rounds still to go
    _wait_for(lambda: _rounds_completed(killed / "journal.jsonl") >= 1, first, "round 1")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL and not (killed / "rounds.csv").exists()
    assert _rounds_completed(killed / "journal.jsonl") < 4

    again = subprocess.run(
        [SCRIPT, *SMALL, "--out", str(killed)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()},
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert [line for line in again.stdout.splitlines() if line.startswith("continuing the run")]
    assert "phase 1 loaded from" in again.stdout and "baseline:" not in again.stdout

    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()[-3000:]
    pd.testing.assert_frame_equal(_rounds(killed), _rounds(whole))


def test_other_settings_on_a_run_folder_are_refused_by_name(tmp_path, cli_without_training):
    out = tmp_path / "out"
    out.mkdir()
    args = cli.build_parser().parse_args([*SMALL, "--out", str(out)])
    cli.config_from_args(args).to_json(out / "settings.json")
    settings = (out / "settings.json").read_bytes()
    code, _, error = cli_without_training(*SMALL[:-1], "2", "--budget-per-round", "12", "--out", str(out))
    assert code == 2
    assert "--budget-per-round: 10 in the folder, 12 now" in error
    assert "--recalibration-epochs: 3 in the folder, 2 now" in error and "--rounds" not in error
    assert sorted(p.name for p in out.iterdir()) == ["settings.json"]
    assert (out / "settings.json").read_bytes() == settings


@needs_fcntl
def test_two_runs_on_one_journal_through_a_symlink(tmp_path, cli_without_training):
    real, linked = tmp_path / "real", tmp_path / "linked"
    real.mkdir()
    linked.mkdir()
    (linked / "journal.jsonl").symlink_to(real / "journal.jsonl")
    # the API: the lock is the real file's, whichever name opens it
    with RelabelJournal(real / "journal.jsonl").lock():
        with pytest.raises(RuntimeError, match="in use by another run"):
            with RelabelJournal(linked / "journal.jsonl").lock():
                pass
        # the command line: a run whose --out journal links to the held one is refused before it writes
        code, _, error = cli_without_training(*SMALL, "--out", str(linked))
        assert code == 2 and "in use by another run" in error
        assert not (linked / "settings.json").exists()
    lock_paths = {RelabelJournal(folder / "journal.jsonl").lock_path for folder in (real, linked)}
    assert lock_paths == {(real / "journal.jsonl.lock").resolve()}


@needs_fcntl
def test_a_run_folder_reached_through_a_symlink_is_one_folder(tmp_path, cli_without_training):
    from modal_noisy._locking import exclusive_lock

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    with exclusive_lock(real / ".modal-noisy.lock", "the run folder"):
        code, _, error = cli_without_training(*SMALL, "--out", str(tmp_path / "alias"))
    assert code == 2 and "in use by another run" in error
    assert sorted(p.name for p in real.iterdir()) == [".modal-noisy.lock"]
