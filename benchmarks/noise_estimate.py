"""How far the forget rate ``τ`` is from the true noise rate: the default estimate, the candidates, an audit.

For each data set, noise setting and seed, ``CoTeachingClassifier(forget_rate="auto")`` (ours:
class-aware, VoG mix 0.2, the data set's recipe) trains until its estimate is frozen (at the latest
after epoch ``max(min(num_gradual, 6), 3) - 1``). Recorded per run:

* ``auto_estimate``: the library's estimate (mixture-proportion estimation on the held-out share,
  ``modal_noisy.training.wrong_label_share``) and ``class_mae``, the mean absolute error of its
  per-class rates ``class_noise_rates_`` against the realised ones;
* the candidates it was chosen against, computed here from the same run, each the median of its
  per-epoch estimates from epoch 1 on while the samples are held out: ``loss_mixture`` (the
  previous default: a two-component Gaussian mixture on in-sample log losses averaged over the
  epochs, as in DivideMix), ``class_pooled`` (the same mixture-proportion estimate per given class,
  against the class's probability on samples labelled otherwise) and ``class_conditional`` (per
  given class, a linear programme that explains the class's given-label probabilities by the other
  classes' samples, which allows structured noise), ``heldout_average`` (the default's estimate once, on
  the held-out probabilities averaged over those epochs, not the median of per-epoch estimates) and
  ``confident_joint`` (one minus the diagonal share of the confident joint of given labels and held-out
  probabilities, cleanlab's counting; ``modal_noisy.training.class_noise_rates`` weighted by class size),
  ``anchor`` (the anchor-point estimate of the noise transition matrix, Patrini et al., CVPR 2017: the
  held-out samples a network finds most typical of class ``i`` stand for the class, and their mean
  predicted probability of label ``i`` is the share of class ``i`` that keeps its label; one minus it,
  weighted by the given labels' shares) and ``heldout_or_anchor`` (per epoch the larger of the
  default's estimate and ``anchor``: the default reads structured noise too low, the anchors see it);
* a seeded random audit of ``--audit-share`` of the training labels (the true labels play the
  expert, ``modal_noisy.cleaning.audit``) with its 95% Wilson interval.

Writes ``results/noise_estimate.json`` (``--continue``: adds to it, replacing rows of the same
data set, noise setting and seed, and keeps the earlier commands on record).

Run (about 20 minutes on one core)::

    .venv/bin/python benchmarks/noise_estimate.py
    .venv/bin/python benchmarks/noise_estimate.py --datasets digits --noise symmetric:0.4 --seeds 0
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import linprog
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RESULTS_DIR,
    audit_seed,
    dataset_specs,
    default_data_dir,
    header,
    load_json,
    parse_noise,
    write_json,
)

from modal_noisy.cleaning.audit import audit_noise_rate, draw_audit
from modal_noisy.experiment import build_coteaching, load_experiment
from modal_noisy.training import class_noise_rates, wrong_label_share

CANDIDATES = (
    "loss_mixture", "class_pooled", "class_conditional", "heldout_average", "confident_joint", "anchor",
    "heldout_or_anchor",
)
#: the anchors of class i: the held-out samples whose p(i | x) reaches this quantile (Patrini et al.)
ANCHOR_QUANTILE = 0.97


class _EpochSnapshots(Callback):
    """Per epoch: every sample's predicted probabilities and loss, and which samples were held out."""

    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_end(self, net, **kwargs):
        state = net.run_state_
        self.epochs.append(
            {
                "prob": state.prob.cpu().numpy().copy(),
                "loss": ((state.loss1 + state.loss2) / 2).cpu().numpy().copy(),
                "held_out": state.held_out.cpu().numpy().copy(),
                "holding": bool(state.holding_out),
            }
        )


def loss_mixture(losses: np.ndarray) -> float:
    """Mean posterior of the high-loss component of a 2-component GMM on min-max scaled log losses."""
    x = np.log(np.maximum(losses, 1e-8))
    if x.size < 4 or np.ptp(x) < 1e-9:
        return 0.0
    x = ((x - x.min()) / np.ptp(x)).reshape(-1, 1)
    gmm = GaussianMixture(2, max_iter=100, tol=1e-4, reg_covar=5e-4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(x)
    return float(gmm.predict_proba(x)[:, int(np.argmax(gmm.means_.ravel()))].mean())


def _cdf(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_values, thresholds, side="right") / max(sorted_values.size, 1)


def class_rates(probs: np.ndarray, labels: np.ndarray, k: int, *, conditional: bool) -> np.ndarray:
    """Per given class ``j``: share of wrong labels from ``p(j | x)`` of its samples against references.

    ``conditional=False``: one reference, ``p(j | x)`` of the samples labelled otherwise (the
    mixture-proportion bound, raised by half a standard error). ``conditional=True``: one reference
    per other class ``i`` (``p(j | x)`` of the samples labelled ``i``) with free non-negative
    weights, their largest sum under the same bound at every threshold (a linear programme).
    """
    rates = np.full(k, np.nan)
    for j in range(k):
        own = labels == j
        observed = np.sort(probs[own, j])
        if observed.size < 2:
            continue
        pooled = np.sort(probs[~own, j])
        thresholds = np.quantile(pooled, np.linspace(0.1, 0.99, 40))
        f_obs = _cdf(observed, thresholds)
        bound = f_obs + 0.5 * np.sqrt(f_obs * (1 - f_obs) / observed.size)
        if not conditional:
            rates[j] = np.clip((bound / np.maximum(_cdf(pooled, thresholds), 1e-12)).min(), 0, 1)
            continue
        sources = [i for i in range(k) if i != j and (labels == i).sum() >= 2]
        refs = np.stack([_cdf(np.sort(probs[labels == i, j]), thresholds) for i in sources], axis=1)
        result = linprog(
            -np.ones(len(sources)),
            A_ub=np.vstack([refs, np.ones((1, len(sources)))]),
            b_ub=np.append(bound, 1.0),
            bounds=(0, None),
            method="highs",
        )
        rates[j] = -result.fun if result.success else np.nan
    return rates


def anchor_rate(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of wrong labels from the anchor-point transition estimate (see the module docstring)."""
    shares = np.bincount(labels, minlength=k) / len(labels)
    kept = np.empty(k)
    for i in range(k):
        column = probs[:, i]
        kept[i] = column[column >= np.quantile(column, ANCHOR_QUANTILE)].mean()
    return float(np.sum(shares * (1.0 - kept)))


def candidate_estimates(snapshots: list[dict], labels: np.ndarray, k: int) -> dict[str, float]:
    """Each candidate's median per-epoch estimate over epochs 1, 2, ... while samples were held out."""
    counts = np.bincount(labels, minlength=k)
    per_epoch: dict[str, list[float]] = {name: [] for name in CANDIDATES if name != "heldout_average"}
    loss_sum = np.zeros(len(labels))
    held_probs, held_mask = [], None
    for epoch, snap in enumerate(snapshots):
        loss_sum += snap["loss"]
        if epoch == 0 or not snap["holding"]:
            continue
        held = snap["held_out"]
        probs, given = snap["prob"][held], labels[held]
        if held_mask is None or np.array_equal(held, held_mask):  # the share is drawn once
            held_mask = held
            held_probs.append(probs)
        per_epoch["loss_mixture"].append(loss_mixture(loss_sum / (epoch + 1)))
        for name, conditional in (("class_pooled", False), ("class_conditional", True)):
            rates = class_rates(probs, given, k, conditional=conditional)
            per_epoch[name].append(float(np.nansum(rates * counts) / counts.sum()))
        given_counts = np.bincount(given, minlength=k)
        joint_rates = class_noise_rates(given, probs)
        per_epoch["confident_joint"].append(float((joint_rates * given_counts).sum() / given_counts.sum()))
        anchor = anchor_rate(probs, given, k)
        per_epoch["anchor"].append(anchor)
        per_epoch["heldout_or_anchor"].append(max(wrong_label_share(probs, given), anchor))
    out = {name: float(np.median(v)) if v else float("nan") for name, v in per_epoch.items()}
    out["heldout_average"] = (
        wrong_label_share(np.mean(held_probs, axis=0), labels[held_mask]) if held_probs else float("nan")
    )
    return out


def measure(spec, kind: str, rate: float, seed: int, args: argparse.Namespace) -> dict:
    """One run: the true rates, the default estimate and the candidates, and the audit's estimate."""
    exp = load_experiment(spec.source, path=spec.path, noise_rate=rate, noise_kind=kind, random_state=seed)
    snapshots = _EpochSnapshots()
    net = build_coteaching(
        exp, max_epochs=args.epochs, class_aware=True, random_state=seed, num_gradual=args.num_gradual,
        device=args.device, verbose=0,
    )
    net.set_params(callbacks=[*net.callbacks, ("snapshots", snapshots)])
    net.fit(exp.X_train, exp.y_given)
    y, k = exp.y_given, exp.n_classes
    true_rates = np.array([exp.is_noisy[y == c].mean() if (y == c).any() else 0.0 for c in range(k)])
    n = len(y)
    audited = draw_audit(n, max(1, round(args.audit_share * n)), random_state=audit_seed(seed))
    audit = audit_noise_rate(exp.y_given[audited], exp.y_true[audited])
    return {
        "dataset": spec.name, "noise_kind": kind, "noise_rate": rate, "seed": seed,
        "true_noise_rate": float(exp.is_noisy.mean()),
        "auto_estimate": float(net.noise_rate_),
        "auto_estimates_per_epoch": [float(v) for v in net.noise_estimates_],
        "class_noise_rates": [float(v) for v in net.class_noise_rates_],
        "true_class_noise_rates": true_rates.tolist(),
        "class_mae": float(np.mean(np.abs(net.class_noise_rates_ - true_rates))),
        **candidate_estimates(snapshots.epochs, y, k),
        "audit_estimate": audit.noise_rate, "audit_low": audit.low, "audit_high": audit.high,
        "n_audited": audit.n_audited,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["digits", "retinamnist", "hmnist"])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument(
        "--noise", nargs="+", default=["symmetric:0.2", "symmetric:0.4", "symmetric:0.6", "pair:0.3"]
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6, help="enough for the estimate to be frozen")
    p.add_argument("--num-gradual", type=int, default=5)
    p.add_argument("--audit-share", type=float, default=0.05)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--continue", dest="continue_file", action="store_true",
                   help="add the rows to the results file, replacing those of the same settings and seeds")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    info = header(device=args.device)
    print("command:", info["command"], flush=True)
    rows = []
    print(f"{'data set':<14} {'noise':<14} {'seed':>4} {'true':>6} {'auto':>6} {'cls MAE':>7} "
          f"{'loss':>6} {'pooled':>6} {'cond':>6} {'avg':>6} {'joint':>6} {'audit':>6}  audit 95% interval")
    for spec in dataset_specs(args.datasets, args.data_dir):
        for kind, rate in map(parse_noise, args.noise):
            for seed in args.seeds:
                row = measure(spec, kind, rate, seed, args)
                rows.append(row)
                print(
                    f"{spec.name:<14} {kind + ' ' + format(rate, 'g'):<14} {seed:>4} "
                    f"{row['true_noise_rate']:>6.3f} {row['auto_estimate']:>6.3f} {row['class_mae']:>7.3f} "
                    f"{row['loss_mixture']:>6.3f} {row['class_pooled']:>6.3f} "
                    f"{row['class_conditional']:>6.3f} {row['heldout_average']:>6.3f} "
                    f"{row['confident_joint']:>6.3f} "
                    f"{row['audit_estimate']:>6.3f}  [{row['audit_low']:.3f}, {row['audit_high']:.3f}] "
                    f"({row['n_audited']} labels)",
                    flush=True,
                )
    print("\nmean absolute error of the estimate (over seeds):")
    keys = sorted({(r["dataset"], r["noise_kind"], r["noise_rate"]) for r in rows}, key=str)
    for key in keys:
        group = [r for r in rows if (r["dataset"], r["noise_kind"], r["noise_rate"]) == key]
        errors = {
            name: np.mean([abs(r[name] - r["true_noise_rate"]) for r in group])
            for name in ("auto_estimate", *CANDIDATES, "audit_estimate")
        }
        mae = np.mean([r["class_mae"] for r in group])
        print(f"  {key[0]:<14} {key[1]} {key[2]:g}: "
              + ", ".join(f"{name} {err:.3f}" for name, err in errors.items())
              + f"; per-class MAE {mae:.3f}")
    config = {**vars(args), "data_dir": str(args.data_dir)}
    path = RESULTS_DIR / "noise_estimate.json"
    out = {"header": info, "config": config, "rows": rows}
    if args.continue_file and path.is_file():
        earlier = load_json(path)
        measured = {_row_key(r) for r in rows}
        kept = [r for r in earlier["rows"] if _row_key(r) not in measured]
        out["rows"] = kept + rows
        if kept:  # the commands whose rows are still in the file
            out["previous_commands"] = [*earlier.get("previous_commands", []), earlier["header"]["command"]]
    write_json(path, out)
    return rows


def _row_key(row: dict) -> tuple:
    return row["dataset"], row["noise_kind"], row["noise_rate"], row["seed"]


if __name__ == "__main__":
    main()
