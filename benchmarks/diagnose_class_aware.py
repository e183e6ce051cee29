"""Why does class-aware selection lose precision? Per given-label class: true vs estimated noise rate.

Fits ours (co-teaching + VoG λ=0.2, class-aware, τ estimated) once and prints, for each *given* label,
the true share of wrong labels, the model's ``class_noise_rates_``, the share it keeps and the
precision of what it keeps. Diagnostic only; nothing is written.

Run::

    .venv/bin/python benchmarks/diagnose_class_aware.py --seed 1 --epochs 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import dataset_specs, default_data_dir, header


def main(argv: list[str] | None = None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits", choices=["digits", "retinamnist", "hmnist"])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--noise-rate", type=float, default=0.4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--num-gradual", type=int, default=10)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from modal_noisy.experiment import build_coteaching, load_experiment

    info = header()
    print("command:", info["command"])
    print(f"modal_noisy code sha256 {info['modal_noisy_code']['sha256']}"
          + (f", exported from commit {info['code_commit']}" if info["code_commit"] else ""))
    (spec,) = dataset_specs([args.dataset], args.data_dir)
    e = load_experiment(spec.source, path=spec.path, noise_rate=args.noise_rate, random_state=args.seed)
    net = build_coteaching(e, max_epochs=args.epochs, selection="loss+vog", mix_ratio=0.2,
                           forget_rate="auto", class_aware=True, random_state=args.seed,
                           num_gradual=args.num_gradual, verbose=0)
    net.fit(e.X_train, e.y_given)
    classes = range(e.n_classes)
    kept = np.asarray(net.clean_mask_, dtype=bool)
    rows = {
        "given-label counts": np.bincount(e.y_given, minlength=e.n_classes),
        "true noise rate": [e.is_noisy[e.y_given == c].mean() for c in classes],
        "estimated noise rate": net.class_noise_rates_,
        "kept share": [kept[e.y_given == c].mean() for c in classes],
        "precision of kept": [(~e.is_noisy[(e.y_given == c) & kept]).mean() for c in classes],
    }
    print(f"{spec.name}, symmetric {args.noise_rate}, seed {args.seed}; per given label:")
    for name, values in rows.items():
        print(f"  {name:<22}", " ".join(f"{v:6.2f}" if isinstance(v, float) else f"{v:6}"
                                         for v in np.asarray(values).tolist()))
    print(f"  overall noise: estimated {net.noise_rate_:.3f}, true {e.is_noisy.mean():.3f}")


if __name__ == "__main__":
    main()
