"""Epoch-time overhead of VoG in co-teaching: closed form (training pass) and checkpoint pass vs loss only.

Three ``CoTeachingClassifier`` variants on the same data, recipe and seed:

* ``loss``: loss-only co-teaching that tracks no VoG at all (``vog_source=None``);
* ``loss+vog (closed form)``: the default — per-sample last-layer gradients read from the training
  forward pass, a ring buffer update per batch and one moments pass per epoch;
* ``loss+vog (checkpoint pass)``: ``vog_source="checkpoint"``, an extra eval-mode pass over the
  training set per epoch (the reference code's approach).

After a warm-up (ramp and VoG window filled, so VoG selection is active), the variants train in
interleaved rounds of ``--epochs`` epochs each (A B C A B C …) so that load from other processes hits
all of them alike. Each round gives a ratio of the variant's median epoch time to loss-only's in the
same round; the script prints the median over rounds, for wall time (skorch's ``dur``) and process
CPU time. Goal: closed form <= 1.05.

Run::

    .venv/bin/python benchmarks/vog_overhead.py                      # digits-LT, + HAM10000 8x8 if found
    .venv/bin/python benchmarks/vog_overhead.py --rounds 7 --epochs 3 --hmnist-samples 4000
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

VARIANTS = {
    "loss": {"selection": "loss", "vog_source": None},
    "loss+vog (closed form)": {"selection": "loss+vog", "vog_source": "training"},
    "loss+vog (checkpoint pass)": {"selection": "loss+vog", "vog_source": "checkpoint"},
}
DEFAULT_HMNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "hmnist_8_8_L.csv"


def _datasets(args: argparse.Namespace) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    from modal_noisy.datasets import load_digits_long_tailed, load_hmnist_csv
    from modal_noisy.noise import inject_label_noise

    out = []
    digits = load_digits_long_tailed(imbalance_ratio=10, random_state=0)
    noisy = inject_label_noise(digits.y_train, 0.4, random_state=0).labels
    out.append(("digits-LT (10x)", digits.X_train, noisy, 10))
    if args.hmnist is not None and args.hmnist.is_file():
        X, y = load_hmnist_csv(args.hmnist)
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(len(X), size=min(args.hmnist_samples, len(X)), replace=False))
        X, y = X[keep], y[keep]
        out.append(
            (f"HAM10000 8x8 ({len(X)} samples)", X, inject_label_noise(y, 0.4, random_state=0).labels, 7)
        )
    elif args.hmnist is not None:
        print(f"(HAM10000 8x8 not found at {args.hmnist}; skipped)")
    return out


def _make(variant: dict, n_classes: int, args: argparse.Namespace):
    from modal_noisy.nets import SmallCNN
    from modal_noisy.training import CoTeachingClassifier, recommended_net_kwargs

    kwargs = recommended_net_kwargs(
        max_epochs=args.warmup + args.rounds * args.epochs, batch_size=args.batch_size
    )
    return CoTeachingClassifier(
        SmallCNN,
        module__n_classes=n_classes,
        module__width=args.width,
        forget_rate=0.4,
        num_gradual=2,
        vog_window=2,
        random_state=0,
        verbose=0,
        device=args.device,
        **variant,
        **kwargs,
    )


def measure_epoch_times(
    X: np.ndarray, y: np.ndarray, n_classes: int, args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    nets = {name: _make(v, n_classes, args) for name, v in VARIANTS.items()}
    for net in nets.values():  # warm-up: ramp done, VoG window full, mixing on
        net.fit(X, y, epochs=args.warmup)
    walls: dict[str, list[list[float]]] = {name: [] for name in nets}
    cpus: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(args.rounds):
        for name, net in nets.items():
            start = time.process_time()
            net.partial_fit(X, y, epochs=args.epochs)
            cpus[name].append((time.process_time() - start) / args.epochs)
            walls[name].append(list(net.history[-args.epochs :, "dur"]))
    mixing = {name: bool(net.history[-1, "vog_mixing"]) for name, net in nets.items()}
    return {"wall": walls, "cpu": cpus, "mixing": mixing}


def _report(title: str, res: dict, args: argparse.Namespace) -> None:
    base = "loss"
    print(
        f"\n{title}: {args.rounds} interleaved rounds x {args.epochs} epochs "
        f"after {args.warmup} warm-up epochs"
    )
    print(
        f"{'variant':28s} {'median epoch s':>14s} {'ratio (wall)':>13s} {'ratio (cpu)':>12s}"
        "  VoG selection on"
    )
    for name in VARIANTS:
        wall_rounds = [np.median(r) for r in res["wall"][name]]
        base_rounds = [np.median(r) for r in res["wall"][base]]
        ratio_wall = np.median(np.divide(wall_rounds, base_rounds))
        ratio_cpu = np.median(np.divide(res["cpu"][name], res["cpu"][base]))
        epoch = np.median(np.concatenate(res["wall"][name]))
        print(f"{name:28s} {epoch:14.3f} {ratio_wall:13.3f} {ratio_cpu:12.3f}  {res['mixing'][name]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="epochs per variant per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--hmnist", type=Path, default=DEFAULT_HMNIST, help="hmnist_8_8_L.csv (skipped if absent)")
    p.add_argument("--hmnist-samples", type=int, default=3000)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("command:", shlex.join([".venv/bin/python", "benchmarks/vog_overhead.py", *(argv or sys.argv[1:])]))
    versions = ", ".join(f"{pkg} {version(pkg)}" for pkg in ("torch", "skorch", "modal-noisy"))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{platform.machine()} CPU"
    print(f"python {platform.python_version()}, {versions}; {device}, {args.threads} thread(s)")
    for title, X, y, n_classes in _datasets(args):
        _report(title, measure_epoch_times(X, y, n_classes, args), args)


if __name__ == "__main__":
    main()
