"""How far the forget rate ``τ`` is from the true noise rate: the loss-based estimate and an audit.

For each data set, noise setting and seed: ``CoTeachingClassifier(forget_rate="auto")`` (ours:
class-aware, VoG mix 0.2, the data set's recipe) trains until its estimate is frozen (at the latest
after epoch ``max(min(num_gradual, 6), 3) - 1``), and a seeded random audit of ``--audit-share`` of
the training labels (the true labels play the expert, ``modal_noisy.cleaning.audit``) gives the other
estimate. Prints the realised noise rate, both estimates and the audit's 95% Wilson interval, and
writes ``results/noise_estimate.json``. It shows where the loss-based estimate can be trusted
(long-tailed digits) and where it cannot (the medical sets, where it hardly moves with the noise).

Run (about 10 minutes on one core)::

    .venv/bin/python benchmarks/noise_estimate.py
    .venv/bin/python benchmarks/noise_estimate.py --datasets digits --noise symmetric:0.4 --seeds 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, audit_seed, dataset_specs, default_data_dir, header, parse_noise, write_json


def measure(spec, kind: str, rate: float, seed: int, args: argparse.Namespace) -> dict:
    """One run: the true rate, the loss-based estimate and the audit's estimate with its interval."""
    from modal_noisy.cleaning.audit import audit_noise_rate, draw_audit
    from modal_noisy.experiment import build_coteaching, load_experiment

    exp = load_experiment(spec.source, path=spec.path, noise_rate=rate, noise_kind=kind, random_state=seed)
    net = build_coteaching(
        exp, max_epochs=args.epochs, class_aware=True, random_state=seed, num_gradual=args.num_gradual,
        device=args.device, verbose=0,
    )
    net.fit(exp.X_train, exp.y_given)
    n = len(exp.y_given)
    audited = draw_audit(n, max(1, round(args.audit_share * n)), random_state=audit_seed(seed))
    audit = audit_noise_rate(exp.y_given[audited], exp.y_true[audited])
    return {
        "dataset": spec.name, "noise_kind": kind, "noise_rate": rate, "seed": seed,
        "true_noise_rate": float(exp.is_noisy.mean()),
        "auto_estimate": float(net.noise_rate_),
        "auto_estimates_per_epoch": [float(v) for v in net.noise_estimates_],
        "audit_estimate": audit.noise_rate, "audit_low": audit.low, "audit_high": audit.high,
        "n_audited": audit.n_audited,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["digits", "retinamnist", "hmnist"])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--noise", nargs="+", default=["symmetric:0.2", "symmetric:0.4", "pair:0.3"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6, help="enough for the estimate to be frozen")
    p.add_argument("--num-gradual", type=int, default=5)
    p.add_argument("--audit-share", type=float, default=0.05)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    info = header(device=args.device)
    print("command:", info["command"], flush=True)
    rows = []
    print(f"{'data set':<14} {'noise':<14} {'seed':>4} {'true':>6} {'auto':>6} {'audit':>6}  "
          "audit 95% interval")
    for spec in dataset_specs(args.datasets, args.data_dir):
        for kind, rate in map(parse_noise, args.noise):
            for seed in args.seeds:
                row = measure(spec, kind, rate, seed, args)
                rows.append(row)
                print(
                    f"{spec.name:<14} {kind + ' ' + format(rate, 'g'):<14} {seed:>4} "
                    f"{row['true_noise_rate']:>6.3f} {row['auto_estimate']:>6.3f} "
                    f"{row['audit_estimate']:>6.3f}  [{row['audit_low']:.3f}, {row['audit_high']:.3f}] "
                    f"({row['n_audited']} labels)",
                    flush=True,
                )
    print("\nmean absolute error of the estimate (over seeds):")
    keys = sorted({(r["dataset"], r["noise_kind"], r["noise_rate"]) for r in rows}, key=str)
    for key in keys:
        group = [r for r in rows if (r["dataset"], r["noise_kind"], r["noise_rate"]) == key]
        auto = np.mean([abs(r["auto_estimate"] - r["true_noise_rate"]) for r in group])
        audit = np.mean([abs(r["audit_estimate"] - r["true_noise_rate"]) for r in group])
        print(f"  {key[0]:<14} {key[1]} {key[2]:g}: loss-based {auto:.3f}, audit {audit:.3f}")
    config = {**vars(args), "data_dir": str(args.data_dir)}
    write_json(RESULTS_DIR / "noise_estimate.json", {"header": info, "config": config, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
