"""Training-set building: targets, missing questions, split determinism, CLI errors."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from culturellm.cli import app
from culturellm.dataset import DatasetConfig, build_training_set, split_manifest_path
from culturellm.dataset.build import make_split
from culturellm.dataset.targets import distribution_targets, largest_remainder
from culturellm.errors import CultureLLMError, DataError, UnknownNameError
from culturellm.jsonio import read_jsonl, write_jsonl
from culturellm.prompts import culture_system_prompt, survey_messages
from culturellm.seeds import seed_set
from culturellm.wvs import load_questions


def _augmented(path: Path, qids: list[str], per_q: int = 6) -> Path:
    """A synthetic augmented.jsonl: the real seed text plus per_q - 1 marked variants per question."""
    qs = {q.id: q for q in load_questions()}
    rows = []
    for q in qids:
        rows.append(
            {
                "id": f"{q}-s",
                "question_id": q,
                "step": "seed",
                "text": qs[q].text,
                "parent": None,
                "similarity": 1.0,
            }
        )
        for i in range(per_q - 1):
            step = "paraphrase" if i < 2 else "synonym"
            rows.append(
                {
                    "id": f"{q}-v{i}",
                    "question_id": q,
                    "step": step,
                    "text": f"{qs[q].text} (v{i})",
                    "parent": f"{q}-s",
                    "similarity": 0.9,
                }
            )
    write_jsonl(path, rows)
    return path


QIDS = ["Q27", "Q28", "Q29", "Q30", "Q33", "Q122", "Q158", "Q224"]


@pytest.fixture
def aug(tmp_path: Path) -> Path:
    return _augmented(tmp_path / "augmented.jsonl", QIDS)


def test_majority_records_use_the_shared_prompt_wording(aug: Path, tmp_path: Path):
    out = tmp_path / "train.jsonl"
    man = build_training_set(["arabic"], aug, out, DatasetConfig(target="majority"))
    rows = read_jsonl(out)
    seeds = {s.question_id: s for s in seed_set("arabic")}
    expect_q = [q for q in QIDS if q in seeds]
    assert len(rows) == 6 * len(expect_q) == man["counts"]["records"]
    first = rows[0]["messages"]
    s = seeds["Q27"]
    system = culture_system_prompt("Arabic")
    assert first[:-1] == survey_messages(s.text, s.options, system)
    assert first[-1] == {"role": "assistant", "content": s.majority}
    assert set(json.loads(json.dumps(rows[0]))) == {"messages"}
    assert man["data_sha256"] == json.loads(split_manifest_path(out).read_text())["data_sha256"]
    for r in rows:  # every record's answer is its question's majority
        text = r["messages"][1]["content"].split("\n")[0]
        q = next(q for q in expect_q if text.startswith(seeds[q].text))
        assert r["messages"][2]["content"] == seeds[q].majority


def test_missing_questions_produce_no_record(aug: Path, tmp_path: Path):
    chinese = {s.question_id for s in seed_set("chinese")}
    missing = [q for q in QIDS if q not in chinese]
    assert missing, "test needs a question China never answered"
    man = build_training_set(["chinese"], aug, tmp_path / "train.jsonl")
    assert man["per_culture"]["chinese"]["missing_questions"] == missing
    assert man["counts"]["records"] == 6 * (len(QIDS) - len(missing))


def test_sampled_targets_match_the_survey(tmp_path: Path):
    aug = _augmented(tmp_path / "a.jsonl", ["Q27", "Q28"], per_q=40)
    out = tmp_path / "d.jsonl"
    build_training_set(["english"], aug, out, DatasetConfig(target="sampled", seed=3))
    seeds = {s.question_id: s for s in seed_set("english")}
    answers = Counter(r["messages"][2]["content"] for r in read_jsonl(out)[:40])
    assert answers == Counter(largest_remainder(seeds["Q27"].distribution, 40)) - Counter()
    again = tmp_path / "d2.jsonl"
    build_training_set(["english"], aug, again, DatasetConfig(target="sampled", seed=3))
    assert out.read_bytes() == again.read_bytes()  # fixed seed: same draws


def test_distribution_target_carries_the_survey_for_soft_labels(tmp_path: Path):
    from culturellm.finetune.data import load_records

    aug = _augmented(tmp_path / "a.jsonl", ["Q27", "Q28"], per_q=3)
    out = tmp_path / "d.jsonl"
    man = build_training_set(["english"], aug, out, DatasetConfig(target="distribution"))
    seed = {s.question_id: s for s in seed_set("english")}["Q27"]
    rows = read_jsonl(out)
    assert man["target"] == "distribution"
    assert {r["messages"][2]["content"] for r in rows[:3]} == {str(seed.majority)}
    dist = rows[0]["target_distribution"]
    assert list(dist) == list(seed.options) and sum(dist.values()) == pytest.approx(1.0, abs=1e-5)
    assert dist == pytest.approx({c: seed.distribution.get(c, 0.0) for c in seed.options}, abs=1e-5)
    assert load_records(out)[0].target == pytest.approx(dist)  # fine-tuning reads it back


def test_steps_and_max_records_keep_the_split(tmp_path: Path):
    rows = []
    for q in ["Q27", "Q28", "Q29", "Q30"]:
        rows.append({"id": f"{q}-s", "question_id": q, "step": "seed", "text": f"{q} seed"})
        rows += [
            {"id": f"{q}-p{i}", "question_id": q, "step": "paraphrase", "text": f"{q} p{i}"} for i in range(3)
        ]
        rows += [
            {"id": f"{q}-y{i}", "question_id": q, "step": "synonym", "text": f"{q} y{i}"} for i in range(3)
        ]
    write_jsonl(tmp_path / "a.jsonl", rows)
    cfg = DatasetConfig(holdout_questions=1, holdout_variants=0.34)
    full = build_training_set(["english"], tmp_path / "a.jsonl", tmp_path / "f.jsonl", cfg)
    seeds = build_training_set(["english"], tmp_path / "a.jsonl", tmp_path / "s.jsonl", cfg, steps=["seed"])
    small = build_training_set(["english"], tmp_path / "a.jsonl", tmp_path / "m.jsonl", cfg, max_records=5)
    assert full["split"] == seeds["split"] == small["split"]
    assert seeds["counts"]["records"] == 3 and small["counts"]["records"] == 5
    assert small["counts"]["per_culture"] == {"english": 5}


def test_largest_remainder():
    assert largest_remainder({"1": 0.5, "2": 0.3, "3": 0.2}, 10) == {"1": 5, "2": 3, "3": 2}
    assert largest_remainder({"1": 0.34, "2": 0.33, "3": 0.33}, 2) == {"1": 1, "2": 1, "3": 0}
    assert sum(largest_remainder({"1": 0.61, "2": 0.39}, 7).values()) == 7
    got = distribution_targets({"1": 0.75, "2": 0.25}, 8, random.Random(0))
    assert Counter(got) == {"1": 6, "2": 2}
    with pytest.raises(DataError):
        largest_remainder({"1": 0.0}, 3)


def test_culturellm_one_union_names_each_culture(aug: Path, tmp_path: Path):
    out = tmp_path / "one.jsonl"
    man = build_training_set(["arabic", "german"], aug, out)
    systems = Counter(r["messages"][0]["content"] for r in read_jsonl(out))
    assert systems == {
        culture_system_prompt("Arabic"): man["counts"]["per_culture"]["arabic"],
        culture_system_prompt("German"): man["counts"]["per_culture"]["german"],
    }
    man_all = build_training_set(["all"], aug, tmp_path / "all.jsonl")
    assert len(man_all["cultures"]) >= 10


def test_holdout_split_is_deterministic_and_disjoint(aug: Path, tmp_path: Path):
    split = DatasetConfig(holdout_questions=2, seed=7, holdout_variants=0.4)
    a = build_training_set(["german"], aug, tmp_path / "a.jsonl", split)
    b = build_training_set(["german"], aug, tmp_path / "b.jsonl", split)
    c = build_training_set(["german"], aug, tmp_path / "c.jsonl", split.model_copy(update={"seed": 8}))
    assert a["split"] == b["split"] and a["data_sha256"] == b["data_sha256"]
    assert a["split"]["heldout_questions"] != c["split"]["heldout_questions"] or a["split"] != c["split"]
    held_q = set(a["split"]["heldout_questions"])
    assert len(held_q) == 2 and not held_q & set(a["split"]["train_questions"])
    hv = a["split"]["heldout_variants"]
    assert len(hv) == 2 * len(a["split"]["train_questions"])  # round(0.4 * 5) per question
    assert all(v["step"] != "seed" for v in hv)
    train_text = "\n".join(r["messages"][1]["content"] for r in read_jsonl(tmp_path / "a.jsonl"))
    assert not any(v["text"] + "\n" in train_text for v in hv)
    qs = {q.id: q.text for q in load_questions()}
    assert not any(qs[q] + "\n" in train_text for q in held_q)
    saved = json.loads(split_manifest_path(tmp_path / "a.jsonl").read_text())
    assert saved["split"] == a["split"] and saved["counts"]["records"] == a["counts"]["records"]
    frac = build_training_set(
        ["german"], aug, tmp_path / "f.jsonl", DatasetConfig(holdout_fraction=0.25, seed=7)
    )
    assert len(frac["split"]["heldout_questions"]) == 2


def test_make_split_errors():
    v = {"Q1": [{"id": "a", "text": "x", "step": "seed"}], "Q2": [{"id": "b", "text": "y", "step": "seed"}]}
    with pytest.raises(CultureLLMError, match="not both"):
        make_split(v, holdout_questions=1, holdout_fraction=0.5)
    with pytest.raises(CultureLLMError, match="nothing to train"):
        make_split(v, holdout_questions=2)
    with pytest.raises(CultureLLMError, match="holdout-variants"):
        make_split(v, holdout_variants=1.5)


def test_api_errors(aug: Path, tmp_path: Path):
    with pytest.raises(UnknownNameError):
        build_training_set(["atlantis"], aug, tmp_path / "x.jsonl")
    with pytest.raises(DataError, match="not found"):
        build_training_set(["arabic"], tmp_path / "none.jsonl", tmp_path / "x.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": "Q27"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: field 'text'"):
        build_training_set(["arabic"], bad, tmp_path / "x.jsonl")
    with pytest.raises(ValidationError, match="target"):
        DatasetConfig(target="mean")  # type: ignore[arg-type]
    only_unknown = _augmented(tmp_path / "u.jsonl", ["Q27"])
    rows = read_jsonl(only_unknown)
    for r in rows:
        r["question_id"] = "Q9999"
    write_jsonl(only_unknown, rows)
    with pytest.raises(DataError, match="no training record"):
        build_training_set(["arabic"], only_unknown, tmp_path / "x.jsonl")


def _cli(*args: str):
    from culturellm.cli import main  # noqa: F401  (the CLI's error handling lives in main)

    return CliRunner().invoke(app, list(args))


def test_cli_dataset(aug: Path, tmp_path: Path):
    out = tmp_path / "t.jsonl"
    r = _cli(
        "dataset",
        "--culture",
        "arabic",
        "--culture",
        "greek",
        "--augmented",
        str(aug),
        "--out",
        str(out),
        "--holdout-questions",
        "1",
        "--holdout-variants",
        "0.2",
        "--target",
        "distribution",
    )
    assert r.exit_code == 0, r.output
    assert out.exists() and split_manifest_path(out).exists()
    assert "records" in r.output


def test_api_and_cli_build_the_same_training_set_by_default(aug: Path, tmp_path: Path):
    """`build_training_set` takes the DatasetConfig that `culturellm dataset` resolves from its flags,
    so with no option given both make the same records (the default target: distribution)."""
    api = build_training_set(["arabic"], aug, tmp_path / "api.jsonl")
    cli = tmp_path / "cli.jsonl"
    r = _cli("dataset", "--culture", "arabic", "--augmented", str(aug), "--out", str(cli))
    assert r.exit_code == 0, r.output
    assert cli.read_bytes() == (tmp_path / "api.jsonl").read_bytes()
    saved = json.loads(split_manifest_path(cli).read_text())
    assert api["target"] == saved["target"] == DatasetConfig().target == "sharpened"
    assert api["split"] == saved["split"] and "target_distribution" in read_jsonl(cli)[0]


def test_cli_dataset_errors_exit_2_with_one_line(aug: Path, tmp_path: Path, cli):
    cases = [
        (["--culture", "atlantis", "--augmented", str(aug)], "atlantis"),
        (["--culture", "arabic", "--augmented", str(tmp_path / "nope.jsonl")], "not found"),
        (
            [
                "--culture",
                "arabic",
                "--augmented",
                str(aug),
                "--holdout-questions",
                "1",
                "--holdout-fraction",
                "0.5",
            ],
            "not both",
        ),
        (["--culture", "arabic", "--augmented", str(aug), "--target", "mean"], "target"),
    ]
    for args, needle in cases:
        p = cli("dataset", *args, "--out", str(tmp_path / "o.jsonl"))
        assert p.code == 2, (args, p.err)
        assert needle in p.err and "Traceback" not in p.err


def test_half_of_a_single_variant_is_held_out():
    v = {
        q: [
            {"id": f"{q}-s", "step": "seed", "text": q},
            {"id": f"{q}-p", "step": "paraphrase", "text": q + "?"},
        ]
        for q in ("Q27", "Q28", "Q29")
    }
    half = make_split(v, holdout_variants=0.5)
    assert [h["id"] for h in half["heldout_variants"]] == ["Q27-p", "Q28-p", "Q29-p"]
    assert half["train_variant_ids"] == ["Q27-s", "Q28-s", "Q29-s"]
    assert make_split(v, holdout_variants=0.3)["heldout_variants"] == []
