"""Co-teaching through Hugging Face Accelerate: one process, two CPU processes (gloo), the row gathering."""

from __future__ import annotations

import importlib.util
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration

from modal_noisy import AcceleratedCoTeachingClassifier, CoTeachingClassifier, SmallCNN
from modal_noisy.cleaning import RelabelJournal
from modal_noisy.training._distributed import BatchRows, gather_rows, merge_chunks

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multi_gpu.py"
DISTRIBUTED = Path(__file__).resolve().parents[1] / "modal_noisy" / "training" / "_distributed.py"
N = 260


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """Accelerate keeps one process-wide state; each test builds its own accelerator."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def data(digits_noisy):
    return digits_noisy.X_train[:N], digits_noisy.y_noisy[:N]


def _params(**extra):
    params = dict(
        module__in_channels=1,
        module__n_classes=10,
        module__width=4,
        max_epochs=3,
        num_gradual=1,
        batch_size=32,
        random_state=0,
        verbose=0,
    )
    return {**params, **extra}


def _accelerator(**kwargs) -> Accelerator:
    return Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True), **kwargs)


def test_merge_chunks_drops_sampler_padding_and_maps_rows():
    # rank 0 holds samples 5, 2; rank 1 holds 7, a repeat of 5 and 9 (already trained this epoch)
    chunks = [
        torch.tensor([[5.0, 0.1], [2.0, 0.2]], dtype=torch.float64),
        torch.tensor([[7.0, 0.3], [5.0, 0.1], [9.0, 0.4]], dtype=torch.float64),
    ]
    seen = torch.zeros(10, dtype=torch.bool)
    seen[9] = True
    rows, position = merge_chunks(chunks, 1, seen)
    np.testing.assert_array_equal(rows[:, 0].numpy(), [5, 2, 7])
    np.testing.assert_array_equal(position.numpy(), [2, -1, -1])
    _, position0 = merge_chunks(chunks, 0, seen)
    np.testing.assert_array_equal(position0.numpy(), [0, 1])


def test_gather_rows_on_one_process_keeps_rows_and_dtypes():
    rows = BatchRows(
        index=torch.tensor([3, 1, 3]),
        y=torch.tensor([0, 2, 0]),
        loss1=torch.tensor([0.5, 0.25, 0.5]),
        loss2=torch.tensor([0.125, 1.0, 0.125]),
        logits=torch.randn(3, 4).to(torch.bfloat16),
    )
    merged, shard = gather_rows(rows, torch.zeros(5, dtype=torch.bool))
    np.testing.assert_array_equal(merged.index.numpy(), [3, 1])  # the repeat is padding
    assert merged.index.dtype == torch.long and merged.logits.dtype == torch.bfloat16
    torch.testing.assert_close(merged.logits, rows.logits[:2], rtol=0, atol=0)
    assert merged.grad1 is None and shard.world_size == 1
    np.testing.assert_array_equal(shard.local(torch.tensor([True, False])).numpy(), [True, False, False])


def test_one_process_matches_coteaching_exactly(data):
    """Under one process the engine must not change a single number: mask, VoG, rate, fine-tuning."""
    X, y = data
    plain = CoTeachingClassifier(SmallCNN, device="cpu", **_params()).fit(X, y)
    net = AcceleratedCoTeachingClassifier(SmallCNN, accelerator=_accelerator(), **_params()).fit(X, y)
    np.testing.assert_array_equal(net.clean_mask_, plain.clean_mask_)
    np.testing.assert_array_equal(net.vog_, plain.vog_)
    assert net.noise_rate_ == plain.noise_rate_
    assert net.history[:, "train_loss"] == plain.history[:, "train_loss"]
    plain.fine_tune(X[:100], y[:100], epochs=2)
    net.fine_tune(X[:100], y[:100], epochs=2)
    assert net.fine_tune_losses_ == plain.fine_tune_losses_
    np.testing.assert_array_equal(net.predict_proba(X), plain.predict_proba(X))


def test_bf16_autocast_and_channels_last_on_the_cpu(data):
    X, y = data
    net = AcceleratedCoTeachingClassifier(
        SmallCNN,
        accelerator=_accelerator(mixed_precision="bf16"),
        channels_last=True,
        **_params(max_epochs=2),
    )
    net.initialize()
    conv = net.module_.stages[0][0][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    dtypes = set()
    handle = net.module_.head.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    net.partial_fit(X, y)
    handle.remove()
    assert torch.bfloat16 in dtypes  # the training forward ran under autocast
    assert net.clean_mask_.any() and np.isfinite(net.vog_).all()
    assert np.isfinite(net.history[:, "train_loss"]).all()


def test_channels_last_must_be_a_bool(data):
    X, y = data
    net = AcceleratedCoTeachingClassifier(
        SmallCNN, accelerator=_accelerator(), channels_last="yes", **_params()
    )
    with pytest.raises(ValueError, match=r"channels_last must be True or False \(got 'yes'\)"):
        net.fit(X, y)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load_example(monkeypatch):
    """The example as module ``multi_gpu`` (registered, so its network class pickles into the snapshot)."""
    spec = importlib.util.spec_from_file_location("multi_gpu", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "multi_gpu", module)
    spec.loader.exec_module(module)
    return module


def test_two_cpu_processes_select_and_relabel_what_one_process_does(tmp_path, monkeypatch):
    """``accelerate launch`` with 2 gloo processes vs one process, same global batches and seed.

    519 samples make the last global batch odd, so the sampler pads it with an already-trained sample,
    which the gathering must drop. The network is BatchNorm-free: BatchNorm on CPU processes normalises
    each shard (there is no SyncBatchNorm on the CPU). The clean mask and the noise rate must be equal;
    VoG must be identical on both ranks, and equal to the one-process VoG up to the summation order of
    the gradient all-reduce (float32 rounding). A round of phase 2 follows: the same samples are queried
    and relabelled on every process, and only the main process journals the expert's answers.
    """
    flags = ["--cpu", "--quick", "--backbone", "mlp", "--max-samples", "519", "--epochs", "6"]
    flags += ["--rounds", "1", "--budget", "20"]
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
    ]  # fmt: skip
    out = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run(
        [*launch, str(EXAMPLE), *flags, "--every-rank", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [np.load(out / f"rank{r}.npz") for r in (0, 1)]
    np.testing.assert_array_equal(ranks[0]["clean_mask"], ranks[1]["clean_mask"])
    np.testing.assert_array_equal(ranks[0]["vog"], ranks[1]["vog"])
    assert float(ranks[0]["noise_rate"]) == float(ranks[1]["noise_rate"])
    np.testing.assert_array_equal(ranks[0]["labels"], ranks[1]["labels"])
    journal = RelabelJournal(out / "journal.jsonl").read()
    assert journal.n_relabels == 20 and journal.rounds == [1]  # written once, not once per process

    example = _load_example(monkeypatch)
    one = example.main(example.parse_args([*flags, "--out", str(tmp_path / "one")]))
    np.testing.assert_array_equal(np.load(out / "clean_mask.npy"), one.clean_mask_)
    assert float(ranks[0]["noise_rate"]) == pytest.approx(one.noise_rate_, abs=1e-12)
    np.testing.assert_allclose(ranks[0]["vog"], one.vog_, rtol=1e-4, atol=1e-6)
    assert 0 < one.clean_mask_.sum() < 519
    np.testing.assert_array_equal(np.load(out / "labels.npy"), np.load(tmp_path / "one" / "labels.npy"))


def test_awaiting_expert_answers_survives_pickling(tmp_path):
    """The main process hands the expert workflow's stop to the others as the same exception."""
    from modal_noisy.cleaning.file_oracle import AwaitingExpertAnswers, QueueFiles

    error = AwaitingExpertAnswers(3, QueueFiles(tmp_path / "q.csv", None), tmp_path / "a.csv")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.round_index, copy.answers_path, str(copy)) == (3, tmp_path / "a.csv", str(error))


_ON_MAIN_SCRIPT = """
import importlib.util, multiprocessing, os, sys

def work(rank):
    if rank == 0:
        raise ValueError("budget_per_round must be positive (got 0)")
    raise AssertionError("only the main process runs the work")

def run(rank, port, out, path):
    # torch and the module alone (not the package) in the two workers only
    import torch.distributed as dist
    spec = importlib.util.spec_from_file_location("_distributed", path)
    module = sys.modules["_distributed"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    answer = module.on_main_process(lambda: [rank, 7])
    try:
        module.on_main_process(lambda: work(rank))
        message = "no error"
    except ValueError as error:
        message = str(error)
    with open(f"{out}/rank{rank}.txt", "w") as f:
        f.write(f"{answer}|{message}")
    dist.destroy_process_group()

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=run, args=(r, *sys.argv[1:4])) for r in (0, 1)]
    [p.start() for p in procs]
    [p.join(120) for p in procs]
    sys.exit(max(p.exitcode for p in procs))
"""


def test_on_main_process_hands_result_and_error_to_every_process(tmp_path):
    script = tmp_path / "on_main.py"
    script.write_text(_ON_MAIN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script), str(_free_port()), str(tmp_path), str(DISTRIBUTED)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):  # the main process's result, and its error, on both
        text = (tmp_path / f"rank{rank}.txt").read_text()
        assert text == "[0, 7]|budget_per_round must be positive (got 0)"
