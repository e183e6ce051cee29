"""Clean-label upper bound: SmallCNN with the default recipe, trained on the *true* labels.

What any noisy-label method can at best reach with this network and recipe. For each data set it
prints the clean-label test balanced accuracy (mean ± sample std over seeds) of
``SmallCNN`` + :func:`modal_noisy.training.recommended_net_kwargs` with the plain recipe (no
augmentation); for the medical sets also with their recipe (``modal_noisy.experiment.medical_recipe``:
random flips and shifts of up to side // 14 pixels of the training batches, and the network's
local-contrast filter of Gaussian sigma side // 14 pixels, none on 8×8; digits train plain, their
class depends on orientation); the pair of SmallCNNs that ``CoTeachingClassifier`` predicts with
(``forget_rate=0``, so every true label is used), the ceiling of the co-teaching methods; each also with a
prior-corrected decision rule; and logistic regression on standardised pixels (C=0.1) as a
reference line, unweighted and with ``class_weight="balanced"``.

Data: digits-LT (scikit-learn's bundled digits, 10× long-tailed train split, balanced test split),
RetinaMNIST (MedMNIST ``.npz``: trained on ``train``, scored on ``test``), HAM10000 8×8
(``hmnist_8_8_L.csv``: stratified 70/10/20 split with ``random_state=0``, scored on the 20% test
part; the same split for every seed). Seeds vary the network initialisation, the shuffling and the
augmentation draws only.
A data set whose file is absent is skipped with a message.

    .venv/bin/python benchmarks/clean_upper_bound.py            # 3 seeds, 40 epochs
    .venv/bin/python benchmarks/clean_upper_bound.py --quick    # smoke run: 1 seed, 2 epochs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import default_data_dir, header, mean_std


def _datasets(args: argparse.Namespace) -> list[tuple[str, tuple[np.ndarray, ...] | None, str]]:
    """(name, (X_train, y_train, X_test, y_test) or None, note) for each requested data set."""
    from modal_noisy.datasets import (
        load_digits_long_tailed,
        load_hmnist_csv,
        load_medmnist,
        stratified_split,
    )

    out: list[tuple[str, tuple[np.ndarray, ...] | None, str]] = []
    digits = load_digits_long_tailed(imbalance_ratio=10.0, random_state=0)
    out.append(("digits-LT (10x)", (digits.X_train, digits.y_train, digits.X_test, digits.y_test), ""))
    retina = Path(args.retina)
    if retina.is_file():
        X_train, y_train = load_medmnist(retina, split="train")
        X_test, y_test = load_medmnist(retina, split="test")
        out.append(("RetinaMNIST", (X_train, y_train, X_test, y_test), ""))
    else:
        out.append(("RetinaMNIST", None, f"{retina} not found"))
    hmnist = Path(args.hmnist)
    if hmnist.is_file():
        X, y = load_hmnist_csv(hmnist)
        split = stratified_split(X, y, val_size=0.1, test_size=0.2, random_state=0)
        out.append(("HAM10000 8x8", (split.X_train, split.y_train, split.X_test, split.y_test), ""))
    else:
        out.append(("HAM10000 8x8", None, f"{hmnist} not found"))
    return out


def _cnn_score(
    data: tuple[np.ndarray, ...], seed: int, args: argparse.Namespace, recipe: dict, pair: bool
) -> tuple[float, float, float]:
    """Balanced accuracy of SmallCNN + the recipe: argmax, prior-corrected argmax; s/epoch.

    ``pair``: a :class:`~modal_noisy.training.CoTeachingClassifier` with ``forget_rate=0`` instead
    of one network — the two SmallCNNs whose summed logits co-teaching predicts with, trained on
    every (true) label, i.e. the ceiling of the co-teaching methods themselves.

    The prior-corrected prediction is ``argmax(log p(y|x) - log prior(y))`` with the class prior of
    the training labels (:func:`modal_noisy.decision.prior_corrected_predict`, what
    ``CoTeachingClassifier(decision="balanced")`` predicts with; post-hoc logit adjustment, Menon et
    al., ICLR 2021): the same trained network, only the decision rule changes, so it costs nothing
    and leaves training untouched.
    """
    from sklearn.metrics import balanced_accuracy_score
    from skorch import NeuralNetClassifier

    from modal_noisy.decision import ensemble_prior, label_prior, prior_corrected_predict
    from modal_noisy.nets import SmallCNN
    from modal_noisy.training import CoTeachingClassifier, recommended_net_kwargs

    X_train, y_train, X_test, y_test = data
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    common = dict(
        module__in_channels=X_train.shape[1], module__n_classes=n_classes, device=args.device, verbose=0
    )
    if pair:
        # the classifier seeds initialisation, shuffling and augmentation from its random_state
        net = CoTeachingClassifier(
            SmallCNN, forget_rate=0.0, selection="loss", random_state=seed, **common,
            **recommended_net_kwargs(max_epochs=args.epochs, **recipe),
        )
    else:
        net = NeuralNetClassifier(
            SmallCNN, module__random_state=seed, **common,
            **recommended_net_kwargs(max_epochs=args.epochs, random_state=seed, **recipe),
        )
    start = time.perf_counter()
    net.fit(X_train, y_train)
    per_epoch = (time.perf_counter() - start) / args.epochs
    proba = net.predict_proba(X_test)
    # as decision="balanced" does: the prior out once per network whose logits are summed
    prior = ensemble_prior(label_prior(y_train, n_classes), getattr(net, "inference_networks_", 1))
    return (
        float(balanced_accuracy_score(y_test, proba.argmax(axis=1))),
        float(balanced_accuracy_score(y_test, prior_corrected_predict(proba, prior))),
        per_epoch,
    )


def _logreg_scores(data: tuple[np.ndarray, ...]) -> tuple[float, float]:
    """Balanced accuracy of logistic regression on standardised pixels: unweighted, balanced."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, y_train, X_test, y_test = data
    scores = []
    for class_weight in (None, "balanced"):
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight=class_weight)
        )
        model.fit(X_train.reshape(len(X_train), -1), y_train)
        pred = model.predict(X_test.reshape(len(X_test), -1))
        scores.append(float(balanced_accuracy_score(y_test, pred)))
    return scores[0], scores[1]


def _summary(values: list[float]) -> str:
    mean, std, _ = mean_std(values)
    return f"**{mean:.3f} ± {std:.3f}** ({' '.join(f'{v:.3f}' for v in values)})"


def main(argv: list[str] | None = None) -> int:
    data_dir = default_data_dir()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retina", default=str(data_dir / "retinamnist.npz"), help="RetinaMNIST .npz")
    parser.add_argument("--hmnist", default=str(data_dir / "hmnist_8_8_L.csv"), help="HAM10000 CSV")
    parser.add_argument("--only", nargs="+", choices=["digits", "retinamnist", "hmnist"], default=None,
                        help="run only these data sets (default: all whose file exists)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--plain-only",
        action="store_true",
        help="skip the single-network column of the medical recipe on the medical sets",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 2

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    info = header([sys.argv[0], *(sys.argv[1:] if argv is None else argv)], device=args.device)
    print(f"command: {info['command']}")
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v is not None)
    print(f"versions: {versions}")
    machine = info["machine"]
    print(
        f"machine: {machine['cpu_count']} CPUs, torch threads {machine['torch_threads']}, "
        f"device {args.device}; git {str(info['git_commit'])[:10]}"
        f"{' (dirty)' if info['git_dirty_tracked_files'] else ''}"
    )
    print(
        f"seeds {args.seeds}, {args.epochs} epochs, clean labels; test balanced accuracy, "
        "mean ± sample std (per seed)\n"
    )

    from modal_noisy.experiment import medical_recipe

    # (label, recipe on the medical sets, pair); digits always train plain
    variants: list[tuple[str, str | None, bool]] = [("SmallCNN, plain recipe", None, False)]
    if not args.plain_only:
        label = "SmallCNN, medical recipe (flips, shifts and local contrast of side/14)"
        variants.append((label, "medical", False))
    variants.append(("two SmallCNNs (co-teaching, forget_rate=0), recipe of the data", "medical", True))
    rows = []
    wanted = {"digits": "digits", "retinamnist": "Retina", "hmnist": "HAM"}
    for name, data, note in _datasets(args):
        if args.only and not any(name.startswith(wanted[k]) for k in args.only):
            continue
        if data is None:
            print(f"[skip] {name}: {note}", flush=True)
            continue
        X_train, y_train, X_test, _ = data
        counts = np.bincount(y_train)
        cells = []
        is_digits = name.startswith("digits")
        for label, kind, pair in variants:
            if is_digits and kind and not pair:
                cells += ["n/a (digits train plain: their class depends on orientation)", "", ""]
                continue
            recipe = medical_recipe(min(X_train.shape[-2:])) if kind and not is_digits else {}
            scores, corrected, times = [], [], []
            for seed in args.seeds:
                score, score_corrected, per_epoch = _cnn_score(data, seed, args, recipe, pair)
                scores.append(score)
                corrected.append(score_corrected)
                times.append(per_epoch)
                print(
                    f"  {name}, {label}, seed {seed}: {score:.3f}, prior-corrected "
                    f"{score_corrected:.3f} ({per_epoch:.2f} s/epoch)",
                    flush=True,
                )
            cells += [_summary(scores), _summary(corrected), f"{np.median(times):.2f}"]
        lr_plain, lr_balanced = _logreg_scores(data)
        rows.append(
            (
                name,
                f"{len(y_train)}/{len(X_test)}",
                f"{len(counts)} ({counts.max() / max(counts.min(), 1):.1f}x)",
                "×".join(str(d) for d in X_train.shape[1:]),
                *cells,
                f"{lr_plain:.3f} / {lr_balanced:.3f}",
            )
        )

    head = ["data set", "train/test", "classes (imbalance)", "C×H×W"]
    for label, _, _ in variants:
        head += [label, "… prior-corrected", "s/epoch"]
    head.append("logistic regression: plain / balanced")
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
