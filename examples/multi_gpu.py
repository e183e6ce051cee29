"""Phase 1 (co-teaching + VoG) on several processes or GPUs with Hugging Face Accelerate.

Launch the same script on every process; each trains both networks on its shard of every batch, the
per-sample state is gathered by dataset index, and every process ends with the same clean mask. The main
process writes ``OUT/clean_mask.npy`` (and ``OUT/vog.npy``, ``OUT/labels.npy``, ``OUT/summary.json``).
With ``--rounds N`` phase 2 follows on the same engine: a simulated expert (the true labels of
``--quick`` / ``--npz``) answers ``--budget`` queries per round, the main process journals them in
``OUT/journal.jsonl``::

    # two processes on the CPU (gloo): Accelerate's torchrun launcher, --cpu for the script
    accelerate launch --multi_gpu --num_processes 2 examples/multi_gpu.py --cpu --quick --out run-2cpu
    python examples/multi_gpu.py --cpu --quick --out run-1cpu        # one process: the reference
    # GPUs
    accelerate launch --multi_gpu --num_processes 4 examples/multi_gpu.py --npz retinamnist.npz --out run
    accelerate launch --multi_gpu --num_processes 8 examples/multi_gpu.py --csv ISIC_2019_GroundTruth.csv \\
        --images ISIC_2019_Training_Input --backbone resnet18 --image-size 224 --bf16 --channels-last \\
        --workers 8 --batch-size 256 --epochs 50 --out run-isic

(``accelerate launch --cpu --num_processes 2`` starts two processes only through MPI, with
``--mpirun_hostfile``; without it, one. ``torchrun --nproc_per_node 2 examples/multi_gpu.py --cpu`` works
too.) With ``--backbone mlp`` (BatchNorm-free) the 2-process mask equals the 1-process one; a BatchNorm
network on CPU processes normalises each process's shard, so its mask differs slightly.

Data: ``--quick`` trains on digits-LT (scikit-learn's digits, 10x long-tailed, 40% symmetric noise
injected); ``--npz`` on a MedMNIST-layout file with 40% injected noise; ``--csv``/``--images`` on your own
images and labels as given (an ``ImageFolderCSV``: file name and label columns). ``--batch-size`` is the
global batch, whatever the number of processes (it must be divisible by it). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration

from modal_noisy import (
    AcceleratedCoTeachingClassifier,
    ActiveLabelCleaner,
    ImageFolderCSV,
    SimulatedOracle,
    SmallCNN,
    make_backbone,
)
from modal_noisy.experiment import load_experiment


class PixelMLP(torch.nn.Module):
    """A BatchNorm-free perceptron on the pixels: any number of CPU processes select the same samples.

    (BatchNorm normalises each process's shard of a batch; on GPUs the nets switch to SyncBatchNorm,
    on CPUs there is none, so a BatchNorm network's mask differs slightly between process counts.)
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, side: int = 8, random_state: int = 0):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(random_state)
            self.body = torch.nn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(in_channels * side * side, 64), torch.nn.ReLU()
            )
            self.head = torch.nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _data(args: argparse.Namespace) -> tuple[Any, np.ndarray, int, int, Any]:
    """``(X, y, n_classes, in_channels, experiment)`` of the data set the flags name.

    ``experiment`` (None for ``--csv``) has the true labels and the clean validation split that phase 2
    with a simulated expert needs.
    """
    if args.csv:
        from torchvision import transforms

        size = args.image_size
        transform = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])
        data = ImageFolderCSV(args.csv, args.images, transform=transform)
        return data, np.asarray(data.labels), data.n_classes, 3, None
    if args.npz:
        experiment = load_experiment("medmnist", path=args.npz, noise_rate=0.4, random_state=args.seed)
    else:
        experiment = load_experiment("digits", noise_rate=0.4, random_state=args.seed)
    X, y = experiment.X_train, experiment.y_given
    if args.max_samples:
        X, y = X[: args.max_samples], y[: args.max_samples]
    return X, y, experiment.n_classes, experiment.in_channels, experiment


def main(args: argparse.Namespace) -> AcceleratedCoTeachingClassifier:
    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision="bf16" if args.bf16 else "no",
        # batch_size is the global batch; batches go to the GPU with non-blocking copies
        dataloader_config=DataLoaderConfiguration(split_batches=True, non_blocking=True),
    )
    X, y, n_classes, in_channels, experiment = _data(args)
    cuda = accelerator.device.type == "cuda"
    loader = {"num_workers": args.workers, "pin_memory": cuda, "persistent_workers": args.workers > 0}
    if args.backbone == "smallcnn":
        network = {"module": SmallCNN, "module__width": 8 if args.quick else 32}
    elif args.backbone == "mlp":
        network = {"module": PixelMLP, "module__side": int(np.shape(X[0])[-1])}
    else:
        network = {"module": make_backbone, "module__name": args.backbone}
    net = AcceleratedCoTeachingClassifier(
        **network,
        module__in_channels=in_channels,
        module__n_classes=n_classes,
        module__random_state=args.seed,
        accelerator=accelerator,
        channels_last=args.channels_last,
        max_epochs=args.epochs or (4 if args.quick else 40),
        num_gradual=2 if args.quick else 10,
        batch_size=args.batch_size,
        random_state=args.seed,
        verbose=int(accelerator.is_main_process),
        **{f"iterator_train__{key}": value for key, value in loader.items()},
        **{f"iterator_valid__{key}": value for key, value in loader.items()},
    )
    out = Path(args.out)
    if args.rounds:
        # phase 2 on the same engine: a simulated expert answers; only the main process journals
        if accelerator.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
        cleaner = ActiveLabelCleaner(
            net,
            strategy="vog",
            budget_per_round=args.budget,
            rounds=args.rounds,
            recalibration_epochs=2 if args.quick else 10,
            journal=out / "journal.jsonl",
            random_state=args.seed,
            verbose=int(accelerator.is_main_process),
        )
        y_true = experiment.y_true[: len(y)]
        cleaner.fit(X, y, SimulatedOracle(y_true), X_val=experiment.X_val, y_val=experiment.y_val)
        net = cleaner.estimator_  # phase 1's mask and VoG, recalibrated networks
        labels = cleaner.labels_
    else:
        net.fit(X, y)
        labels = y
    if args.every_rank:  # each process's own copy of the state, to check they agree
        out.mkdir(parents=True, exist_ok=True)
        rank = accelerator.process_index
        np.savez(
            out / f"rank{rank}.npz",
            clean_mask=net.clean_mask_,
            vog=net.vog_,
            noise_rate=net.noise_rate_,
            labels=labels,
        )
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "clean_mask.npy", net.clean_mask_)
        np.save(out / "vog.npy", net.vog_)
        np.save(out / "labels.npy", labels)
        summary = {
            "processes": accelerator.num_processes,
            "device": str(accelerator.device),
            "n_samples": len(y),
            "selected": int(net.clean_mask_.sum()),
            "noise_rate": float(net.noise_rate_),
            "labels_changed_by_the_expert": int(np.sum(labels != y)),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary))
    accelerator.wait_for_everyone()
    return net


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="run-multi", help="folder for clean_mask.npy, vog.npy, summary.json")
    parser.add_argument("--quick", action="store_true", help="digits-LT, a small net, 4 epochs (the tests)")
    parser.add_argument("--npz", help="a MedMNIST-layout .npz file (40%% symmetric noise injected)")
    parser.add_argument("--csv", help="CSV of image file names and labels (with --images)")
    parser.add_argument("--images", help="folder of the images the CSV names")
    parser.add_argument("--image-size", type=int, default=224, help="side the --csv images are resized to")
    parser.add_argument(
        "--backbone",
        choices=("smallcnn", "mlp", "resnet18", "mobilenet_v2"),
        default="smallcnn",
        help="mlp: BatchNorm-free, the same mask on any number of CPU processes",
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: 4 with --quick, else 40")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch (all processes)")
    parser.add_argument("--max-samples", type=int, default=None, help="train on the first N samples only")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes per process")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPUs with bf16, or the CPU)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last network weights")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is present")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=0, help="phase 2: rounds of a simulated expert")
    parser.add_argument("--budget", type=int, default=20, help="phase 2: labels per round")
    parser.add_argument(
        "--every-rank", action="store_true", help="also write OUT/rank<R>.npz on every process"
    )
    args = parser.parse_args(argv)
    if bool(args.csv) != bool(args.images):
        parser.error("--csv and --images go together")
    if args.rounds and args.csv:
        parser.error("--rounds needs the true labels of a simulated expert: use --quick or --npz")
    return args


if __name__ == "__main__":
    main(parse_args())
