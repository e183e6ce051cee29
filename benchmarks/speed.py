"""Speed benchmark: what VoG costs, how fast a ranked relabel list comes, query latency, VoG memory.

(a) epoch time of co-teaching with loss+VoG (closed form, from the training pass) and loss+VoG
    (checkpoint pass, an extra eval-mode pass per epoch) over loss-only co-teaching (no VoG tracked),
    same data, epochs and seed, measured one after another in one process;
(b) wall time to a ranked relabel list: our phase 1 (co-teaching + VoG, class-aware, then the ``vog``
    strategy ranking the noisy pool) against cleanlab's 5-fold cross-validation of the same network
    and epochs + ``find_label_issues`` ranked by self-confidence, with each list's precision (share of
    listed labels that are wrong) overall and in its top 5% / 10% of the training set;
(c) query latency of the strategies (``benchmarks/query_latency.py``, reused as a module);
(d) VoG state memory per sample, read from the ring buffers of a fitted model (float32 and float16).

Writes ``benchmarks/results/speed_<tag>.json``; ``make_results.py`` renders it into RESULTS.md.

Run::

    .venv/bin/python benchmarks/speed.py --datasets digits hmnist retinamnist --epochs 20
    .venv/bin/python benchmarks/speed.py --quick          # <= 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RESULTS_DIR,
    Stopwatch,
    dataset_specs,
    default_data_dir,
    header,
    quiet_warnings,
    write_json,
)

VARIANTS = {
    "loss": {"selection": "loss", "vog_source": None},
    "loss+vog (closed form)": {"selection": "loss+vog", "vog_source": "training"},
    "loss+vog (checkpoint pass)": {"selection": "loss+vog", "vog_source": "checkpoint"},
}


def _cpu_timer() -> Any:
    """A skorch callback recording each epoch's process CPU time as ``cpu_dur`` in the history.

    With one torch thread, CPU time measures the work done and is far less sensitive than wall time
    to other jobs competing for the cores (wall times on a shared machine swing 2x between repeats).
    """
    import time

    from skorch.callbacks import Callback

    class CPUTime(Callback):
        def on_epoch_begin(self, net, **kwargs):
            self._start = time.process_time()

        def on_epoch_end(self, net, **kwargs):
            net.history.record("cpu_dur", time.process_time() - self._start)

    return CPUTime()


def _with_cpu_timer(net: Any) -> Any:
    return net.set_params(callbacks=[*net.callbacks, ("cpu_time", _cpu_timer())])


def _epoch_seconds(net: Any, key: str = "dur") -> float:
    """Median epoch time, the first epoch (warm-up, allocation) left out."""
    durations = np.asarray(net.history[:, key], dtype=float)
    return float(np.median(durations[1:] if len(durations) > 2 else durations))


def epoch_time_ratios(exp: Any, *, epochs: int, device: str, seed: int, repeats: int) -> dict[str, Any]:
    """(a) through ``benchmarks/vog_overhead.py``'s interleaved measurement when it is importable.

    Its ``measure_epoch_times`` warms the three variants up until VoG selection is active, then trains them in
    interleaved rounds (A B C A B C ...) so that load from other processes hits all of them alike.
    Falls back to :func:`epoch_time_ratios_by_fit` (one fit per variant and repeat) otherwise.
    """
    try:
        import vog_overhead
    except ImportError:
        vog_overhead = None
    if exp.in_channels != 1 or not hasattr(vog_overhead, "measure_epoch_times"):
        return epoch_time_ratios_by_fit(exp, epochs=epochs, device=device, seed=seed, repeats=repeats)
    settings = argparse.Namespace(rounds=max(3, repeats), epochs=max(1, epochs // 2), warmup=3,
                                  batch_size=64, width=32, threads=1, device=device)
    res = vog_overhead.measure_epoch_times(exp.X_train, exp.y_given, exp.n_classes, settings)
    wall = {name: [float(np.median(r)) for r in rounds] for name, rounds in res["wall"].items()}
    cpu = res["cpu"]
    median = {name: float(np.median(v)) for name, v in wall.items()}
    cpu_median = {name: float(np.median(v)) for name, v in cpu.items()}
    return {
        "method": f"vog_overhead.measure_epoch_times: {settings.rounds} interleaved rounds × "
                  f"{settings.epochs} epochs after {settings.warmup} warm-up epochs "
                  f"(VoG selection active: {res['mixing']})",
        "epoch_seconds": median,
        "epoch_seconds_all": wall,
        "ratio_to_loss": {n: float(np.median(np.divide(wall[n], wall["loss"]))) for n in wall},
        "epoch_cpu_seconds": cpu_median,
        "epoch_cpu_seconds_all": cpu,
        "cpu_ratio_to_loss": {n: float(np.median(np.divide(cpu[n], cpu["loss"]))) for n in cpu},
    }


def epoch_time_ratios_by_fit(
    exp: Any, *, epochs: int, device: str, seed: int, repeats: int
) -> dict[str, Any]:
    """(a): median epoch time of each variant and its ratio to loss-only; variants interleaved."""
    from modal_noisy.experiment import build_coteaching

    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name, params in VARIANTS.items():
            net = build_coteaching(
                exp, max_epochs=epochs, forget_rate=0.4, device=device, random_state=seed,
                num_gradual=min(10, max(1, epochs // 3)), verbose=0, **params,
            )
            _with_cpu_timer(net).fit(exp.X_train, exp.y_given)
            times[name].append(_epoch_seconds(net))
            cpu[name].append(_epoch_seconds(net, "cpu_dur"))
    median = {name: float(np.median(v)) for name, v in times.items()}
    cpu_median = {name: float(np.median(v)) for name, v in cpu.items()}
    return {
        "method": f"one fit of {epochs} epochs per variant and repeat ({repeats} repeats)",
        "epoch_seconds": median,
        "epoch_seconds_all": times,
        "ratio_to_loss": {name: median[name] / median["loss"] for name in VARIANTS},
        "epoch_cpu_seconds": cpu_median,
        "epoch_cpu_seconds_all": cpu,
        "cpu_ratio_to_loss": {name: cpu_median[name] / cpu_median["loss"] for name in VARIANTS},
    }


def _list_precision(ranked: np.ndarray, is_noisy: np.ndarray, n_train: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "length": len(ranked),
        "precision": float(is_noisy[ranked].mean()) if len(ranked) else None,
    }
    for share in (0.05, 0.10):
        k = max(1, round(share * n_train))
        top = ranked[:k]
        out[f"precision_top_{int(share * 100)}pct"] = float(is_noisy[top].mean()) if len(top) else None
    return out


def ranked_list_times(exp: Any, *, epochs: int, device: str, seed: int, folds: int) -> dict[str, Any]:
    """(b): our phase 1 + VoG ranking vs cleanlab's k-fold CV + find_label_issues, same net/epochs."""
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedKFold

    from modal_noisy.experiment import build_coteaching, build_cross_entropy
    from modal_noisy.strategies import vog_noisy_query

    X, y, n = exp.X_train, exp.y_given, len(exp.y_given)
    is_noisy = exp.is_noisy
    with Stopwatch() as ours:
        net = build_coteaching(
            exp, max_epochs=epochs, selection="loss+vog", forget_rate="auto", class_aware=True,
            device=device, random_state=seed, num_gradual=min(10, max(1, epochs // 3)), verbose=0,
        )
        net.fit(X, y)
        pool = np.flatnonzero(~np.asarray(net.clean_mask_, dtype=bool))
        order = vog_noisy_query(net, X[pool], len(pool), labels=y[pool], pool_indices=pool,
                                random_state=seed)
        ours_ranked = pool[order]
    with Stopwatch() as theirs:
        probs = np.zeros((n, exp.n_classes))
        for fold, (train, held) in enumerate(
            StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y)
        ):
            model = build_cross_entropy(exp, max_epochs=epochs, device=device,
                                        random_state=seed * 100 + fold + 1, verbose=0)
            model.fit(X[train], y[train])
            probs[held] = model.predict_proba(X[held])
        probs = np.clip(probs, 0.0, None)
        probs /= probs.sum(axis=1, keepdims=True)
        cl_ranked = np.asarray(
            find_label_issues(y, probs, return_indices_ranked_by="self_confidence")
        )
    return {
        "ours_seconds": ours.seconds,
        "cleanlab_seconds": theirs.seconds,
        "ratio_cleanlab_to_ours": theirs.seconds / ours.seconds,
        "ours_list": _list_precision(ours_ranked, is_noisy, n),
        "cleanlab_list": _list_precision(cl_ranked, is_noisy, n),
        "true_noise_rate": float(is_noisy.mean()),
    }


def vog_memory(exp: Any, *, device: str, seed: int) -> dict[str, Any]:
    """(d): bytes of VoG state per training sample, read from a fitted model's buffers."""
    import torch

    from modal_noisy.experiment import build_coteaching

    out: dict[str, Any] = {}
    for dtype in ("float32", "float16"):
        net = build_coteaching(exp, max_epochs=2, selection="loss+vog", forget_rate=0.4,
                               vog_dtype=dtype, device=device, random_state=seed, verbose=0)
        net.fit(exp.X_train, exp.y_given)
        state = net.run_state_
        n = state.n
        buffers = [b for b in (state.vog1, state.vog2) if b is not None]
        vog_bytes = sum(b.nbytes for b in buffers) + sum(
            t.element_size() * t.numel() for t in (state.vog_values1, state.vog_values2)
        )
        tensors = [t for t in vars(state).values() if isinstance(t, torch.Tensor)]
        all_bytes = sum(b.nbytes for b in buffers) + sum(t.element_size() * t.numel() for t in tensors)
        out[dtype] = {
            "n_samples": n,
            "window": buffers[0].window,
            "dim": buffers[0].dim,
            "vog_bytes_per_sample": vog_bytes / n,
            "all_per_sample_state_bytes_per_sample": all_bytes / n,
            "formula_bytes_per_sample": 2 * buffers[0].window * buffers[0].dim
            * buffers[0].buffer.element_size(),
        }
    return out


def query_latency(pool: int, k: int, repeats: int) -> dict[str, Any]:
    """(c): run ``query_latency.py``'s ``main`` as a module and keep its table."""
    import query_latency as ql  # benchmarks/query_latency.py

    buffer = io.StringIO()
    argv = ["--pool", str(pool), "--k", str(k), "--repeats", str(repeats),
            "--coreset-pool", str(min(50_000, pool // 4))]
    with contextlib.redirect_stdout(buffer):
        ql.main(argv)
    text = buffer.getvalue()
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^(\S.*?)\s{2,}(\d+\.\d+)\s+(\d+\.\d+)\s+(ok|SLOW)$", line)
        if match:
            rows[match.group(1).strip()] = {"median_s": float(match.group(2)),
                                            "best_s": float(match.group(3))}
    coreset = re.search(r"core-set: .*median ([\d.]+) s", text)
    return {"pool": pool, "k": k, "median_seconds": rows,
            "coreset_median_s": float(coreset.group(1)) if coreset else None, "text": text}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "hmnist", "retinamnist"])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--repeats", type=int, default=1, help="fits per variant in (a)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", type=int, default=1_000_000, help="(c) pool size")
    p.add_argument("--k", type=int, default=1000, help="(c) samples picked")
    p.add_argument("--parts", nargs="+", default=["a", "b", "c", "d"], choices=["a", "b", "c", "d"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default=None)
    p.add_argument("--quick", action="store_true",
                   help="digits + HAM 8x8 (a), digits (b, d), 4 epochs, pool 100,000")
    return p


def main(argv: list[str] | None = None) -> Path:
    import torch

    args = build_parser().parse_args(argv)
    if args.quick:
        args.datasets, args.epochs, args.repeats, args.pool = ["digits", "hmnist"], 4, 1, 100_000
    tag = args.tag or ("quick" if args.quick else "main")
    if args.device != "cpu":
        tag += "_" + args.device.replace(":", "")
    torch.set_num_threads(args.threads)
    from modal_noisy.experiment import load_experiment

    path = RESULTS_DIR / f"speed_{tag}.json"
    out: dict[str, Any] = {"header": header(device=args.device), "config": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "datasets": {}}
    print(f"command: {out['header']['command']}\nresults: {path}", flush=True)
    specs = dataset_specs(args.datasets, args.data_dir)
    with quiet_warnings():
        for i, spec in enumerate(specs):
            exp = load_experiment(spec.source, path=spec.path, noise_rate=0.4, random_state=args.seed)
            entry: dict[str, Any] = {"n_train": len(exp.y_given), "epochs": args.epochs,
                                     "input_shape": list(exp.X_train.shape[1:])}
            out["datasets"][spec.name] = entry
            if "a" in args.parts:
                entry["epoch_time"] = epoch_time_ratios(
                    exp, epochs=args.epochs, device=args.device, seed=args.seed, repeats=args.repeats)
                print(spec.name, "(a)", entry["epoch_time"]["ratio_to_loss"], flush=True)
                write_json(path, out)
            # (b) and (d) on the first data set only in quick mode (the CV is the slow part)
            if "b" in args.parts and (not args.quick or i == 0):
                entry["ranked_list"] = ranked_list_times(
                    exp, epochs=args.epochs, device=args.device, seed=args.seed, folds=args.folds)
                rl = entry["ranked_list"]
                print(spec.name, f"(b) ours {rl['ours_seconds']:.1f} s, cleanlab "
                      f"{rl['cleanlab_seconds']:.1f} s", flush=True)
                write_json(path, out)
            if "d" in args.parts and (not args.quick or i == 0):
                entry["vog_memory"] = vog_memory(exp, device=args.device, seed=args.seed)
                write_json(path, out)
    if "c" in args.parts:
        out["query_latency"] = query_latency(args.pool, args.k, repeats=3)
        print("(c)", out["query_latency"]["median_seconds"], flush=True)
    write_json(path, out)
    print(f"wrote {path}", flush=True)
    return path


if __name__ == "__main__":
    main()
