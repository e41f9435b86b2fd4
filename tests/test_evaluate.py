"""Evaluation: registry, data loading, metrics (hand-computed), report/plots, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from culturellm.errors import DataError
from culturellm.evaluate.data import load_task, stratified_sample
from culturellm.evaluate.metrics import classification_metrics, majority_baseline, random_baseline
from culturellm.evaluate.report import write_report
from culturellm.evaluate.scoring import parse_answer
from culturellm.evaluate.tasks import get_task, list_tasks
from culturellm.paths import package_data


def test_registry_covers_tasks_csv_and_every_fixture_loads(release_fixtures: Path) -> None:
    with open(package_data("culturellm-tasks.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    tasks = {t.name: t for t in list_tasks()}
    assert len(tasks) == len(rows) == 60
    for r in rows:
        t = tasks[f"{r['culture']}/{r['task']}"]
        assert t.path == r["path"]
        td = load_task(t, release_fixtures)
        assert td.examples, t.name
        assert {e.label for e in td.examples} <= set(t.labels)
    assert load_task(get_task("korean/hate_detect_6"), release_fixtures).skipped_empty == 10


def test_metrics_hand_computed() -> None:
    y = ["a", "a", "b", "b"]
    p = ["a", "b", "b", "b"]
    m = classification_metrics(y, p, ["a", "b"], n_boot=200)
    # a: P=1 R=.5 F1=2/3; b: P=2/3 R=1 F1=.8
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["accuracy"] == 0.75
    lo, hi = m["macro_f1_ci"]
    assert lo <= m["macro_f1"] <= hi
    assert majority_baseline(y, ["a", "b"]) == pytest.approx((2 / 3) / 2)
    # n=1, one class "a" of labels a,b: guess a w.p. 1/2 -> F1_a=1, F1_b=0; guess b -> 0
    assert random_baseline(["a"], ["a", "b"]) == pytest.approx(0.25)
    assert classification_metrics(y, [None] * 4, ["a", "b"])["macro_f1"] == 0.0


def test_parser_is_not_substring_not() -> None:
    t = get_task("arabic/offensive_detect")
    assert parse_answer(t, "Not offensive.") == "not_offensive"
    assert parse_answer(t, "offensive") == "offensive"
    assert parse_answer(t, "I do not know") is None


def test_contextual_calibration_hand_computed() -> None:
    import math

    from culturellm.evaluate.scoring import calibrate, log_prior, pick_label

    # content-free rows: softmax over labels gives (0.8, 0.2) and (0.6, 0.4) -> prior (0.7, 0.3)
    cf = [[math.log(0.8), math.log(0.2)], [math.log(0.6) - 3.0, math.log(0.4) - 3.0]]
    prior = log_prior(cf)
    assert [math.exp(p) for p in prior] == pytest.approx([0.7, 0.3])
    # p(a)=0.6 beats p(b)=0.4 raw, but 0.6/0.7 < 0.4/0.3 once the prior is divided out
    x = [math.log(0.6), math.log(0.4)]
    assert pick_label(["a", "b"], x) == "a"
    assert pick_label(["a", "b"], calibrate(x, prior)) == "b"
    # a tie (a backend that could not decide) stays no decision; no prior: unchanged
    assert pick_label(["a", "b"], calibrate([-0.69, -0.69], prior)) is None
    assert calibrate(x, None) == x
    # unusable content-free scores: parse-fallback rows (0 / -inf) or a label with ~no mass
    assert log_prior([[0.0, float("-inf")]]) is None
    assert log_prior([[0.0, -20.0]]) is None
    assert log_prior([]) is None


def test_stratified_limit(release_fixtures: Path) -> None:
    td = load_task(get_task("english/hate_offens_detect"), release_fixtures)
    s = stratified_sample(td.examples, 9, seed=1)
    assert len(s) == 9 and {e.label for e in s} == {"hate", "offensive", "neither"}
    assert s == stratified_sample(td.examples, 9, seed=1)


def test_bad_label_and_missing_file(tmp_path: Path) -> None:
    t = get_task("arabic/offensive_detect")
    with pytest.raises(DataError, match="file not found"):
        load_task(t, tmp_path)
    p = tmp_path / t.path
    p.parent.mkdir(parents=True)
    p.write_text(
        json.dumps({"tweet": "x", "label": "OFF"}) + "\n" + json.dumps({"tweet": "y", "label": "??"}) + "\n"
    )
    with pytest.raises(DataError, match=r":2: label"):
        load_task(t, tmp_path)


def test_report_and_plots(tmp_path: Path) -> None:
    rows = [
        {
            "task": f"arabic/t{i}",
            "model": m,
            "culture": "arabic",
            "type": ty,
            "macro_f1": f,
            "macro_f1_ci": [0.1, 0.9],
            "n": 10,
            "labels": ["a", "b"],
            "label_counts": {"a": 5, "b": 5},
            "baselines": {"majority": 0.33, "random": 0.5},
        }
        for i, ty in enumerate(["hate", "offensive", "spam"])
        for m, f in (("base", 0.5), ("tuned", 0.7))
    ]
    res = tmp_path / "results.jsonl"
    res.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "align.jsonl").write_text(
        json.dumps({"model": "base", "culture": "arabic", "majority_agreement": 0.4, "one_minus_jsd": 0.6})
        + "\n"
    )
    rep = write_report([res], tmp_path / "out")
    text = rep.read_text()
    assert "near chance" in text and "WVS alignment" in text
    assert {p.name for p in (tmp_path / "out" / "plots").glob("*.png")} == {
        "f1_arabic.png",
        "task_types.png",
        "alignment.png",
    }


def test_tests_use_data_inside_the_repository(release_fixtures: Path) -> None:
    """A user's clone has nothing beside it: the evaluation fixtures are the bundled release sample."""
    repo = Path(__file__).resolve().parents[1]
    assert release_fixtures.resolve().is_relative_to(repo / "src")
    assert len(list(release_fixtures.glob("*/*/*.jsonl"))) == 60


def test_phases_with_the_fake_backend(tmp_path: Path) -> None:
    """The phased runner's plumbing, no weights: a plan of model x task items, each model asked only
    its own requests (examples with the content-free texts of contextual calibration in one call per
    task, so the prompt prefix they share runs once),
    TaskResult rows in plan order, and a rerun that resumes every row without a model call."""
    from culturellm.evaluate import EvaluateConfig, ModelVariant, evaluate
    from culturellm.evaluate.runner import build_requests, plan_evaluation
    from culturellm.jsonio import read_jsonl
    from culturellm.llm import load_model

    a, b = f"fake:a-{tmp_path.name}", f"fake:b-{tmp_path.name}"
    models = [ModelVariant("a", a), ModelVariant("b", b, "culture")]
    config = EvaluateConfig(limit=5)
    plan = plan_evaluation(models, ["english"], config, tmp_path)
    assert [(it.variant.label, it.data.task.name) for it in plan.items][:2] == [
        ("a", "english/hate_detect_2"),
        ("a", "english/hostility_directness_detect"),
    ]
    req = build_requests(plan, plan.items[0])
    assert (len(req.score), len(req.content_free), req.chats) == (5, 3, [])
    rows = evaluate(models, ["english"], config, tmp_path, progress=False, n_boot=50)
    n_tasks = len(plan.items) // 2
    assert [(r["model"], r["task"]) for r in rows] == [
        (it.variant.label, it.data.task.name) for it in plan.items
    ]
    assert all(r["requests"] == 8 and r["calibration"]["method"] for r in rows)
    for spec in (a, b):
        assert load_model(spec).calls == [("score", 5 + 3)] * n_tasks
    before = (tmp_path / "results.jsonl").read_text()
    again = evaluate(models, ["english"], config, tmp_path, progress=False, n_boot=50)
    assert all(r["resumed"] for r in again) and (tmp_path / "results.jsonl").read_text() == before
    assert load_model(a).calls == [("score", 5 + 3)] * n_tasks  # no new call
    assert read_jsonl(tmp_path / "results.jsonl") == rows
    gen = evaluate(models[:1], ["english"], config.model_copy(update={"mode": "generate"}), tmp_path / "g")
    assert all("reply" in p for p in read_jsonl(next((tmp_path / "g" / "predictions").rglob("*.jsonl"))))
    assert all("calibration" not in r and r["generation"]["temperature"] == 0.7 for r in gen)


def test_resume_key_is_derived_from_the_config(tmp_path: Path) -> None:
    """A result row's resume key hashes every EvaluateConfig field not marked Unkeyed: a field added
    later is in it by construction (a resume never reuses rows made without it); a field marked
    Unkeyed (selection, the terminal) leaves it alone."""
    from typing import Annotated

    from pydantic import Field

    from culturellm.evaluate import EvaluateConfig, ModelVariant
    from culturellm.evaluate.runner import protocol_key
    from culturellm.settings import Unkeyed

    task = list_tasks(culture="arabic")[0]

    def key(config: EvaluateConfig) -> str:
        return protocol_key(ModelVariant("base", "bundled"), None, task, 6, tmp_path, config)

    class WithNewOption(EvaluateConfig):
        new_option: int = Field(3, description="an option a later version adds")

    class WithProgress(EvaluateConfig):
        progress: Annotated[bool, Unkeyed("the terminal only")] = Field(True, description="show progress")

    base = EvaluateConfig()
    assert key(WithNewOption()) != key(base)
    assert key(WithNewOption(new_option=4)) != key(WithNewOption())
    assert key(WithProgress()) == key(WithProgress(progress=False)) == key(base)
    changed = {
        "data_dir": tmp_path, "limit": 5, "tasks": ["x"], "mode": "generate", "calibration": "none",
        "temperature": 0.0, "max_tokens": 9, "baselines": True, "seed": 1, "general": ["mmlu"],
        "general_limit": 3,
    }  # fmt: skip
    assert set(changed) == set(EvaluateConfig.model_fields)  # a value for every field
    same = {
        name for name, value in changed.items() if key(base.model_copy(update={name: value})) == key(base)
    }
    assert same == {"data_dir", "tasks", "baselines", "general", "general_limit"}  # the Unkeyed ones
    assert set(base.keyed()) == set(changed) - same
