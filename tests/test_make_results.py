"""make_results: RESULTS.md and the README's results block are what the committed results files give."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import make_results

ROOT = make_results.REPO_ROOT


def test_committed_results_md_and_readme_block_match_the_results_files():
    """Regenerating from benchmarks/results/ reproduces both files byte for byte: no figure can drift."""
    results_md, block = make_results.render()
    assert (ROOT / "benchmarks" / "RESULTS.md").read_text() == results_md
    readme = (ROOT / "README.md").read_text()
    assert make_results.replace_block(readme, block) == readme


def test_render_is_byte_identical_across_runs():
    assert make_results.render() == make_results.render()


def test_check_reports_a_stale_readme(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace(
        make_results.README_END, "| a hand-edited figure 0.999 |\n" + make_results.README_END
    )
    (tmp_path / "README.md").write_text(stale)
    (tmp_path / "RESULTS.md").write_text((ROOT / "benchmarks" / "RESULTS.md").read_text())
    monkeypatch.setattr(make_results, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(make_results, "BENCH_DIR", tmp_path)
    assert make_results.main(["--check"]) == 1
    assert (tmp_path / "README.md").read_text() == stale  # --check writes nothing


@pytest.mark.parametrize("readme", ["no markers", f"{make_results.README_END} {make_results.README_BEGIN}"])
def test_replace_block_requires_the_markers_in_order(readme):
    with pytest.raises(ValueError, match="results:begin"):
        make_results.replace_block(readme, "x")


def _quality_run(dataset: str, seed: int, score: float) -> dict:
    record = {
        "dataset": dataset,
        "recipe": "plain",
        "noise_kind": "symmetric",
        "noise_rate": 0.4,
        "seed": seed,
        "epochs": 2,
        "method": "cross_entropy",
        "test": {"balanced_accuracy": score},
    }
    return {
        "header": {"command": f"quality.py --seeds {seed}", "machine": {"device": "cpu"}},
        "phase1": [record],
        "phase2": [],
    }


def test_add_run_splits_records_by_data_set_and_keeps_each_header(tmp_path):
    source = tmp_path / "quality_new.json"
    run = _quality_run("digits-LT", 0, 0.5)
    run["phase1"].append({**_quality_run("RetinaMNIST", 0, 0.3)["phase1"][0]})
    source.write_text(json.dumps(run))
    written = make_results.add_run(source, tmp_path)
    assert sorted(p.name for p in written) == ["quality_digits.json", "quality_retinamnist.json"]
    assert not source.exists()
    digits = json.loads((tmp_path / "quality_digits.json").read_text())
    assert digits["runs"][0]["header"]["command"] == "quality.py --seeds 0"
    assert [r["dataset"] for r in digits["runs"][0]["phase1"]] == ["digits-LT"]
    with pytest.raises(ValueError, match="already a canonical file"):
        make_results.add_run(tmp_path / "quality_digits.json", tmp_path)


def test_a_later_run_replaces_an_earlier_record_with_the_same_key(tmp_path):
    canonical = {
        "experiment": "quality",
        "runs": [_quality_run("digits-LT", 0, 0.5), _quality_run("digits-LT", 0, 0.7)],
    }
    (tmp_path / "quality_digits.json").write_text(json.dumps(canonical))
    p1, _ = make_results.quality_records(make_results.load(tmp_path)["quality"])
    assert [r["test"]["balanced_accuracy"] for r in p1] == [0.7]


def test_a_script_output_waits_for_add(tmp_path):
    """A quick run lying in the results folder does not change RESULTS.md until it is folded in."""
    canonical = {"experiment": "quality", "runs": [_quality_run("digits-LT", 0, 0.5)]}
    (tmp_path / "quality_digits.json").write_text(json.dumps(canonical))
    (tmp_path / "quality_quick.json").write_text(json.dumps(_quality_run("digits-LT", 1, 0.9)))
    assert [p.name for p in make_results.pending(tmp_path)] == ["quality_quick.json"]
    p1, _ = make_results.quality_records(make_results.load(tmp_path)["quality"])
    assert [r["seed"] for r in p1] == [0]


def test_results_file_names_follow_the_scheme(tmp_path):
    with pytest.raises(ValueError, match="must start with one of"):
        make_results.experiment_of(tmp_path / "ad_hoc_run.json")
    assert make_results.experiment_of(tmp_path / "clean_upper_bound_hmnist.json") == "clean_upper_bound"
    assert make_results.experiment_of(tmp_path / "noise_estimate.json") == "noise_estimate"


@pytest.mark.parametrize(
    ("change", "note"),
    [
        ({"decision": "balanced"}, ', decision="balanced"'),
        ({"recalibration_epochs": 25}, ", 25 recalibration epochs"),
    ],
    ids=["decision", "recalibration-epochs"],
)
def test_phase2_records_of_another_decision_or_recalibration_get_their_own_table(tmp_path, change, note):
    committed = json.loads((ROOT / "benchmarks" / "results" / "quality_hmnist.json").read_text())
    record = next(r for run in committed["runs"] for r in run["phase2"] if r.get("cleaner_version") == 5)
    run = {"header": {"command": "quality.py", "machine": {"device": "cpu"}}, "phase1": [],
           "phase2": [record, {**record, **change}]}
    (tmp_path / "quality_hmnist.json").write_text(json.dumps({"experiment": "quality", "runs": [run]}))
    _, p2 = make_results.quality_records(make_results.load(tmp_path)["quality"])
    assert len(p2) == 2
    titles = [line for line in make_results.phase2_section(p2) if line.startswith("### ")]
    assert len(titles) == 2
    assert [t.endswith(note) for t in titles] == [False, True]


def test_ranked_list_line_says_when_a_shortlist_strategy_top_5_was_half_a_10_percent_query():
    entry = {"top_5pct": 0.8, "top_10pct": 0.9}
    old = {0: {"phase1_ranked_list": entry, "phase1_ranked_strategy": "adaptive_mislabel"}}
    new = {0: {**old[0], "ranked_list_per_share": True}}
    ranking = {0: {"phase1_ranked_list": entry, "phase1_ranked_strategy": "training_margin"}}
    assert "first half of the 10% query" in make_results.ranked_list_line(old)[0]
    for records in (new, ranking):
        assert "first half" not in make_results.ranked_list_line(records)[0]
