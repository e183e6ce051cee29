"""Shared helpers of the benchmark scripts: provenance header, JSON files, timing, data sets.

Imported by ``quality.py``, ``speed.py`` and ``make_results.py`` (run them from the repository root or
from ``benchmarks/``; each script puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from modal_noisy.jsonable import to_jsonable

__all__ = [
    "BENCH_DIR",
    "REPO_ROOT",
    "RESULTS_DIR",
    "DataSpec",
    "Stopwatch",
    "dataset_specs",
    "default_data_dir",
    "header",
    "load_json",
    "mean_std",
    "parse_noise",
    "to_jsonable",
    "write_json",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

_PACKAGES = (
    "modal-noisy",
    "torch",
    "torchvision",
    "skorch",
    "scikit-learn",
    "numpy",
    "scipy",
    "pandas",
    "cleanlab",
    "modAL-python",
    "matplotlib",
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_fingerprint() -> dict[str, Any]:
    """Where ``modal_noisy`` was imported from and a sha256 over its ``.py`` files (uncommitted work too)."""
    import hashlib

    import modal_noisy

    root = Path(modal_noisy.__file__).resolve().parent
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    return {"package_dir": str(root), "sha256": digest.hexdigest()[:16]}


def header(argv: list[str] | None = None, *, device: str = "cpu") -> dict[str, Any]:
    """Provenance of a results file: the exact command, package versions, machine and git state."""
    import torch

    argv = sys.argv if argv is None else argv
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    script = os.path.relpath(os.path.abspath(argv[0]), REPO_ROOT) if argv else "?"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    info = {
        "command": shlex.join([".venv/bin/python", script, *argv[1:]]),
        "versions": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty_tracked_files": None if dirty is None else bool(dirty),
        "modal_noisy_code": code_fingerprint(),
        # set when the package is imported from an exported commit (``git archive``) while the
        # working tree is being edited by others
        "code_commit": os.environ.get("BENCH_CODE_COMMIT"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": device,
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["machine"]["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (a killed run never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(data), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def load_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (wall time, ``time.perf_counter``)."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def median_time(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls and the last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def mean_std(values: list[float | None]) -> tuple[float, float, int]:
    """Mean and (sample) standard deviation over the finite values, and how many there were."""
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, 0
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size)


def parse_noise(text: str) -> tuple[str, float]:
    """``"symmetric:0.4"`` / ``"pair:0.3"`` / ``"sym:0.2"`` -> ``(kind, rate)``."""
    kind, _, rate = text.partition(":")
    kind = {"sym": "symmetric", "symmetric": "symmetric", "pair": "pair"}.get(kind)
    if kind is None or not rate:
        raise ValueError(f"noise must look like 'symmetric:0.4' or 'pair:0.3' (got {text!r})")
    value = float(rate)
    if not 0 < value < 1:
        raise ValueError(f"noise rate must be in (0, 1) (got {text!r})")
    return kind, value


def noise_is_meaningful(kind: str, rate: float, n_classes: int) -> bool:
    """Symmetric noise at ``rate >= (C-1)/C`` (pair: ``>= 0.5``) leaves labels uninformative."""
    limit = (n_classes - 1) / n_classes if kind == "symmetric" else 0.5
    return rate < limit - 1e-9


def audit_seed(seed: int) -> int:
    """The seed of a benchmark's label audit for the run seeded ``seed``.

    Not ``seed`` itself: the noise is injected with ``seed``, and a second generator on the same seed
    would pick the audited samples from the flip draws' stream (measured: estimates 0.1 too low).
    """
    import numpy as np

    return int(np.random.SeedSequence([seed, 0xA0D17]).generate_state(1)[0])


def default_data_dir() -> Path:
    """``../shared/data`` next to the repository (where the project's copies live)."""
    return REPO_ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class DataSpec:
    """One benchmark data set: the short name used in tables and how to load it."""

    name: str
    source: str  # "digits" | "medmnist" | "hmnist"
    path: str | None = None


def dataset_specs(names: list[str], data_dir: Path, extra_npz: list[str] = ()) -> list[DataSpec]:
    """Resolve data-set names; a missing file is reported and skipped, never an error."""
    specs = []
    for name in names:
        if name == "digits":
            specs.append(DataSpec("digits-LT", "digits"))
            continue
        if name == "retinamnist":
            path = data_dir / "retinamnist.npz"
            spec = DataSpec("RetinaMNIST", "medmnist", str(path))
        elif name == "hmnist":
            path = data_dir / "hmnist_8_8_L.csv"
            spec = DataSpec("HAM10000-8x8", "hmnist", str(path))
        else:
            raise ValueError(f"unknown data set {name!r}: use digits, retinamnist, hmnist or --npz PATH")
        if path.is_file():
            specs.append(spec)
        else:
            print(f"[skip] {spec.name}: {path} not found", flush=True)
    for npz in extra_npz:
        if Path(npz).is_file():
            specs.append(DataSpec(Path(npz).stem, "medmnist", str(npz)))
        else:
            print(f"[skip] {npz}: not found", flush=True)
    return specs


@contextmanager
def quiet_warnings() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
