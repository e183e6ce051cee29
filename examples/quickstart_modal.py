"""Quick start: modAL's own ActiveLearner with a co-teaching net and the VoG query strategy.

Digits made 10x long-tailed with 40% symmetric label noise. Phase 1 trains two networks that pick
each other's clean samples (small loss + small Variance of Gradients); the VoG strategy then ranks
the labels most worth an expert's look.

    python examples/quickstart_modal.py           # 40 epochs, about a minute on 2 CPU cores
    python examples/quickstart_modal.py --fast    # a few epochs, for the test suite
"""

from __future__ import annotations

import argparse

from modAL.models import ActiveLearner

from modal_noisy import CoTeachingClassifier, SmallCNN, inject_label_noise, load_digits_long_tailed
from modal_noisy.strategies import vog_noisy_query


def main(fast: bool = False) -> dict[str, object]:
    data = load_digits_long_tailed(imbalance_ratio=10, random_state=0)
    noise = inject_label_noise(data.y_train, 0.4, random_state=0)
    print(f"{len(noise.labels)} training images, {noise.is_noisy.mean():.0%} of the labels are wrong")

    net = CoTeachingClassifier(
        SmallCNN,
        module__in_channels=1,
        module__n_classes=10,
        selection="loss+vog",  # the paper: 80% smallest loss + 20% smallest VoG
        mix_ratio=0.2,
        forget_rate="auto",  # estimate the noise rate instead of assuming it
        random_state=0,
        verbose=0,
        max_epochs=5 if fast else 40,  # the training recipe is the estimator's own default
    )
    learner = ActiveLearner(
        estimator=net, query_strategy=vog_noisy_query, X_training=data.X_train, y_training=noise.labels
    )
    print(f"estimated noise rate {net.noise_rate_:.2f}; phase 1 kept {net.clean_mask_.mean():.0%} as clean")

    # The pool is the training set itself: rank its labels, most likely wrong first.
    query_idx, _ = learner.query(data.X_train, n_instances=50, labels=noise.labels)
    hit_rate = float(noise.is_noisy[query_idx].mean())
    accuracy = float(learner.score(data.X_test, data.y_test))
    print(f"top-50 queried labels: {hit_rate:.0%} really wrong (base rate {noise.is_noisy.mean():.0%})")
    print(f"clean test accuracy {accuracy:.3f}")

    # Next: hand these positions to an expert. ActiveLabelCleaner runs that loop round by round,
    # replacing the labels in place and recalibrating (see examples/medmnist_two_phase.py).
    return {
        "query_idx": query_idx,
        "hit_rate": hit_rate,
        "base_rate": float(noise.is_noisy.mean()),
        "accuracy": accuracy,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fast", action="store_true", help="a few epochs only (used by the tests)")
    main(fast=parser.parse_args().fast)
