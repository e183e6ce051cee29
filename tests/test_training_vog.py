"""Closed-form last-layer gradients and the VoG ring buffer, against autograd and torch.std."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modal_noisy.nets import SmallCNN, final_linear
from modal_noisy.training._vog import VoGBuffer, capture_input, last_layer_grad


def _autograd_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **ce_kwargs) -> torch.Tensor:
    """Per-sample gradient of CE w.r.t. the given label's row of [W | b], one backward per sample."""
    head = final_linear(model)
    logits = model(x)
    rows = []
    for i in range(len(y)):
        loss = nn.functional.cross_entropy(logits[i : i + 1], y[i : i + 1], reduction="sum", **ce_kwargs)
        g_w, g_b = torch.autograd.grad(loss, [head.weight, head.bias], retain_graph=True)
        rows.append(torch.cat([g_w[y[i]], g_b[y[i]].view(1)]))
    return torch.stack(rows)


def _max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("train_mode", [True, False], ids=["train-mode", "eval-mode"])
@pytest.mark.parametrize(
    "ce_kwargs",
    [{}, {"label_smoothing": 0.1}, {"weight": "class"}],
    ids=["plain", "label-smoothing", "class-weight"],
)
def test_closed_form_matches_autograd_float64(digits_lt, train_mode, ce_kwargs):
    torch.manual_seed(0)
    model = SmallCNN(n_classes=10, width=4, dropout=0.3).double().train(train_mode)
    x = torch.as_tensor(digits_lt.X_train[:24], dtype=torch.float64)
    y = torch.as_tensor(digits_lt.y_train[:24])
    if ce_kwargs.get("weight") == "class":
        ce_kwargs = {"weight": torch.linspace(0.5, 2.0, 10, dtype=torch.float64)}
    # one forward pass, as during training: the dropout mask is shared by both computations
    torch.manual_seed(1)
    with capture_input(final_linear(model)) as cap:
        logits = model(x)
    closed = last_layer_grad(
        logits,
        cap.value,
        y,
        class_weight=ce_kwargs.get("weight"),
        label_smoothing=ce_kwargs.get("label_smoothing", 0.0),
    )
    torch.manual_seed(1)
    auto = _autograd_rows(model, x, y, **ce_kwargs)
    assert closed.dtype == torch.float64 and closed.shape == (24, 4 * 4 + 1)
    assert _max_rel_err(closed, auto) <= 1e-6


def test_capture_input_removes_its_hook():
    model = SmallCNN(width=4)
    head = final_linear(model)
    with capture_input(head) as cap:
        model(torch.zeros(2, 1, 8, 8))
    assert cap.value is not None and cap.value.shape == (2, 16)
    assert len(head._forward_hooks) == 0


def test_buffer_moments_match_population_std():
    gen = torch.Generator().manual_seed(0)
    n, dim, window = 50, 7, 5
    buf = VoGBuffer(n, dim, window, dtype=torch.float64)
    history = []
    for _ in range(8):  # wraps the ring
        g = torch.randn(n, dim, generator=gen, dtype=torch.float64)
        perm = torch.randperm(n, generator=gen)  # batches arrive in any order
        buf.update(perm, g[perm])
        history.append(g)
    expected = torch.stack(history[-window:], dim=1).std(dim=1, unbiased=False).mean(dim=1)
    torch.testing.assert_close(buf.compute(chunk_size=7), expected, rtol=1e-12, atol=1e-12)
    assert buf.min_count() == 8


def test_buffer_keys_by_index_not_position():
    buf = VoGBuffer(4, 2, 2)
    buf.update(torch.tensor([2, 0]), torch.tensor([[1.0, 1.0], [5.0, 5.0]]))
    buf.update(torch.tensor([0, 2]), torch.tensor([[5.0, 5.0], [3.0, 3.0]]))
    vog = buf.compute()
    assert vog[0] == 0.0  # sample 0 saw the same gradient twice
    assert vog[2] == pytest.approx(1.0)  # std of {1, 3}
    assert vog[1] == 0.0 and vog[3] == 0.0  # never observed: 0, finite


def test_buffer_before_window_is_full_uses_what_it_has():
    buf = VoGBuffer(1, 1, 5)
    buf.update(torch.tensor([0]), torch.tensor([[2.0]]))
    assert float(buf.compute()[0]) == 0.0
    buf.update(torch.tensor([0]), torch.tensor([[4.0]]))
    assert float(buf.compute()[0]) == pytest.approx(1.0)
    assert torch.isfinite(buf.compute()).all()


def test_buffer_float16_storage_and_memory():
    buf = VoGBuffer(1000, 129, 5, dtype=torch.float16)
    assert buf.nbytes == 1000 * 5 * 129 * 2 + 8 * 1000
    rng = np.random.default_rng(0)
    g = torch.as_tensor(rng.normal(size=(1000, 129)), dtype=torch.float32)
    buf.update(torch.arange(1000), g)
    buf.update(torch.arange(1000), 2 * g)
    vog = buf.compute()
    assert vog.dtype == torch.float32
    expected = (g / 2).abs().mean(dim=1)
    torch.testing.assert_close(vog, expected, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 0, "dim": 3, "window": 5}, "n_samples"),
        ({"n_samples": 3, "dim": 3, "window": 1}, "window must be >= 2"),
    ],
    ids=["no-samples", "window-1"],
)
def test_buffer_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VoGBuffer(**kwargs)
