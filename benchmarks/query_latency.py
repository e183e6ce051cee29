"""Query latency: pick 1,000 samples from a 1,000,000-sample pool with precomputed inputs.

Each non-core-set strategy is called exactly as the phase-2 loop would call it, end to end
(input validation included), with precomputed probabilities / VoG / MC-dropout passes, so the
figure is the cost of scoring + selection alone (no network). Core-set is timed separately:
1,000 centres over 50,000 × 128 float32 features. Goal: <= 1 s per non-core-set strategy on 2 cores.

Run::

    .venv/bin/python benchmarks/query_latency.py [--pool 1000000] [--k 1000] [--classes 10]
        [--mc-passes 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from importlib.metadata import version

import numpy as np

from modal_noisy import strategies


def _time(fn, repeats: int) -> tuple[float, float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times)), out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--mc-passes", type=int, default=10)
    parser.add_argument("--coreset-pool", type=int, default=50_000)
    parser.add_argument("--coreset-dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    print("command:", shlex.join([os.path.basename(sys.executable), *sys.argv]))
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {version('scipy')}, "
        f"cleanlab {version('cleanlab')}, modal-noisy {version('modal-noisy')}; "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    )

    rng = np.random.default_rng(0)
    n, k, c = args.pool, args.k, args.classes
    # peaked probabilities (a trained model is confident on most samples), float32 as a net returns
    pred_probs = rng.dirichlet(np.full(c, 0.3), size=n).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    vog = rng.gamma(2.0, 0.1, size=n).astype(np.float32)
    mc = rng.dirichlet(np.full(c, 0.3), size=(args.mc_passes, n)).astype(np.float32)
    shared = dict(labels=labels, pred_probs=pred_probs, vog=vog, random_state=0)
    cases = {
        "random": (strategies.random_query, shared),
        "entropy": (strategies.entropy_query, shared),
        "margin": (strategies.margin_query, shared),
        "least_confidence": (strategies.least_confidence_query, shared),
        "loss": (strategies.loss_noisy_query, shared),
        "cleanlab (self_confidence)": (strategies.cleanlab_query, shared),
        "cleanlab (normalized_margin)": (
            strategies.cleanlab_query,
            {**shared, "method": "normalized_margin"},
        ),
        "vog (mix 0.5)": (strategies.vog_noisy_query, shared),
        f"bald ({args.mc_passes} MC passes)": (
            strategies.bald_query,
            {"mc_pred_probs": mc, "random_state": 0},
        ),
    }
    print(
        f"\npick {k:,} from a pool of {n:,} ({c} classes), precomputed inputs; "
        f"median / best of {args.repeats}"
    )
    print(f"{'strategy':<30} {'median s':>9} {'best s':>8}  goal <= 1 s")
    for name, (strategy, kwargs) in cases.items():
        kwargs = strategies.keywords_for(strategy, **kwargs)  # each takes only its own inputs
        med, best, idx = _time(lambda s=strategy, kw=kwargs: s(None, None, k, **kw), args.repeats)
        if len(np.unique(idx)) != k:
            raise RuntimeError(f"{name} returned duplicates")
        print(f"{name:<30} {med:>9.3f} {best:>8.3f}  {'ok' if med <= 1 else 'SLOW'}")
    del mc

    features = rng.normal(size=(args.coreset_pool, args.coreset_dim)).astype(np.float32)
    med, best, idx = _time(
        lambda: strategies.coreset_query(None, None, k, features=features, random_state=0),
        args.repeats,
    )
    print(
        f"\ncore-set: {k:,} centres over {args.coreset_pool:,} × {args.coreset_dim} float32 "
        f"features: median {med:.2f} s, best {best:.2f} s ({1e3 * med / k:.2f} ms per centre)"
    )


if __name__ == "__main__":
    main()
