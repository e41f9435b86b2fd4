"""The training targets between majority and distribution: `mixed` and `sharpened` (DatasetConfig
fields, hence `culturellm dataset` flags and part of the dataset stage's key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from culturellm.cli import app
from culturellm.dataset import DatasetConfig, build_training_set
from culturellm.dataset.targets import soft_target
from culturellm.jsonio import read_jsonl, write_jsonl
from culturellm.seeds import seed_set
from culturellm.wvs import load_questions

OPTIONS = {"1": "a", "2": "b", "3": "c", "4": "d"}
DIST = {"1": 0.5, "2": 0.3, "3": 0.2, "4": 0.0}


def test_mixed_is_distribution_plus_weighted_majority() -> None:
    t = soft_target(OPTIONS, DIST, "1", DatasetConfig(target="mixed", majority_weight=0.25))
    assert t == pytest.approx({"1": 0.625, "2": 0.225, "3": 0.15, "4": 0.0})
    one = soft_target(OPTIONS, DIST, "1", DatasetConfig(target="mixed", majority_weight=1.0))
    assert one == pytest.approx({"1": 1.0, "2": 0.0, "3": 0.0, "4": 0.0})


def test_sharpened_is_powered_and_renormalised() -> None:
    t = soft_target(OPTIONS, DIST, "1", DatasetConfig(target="sharpened", temperature=0.5))
    z = 0.25 + 0.09 + 0.04
    assert t == pytest.approx({"1": 0.25 / z, "2": 0.09 / z, "3": 0.04 / z, "4": 0.0}, abs=1e-6)
    same = soft_target(OPTIONS, DIST, "1", DatasetConfig(target="sharpened", temperature=1.0))
    assert same == pytest.approx(DIST)
    assert sum(t.values()) == pytest.approx(1.0, abs=1e-5) and max(t, key=t.get) == "1"


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValidationError):
        DatasetConfig(target="mixed", majority_weight=1.5)
    with pytest.raises(ValidationError):
        DatasetConfig(target="sharpened", temperature=0)


def _aug(path: Path) -> Path:
    rows = []
    for q in load_questions()[:4]:
        rows.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        rows.append({"id": f"{q.id}-p", "question_id": q.id, "step": "paraphrase", "text": q.text + " ?"})
    write_jsonl(path, rows)
    return path


@pytest.mark.parametrize(
    ("target", "params"), [("mixed", {"majority_weight": 0.5}), ("sharpened", {"temperature": 0.7})]
)
def test_records_carry_the_target(tmp_path: Path, target: str, params: dict) -> None:
    from culturellm.cultures import get_culture

    cfg = DatasetConfig(target=target, **params)
    man = build_training_set(["arabic"], _aug(tmp_path / "aug.jsonl"), tmp_path / "t.jsonl", cfg)
    assert man["target"] == target and man["target_params"] == params
    seeds = {s.question_id: s for s in seed_set(get_culture("arabic"))}
    first = load_questions()[0]
    rec = read_jsonl(tmp_path / "t.jsonl")[0]
    s = seeds[first.id]
    assert rec["target_distribution"] == soft_target(s.options, s.distribution, s.majority, cfg)
    assert rec["messages"][-1]["content"] == str(s.majority)


def test_flags_exist_and_enter_the_dataset_key(tmp_path: Path) -> None:
    from culturellm.config import RunConfig

    help_text = CliRunner().invoke(app, ["dataset", "--help"], terminal_width=200).output
    assert "--majority-weight" in help_text and "--temperature" in help_text and "sharpened" in help_text
    aug = _aug(tmp_path / "aug.jsonl")
    r = CliRunner().invoke(
        app, ["dataset", "-c", "arabic", "-a", str(aug), "-o", str(tmp_path / "t.jsonl"),
              "--target", "sharpened", "--temperature", "0.7"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    a = RunConfig(dataset={"target": "sharpened", "temperature": 0.5}).section_hash("dataset")
    b = RunConfig(dataset={"target": "sharpened", "temperature": 0.7}).section_hash("dataset")
    assert a != b
    assert DatasetConfig().target == "sharpened"  # the default: one flag from the paper's majority
