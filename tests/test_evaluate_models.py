"""Evaluation with the real bundled model: both scoring modes, resume per task, WVS alignment (all
seeds and a held-out split), the acceptance CLI commands and their one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from culturellm.evaluate import EvaluateConfig, ModelVariant, align, evaluate
from culturellm.jsonio import read_jsonl, write_json

TASKS = ["arabic/offensive_detect_mp", "arabic/spam_detect"]
DATA = Path(__file__).parent / "data"
EVAL_ARABIC = ["evaluate", "--model", "bundled", "--culture", "arabic"]


def _score_both(data_dir: Path, out: Path) -> list[dict]:
    """`base` and `base+culture` (the bundled model) on TASKS for Arabic, 6 rows each, scored."""
    return evaluate(
        [ModelVariant("base", "bundled"), ModelVariant("base+culture", "bundled", "culture")],
        ["arabic"],
        EvaluateConfig(data_dir=data_dir, limit=6, tasks=TASKS),
        out,
        progress=False,
        n_boot=200,
    )


@pytest.fixture(scope="module")
def scored(tmp_path_factory, release_fixtures, bundled_model):
    out = tmp_path_factory.mktemp("eval") / "score"
    rows = _score_both(release_fixtures, out)
    return out, rows


def test_score_mode_rows_and_files(scored):
    out, rows = scored
    assert {(r["model"], r["task"].split("/")[-1]) for r in rows} == {
        (m, t.split("/")[-1]) for m in ("base", "base+culture") for t in TASKS
    }
    for r in rows:
        assert r["n"] == 6 and 0.0 <= r["macro_f1"] <= 1.0
        lo, hi = r["macro_f1_ci"]
        assert lo <= r["macro_f1"] + 1e-9 and r["macro_f1"] <= hi + 1e-9
    assert len(read_jsonl(out / "results.jsonl")) == 4
    assert (out / "report.md").exists() and list((out / "plots").glob("*.png"))


def test_score_mode_is_calibrated_by_default(scored, release_fixtures):
    out, rows = scored
    for r in rows:
        cal = r["calibration"]
        assert cal["method"] == "contextual" and cal["content_free"] == ["N/A", "", "[MASK]"]
        assert set(cal["prior"]) == set(r["labels"])
        assert sum(cal["prior"].values()) == pytest.approx(1, abs=1e-3)
        assert 0.0 <= r["macro_f1_uncalibrated"] <= 1.0
    preds = read_jsonl(out / "predictions" / "base" / "arabic" / "spam_detect.jsonl")
    assert len(preds) == 6 and all("pred_uncalibrated" in p for p in preds)
    assert "contextually calibrated" in (out / "report.md").read_text()
    # the uncalibrated protocol is another protocol: its rows are computed, not resumed
    raw = evaluate(
        [ModelVariant("base", "bundled")],
        ["arabic"],
        EvaluateConfig(data_dir=release_fixtures, limit=6, tasks=TASKS, calibration="none"),
        out.parent / "raw",
        progress=False,
        n_boot=0,
    )
    by_task = {r["task"]: r for r in rows if r["model"] == "base"}
    for r in raw:
        assert "calibration" not in r and r["key"] != by_task[r["task"]]["key"]
        assert r["macro_f1"] == pytest.approx(by_task[r["task"]]["macro_f1_uncalibrated"])


def test_rerun_resumes_per_task(scored, release_fixtures):
    out, rows = scored
    before = (out / "results.jsonl").read_text()
    again = _score_both(release_fixtures, out)
    assert (out / "results.jsonl").read_text() == before  # nothing recomputed, nothing duplicated
    assert sorted(r["macro_f1"] for r in again) == sorted(r["macro_f1"] for r in rows)


def test_generate_mode_reports_unparseable_rate(tmp_path, release_fixtures, bundled_model):
    def generate(out, **kw):
        config = EvaluateConfig(data_dir=release_fixtures, limit=4, tasks=TASKS[:1], mode="generate", **kw)
        (row,) = evaluate(
            [ModelVariant("base", "bundled")], ["arabic"], config, out, progress=False, n_boot=100
        )
        return row

    row = generate(tmp_path)
    assert row["n"] == 4 and 0.0 <= row["unparseable_rate"] <= 1.0 and 0.0 <= row["macro_f1"] <= 1.0
    # the paper's sampling by default; replies are kept with the predictions
    assert row["generation"] == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 200}
    assert "calibration" not in row
    preds = read_jsonl(next((tmp_path / "predictions").rglob("*.jsonl")))
    assert len(preds) == 4 and all(isinstance(p["reply"], str) for p in preds)
    # greedy with a short budget is another protocol (its own key); seeded sampling replays exactly
    greedy = generate(tmp_path / "greedy", temperature=0.0, max_tokens=16)
    assert greedy["generation"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16}
    assert greedy["key"] != row["key"]
    again = generate(tmp_path / "again")
    assert again["macro_f1"] == row["macro_f1"] and again["pred_counts"] == row["pred_counts"]


def test_align_all_seeds_and_heldout_split(tmp_path, bundled_model):
    res = align("bundled", "arabic")
    assert res["n_questions"] == 48  # Q36 and Q226 were not asked in Iraq or Jordan
    assert 0.0 <= res["majority_agreement"] <= 1.0 and 0.0 <= res["one_minus_jsd"] <= 1.0
    assert math.isclose(
        res["chance_agreement"],
        sum(
            1 / len(q["distribution"]) if "distribution" in q else 1 / q["n_options"]
            for q in res["questions"]
        )
        / 48,
    )
    split = tmp_path / "train.manifest.json"
    write_json(
        split,
        {
            "split": {
                "heldout_questions": ["Q27", "Q28"],
                "heldout_variants": [
                    {
                        "question_id": "Q29",
                        "id": "Q29-p1",
                        "step": "paraphrase",
                        "text": "Men are, on the whole, better political leaders than women.",
                    }
                ],
            }
        },
    )
    part = align(ModelVariant("base+culture", "bundled", "culture"), "arabic", split=split)
    assert part["n_questions"] == 3


def test_cli_tasks_json_and_evaluate(tmp_path, release_fixtures, bundled_model, cli):
    res = cli("tasks", "--json")
    assert res.code == 0, res.err
    rows = [json.loads(x) for x in res.out.splitlines()]
    assert len(rows) == 60 and all({"name", "culture", "path"} <= r.keys() for r in rows)
    out = tmp_path / "cli"
    res = cli(*EVAL_ARABIC, "--data-dir", str(release_fixtures), "--limit", "4", "--task", TASKS[1],
              "--out", str(out), "--no-progress")  # fmt: skip
    assert res.code == 0, res.err[-2000:]
    (row,) = read_jsonl(out / "results.jsonl")
    assert {"task", "model", "macro_f1", "n"} <= row.keys() and row["n"] == 4
    assert (out / "report.md").exists() and list(out.glob("plots/*.png"))


def test_cli_align_json(bundled_model, cli):
    res = cli("align", "--model", "bundled", "--culture", "korean", "--json")
    assert res.code == 0, res.err[-2000:]
    obj = json.loads(res.out)
    assert {"majority_agreement", "one_minus_jsd"} <= obj.keys()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["evaluate", "--model", "bundled", "--culture", "atlantean", "--out", "OUT"], "atlantean"),
        ([*EVAL_ARABIC, "--data-dir", "MISSING", "--out", "OUT"], "MISSING"),
        (["align", "--model", "no-such-model-spec", "--culture", "arabic"], "no-such-model-spec"),
        ([*EVAL_ARABIC, "--temperature", "0", "--out", "OUT"], "--mode generate"),
        ([*EVAL_ARABIC, "--calibration", "x", "--out", "OUT"], "calibration"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, needle, cli):
    args = [a.replace("OUT", str(tmp_path / "o")).replace("MISSING", str(tmp_path / "missing")) for a in args]
    needle = needle.replace("MISSING", "missing")
    res = cli(*args)
    assert res.code == 2, (res.out, res.err)
    assert needle in res.err and "Traceback" not in res.err


@pytest.mark.slow
def test_phased_evaluation_gives_the_rows_of_the_single_pass_runner(tmp_path):
    """`culturellm evaluate --model bundled --culture english --limit 5`: the rows the runner wrote before
    evaluation was split into phases (tests/data/evaluate-english-limit5.jsonl, computed with commit
    b11323a), score for score, in the same field order (the resume key hashes the config)."""
    expected = read_jsonl(DATA / "evaluate-english-limit5.jsonl")
    rows = evaluate(
        [ModelVariant("bundled", "bundled")], ["english"], EvaluateConfig(limit=5), tmp_path, progress=False
    )
    # scoring, dtype: later fields; key: the resume key hashes the evaluate config, which gains fields
    later = ("scoring", "dtype")
    volatile = ("seconds", "data_dir", "requests", "cache_hits", "key", *later)
    assert [[k for k in r if k not in later] for r in rows] == [list(e) for e in expected]
    assert all(r["scoring"] == "exact" for r in rows)
    assert all(r["dtype"] == "float32" for r in rows)  # --dtype auto scores in fp32 on a CPU
    for r, e in zip(rows, expected, strict=True):
        assert {k: v for k, v in r.items() if k not in volatile} == {
            k: v for k, v in e.items() if k not in volatile
        }
        assert r["requests"] + r["cache_hits"] == 8  # 5 examples + 3 content-free texts
    assert read_jsonl(tmp_path / "results.jsonl") == rows


def test_align_all_resumes_and_rewrites_once(tmp_path, bundled_model):
    from culturellm.evaluate.align import AlignJob, align_all
    from culturellm.llm import load_model

    jobs = [AlignJob(ModelVariant("base", "bundled")), AlignJob(ModelVariant("base+c", "bundled", "culture"))]
    first = align_all(jobs, "korean", tmp_path)
    before = (tmp_path / "align.jsonl").read_text()
    assert [r["model"] for r in read_jsonl(tmp_path / "align.jsonl")] == ["base", "base+c"]
    assert first[0]["items"] == "all seeds" and len(first[0]["questions"]) == first[0]["n_questions"]
    # a kill after the first job: its row is on disk, the second is not
    (tmp_path / "align.jsonl").write_text(before.splitlines()[0] + "\n" + '{"model": "ba')
    model = load_model("bundled")

    def asked() -> int:
        return model.usage.requests + model.usage.cache_hits

    n = asked()
    again = align_all(jobs[:1], "korean", tmp_path)
    assert asked() == n  # resumed: no model call
    assert again[0]["questions"] == first[0]["questions"]
    third = align_all(jobs, "korean", tmp_path)
    assert asked() > n  # only the second job ran again
    assert (tmp_path / "align.jsonl").read_text() == before
    assert third[1]["one_minus_jsd"] == first[1]["one_minus_jsd"]
