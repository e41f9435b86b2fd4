"""The training targets between majority and distribution: `mixed` and `sharpened` (DatasetConfig
fields, hence `culturellm dataset` flags and part of the dataset stage's key)."""

from __future__ import annotations

import json
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
    t = soft_target(OPTIONS, DIST, "1", DatasetConfig(target="sharpened", sharpen_temperature=0.5))
    z = 0.25 + 0.09 + 0.04
    assert t == pytest.approx({"1": 0.25 / z, "2": 0.09 / z, "3": 0.04 / z, "4": 0.0}, abs=1e-6)
    same = soft_target(OPTIONS, DIST, "1", DatasetConfig(target="sharpened", sharpen_temperature=1.0))
    assert same == pytest.approx(DIST)
    assert sum(t.values()) == pytest.approx(1.0, abs=1e-5) and max(t, key=t.get) == "1"


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValidationError):
        DatasetConfig(target="mixed", majority_weight=1.5)
    with pytest.raises(ValidationError):
        DatasetConfig(target="sharpened", sharpen_temperature=0)


def _aug(path: Path) -> Path:
    rows = []
    for q in load_questions()[:4]:
        rows.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        rows.append({"id": f"{q.id}-p", "question_id": q.id, "step": "paraphrase", "text": q.text + " ?"})
    write_jsonl(path, rows)
    return path


@pytest.mark.parametrize(
    ("target", "params"), [("mixed", {"majority_weight": 0.5}), ("sharpened", {"sharpen_temperature": 0.7})]
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
    assert (
        "--majority-weight" in help_text and "--sharpen-temperature" in help_text and "sharpened" in help_text
    )
    aug = _aug(tmp_path / "aug.jsonl")
    r = CliRunner().invoke(
        app, ["dataset", "-c", "arabic", "-a", str(aug), "-o", str(tmp_path / "t.jsonl"),
              "--target", "sharpened", "--sharpen-temperature", "0.7"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    a = RunConfig(dataset={"target": "sharpened", "sharpen_temperature": 0.5}).section_hash("dataset")
    b = RunConfig(dataset={"target": "sharpened", "sharpen_temperature": 0.7}).section_hash("dataset")
    assert a != b
    assert DatasetConfig().target == "sharpened"  # the default: one flag from the paper's majority


def test_the_old_name_of_sharpen_temperature_still_works_and_says_so(tmp_path: Path, capsys, cli) -> None:
    """`temperature` was the target's sharpening and, elsewhere, the sampling temperature: the target's
    is `sharpen_temperature` now; the old TOML key still works with one warning line naming the new
    name, so does the old flag, and both names at once are an error naming the new one."""
    from culturellm.config import RunConfig

    cfg = RunConfig(dataset={"target": "sharpened", "temperature": 0.7})
    assert cfg.dataset.sharpen_temperature == 0.7
    assert "'temperature' is now 'sharpen_temperature'" in capsys.readouterr().err
    aug = _aug(tmp_path / "aug.jsonl")
    out = ["-c", "arabic", "-a", str(aug), "-o"]
    p = cli("dataset", *out, str(tmp_path / "t.jsonl"), "--temperature", "0.7")
    assert p.code == 0, p.err
    assert "warning: --temperature is now --sharpen-temperature" in p.err
    manifest = json.loads((tmp_path / "t.manifest.json").read_text())
    assert manifest["target_params"] == {"sharpen_temperature": 0.7}
    p = cli(
        "dataset", *out, str(tmp_path / "v.jsonl"), "--temperature", "0.7", "--sharpen-temperature", "0.5"
    )
    assert p.code == 2 and "give only --sharpen-temperature" in p.err
    toml = tmp_path / "run.toml"
    toml.write_text("[dataset]\ntemperature = 0.7\nsharpen_temperature = 0.5\n", encoding="utf-8")
    p = cli("dataset", "--config", str(toml), "-c", "arabic", "-a", str(aug), "-o", str(tmp_path / "u.jsonl"))
    assert p.code == 2 and "give only 'sharpen_temperature'" in p.err and "Traceback" not in p.err
