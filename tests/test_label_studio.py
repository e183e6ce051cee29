"""Label Studio round trip: a round's queue as import tasks with pre-annotations, the export as answers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from modal_noisy.cleaning import ActiveLabelCleaner, AwaitingExpertAnswers, FileOracle
from modal_noisy.cleaning.label_studio import labeling_config
from modal_noisy.experiment import build_coteaching, load_experiment

NAMES = [f"digit{k}" for k in range(10)]
QUEUE = [17, 4, 250, 99]


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.images / 16.0).astype(np.float32)[:, None], data.target.astype(np.int64)


@pytest.fixture
def exported(tmp_path, digits):
    """A round-1 queue written for Label Studio, with the model's probabilities as pre-annotations."""
    X, y = digits
    oracle = FileOracle(tmp_path, n_classes=10, class_names=NAMES, images=X, label_studio=True)
    probs = np.full((len(QUEUE), 10), 0.02)
    probs[np.arange(len(QUEUE)), [7, 4, 1, 9]] = 0.82
    files = oracle.export_queue(1, QUEUE, y, pred_probs=probs)
    return oracle, files, json.loads(files.label_studio_path.read_text(encoding="utf-8"))


def _finished(tasks, choices, *, start_id=100):
    """What Label Studio's JSON export holds once the expert has labelled each task."""
    done = []
    for k, (task, choice) in enumerate(zip(tasks, choices, strict=True)):
        done.append(
            {
                "id": start_id + k,
                "data": task["data"],
                "annotations": [
                    {
                        "id": 500 + k,
                        "completed_by": 1,
                        "result": [
                            {
                                "id": f"r{k}",
                                "from_name": "label",
                                "to_name": "image",
                                "type": "choices",
                                "origin": "manual",
                                "value": {"choices": [choice]},
                            }
                        ],
                        "was_cancelled": False,
                        "ground_truth": False,
                        "created_at": "2026-12-07T10:00:00.000000Z",
                        "lead_time": 3.2,
                    }
                ],
                "predictions": task.get("predictions", []),
                "project": 1,
            }
        )
    return done


def test_queue_tasks_follow_label_studios_import_format(exported, digits):
    oracle, files, tasks = exported
    _, y = digits
    assert files.label_studio_path.name == "queue_round01.labelstudio.json"
    assert [task["data"]["position"] for task in tasks] == QUEUE
    for task, pos, predicted in zip(tasks, QUEUE, [7, 4, 1, 9], strict=True):
        data = task["data"]
        assert data["image"] == f"/data/local-files/?d=images/{pos:06d}.png"
        assert data["current_label"] == y[pos] and data["current_class_name"] == NAMES[y[pos]]
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "modal-noisy" and prediction["score"] == pytest.approx(0.82)
        expected = {"from_name": "label", "to_name": "image", "type": "choices"}
        assert prediction["result"] == [{**expected, "value": {"choices": [NAMES[predicted]]}}]
        with Image.open(oracle.directory / "images" / f"{pos:06d}.png") as image:
            assert min(image.size) >= 128  # an 8x8 digit, enlarged for the labelling screen
    # the results name the config's tags: Choices "label" on Image "image", one Choice per class
    config = ET.fromstring(oracle.label_studio_config_path.read_text(encoding="utf-8"))
    image = config.find("Image")
    choices = config.find("Choices")
    assert (image.get("name"), image.get("value")) == ("image", "$image")
    assert (choices.get("name"), choices.get("toName"), choices.get("choice")) == ("label", "image", "single")
    assert [c.get("value") for c in choices.findall("Choice")] == NAMES


def test_label_studio_export_is_read_as_the_rounds_answers(exported, digits):
    oracle, _, tasks = exported
    _, y = digits
    answers = [NAMES[7], NAMES[4], "digit3", NAMES[9]]
    export = _finished(tasks, answers)[::-1]  # Label Studio's order is its own
    export[0]["annotations"].insert(0, {"result": [], "was_cancelled": True})  # a skip, then an answer
    (oracle.directory / "answers_round01.json").write_text(json.dumps(export), encoding="utf-8")
    assert oracle.find_answers(1) == oracle.directory / "answers_round01.json"
    got = oracle(QUEUE, current_labels=y[QUEUE], round_index=1)
    assert got.tolist() == [7, 4, 3, 9]


def test_label_studio_export_is_rejected_whole_with_every_problem(exported):
    oracle, _, tasks = exported
    export = _finished(tasks, ["digit7", "digit4", "digit1", "digit9"])
    export[0]["annotations"][0]["result"][0]["value"]["choices"] = ["cat"]
    export[1]["annotations"][0]["result"][0]["value"]["choices"] = ["digit1", "digit2"]
    export[2]["annotations"][0]["was_cancelled"] = True
    second = json.loads(json.dumps(export[3]["annotations"][0]))
    second["result"][0]["value"]["choices"] = ["digit8"]
    export[3]["annotations"].append(second)
    stray = _finished([tasks[0]], ["digit1"], start_id=999)[0]
    stray["data"] = {**stray["data"], "position": 5}
    no_position = {"id": 1000, "data": {"image": "x.png"}, "annotations": []}
    path = oracle.directory / "answers_round01.json"
    path.write_text(json.dumps([*export, stray, no_position]), encoding="utf-8")
    with pytest.raises(ValueError) as info:
        oracle.read_answers(1, QUEUE)
    message = str(info.value)
    assert f"answers file {path} rejected, nothing from it was applied" in message
    for expected in (
        "task 1 (id 100): label 'cat' for position 17 is not an integer or a class name",
        "task 2 (id 101): position 4 has 2 choices in one annotation",
        "task 3 (id 102): position 250 has no label",
        "task 4 (id 103): position 99 has annotations that disagree ('digit8', 'digit9')",
        "task 5 (id 999): position 5 is not in this round's queue",
        "task 6 (id 1000) has no data.position",
    ):
        assert expected in message
    assert "no answer for position" not in message  # each problem once


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "is not Label Studio's JSON export"),
        ('{"tasks": []}', "must be Label Studio's JSON export, a list of tasks"),
    ],
    ids=["not-json", "not-a-list"],
)
def test_label_studio_export_that_is_not_one(exported, content, match):
    oracle, _, _ = exported
    (oracle.directory / "answers_round01.json").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        oracle.read_answers(1, QUEUE)


def test_label_studio_image_paths_and_settings(tmp_path):
    labels = np.array([0, 1, 2])
    paths = [tmp_path / "scans" / f"{name}.png" for name in "abc"]
    paths[0].parent.mkdir()
    for path in paths:
        Image.new("L", (4, 4)).save(path)
    by_path = FileOracle(
        tmp_path / "a", n_classes=3, image_paths=paths, label_studio=True, image_url_prefix=""
    )
    tasks = json.loads(by_path.export_queue(0, [2, 0], labels).label_studio_path.read_text())
    assert [t["data"]["image"] for t in tasks] == [paths[2].as_posix(), paths[0].as_posix()]
    assert all("predictions" not in t for t in tasks)  # no model seen (the audit round): no pre-annotation
    assert "<Choice value=\"2\"/>" in labeling_config(["0", "1", "2"])
    assert FileOracle(tmp_path / "b", n_classes=3).export_queue(0, [1], labels).label_studio_path is None
    with pytest.raises(ValueError, match="label_studio=True needs images or image_paths"):
        FileOracle(tmp_path / "c", n_classes=3, label_studio=True)
    with pytest.raises(ValueError, match="label_studio must be True or False"):
        FileOracle(tmp_path / "d", n_classes=3, images=np.zeros((3, 1, 4, 4)), label_studio="yes")


def test_cleaning_loop_sends_its_predictions_as_pre_annotations(tmp_path):
    experiment = load_experiment("digits", noise_rate=0.4, random_state=0)
    estimator = build_coteaching(experiment, max_epochs=2, random_state=0, verbose=0)
    oracle = FileOracle(tmp_path, n_classes=10, images=experiment.X_train, label_studio=True)
    cleaner = ActiveLabelCleaner(estimator, "entropy", budget_per_round=6, rounds=1, recalibration_epochs=1,
                                 random_state=0, verbose=0)
    with pytest.raises(AwaitingExpertAnswers) as waiting:
        cleaner.fit(experiment.X_train, experiment.y_given, oracle=oracle,
                    X_val=experiment.X_val, y_val=experiment.y_val)
    assert waiting.value.queue.label_studio_path == tmp_path / "queue_round01.labelstudio.json"
    tasks = json.loads(waiting.value.queue.label_studio_path.read_text())
    assert len(tasks) == 6
    for task in tasks:
        (prediction,) = task["predictions"]
        assert prediction["result"][0]["value"]["choices"][0] in [str(k) for k in range(10)]
        assert 0.1 <= prediction["score"] <= 1.0  # the arg-max of 10 probabilities
