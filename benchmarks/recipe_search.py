"""Recipe search for SmallCNN on RetinaMNIST (or HAM10000 8×8), by cross-validation on the training split.

The clean-label ceiling of ``clean_upper_bound.py`` is a *test* figure, so tuning the recipe on it
would fit the 400 test images. This script scores each recipe variant by stratified K-fold
cross-validation on the training split (out-of-fold balanced accuracy over all 1,080 images, folds
fixed across variants) and, beside it, by a fit on the whole training split scored on the official
``val`` and ``test`` splits. Pick by the cross-validated column; the test column is there to check
that choice, not to make it.

It trains :class:`modal_noisy.nets.SmallCNN` with a plain PyTorch loop (no skorch, so hundreds of
short runs fit on one GPU): AdamW, per-epoch cosine schedule, per-channel input standardisation
fitted on the training part — the loop of :func:`modal_noisy.training.recommended_net_kwargs` —
with the variant's augmentation, preprocessing and loss. The networks of all seeds train at once
as one grouped network (:func:`grouped_small_cnn`); each variant is one job; jobs run in worker
processes (``--workers``) and are written to a JSON-lines file as they finish, so a run cut
short keeps what it finished; ``--deadline`` stops starting new jobs after that many seconds.

Decision rules scored from the same probabilities: ``argmax``, ``prior`` (argmax of
``log p - log prior``, what ``decision="balanced"`` predicts with) and both again after averaging the
probabilities over the 4 flips (``tta_``).

    .venv/bin/python benchmarks/recipe_search.py --data ../shared/data/retinamnist.npz --device cuda \
        --workers 12 --out results/recipe_search.jsonl
    .venv/bin/python benchmarks/recipe_search.py --quick     # smoke run on the CPU
    .venv/bin/python benchmarks/recipe_search.py --data ../shared/data/hmnist_8_8_L.csv   # HAM10000 8×8
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import default_data_dir

#: The library's medical recipe at 28×28 (``recommended_net_kwargs(**medical_recipe(28))``).
BASE: dict = {
    "epochs": 40,
    "batch_size": 64,
    "lr": 1e-3,
    "wd": 1e-4,
    "width": 32,
    "dropout": 0.0,
    "flips": True,
    "shift": 2,
    "rot": 0.0,
    "scale": 0.0,
    "bright": 0.0,
    "contrast": 0.0,
    "mixup": 0.0,
    "smoothing": 0.0,
    "prep": "none",
    "sigma": 0.0,
    "upsample": 1,
    "class_weight": False,
    "local_contrast": 0.0,
}


def variants() -> list[tuple[str, dict]]:
    """(name, changes to BASE), in the order they are run."""
    v: list[tuple[str, dict]] = [
        ("base", {}),
        ("rot180", {"rot": 180.0}),
        ("rot180_scale10", {"rot": 180.0, "scale": 0.1}),
        ("bc20", {"bright": 0.2, "contrast": 0.2}),
        ("graham1", {"prep": "graham", "sigma": 1.0}),
        ("graham2", {"prep": "graham", "sigma": 2.0}),
        ("graham4", {"prep": "graham", "sigma": 4.0}),
        ("graham2_cat", {"prep": "graham_cat", "sigma": 2.0}),
        # the library's filter: SmallCNN(local_contrast=sigma), after the input standardisation
        ("contrast2", {"local_contrast": 2.0}),
        ("contrast1", {"local_contrast": 1.0}),
        ("contrast4", {"local_contrast": 4.0}),
        ("instance", {"prep": "instance"}),
        ("ep80", {"epochs": 80}),
        ("smooth01", {"smoothing": 0.1}),
        ("mixup02", {"mixup": 0.2}),
        ("up2", {"upsample": 2, "shift": 4}),
        ("w64_do03", {"width": 64, "dropout": 0.3}),
        ("bs32", {"batch_size": 32}),
        ("lr3e-3", {"lr": 3e-3}),
        ("wd005", {"wd": 0.05}),
        ("cw", {"class_weight": True}),
        ("noshift", {"shift": 0}),
        ("rot180_bc20", {"rot": 180.0, "bright": 0.2, "contrast": 0.2}),
        ("rot180_bc20_ep100", {"rot": 180.0, "bright": 0.2, "contrast": 0.2, "epochs": 100}),
        (
            "rot180_scale10_bc20_ep150",
            {"rot": 180.0, "scale": 0.1, "bright": 0.2, "contrast": 0.2, "epochs": 150},
        ),
        (
            "graham2_rot180_bc20",
            {"prep": "graham", "sigma": 2.0, "rot": 180.0, "bright": 0.2, "contrast": 0.2},
        ),
        ("instance_rot180", {"prep": "instance", "rot": 180.0}),
        ("rot180_mixup02_ep100", {"rot": 180.0, "mixup": 0.2, "epochs": 100}),
        ("rot180_w64_do03_ep100", {"rot": 180.0, "width": 64, "dropout": 0.3, "epochs": 100}),
        ("rot180_smooth01_ep100", {"rot": 180.0, "smoothing": 0.1, "epochs": 100}),
        ("up2_rot180_bc20", {"upsample": 2, "shift": 4, "rot": 180.0, "bright": 0.2, "contrast": 0.2}),
        (
            "bs32_rot180_bc20_ep100",
            {"batch_size": 32, "rot": 180.0, "bright": 0.2, "contrast": 0.2, "epochs": 100},
        ),
        ("cw_rot180_bc20", {"class_weight": True, "rot": 180.0, "bright": 0.2, "contrast": 0.2}),
        (
            "wd005_rot180_bc20_ep100",
            {"wd": 0.05, "rot": 180.0, "bright": 0.2, "contrast": 0.2, "epochs": 100},
        ),
        (
            "graham2_cat_rot180_bc20_ep100",
            {"prep": "graham_cat", "sigma": 2.0, "rot": 180.0, "bright": 0.2, "contrast": 0.2, "epochs": 100},
        ),
        ("ep20", {"epochs": 20}),
        ("ep10", {"epochs": 10}),
        ("rot180_bc20_ep20", {"rot": 180.0, "bright": 0.2, "contrast": 0.2, "epochs": 20}),
        ("bc40", {"bright": 0.4, "contrast": 0.4}),
        ("rot30", {"rot": 30.0}),
        ("scale20", {"scale": 0.2}),
        ("lr3e-4", {"lr": 3e-4}),
        ("do03", {"dropout": 0.3}),
        ("w48", {"width": 48}),
        ("smooth02_rot180_bc20", {"smoothing": 0.2, "rot": 180.0, "bright": 0.2, "contrast": 0.2}),
        ("graham1_cat", {"prep": "graham_cat", "sigma": 1.0}),
        ("graham4_cat", {"prep": "graham_cat", "sigma": 4.0}),
        (
            "mixup04_rot180_bc20_ep100",
            {"mixup": 0.4, "rot": 180.0, "bright": 0.2, "contrast": 0.2, "epochs": 100},
        ),
        (
            "cw_smooth01_rot180_bc20_ep100",
            {
                "class_weight": True,
                "smoothing": 0.1,
                "rot": 180.0,
                "bright": 0.2,
                "contrast": 0.2,
                "epochs": 100,
            },
        ),
    ]
    return v


def hmnist_variants() -> list[tuple[str, dict]]:
    """Variants for HAM10000 8×8, whose recipe has flips only (shifts and the filter are off at 8×8)."""
    plain = {"shift": 0}
    changes = [
        ("base", {}),
        ("contrast1", {"local_contrast": 1.0}),
        ("ep80", {"epochs": 80}),
        ("w64", {"width": 64}),
        ("w64_do03", {"width": 64, "dropout": 0.3}),
        ("bs32", {"batch_size": 32}),
        ("bs128", {"batch_size": 128}),
        ("lr3e-3", {"lr": 3e-3}),
        ("lr3e-4", {"lr": 3e-4}),
        ("wd005", {"wd": 0.05}),
        ("smooth01", {"smoothing": 0.1}),
        ("mixup02", {"mixup": 0.2}),
        ("bc20", {"bright": 0.2, "contrast": 0.2}),
        ("noflips", {"flips": False}),
        ("shift1", {"shift": 1}),
    ]
    return [(name, {**plain, **c}) for name, c in changes]


# ---------------------------------------------------------------------------------------------
# data and preprocessing


def _gaussian_blur(x, sigma: float):
    """The library's blur (``modal_noisy.nets``), for the search's filter-before-standardising rows."""
    from modal_noisy.nets import gaussian_blur, gaussian_kernel

    return gaussian_blur(x, gaussian_kernel(sigma).to(x.device))


def preprocess(x, cfg: dict):
    """Deterministic per-image preprocessing of an NCHW [0, 1] batch (the same for every split)."""
    import torch
    import torch.nn.functional as F

    if cfg["upsample"] > 1:
        x = F.interpolate(x, scale_factor=cfg["upsample"], mode="bilinear", align_corners=False)
    if cfg["prep"] == "graham":  # local contrast: the image minus its Gaussian blur (Graham, 2015)
        x = x - _gaussian_blur(x, cfg["sigma"])
    elif cfg["prep"] == "graham_cat":
        x = torch.cat([x, x - _gaussian_blur(x, cfg["sigma"])], dim=1)
    elif cfg["prep"] == "instance":
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
        x = (x - mean) / std
    elif cfg["prep"] != "none":
        raise ValueError(f"unknown prep {cfg['prep']!r}")
    return x


def augment(x, cfg: dict, gen, raw_range: bool):
    """Random flips, rotation / scale / shift, brightness / contrast of a training batch.

    Flips and integer shifts do what :class:`modal_noisy.training.RandomAugment` does, but draw on the
    batch's device (``gen`` is a device generator), so a GPU search never waits for the host.
    """
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    dev = x.device
    if cfg["flips"]:
        d = torch.rand(n, 2, generator=gen, device=dev).view(n, 2, 1, 1, 1) < 0.5
        x = torch.where(d[:, 0], x.flip(-1), x)
        x = torch.where(d[:, 1], x.flip(-2), x)
    s = cfg["shift"]
    if cfg["rot"] or cfg["scale"]:
        ang = (torch.rand(n, generator=gen, device=dev) * 2 - 1) * math.radians(cfg["rot"])
        sc = 1 + (torch.rand(n, generator=gen, device=dev) * 2 - 1) * cfg["scale"]
        tr = (torch.rand(n, 2, generator=gen, device=dev) * 2 - 1) * (2 * s / w)
        cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
        theta = torch.stack([torch.stack([cos, -sin, tr[:, 0]], 1), torch.stack([sin, cos, tr[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # zeros = black, the background of a fundus photograph (when in raw [0, 1] units)
        x = F.grid_sample(
            x, grid, mode="bilinear", padding_mode="zeros" if raw_range else "border", align_corners=False
        )
    elif s:
        padded = F.pad(x, (s, s, s, s), mode="reflect")
        off = torch.randint(0, 2 * s + 1, (n, 2), generator=gen, device=dev)
        rows = (off[:, 0:1] + torch.arange(h, device=dev)).view(n, 1, h, 1)
        cols = (off[:, 1:2] + torch.arange(w, device=dev)).view(n, 1, 1, w)
        x = padded[
            torch.arange(n, device=dev).view(n, 1, 1, 1),
            torch.arange(x.shape[1], device=dev).view(1, -1, 1, 1),
            rows,
            cols,
        ]
    if cfg["bright"] or cfg["contrast"]:
        b = 1 + (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * cfg["bright"]
        c = 1 + (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * cfg["contrast"]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * c + mean * b
        if raw_range:
            x = x.clamp(0, 1)
    return x


# ---------------------------------------------------------------------------------------------
# G SmallCNNs trained at once


def grouped_small_cnn(nets: list):
    """The SmallCNNs ``nets`` (same shape) as one module with grouped convolutions.

    Input ``(G, N, C, H, W)`` (network g sees batch g), output logits ``(G, N, K)``. Each grouped
    convolution and BatchNorm channel belongs to one network and starts from its parameters, and
    AdamW is elementwise, so training the group trains the G networks independently, each exactly as
    alone, for the kernel launches of one: the runs of a sweep are launch-bound on a GPU.
    """
    import torch
    from torch import nn

    from modal_noisy.nets import gaussian_blur as _gaussian_blur_net

    class _Grouped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            g = len(nets)
            self.g = g
            self.register_buffer("mean", torch.cat([n.input_mean for n in nets]).view(1, -1, 1, 1))
            self.register_buffer("std", torch.cat([n.input_std for n in nets]).view(1, -1, 1, 1))
            self.register_buffer("contrast_kernel", nets[0].contrast_kernel.clone())
            blocks = []
            for si, stage in enumerate(nets[0].stages):
                for bi, block in enumerate(stage):
                    conv0 = block[0]
                    conv = nn.Conv2d(
                        g * conv0.in_channels, g * conv0.out_channels, 3, padding=1, bias=False, groups=g
                    )
                    bn = nn.BatchNorm2d(g * conv0.out_channels)
                    with torch.no_grad():
                        conv.weight.copy_(torch.cat([n.stages[si][bi][0].weight for n in nets]))
                        bn.weight.copy_(torch.cat([n.stages[si][bi][1].weight for n in nets]))
                        bn.bias.copy_(torch.cat([n.stages[si][bi][1].bias for n in nets]))
                    blocks.append(nn.Sequential(conv, bn, nn.ReLU(inplace=True)))
            self.blocks = nn.ModuleList(blocks)
            self.pool = nn.MaxPool2d(2)
            self.dropout = nn.Dropout(nets[0].dropout.p)
            self.head_w = nn.Parameter(torch.stack([n.head.weight.detach().clone() for n in nets]))
            self.head_b = nn.Parameter(torch.stack([n.head.bias.detach().clone() for n in nets]))

        def forward(self, x):
            g, n, c, h, w = x.shape
            x = x.transpose(0, 1).reshape(n, g * c, h, w)
            x = (x - self.mean) / self.std
            if self.contrast_kernel.numel():
                x = x - _gaussian_blur_net(x, self.contrast_kernel)
            for i, block in enumerate(self.blocks):
                x = block(x)
                # SmallCNN pools after each stage of two blocks while the map is >= 8 wide
                if i % 2 == 1 and min(x.shape[-2:]) >= 8:
                    x = self.pool(x)
            f = x.mean(dim=(2, 3)).view(n, g, -1).transpose(0, 1)
            return torch.einsum("gnf,gkf->gnk", self.dropout(f), self.head_w) + self.head_b[:, None]

    return _Grouped()


def train_and_predict(
    cfg: dict, seeds: list[int], draw_seed: int, X_tr, y_tr, X_evals: list, n_classes: int, device: str
):
    """Train one SmallCNN per seed on (X_tr, y_tr), all at once.

    Returns, per eval set, the class probabilities ``(G, N, K)`` plain and averaged over the 4 flips.
    ``seeds`` initialise the networks (``SmallCNN(random_state=seed)``); ``draw_seed`` seeds the
    shuffling and augmentation draws (every network has its own order and draws).
    """
    import torch
    import torch.nn.functional as F

    from modal_noisy.nets import SmallCNN

    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(draw_seed)
    np_rng = np.random.default_rng(draw_seed)
    raw_range = cfg["prep"] == "none"
    mean, std = X_tr.mean(dim=(0, 2, 3)).cpu(), X_tr.std(dim=(0, 2, 3)).cpu()
    nets = []
    for seed in seeds:
        net = SmallCNN(
            in_channels=X_tr.shape[1],
            n_classes=n_classes,
            dropout=cfg["dropout"],
            width=cfg["width"],
            local_contrast=cfg["local_contrast"],
            random_state=seed,
        )
        net.set_input_stats(mean, std)
        nets.append(net)
    model = grouped_small_cnn(nets).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
    weight = None
    if cfg["class_weight"]:
        counts = torch.bincount(y_tr, minlength=n_classes).float().clamp_min(1)
        weight = (counts.sum() / (n_classes * counts)).to(dev)
    g, n, bs, epochs = len(seeds), X_tr.shape[0], cfg["batch_size"], cfg["epochs"]
    ce = lambda logits, y: sum(  # noqa: E731 - each network's own mean loss
        F.cross_entropy(logits[i], y[i], weight=weight, label_smoothing=cfg["smoothing"]) for i in range(g)
    )
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = cfg["lr"] * (1 + math.cos(math.pi * epoch / epochs)) / 2
        model.train()
        perms = torch.argsort(torch.rand(g, n, generator=gen, device=dev), dim=1)
        for start in range(0, n, bs):
            idx = perms[:, start : start + bs]
            m = idx.shape[1]
            if m < 2:  # BatchNorm needs two samples
                continue
            xb = augment(X_tr[idx.reshape(-1)], cfg, gen, raw_range).view(g, m, *X_tr.shape[1:])
            yb = y_tr[idx]
            if cfg["mixup"]:
                lam = torch.from_numpy(np_rng.beta(cfg["mixup"], cfg["mixup"], g)).float().to(dev)
                partner = torch.argsort(torch.rand(g, m, generator=gen, device=dev), dim=1)
                xp = torch.gather(xb, 1, partner.view(g, m, 1, 1, 1).expand_as(xb))
                lv = lam.view(g, 1, 1, 1, 1)
                logits = model(lv * xb + (1 - lv) * xp)
                yp = torch.gather(yb, 1, partner)
                loss = sum(
                    lam[i]
                    * F.cross_entropy(logits[i], yb[i], weight=weight, label_smoothing=cfg["smoothing"])
                    + (1 - lam[i])
                    * F.cross_entropy(logits[i], yp[i], weight=weight, label_smoothing=cfg["smoothing"])
                    for i in range(g)
                )
            else:
                loss = ce(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    out = []
    with torch.no_grad():
        for X_ev in X_evals:
            views = (X_ev, X_ev.flip(-1), X_ev.flip(-2), X_ev.flip(-1).flip(-2))
            probs = [torch.softmax(model(v.unsqueeze(0).expand(g, *v.shape)), -1) for v in views]
            out.append((probs[0].cpu().numpy(), (sum(probs) / 4).cpu().numpy()))
    return out


def decision_scores(prob_pair, y: np.ndarray, prior: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    scores = {}
    for tag, p in zip(("", "tta_"), prob_pair, strict=True):
        scores[tag + "argmax"] = balanced_accuracy_score(y, p.argmax(1))
        scores[tag + "prior"] = balanced_accuracy_score(y, (np.log(p + 1e-12) - np.log(prior)).argmax(1))
        scores[tag + "acc"] = accuracy_score(y, p.argmax(1))
    return scores


# ---------------------------------------------------------------------------------------------
# jobs

_DATA: dict = {}


def _raw_splits(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """train / val / test of a MedMNIST ``.npz`` (its own splits) or of the HAM10000 CSV (the
    stratified 70/10/20 split of ``clean_upper_bound.py``, ``random_state=0``)."""
    from modal_noisy.datasets import load_hmnist_csv, load_medmnist, stratified_split

    if path.endswith(".csv"):
        X, y = load_hmnist_csv(path)
        sp = stratified_split(X, y, val_size=0.1, test_size=0.2, random_state=0)
        return {
            "train": (sp.X_train, sp.y_train),
            "val": (sp.X_val, sp.y_val),
            "test": (sp.X_test, sp.y_test),
        }
    return {split: load_medmnist(path, split=split) for split in ("train", "val", "test")}


def _load(args_dict: dict, cfg: dict):
    """Per-worker cache of the preprocessed splits on the device."""
    import torch

    key = (cfg["prep"], cfg["sigma"], cfg["upsample"])
    if key not in _DATA:
        dev = torch.device(args_dict["device"])
        splits = {}
        for split, (X, y) in _raw_splits(args_dict["data"]).items():
            if args_dict["subsample"]:
                X, y = X[: args_dict["subsample"]], y[: args_dict["subsample"]]
            splits[split] = (preprocess(torch.from_numpy(X).to(dev), cfg), torch.from_numpy(y).to(dev))
        _DATA[key] = splits
    return _DATA[key]


def run_job(job: tuple) -> list[dict] | None:
    """One variant, every seed: K-fold CV on the training split, then a fit on all of it."""
    name, changes, seeds, args_dict, deadline = job
    if time.time() > deadline:
        return None
    import torch
    from sklearn.model_selection import StratifiedKFold

    torch.set_num_threads(1)
    cfg = {**BASE, **changes}
    if args_dict["epochs"]:
        cfg["epochs"] = args_dict["epochs"]
    t0 = time.time()
    data = _load(args_dict, cfg)
    X_tr, y_tr = data["train"]
    n_classes = int(y_tr.max().item()) + 1
    y_np = y_tr.cpu().numpy()
    prior = np.bincount(y_np, minlength=n_classes) / len(y_np)
    g = len(seeds)
    # folds and draw seeds are fixed across variants; the seeds vary the initialisation
    folds = StratifiedKFold(n_splits=args_dict["folds"], shuffle=True, random_state=0)
    oof = [np.zeros((g, len(y_np), n_classes)), np.zeros((g, len(y_np), n_classes))]
    for k, (tr, te) in enumerate(folds.split(np.zeros(len(y_np)), y_np)):
        tr_t, te_t = torch.from_numpy(tr).to(X_tr.device), torch.from_numpy(te).to(X_tr.device)
        (pair,) = train_and_predict(
            cfg,
            [s * 100 + k for s in seeds],
            1000 + k,
            X_tr[tr_t],
            y_tr[tr_t],
            [X_tr[te_t]],
            n_classes,
            args_dict["device"],
        )
        for dst, p in zip(oof, pair, strict=True):
            dst[:, te] = p
    val, test = train_and_predict(
        cfg, list(seeds), 999, X_tr, y_tr, [data["val"][0], data["test"][0]], n_classes, args_dict["device"]
    )
    seconds = time.time() - t0
    records = []
    for i, seed in enumerate(seeds):
        record = {"variant": name, "seed": seed, "changes": changes, "cfg": cfg, "seconds": seconds}
        for prefix, probs, y in (
            ("cv_", oof, y_np),
            ("val_", val, data["val"][1].cpu().numpy()),
            ("test_", test, data["test"][1].cpu().numpy()),
        ):
            scores = decision_scores((probs[0][i], probs[1][i]), y, prior)
            record.update({prefix + key: value for key, value in scores.items()})
        records.append(record)
    return records


def summarise(records: list[dict]) -> str:
    """One row per variant, best cross-validated balanced accuracy first (mean ± std over seeds)."""
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["variant"], []).append(r)
    cols = [
        "cv_argmax",
        "cv_prior",
        "cv_tta_argmax",
        "cv_tta_prior",
        "val_argmax",
        "test_argmax",
        "test_prior",
        "test_tta_argmax",
        "test_tta_prior",
        "test_acc",
    ]
    lines = ["| variant | seeds | " + " | ".join(cols) + " | s/job |", "|---" * (len(cols) + 3) + "|"]
    rows = []
    for name, rs in by.items():
        cells = [
            (np.mean([r[c] for r in rs]), np.std([r[c] for r in rs], ddof=1) if len(rs) > 1 else 0.0)
            for c in cols
        ]
        rows.append((cells[0][0], name, len(rs), cells, rs[0]["seconds"]))
    for _, name, n, cells, secs in sorted(rows, key=lambda t: -t[0]):
        lines.append(
            f"| {name} | {n} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in cells) + f" | {secs:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(default_data_dir() / "retinamnist.npz"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only", nargs="+", help="variant names to run (default: all)")
    p.add_argument("--epochs", type=int, default=0, help="override every variant's epochs (0: keep)")
    p.add_argument("--subsample", type=int, default=0, help="first N images of each split (smoke runs)")
    p.add_argument("--deadline", type=float, default=1e9, help="start no job after this many seconds")
    p.add_argument("--out", default="recipe_search.jsonl")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 variants, 1 seed, 2 epochs, 300 images")
    args = p.parse_args(argv)
    if args.quick:
        args.only, args.seeds, args.epochs, args.subsample, args.folds = (
            ["base", "graham2_rot180_bc20"],
            [0],
            2,
            300,
            3,
        )
    if not Path(args.data).is_file():
        print(f"{args.data} not found: nothing to do")
        return
    listed = hmnist_variants() if args.data.endswith(".csv") else variants()
    chosen = [(n, c) for n, c in listed if not args.only or n in args.only]
    args_dict = {k: getattr(args, k) for k in ("data", "device", "folds", "epochs", "subsample")}
    deadline = time.time() + args.deadline
    out = Path(args.out)
    done = set()
    if out.is_file():  # resume
        done = {r["variant"] for r in map(json.loads, out.read_text().splitlines())}
    jobs = [(n, c, tuple(args.seeds), args_dict, deadline) for n, c in chosen if n not in done]
    print(f"{len(jobs)} jobs on {args.device} with {args.workers} worker(s)", flush=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) as pool, out.open("a") as fh:
        for recs in pool.imap_unordered(run_job, jobs):
            if recs is None:
                continue
            fh.writelines(json.dumps(rec) + "\n" for rec in recs)
            fh.flush()
            cv, test = (np.mean([r[k] for r in recs]) for k in ("cv_argmax", "test_argmax"))
            print(
                f"{recs[0]['variant']}: cv {cv:.3f} test {test:.3f} ({recs[0]['seconds']:.0f} s)", flush=True
            )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    print(summarise(records))


if __name__ == "__main__":
    main()
