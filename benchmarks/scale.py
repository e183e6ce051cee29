"""Scale benchmark: images/s of the co-teaching pair against one plain network, and multi-process scaling.

(a) ``ratio``: images per second of the co-teaching pair (``CoTeachingClassifier``, loss+VoG from the
    training pass, class-aware, the default recipe) against one plain skorch ``NeuralNetClassifier`` of
    the same architecture, recipe, batch size and data, measured side by side in one process
    (alternating, ``--repeats`` times, median; the first epoch of each fit left out). Two networks
    train in the pair, so 0.5 is the physical limit. On the CPU the images/s come from the process's
    CPU time with one torch thread (less sensitive than wall time to other jobs on the cores).
(b) ``--device cuda``: the same at ``--side`` 224 on ResNet-18 (RetinaMNIST upsampled per item in
    DataLoader workers, pinned memory, non-blocking copies, bf16 autocast, channels-last weights),
    both sides through Accelerate; plus the co-teaching step time against the batch size (a step that
    takes as long for 64 images as for 256 is host-bound; one that grows with the batch is GPU-bound).
(c) ``scaling``: the co-teaching pair (``AcceleratedCoTeachingClassifier``) under
    ``accelerate launch --multi_gpu --num_processes N`` (CPU processes with gloo, one thread each) for
    N = 1, 2: images/s per N (wall time of the main process) and the speed-up.

Writes ``benchmarks/results/scale_<tag>.json``; fold it into ``scale_<cpu|gpu>.json`` with
``benchmarks/make_results.py --add``.

Run::

    .venv/bin/python benchmarks/scale.py --quick                     # <= 5 min on 2 cores
    .venv/bin/python benchmarks/scale.py --device cuda --tag h100    # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, default_data_dir, header, quiet_warnings, write_json
from speed import _cpu_timer


def images_per_second(history: Any, n_images: int, key: str) -> float:
    """Training images per second over the epochs after the first (warm-up, allocation)."""
    durations = np.asarray(history[:, key], dtype=float)
    durations = durations[1:] if len(durations) > 1 else durations
    return float(n_images * len(durations) / durations.sum())


def _digits(side: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    import torch

    from modal_noisy.experiment import load_experiment

    exp = load_experiment("digits", noise_rate=0.4, random_state=seed)
    X = exp.X_train
    if side != X.shape[-1]:
        X = torch.nn.functional.interpolate(torch.as_tensor(X), size=(side, side), mode="bilinear").numpy()
    return X, exp.y_given, exp.n_classes


def cpu_ratio(*, side: int, epochs: int, repeats: int, seed: int) -> dict[str, Any]:
    """Part (a) on the CPU: SmallCNN pair vs one SmallCNN, digits-LT at ``side`` pixels."""
    import torch
    from skorch import NeuralNetClassifier

    from modal_noisy import CoTeachingClassifier, SmallCNN
    from modal_noisy.training import recommended_net_kwargs

    X, y, n_classes = _digits(side, seed)
    recipe = recommended_net_kwargs(max_epochs=epochs)
    common = dict(module__in_channels=1, module__n_classes=n_classes, device="cpu", verbose=0, **recipe)
    builders = {
        "single": lambda: NeuralNetClassifier(SmallCNN, module__random_state=seed, **common),
        "pair": lambda: CoTeachingClassifier(SmallCNN, random_state=seed, **common),
    }
    measured: dict[str, list[float]] = {name: [] for name in builders}
    for _ in range(repeats):
        for name, build in builders.items():
            net = build()
            net.set_params(callbacks=[*net.callbacks, ("cpu_time", _cpu_timer())])
            with quiet_warnings(), torch.random.fork_rng():
                torch.manual_seed(seed)
                net.fit(X, y)
            measured[name].append(images_per_second(net.history, len(y), "cpu_dur"))
    single, pair = (float(np.median(measured[k])) for k in ("single", "pair"))
    return {
        "data": f"digits-LT at {side}x{side}",
        "network": "SmallCNN",
        "n_train": len(y),
        "epochs": epochs,
        "images_per_second": {"single": single, "pair": pair},
        "images_per_second_all": measured,
        "timing": "process CPU time, 1 torch thread",
        "ratio": pair / single,
    }


def _upsampled_retina(data_dir: Path, side: int, max_samples: int | None) -> tuple[Any, np.ndarray, int]:
    """RetinaMNIST as a Dataset that upsamples each image to ``side`` pixels when it is read."""
    import torch
    from torch.utils.data import Dataset

    from modal_noisy import load_medmnist

    X, y = load_medmnist(data_dir / "retinamnist.npz")
    n_classes = int(y.max()) + 1
    if max_samples:
        X, y = X[:max_samples], y[:max_samples]

    class Upsampled(Dataset):
        def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
            self.X, self.y = torch.as_tensor(X), torch.as_tensor(y)

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.nn.functional.interpolate(self.X[i : i + 1].float(), size=(side, side), mode="bilinear")
            return x[0], self.y[i]

    return Upsampled(X, y), np.asarray(y), n_classes


def backbone_ratio(
    *, device: str, side: int, epochs: int, batch_sizes: list[int], workers: int, data_dir: Path,
    max_samples: int | None, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Part (b): ResNet-18 pair vs one ResNet-18 through Accelerate, bf16 and channels-last on a GPU."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration
    from skorch import NeuralNetClassifier
    from skorch.hf import AccelerateMixin

    from modal_noisy import AcceleratedCoTeachingClassifier, make_backbone

    class AcceleratedNet(AccelerateMixin, NeuralNetClassifier):
        """One plain network on the same engine."""

    def channels_last_backbone(**kwargs: Any) -> torch.nn.Module:
        return make_backbone("resnet18", **kwargs).to(memory_format=torch.channels_last)

    cuda = device.startswith("cuda")
    dataset, y, n_classes = _upsampled_retina(data_dir, side, max_samples)
    loader = {"num_workers": workers, "pin_memory": cuda, "persistent_workers": workers > 0}
    accelerator = Accelerator(
        cpu=not cuda,
        mixed_precision="bf16",
        dataloader_config=DataLoaderConfiguration(split_batches=True, non_blocking=True),
    )

    def common(batch_size: int) -> dict[str, Any]:
        return dict(
            module__in_channels=3, module__n_classes=n_classes, module__random_state=seed,
            accelerator=accelerator, max_epochs=epochs, batch_size=batch_size, verbose=0,
            optimizer=torch.optim.AdamW, lr=1e-3, train_split=None, callbacks__print_log__sink=print,
            **{f"iterator_train__{k}": v for k, v in loader.items()},
            **{f"iterator_valid__{k}": v for k, v in loader.items()},
        )  # fmt: skip

    def fit(net: Any) -> float:
        with quiet_warnings():
            net.fit(dataset, y)
        return images_per_second(net.history, len(y), "dur")

    batch = batch_sizes[-1]
    single = fit(AcceleratedNet(channels_last_backbone, criterion=torch.nn.CrossEntropyLoss, **common(batch)))
    pair_by_batch = {}
    for size in batch_sizes:
        net = AcceleratedCoTeachingClassifier(channels_last_backbone, channels_last=True, **common(size))
        pair_by_batch[size] = fit(net)
    pair = pair_by_batch[batch]
    return {
        "data": f"RetinaMNIST upsampled to {side}x{side}",
        "network": "ResNet-18 (random init), bf16 autocast, channels-last",
        "n_train": len(y),
        "epochs": epochs,
        "batch_size": batch,
        "images_per_second": {"single": single, "pair": pair},
        "pair_step_ms_by_batch": {str(b): 1000.0 * b / ips for b, ips in pair_by_batch.items()},
        "timing": "wall time",
        "ratio": pair / single,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker(args: argparse.Namespace) -> None:
    """Part (c)'s training run, on every process of ``accelerate launch``; the main one writes the result."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    from modal_noisy import AcceleratedCoTeachingClassifier, SmallCNN

    X, y, n_classes = _digits(args.side, args.seed)
    accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True))
    net = AcceleratedCoTeachingClassifier(
        SmallCNN, module__in_channels=1, module__n_classes=n_classes, accelerator=accelerator,
        max_epochs=args.epochs, batch_size=args.batch_size, random_state=args.seed, verbose=0,
    )  # fmt: skip
    torch.set_num_threads(1)
    with quiet_warnings():
        net.fit(X, y)
    if accelerator.is_main_process:
        Path(args.worker_out).write_text(
            json.dumps(
                {"processes": accelerator.num_processes, "ips": images_per_second(net.history, len(y), "dur")}
            )
        )


def cpu_scaling(
    *, side: int, epochs: int, batch_size: int, seed: int, processes: list[int]
) -> dict[str, Any]:
    """Part (c): images/s of the co-teaching pair on 1 and 2 CPU processes (gloo)."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in processes:
            out = Path(tmp) / f"scale_{n}.json"
            launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1",
                      "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
            launch += ["--multi_gpu", "--num_processes", str(n), "--main_process_port", str(_free_port())]
            if n == 1:
                launch = [sys.executable]
            command = [*launch, __file__, "--worker", "--worker-out", str(out)]
            command += ["--side", str(side), "--epochs", str(epochs)]
            command += ["--batch-size", str(batch_size), "--seed", str(seed)]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
            results[str(n)] = json.loads(out.read_text())["ips"]
    base = results[str(processes[0])]
    return {
        "data": f"digits-LT at {side}x{side}",
        "network": "SmallCNN pair (AcceleratedCoTeachingClassifier)",
        "epochs": epochs,
        "global_batch_size": batch_size,
        "timing": "wall time of the main process, 1 torch thread per process",
        "images_per_second_by_processes": results,
        "speedup_by_processes": {k: v / base for k, v in results.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small settings: <= 5 min on 2 CPU cores")
    parser.add_argument("--device", default="cpu", help="cpu: parts (a) and (c); cuda: part (b)")
    parser.add_argument("--side", type=int, default=None, help="image side (default: 16 on CPU, 224 on GPU)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats of part (a)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256], help="part (b)")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers of part (b)")
    parser.add_argument("--max-samples", type=int, default=None, help="part (b): the first N training images")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default=None, help="output scale_<tag>.json (default: quick / cpu / gpu)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.side = args.side or (224 if cuda else 16)
    if args.worker:
        worker(args)
        return {}
    import torch

    torch.set_num_threads(1)
    epochs = args.epochs or (4 if args.quick else 10)
    repeats = args.repeats or (3 if args.quick else 5)
    result: dict[str, Any] = {
        "header": header(device=args.device),
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "epochs": epochs,
        },
    }
    if cuda:
        result["ratio"] = backbone_ratio(
            device=args.device, side=args.side, epochs=epochs, batch_sizes=args.batch_sizes,
            workers=args.workers, data_dir=args.data_dir, max_samples=args.max_samples, seed=args.seed,
        )  # fmt: skip
    else:
        result["ratio"] = cpu_ratio(side=args.side, epochs=epochs, repeats=repeats, seed=args.seed)
        result["scaling"] = cpu_scaling(
            side=args.side, epochs=epochs, batch_size=64, seed=args.seed, processes=[1, 2]
        )
    r = result["ratio"]
    print(
        f"ratio pair/single images/s = {r['ratio']:.3f} ({r['network']}, {r['data']}: "
        f"pair {r['images_per_second']['pair']:.0f}, single {r['images_per_second']['single']:.0f} images/s)"
    )
    if "scaling" in result:
        s = result["scaling"]
        ips = s["images_per_second_by_processes"]
        print(f"scaling 2 CPU processes / 1 = {s['speedup_by_processes']['2']:.2f}x (images/s {ips})")
    tag = args.tag or ("quick" if args.quick else ("gpu" if cuda else "cpu"))
    path = write_json(RESULTS_DIR / f"scale_{tag}.json", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
