"""Forgetting check: a local lm-eval multiple_choice task (YAML + JSONL written here) run by the real
lm-eval package on the bundled model and on a culture adapter over it, and the report's general-ability
table and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturellm.jsonio import read_jsonl

pytest.importorskip("lm_eval")

QUESTIONS = [
    ("What is the capital of France?", ["Paris", "Berlin", "Madrid", "Rome"], 0),
    ("What is the capital of Japan?", ["Seoul", "Tokyo", "Beijing", "Bangkok"], 1),
    ("How many legs does a spider have?", ["six", "four", "eight", "ten"], 2),
    ("Which planet is closest to the sun?", ["Venus", "Mars", "Earth", "Mercury"], 3),
    ("What colour is the sky on a clear day?", ["blue", "green", "red", "black"], 0),
    ("What is two plus two?", ["three", "four", "five", "six"], 1),
    ("Which animal says moo?", ["dog", "cat", "cow", "duck"], 2),
    ("What do bees make?", ["milk", "silk", "wool", "honey"], 3),
]


def write_task(root: Path) -> Path:
    """A one-task lm-eval include directory: tiny_mc.yaml and its JSONL data."""
    tasks = root / "tasks"
    tasks.mkdir(parents=True)
    data = tasks / "tiny_mc.jsonl"
    data.write_text(
        "".join(json.dumps({"question": q, "choices": c, "answer": a}) + "\n" for q, c, a in QUESTIONS)
    )
    (tasks / "tiny_mc.yaml").write_text(
        "task: tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
    )
    return tasks


def write_culture_adapter(root: Path) -> Path:
    """A culture model directory over the bundled model: a random (non-zero) LoRA adapter and its
    culturellm.json, as `finetune` writes them (no training: only the adapter's effect matters)."""
    from peft import LoraConfig, get_peft_model

    from culturellm.llm import parse_spec
    from culturellm.llm.loading import load_local
    from culturellm.llm.modelref import ModelRef, write_modelref

    model, _ = load_local(parse_spec("bundled"))
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    out = root / "models" / "arabic"
    peft_model.save_pretrained(out)
    write_modelref(out, ModelRef(kind="peft-adapter", base="bundled", cultures=["arabic"]))
    return out


@pytest.mark.slow
def test_general_check_cli_writes_the_table(tmp_path: Path, bundled_model, cli, monkeypatch) -> None:
    tasks = write_task(tmp_path)
    adapter = write_culture_adapter(tmp_path)
    out = tmp_path / "out"
    args = [
        "evaluate",
        "--general",
        str(tasks),
        "--model",
        "bundled",
        "--model",
        str(adapter),
        "-o",
        str(out),
    ]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    res = cli(*args)  # in this process: the session's bundled model is reused
    assert res.code == 0, res.err[-3000:]
    rows = {r["model"]: r for r in read_jsonl(out / "general.jsonl") if r["metric"] == "acc"}
    assert set(rows) == {"bundled", str(adapter)}
    before, after = rows["bundled"], rows[str(adapter)]
    assert before["n"] == after["n"] == len(QUESTIONS) and before["task"] == "tiny_mc"
    assert 0.0 <= before["value"] <= 1.0 and before["stderr"] is not None
    assert after["base_model"] == "bundled" and after["before"] == before["value"]
    assert after["diff"] == pytest.approx(after["value"] - before["value"])
    lo, hi = after["diff_ci"]
    assert lo <= after["diff"] <= hi and after["ci_method"].startswith("paired bootstrap")
    docs = read_jsonl(out / "general" / "bundled" / "tiny_mc.jsonl")
    assert sorted(int(d["doc_id"]) for d in docs if d["metric"] == "acc") == list(range(len(QUESTIONS)))
    report = (out / "report.md").read_text()
    assert "## General ability (forgetting check)" in report
    assert (
        f"| tiny_mc | acc | bundled | – | {before['value']:.3f} ± {before['stderr']:.3f} | – | – |" in report
    )
    assert (
        f"| tiny_mc | acc | {adapter} | bundled | {before['value']:.3f} | {after['value']:.3f} ± " in report
    )
    assert (out / "plots" / "general.png").stat().st_size > 0
    # a rerun resumes: no model is loaded, the rows stay as they were
    before_rerun = (out / "general.jsonl").read_text()
    again = cli(*args)
    assert again.code == 0, again.err[-3000:]
    assert (out / "general.jsonl").read_text() == before_rerun
    assert "Running loglikelihood" in res.err and "Running loglikelihood" not in again.err


def test_task_dirs_and_names_resolve(tmp_path: Path) -> None:
    from culturellm.errors import CultureLLMError, DataError
    from culturellm.evaluate.general import resolve_tasks

    tasks = write_task(tmp_path)
    assert resolve_tasks([str(tasks), "mmlu,hellaswag"]) == (
        ["tiny_mc", "mmlu", "hellaswag"],
        [str(tasks.resolve())],
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no lm-eval task YAML"):
        resolve_tasks([str(tmp_path / "empty")])
    with pytest.raises(CultureLLMError, match="no task"):
        resolve_tasks([" , "])


def test_culture_models_bring_their_base(tmp_path: Path) -> None:
    from culturellm.evaluate.general import GeneralModel, general_models
    from culturellm.evaluate.variant import ModelVariant
    from culturellm.llm.modelref import ModelRef, write_modelref

    adapter = tmp_path / "models" / "korean"
    write_modelref(adapter, ModelRef(kind="peft-adapter", base="bundled"))
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    only_adapter = general_models([ModelVariant("ko", str(adapter), "culture")])
    assert only_adapter == [GeneralModel("bundled", "bundled"), GeneralModel("ko", str(adapter), "bundled")]
    with_base = general_models(
        [
            ModelVariant("base", "bundled"),
            ModelVariant("base+p", "bundled", "culture"),
            ModelVariant("ko", str(adapter)),
        ]
    )
    assert with_base == [GeneralModel("base", "bundled"), GeneralModel("ko", str(adapter), "base")]


def test_run_option_reaches_the_evaluate_config(tmp_path: Path) -> None:
    from culturellm.config import load_config

    toml = tmp_path / "run.toml"
    toml.write_text('seed = 3\n[evaluate]\ngeneral = ["mmlu", "tasks/"]\ngeneral_limit = 20\n')
    config = load_config(toml).evaluate
    assert (config.general, config.general_limit, config.seed) == (["mmlu", "tasks/"], 20, 3)
