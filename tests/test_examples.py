"""Every example runs, as a user would run it, in its fast mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, timeout=600, cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # no oversubscription of the 2 cores
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quickstart_modal(tmp_path):
    out = _run("quickstart_modal.py", "--fast", cwd=tmp_path)
    assert "top-50 queried labels" in out and "clean test accuracy" in out


def test_medmnist_two_phase(tmp_path, shared_data):
    out = _run("medmnist_two_phase.py", "--npz", str(shared_data / "retinamnist.npz"),
               "--out", str(tmp_path / "run"), "--fast", cwd=tmp_path)
    assert "| round |" in out and "audit: " in out
    assert (tmp_path / "run" / "report.json").stat().st_size > 0
    assert (tmp_path / "run" / "journal.jsonl").stat().st_size > 0


def test_human_in_the_loop(tmp_path):
    out = _run("human_in_the_loop.py", "--workdir", str(tmp_path / "work"), "--fast", cwd=tmp_path)
    # two rounds: two queues exported, answered, and picked up again by resume
    assert out.count("the expert answered 10 queued labels") == 2
    queue = tmp_path / "work" / "queue"
    assert sorted(p.name for p in queue.glob("answers_round*.csv")) == [
        "answers_round01.csv", "answers_round02.csv"]
    assert (queue / "queue_round01.png").stat().st_size > 0


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_examples_have_help(script, tmp_path):
    assert "usage:" in _run(script, "--help", cwd=tmp_path)
