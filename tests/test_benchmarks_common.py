"""Cheap checks of the benchmark helpers (the benchmarks themselves are not part of the test suite)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _common


@pytest.mark.parametrize(
    ("text", "expected"),
    [("symmetric:0.4", ("symmetric", 0.4)), ("sym:0.2", ("symmetric", 0.2)), ("pair:0.3", ("pair", 0.3))],
    ids=["symmetric", "sym-alias", "pair"],
)
def test_parse_noise(text, expected):
    assert _common.parse_noise(text) == expected


@pytest.mark.parametrize("text", ["gauss:0.4", "symmetric", "pair:1.2"], ids=["kind", "no-rate", "rate"])
def test_parse_noise_rejects(text):
    with pytest.raises(ValueError, match="noise"):
        _common.parse_noise(text)


def test_noise_is_meaningful_skips_uninformative_symmetric_noise():
    # 5 classes: 80% symmetric noise leaves every label equally likely
    assert not _common.noise_is_meaningful("symmetric", 0.8, 5)
    assert _common.noise_is_meaningful("symmetric", 0.8, 10)
    assert not _common.noise_is_meaningful("pair", 0.5, 10)


def test_write_json_is_strict_and_plain(tmp_path):
    path = _common.write_json(
        tmp_path / "r.json", {"a": np.float32(0.5), "b": math.nan, "c": np.arange(3), "d": np.bool_(True)}
    )
    assert json.loads(path.read_text()) == {"a": 0.5, "b": None, "c": [0, 1, 2], "d": True}
    assert not path.with_suffix(".json.tmp").exists()


def test_mean_std_ignores_missing_values():
    mean, std, n = _common.mean_std([1.0, None, 3.0, math.nan])
    assert (mean, n) == (2.0, 2)
    assert std == pytest.approx(math.sqrt(2))
    assert math.isnan(_common.mean_std([None])[0])


def test_header_names_command_and_versions():
    info = _common.header(["benchmarks/quality.py", "--quick"])
    assert info["command"].endswith("benchmarks/quality.py --quick")
    assert info["versions"]["cleanlab"] and info["versions"]["torch"]
    assert len(info["modal_noisy_code"]["sha256"]) == 16


def test_recipe_search_trains_grouped_networks_exactly_like_separate_ones():
    """recipe_search.py's claim: G SmallCNNs trained as one grouped network are G independent runs."""
    import copy

    import recipe_search
    import torch
    import torch.nn.functional as F

    from modal_noisy.nets import SmallCNN

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # float64: equality up to rounding, not just closeness
    try:
        nets = [SmallCNN(3, 4, width=4, local_contrast=1.0, random_state=s) for s in (0, 1, 2)]
        for net in nets:
            net.set_input_stats([0.5, 0.4, 0.3], [0.2, 0.2, 0.1])
        separate = [copy.deepcopy(net) for net in nets]
        grouped = recipe_search.grouped_small_cnn(nets)
        opt = torch.optim.AdamW(grouped.parameters(), lr=1e-3, weight_decay=1e-4)
        opts = [torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4) for net in separate]
        gen = torch.Generator().manual_seed(0)
        for _ in range(3):
            x = torch.rand(3, 8, 3, 16, 16, generator=gen)
            y = torch.randint(0, 4, (3, 8), generator=gen)
            out = grouped(x)
            opt.zero_grad()
            sum(F.cross_entropy(out[i], y[i]) for i in range(3)).backward()
            opt.step()
            for i, (net, o) in enumerate(zip(separate, opts, strict=True)):
                o.zero_grad()
                F.cross_entropy(net(x[i]), y[i]).backward()
                o.step()
        grouped.eval()
        x = torch.rand(3, 5, 3, 16, 16, generator=gen)
        out = grouped(x)
        for i, net in enumerate(separate):
            torch.testing.assert_close(out[i], net.eval()(x[i]), rtol=1e-10, atol=1e-10)
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("kind", ["pair", "symmetric"])
def test_anchor_rate_reads_the_transition_at_the_most_typical_samples(kind):
    import noise_estimate

    k, rate = 4, 0.3
    off = np.roll(np.eye(k), 1, axis=1) if kind == "pair" else (1 - np.eye(k)) / (k - 1)
    transition = (1 - rate) * np.eye(k) + rate * off  # row c: the labels class c is given
    rng = np.random.default_rng(0)
    # the noisy posterior: typical samples of each class, and ambiguous mixtures of two classes
    typical = np.repeat(transition, 50, axis=0)
    weights = rng.dirichlet([1.0, 1.0], size=400)
    pairs = rng.integers(0, k, size=(400, 2))
    mixed = weights[:, :1] * transition[pairs[:, 0]] + weights[:, 1:] * transition[pairs[:, 1]]
    probs = np.vstack([typical, mixed])
    labels = rng.integers(0, k, size=len(probs))
    assert noise_estimate.anchor_rate(probs, labels, k) == pytest.approx(rate, abs=0.01)


def test_ranked_list_precision_asks_each_share_as_its_own_query():
    """A shortlist strategy orders its picks by entropy: the first half of its 10% query is not its 5% one."""
    from types import SimpleNamespace

    import quality

    n = 200
    wrong, doubted = np.arange(10), np.arange(10, 20)  # the record's first and second 5%
    record = np.tile([1.0, 0.0], (n, 1))
    record[wrong], record[doubted] = [0.0, 1.0], [0.3, 0.7]

    class Net:
        training_proba_ = record

        def predict_proba(self, X):  # certain of the wrong labels' class, unsure of the doubted
            probs = np.tile([1.0, 0.0], (len(X), 1))
            probs[np.isin(X[:, 0], wrong)], probs[np.isin(X[:, 0], doubted)] = [0.0, 1.0], [0.5, 0.5]
            return probs

    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[wrong] = True
    exp = SimpleNamespace(y_given=np.zeros(n, dtype=np.int64), X_train=np.arange(n, dtype=float)[:, None],
                          is_noisy=is_noisy)
    lists = quality._ranked_list_precision(Net(), exp, 0, "adaptive_mislabel")
    assert lists == {"top_5pct": 1.0, "top_10pct": 0.5}
    assert quality._ranked_list_precision(Net(), exp, 0, "training_margin") == lists
