"""A training target and a training backend are each one registry entry (issue 32): registered once,
here in the test, the dataset command, `ablate`, the dataset card, the run's dataset stage, the
`finetune` command and a run's up-front check accept them, and the one soft-label policy
(`finetune.backends.check_labels`) and the loss-weight policy (`check_weights`) hold for every backend."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from culturellm.config import RunConfig
from culturellm.cultures import get_culture
from culturellm.dataset.targets import Target, register_target, unregister_target
from culturellm.errors import CultureLLMError
from culturellm.finetune.backends import TrainBackend, register_backend, unregister_backend
from culturellm.jsonio import iter_jsonl, write_jsonl
from culturellm.llm.modelref import ModelRef, write_modelref
from culturellm.runlayout import RunLayout
from culturellm.stages import STAGES, Run
from culturellm.wvs import load_questions

QIDS = ["Q27", "Q28", "Q29", "Q30", "Q33", "Q122"]


def _augmented(path: Path) -> Path:
    qs = {q.id: q for q in load_questions()}
    rows = []
    for q in QIDS:
        rows.append({"id": f"{q}-s", "question_id": q, "step": "seed", "text": qs[q].text, "parent": None,
                     "similarity": 1.0})  # fmt: skip
        rows += [
            {"id": f"{q}-v{i}", "question_id": q, "step": "paraphrase", "text": f"{qs[q].text} (v{i})",
             "parent": f"{q}-s", "similarity": 0.9}
            for i in range(3)
        ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, rows)
    return path


def _last_option(seed, n, rng, config):
    """A target no built-in gives: the last answer option, whatever the survey says."""
    return [list(seed.options)[-1]] * n, None


@pytest.fixture
def last_option():
    register_target(Target("last-option", False, ("seed",), _last_option, "the last answer option"))
    yield "last-option"
    unregister_target("last-option")


def _answers(path: Path) -> set[str]:
    return {r["messages"][-1]["content"] for r in iter_jsonl(path)}


def _last_codes() -> set[str]:
    qs = {q.id: q for q in load_questions()}
    return {list(qs[q].options)[-1] for q in QIDS}


def test_a_registered_target_is_accepted_by_the_dataset_command(tmp_path, cli, last_option):
    aug = _augmented(tmp_path / "aug.jsonl")
    out = tmp_path / "train.jsonl"
    p = cli("dataset", "-c", "arabic", "-a", str(aug), "-o", str(out), "--target", last_option)
    assert p.code == 0, p.err
    assert _answers(out) <= _last_codes()
    manifest = json.loads(out.with_name("train.manifest.json").read_text())
    assert manifest["target"] == last_option and manifest["target_params"] == {"seed": 0}


def test_an_unknown_target_names_the_registered_ones(tmp_path, cli):
    aug = _augmented(tmp_path / "aug.jsonl")
    p = cli("dataset", "-c", "arabic", "-a", str(aug), "-o", str(tmp_path / "t.jsonl"), "--target", "nope")
    assert p.code == 2 and "unknown target 'nope'" in p.err and "sharpened" in p.err
    assert "Traceback" not in p.err


def test_a_registered_target_is_accepted_by_ablate(tmp_path, cli, last_option):
    """ablate builds its full set with the target before it trains anything; a split that holds
    nothing out stops it right there, so no model is loaded."""
    aug = _augmented(tmp_path / "aug.jsonl")
    out = tmp_path / "abl"
    p = cli("ablate", "-a", str(aug), "-c", "arabic", "-o", str(out), "--target", last_option,
            "--holdout-questions", "0", "--holdout-variants", "0")  # fmt: skip
    assert p.code == 2 and "holds nothing out" in p.err
    assert _answers(out / "data" / "full.jsonl") <= _last_codes()


def test_a_registered_target_is_described_on_the_dataset_card(last_option):
    from culturellm.share.cards import dataset_card

    manifest = {"target": last_option, "target_params": {"seed": 0}, "cultures": ["arabic"], "counts": {}}
    card = str(dataset_card(manifest, {}, "me/set", 10))
    assert "`last-option` (the last answer option; hard labels, seed 0)" in card


def test_a_registered_target_is_accepted_by_the_runs_dataset_stage(tmp_path, last_option):
    cfg = RunConfig(cultures=["arabic"], dataset={"target": last_option})
    run = Run(cfg, RunLayout(tmp_path), [get_culture("arabic")], ["arabic"], {"questions": "q"})
    _augmented(run.layout.augmented)
    stage = next(s for s in STAGES if s.name == "dataset")
    stage.run(run)
    assert _answers(run.layout.train("arabic")) <= _last_codes()


def _hard_only(calls: list):
    def run(records, base, out, config, *, paths, data_sha, cultures, progress, console):
        calls.append((len(records), base, cultures))
        out.mkdir(parents=True, exist_ok=True)
        return write_modelref(out, ModelRef(kind="openai", base=base, model="echo-1", cultures=cultures))

    def estimate(records, base, config, tokens):
        return {"echo_examples": len(records), "cost_usd": 0.0}

    return TrainBackend("echo", False, run, estimate, "a test backend that takes hard labels")


@pytest.fixture
def echo():
    calls: list = []
    register_backend(_hard_only(calls))
    yield calls
    unregister_backend("echo")


def test_a_registered_backend_trains_and_estimates(tmp_path, cli, echo):
    from culturellm.dataset import DatasetConfig, build_training_set

    aug = _augmented(tmp_path / "aug.jsonl")
    data = tmp_path / "hard.jsonl"
    build_training_set(["arabic"], aug, data, DatasetConfig(target="majority"))
    p = cli("finetune", "--backend", "echo", "--dry-run", "--data", str(data))
    assert p.code == 0, p.err
    assert "echo_examples" in p.out
    p = cli("finetune", "--backend", "echo", "--data", str(data), "--out", str(tmp_path / "m"))
    assert p.code == 0, p.err
    assert echo == [(len(list(iter_jsonl(data))), "bundled", ["arabic"])]
    assert json.loads((tmp_path / "m" / "culturellm.json").read_text())["model"] == "echo-1"


def test_the_soft_label_policy_holds_for_a_registered_backend(tmp_path, cli, echo):
    from culturellm.dataset import DatasetConfig, build_training_set
    from culturellm.pipeline import check_training

    aug = _augmented(tmp_path / "aug.jsonl")
    data = tmp_path / "soft.jsonl"
    build_training_set(["arabic"], aug, data, DatasetConfig(target="distribution"))
    for args in ([], ["--dry-run"]):
        p = cli("finetune", "--backend", "echo", "--data", str(data), "--out", str(tmp_path / "m"), *args)
        assert p.code == 2 and "soft.jsonl:1: a soft-label record" in p.err and "--target sampled" in p.err
    assert echo == [] and not (tmp_path / "m").exists()
    # a run says so before any stage runs, naming both options (never a silent switch of target)
    with pytest.raises(CultureLLMError, match=r"dataset.target = 'sharpened' with finetune.backend = 'echo'"):
        check_training(RunConfig(finetune={"backend": "echo"}))
    check_training(RunConfig(finetune={"backend": "echo"}, dataset={"target": "sampled"}))
    with pytest.raises(CultureLLMError, match=r"finetune.backend = 'nope': unknown fine-tuning backend"):
        check_training(RunConfig(finetune={"backend": "nope"}))


def test_the_loss_weight_policy_holds_for_a_registered_backend(tmp_path, cli, echo):
    """A backend registered without accepts_weights refuses weighted records (finetune and --dry-run)
    and a run with [dataset] weight; registered with it, the same data trains."""
    from culturellm.pipeline import check_training

    data = tmp_path / "weighted.jsonl"
    rows = [dict(r, weight=0.5) for r in _hard_rows(tmp_path)]
    write_jsonl(data, rows)
    for args in ([], ["--dry-run"]):
        p = cli("finetune", "--backend", "echo", "--data", str(data), "--out", str(tmp_path / "m"), *args)
        assert p.code == 2 and "weighted.jsonl:1: per-example loss weights" in p.err, p.err
    assert echo == [] and not (tmp_path / "m").exists()
    sampled = {"target": "sampled"}
    with pytest.raises(CultureLLMError, match=r"dataset.weight = 'verifier' with finetune.backend = 'echo'"):
        check_training(RunConfig(finetune={"backend": "echo"}, dataset=sampled | {"weight": "verifier"}))
    check_training(RunConfig(finetune={"backend": "echo"}, dataset=sampled))
    register_backend(replace(_hard_only(echo), accepts_weights=True))
    p = cli("finetune", "--backend", "echo", "--data", str(data), "--out", str(tmp_path / "m"))
    assert p.code == 0, p.err
    assert len(echo) == 1


def _hard_rows(tmp_path: Path) -> list[dict]:
    from culturellm.dataset import DatasetConfig, build_training_set

    build_training_set(
        ["arabic"], _augmented(tmp_path / "aug.jsonl"), tmp_path / "h.jsonl", DatasetConfig(target="majority")
    )
    return list(iter_jsonl(tmp_path / "h.jsonl"))
