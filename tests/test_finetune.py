"""Local LoRA fine-tuning on a tiny random Llama built in memory (with the bundled model's real
tokenizer and chat template), through the real TRL/PEFT path: data validation, answer-only loss,
outputs, resume, NaN guard, merge, CultureLLM-One, errors, and `accelerate launch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from culturellm.errors import CultureLLMError, DataError, UnknownNameError
from culturellm.finetune import PRESETS, FinetuneConfig, finetune
from culturellm.finetune.data import cultures_in, load_records, to_prompt_completion
from culturellm.jsonio import read_jsonl, write_jsonl
from culturellm.llm.modelref import read_modelref
from serve_helpers import culturellm_exe
from survey_chats import OPTIONS, records


@pytest.fixture
def train_file(tmp_path) -> Path:
    path = tmp_path / "train.jsonl"
    write_jsonl(path, records())
    return path


def fast(**kw) -> FinetuneConfig:
    kw.setdefault("max_steps", 4)
    kw.setdefault("batch_size", 4)
    return FinetuneConfig.from_preset("cpu-small", **kw)


def finetune_cli(data: Path, base: str, out: Path, *args: str):
    """`culturellm finetune --data DATA --base BASE --out OUT ARGS` in this process (typer's CliRunner)."""
    from culturellm.cli import app

    return CliRunner().invoke(
        app, ["finetune", "--data", str(data), "--base", base, "--out", str(out), *args]
    )


# --- configuration --------------------------------------------------------------------------------


def test_presets_and_overrides():
    paper = FinetuneConfig.from_preset("paper")
    assert (paper.lora_r, paper.lora_alpha, paper.lr, paper.epochs) == (64, 16, 2e-4, 6.0)
    cpu = FinetuneConfig.from_preset("cpu-small")
    assert cpu.lr >= 2e-3 and cpu.epochs >= 3  # the bundled model needs a high lr (docs/finetuning.md)
    assert FinetuneConfig() == cpu  # cpu-small is the default
    assert FinetuneConfig.from_preset("paper", lr=1e-4, epochs=None).lr == 1e-4
    assert set(PRESETS) >= {"cpu-small", "paper"}
    with pytest.raises(UnknownNameError, match="known: cpu-small, paper"):
        FinetuneConfig.from_preset("huge")
    with pytest.raises(CultureLLMError, match="lr"):
        FinetuneConfig.from_preset("paper", lr=-1)
    # run-control options do not change the fingerprint; training options do
    assert cpu.fingerprint() == cpu.model_copy(update={"save_steps": 7, "merge": True}).fingerprint()
    assert cpu.fingerprint() != cpu.model_copy(update={"lr": 1e-3}).fingerprint()


# --- data ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"messages": [', "not valid JSON"),
        ('{"prompt": "x"}', "missing field 'messages'"),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "messages[0].role is 'robot'"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "last message must be the assistant"),
        ('{"messages": [{"role": "assistant", "content": "2"}]}', "no user message"),
        ('{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "2"}]}', "string"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(records()[0])
    path.write_text(good + "\n\n" + line + "\n")
    with pytest.raises(DataError) as e:
        load_records(path)
    assert str(e.value).startswith(f"{path}:3: ")
    assert message in str(e.value)


def test_empty_and_missing_data(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no training examples"):
        load_records(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="not found"):
        load_records(tmp_path / "nope.jsonl")


def test_cultures_parsed_from_system_prompts(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", records("Arabic"))
    write_jsonl(tmp_path / "b.jsonl", records("Korean"))
    recs = load_records([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])
    assert len(recs) == 16
    assert cultures_in(recs) == ["arabic", "korean"]


def test_prompt_completion_trains_answer_and_end_of_turn_only(tiny_base, tmp_path):
    """Answer-only loss: the labels cover exactly the answer digit and <|im_end|> (the EOS, which is
    also the pad token: padding must not mask it), and a padded batch keeps it."""
    from culturellm.finetune.local import build_trainer, load_base

    model, tok = load_base(tiny_base)
    rows = records()
    rows[1]["messages"][1]["content"] += " Please think about it carefully before you answer."  # longer
    write_jsonl(tmp_path / "t.jsonl", rows)
    recs = load_records(tmp_path / "t.jsonl")
    pc = to_prompt_completion(recs, tok)
    assert pc[0]["prompt"].endswith("<|im_start|>assistant\n")
    assert pc[0]["completion"] == "3<|im_end|>"
    trainer = build_trainer(model, tok, recs, tmp_path / "o", fast())
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    for i, ans in enumerate("31"):
        labels = batch["labels"][i]
        kept = labels[labels != -100].tolist()
        assert tok.decode(kept) == f"{ans}<|im_end|>"
    assert tok.eos_token_id == tok.pad_token_id  # the trap the prompt/completion format avoids
    # row 0 is shorter: padded on the right with the pad (= EOS) id, and those positions carry no loss
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()
    assert batch["input_ids"][0, -1] == tok.pad_token_id and batch["labels"][0, -1] == -100


# --- training ------------------------------------------------------------------------------------------


def test_cli_finetune_writes_adapter_modelref_card(tiny_base, train_file, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "model"
    res = finetune_cli(train_file, tiny_base, out, "--max-steps", "4", "--batch-size", "4", "--lr", "0.01",
                       "--seed", "3", "--no-progress")  # fmt: skip
    assert res.exit_code == 0, res.output
    for name in ("adapter_config.json", "adapter_model.safetensors", "culturellm.json", "README.md",
                 "tokenizer.json", "loss.jsonl", "train_summary.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()  # removed once the adapter is written

    ref = read_modelref(out / "culturellm.json")
    assert (ref.kind, ref.base, ref.cultures) == ("peft-adapter", tiny_base, ["arabic"])
    from culturellm.finetune.data import data_sha256

    assert ref.data_sha256 == data_sha256(train_file)
    card = (out / "README.md").read_text()
    assert ref.data_sha256 in card and "arabic" in card and "library_name: peft" in card
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 4 and summary["examples"] == 8 and summary["config"]["seed"] == 3
    assert [r["step"] for r in read_jsonl(out / "loss.jsonl") if "loss" in r] == [1, 2, 3, 4]

    # The adapter loads with plain PEFT and changes the model's output.
    base = AutoModelForCausalLM.from_pretrained(tiny_base[3:])
    ids = torch.tensor([[1, 2, 3, 4]])
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, out)
    assert not torch.allclose(tuned(ids).logits, before)

    # The model reference loads as a ChatModel (what chat/serve/evaluate do) with the adapter applied.
    from culturellm.llm import load_model
    from culturellm.llm.base import ScoreRequest

    req = [ScoreRequest(messages=records()[0]["messages"][:-1], candidates=tuple(OPTIONS))]
    via_ref = load_model(str(out), cache=False).score(req)[0].logprobs
    via_base = load_model(tiny_base, cache=False).score(req)[0].logprobs
    assert via_ref != pytest.approx(via_base, abs=1e-6)

    # Same data, base and options: returns at once without training.
    mtime = (out / "adapter_model.safetensors").stat().st_mtime_ns
    ref_path = finetune(train_file, tiny_base, out, fast(lr=0.01, seed=3), progress=False)
    assert ref_path == out / "culturellm.json"
    assert (out / "adapter_model.safetensors").stat().st_mtime_ns == mtime


class _Interrupt(KeyboardInterrupt):
    pass


def test_interrupted_training_resumes_from_its_checkpoint(tiny_base, train_file, tmp_path, monkeypatch):
    import culturellm.finetune.local as local
    from culturellm.finetune.callbacks import LossLogCallback

    class KillAtStep5(LossLogCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise _Interrupt

    out = tmp_path / "model"
    cfg = fast(max_steps=6, save_steps=2)
    monkeypatch.setattr(local, "LossLogCallback", KillAtStep5)
    with pytest.raises(_Interrupt):
        finetune(train_file, tiny_base, out, cfg, progress=False)
    assert local.latest_checkpoint(out).name == "checkpoint-4"
    assert not (out / "culturellm.json").exists()
    monkeypatch.setattr(local, "LossLogCallback", LossLogCallback)

    finetune(train_file, tiny_base, out, cfg, progress=False)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from"] == "checkpoint-4" and summary["steps"] == 6
    assert [r["step"] for r in read_jsonl(out / "loss.jsonl") if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_resume_flag_continues_with_more_steps_and_checks_base(tiny_base, train_file, tmp_path):
    out = tmp_path / "model"
    finetune(
        train_file, tiny_base, out, fast(max_steps=2, save_steps=2, keep_checkpoints=True), progress=False
    )
    with pytest.raises(CultureLLMError, match=r"adapter/base mismatch: .*checkpoint-2 was trained on base"):
        finetune(train_file, "hf:/elsewhere", out, fast(max_steps=4, resume=True), progress=False)
    finetune(train_file, tiny_base, out, fast(max_steps=4, resume=True), progress=False)
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["resumed_from"], summary["steps"]) == ("checkpoint-2", 4)
    with pytest.raises(CultureLLMError, match="no checkpoint"):
        finetune(train_file, tiny_base, out, fast(max_steps=5, resume=True), progress=False)


def test_nan_loss_stops_with_a_clear_error(tiny_model_dir, train_file, tmp_path):
    nan_base = tiny_model_dir(tmp_path / "nanbase", nan=True)
    out = tmp_path / "model"
    with pytest.raises(CultureLLMError, match="loss became nan at step 1"):
        finetune(train_file, nan_base, out, fast(), progress=False)
    assert not (out / "culturellm.json").exists()
    res = finetune_cli(train_file, nan_base, out)
    assert isinstance(res.exception, CultureLLMError)  # cli.main turns it into one line + exit 2


def test_merge_writes_an_equivalent_full_model(tiny_base, train_file, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "model"
    finetune(train_file, tiny_base, out, fast(lr=0.05, merge=True), progress=False)
    assert read_modelref(out / "merged" / "culturellm.json").kind == "merged"
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base[3:]), out)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    torch.testing.assert_close(merged(ids).logits, tuned(ids).logits, atol=1e-4, rtol=1e-4)


def test_culturellm_one_from_several_files(tiny_base, tmp_path):
    write_jsonl(tmp_path / "a.jsonl", records("Arabic"))
    write_jsonl(tmp_path / "k.jsonl", records("Korean", answers="2222"))
    out = tmp_path / "one"
    ref = read_modelref(
        finetune([tmp_path / "a.jsonl", tmp_path / "k.jsonl"], tiny_base, out, fast(), progress=False)
    )
    assert ref.cultures == ["arabic", "korean"]
    assert json.loads((out / "train_summary.json").read_text())["examples"] == 16
    assert "CultureLLM-One" in (out / "README.md").read_text()


@pytest.mark.slow  # the real console script in its own process
def test_bad_inputs_are_one_line_exit_2(tiny_base, train_file, tmp_path):
    """Through the real console script: one line on stderr, exit code 2, no traceback."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(records()[0]) + "\n{oops\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "culturellm.json").write_text(json.dumps({"kind": "peft-adapter", "base": tiny_base}))
    (adapter / "adapter_config.json").write_text("{}")
    cases = [
        (["--data", str(bad)], f"{bad}:2: not valid JSON"),
        (["--data", str(empty)], "no training examples"),
        (["--data", str(train_file), "--base", "no-such-model"], "no-such-model"),
        (["--data", str(train_file), "--base", str(adapter)], "is a LoRA adapter"),
        (["--data", str(train_file), "--preset", "huge"], "'huge' is not one of 'cpu-small'"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for args, message in cases:
        res = subprocess.run(
            [*culturellm_exe(), "finetune", *args, "--out", str(tmp_path / "o")],
            capture_output=True,
            text=True,
            env=env,
        )
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, res.stderr)


def test_out_dir_with_foreign_files_is_refused(tiny_base, train_file, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CultureLLMError, match="holds no culturellm fine-tuning run"):
        finetune(train_file, tiny_base, tmp_path, fast(), progress=False)


@pytest.mark.slow
def test_runs_under_accelerate_launch(tiny_base, train_file, tmp_path):
    """The entry point runs under `accelerate launch` (here: CPU, one process)."""
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "culturellm.finetune", "--data", str(train_file), "--base", tiny_base, "--out", str(out),
           "--max-steps", "2", "--batch-size", "4", "--no-progress"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml")}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert read_modelref(out / "culturellm.json").kind == "peft-adapter"
    assert (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "train_summary.json").read_text())["world_size"] == 1
