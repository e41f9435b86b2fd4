"""Real-hardware paths of fine-tuning, exercised on this CPU with a tiny random Llama: QLoRA (a 4-bit
and an 8-bit bitsandbytes base, real quantised training steps), training trackers (real TensorBoard
event files; W&B in offline mode), and two real processes under `accelerate launch` training one
adapter, resuming, and matching the one-process adapter."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import test_finetune as ft
from culturellm.errors import CultureLLMError
from culturellm.finetune import FinetuneConfig, finetune
from culturellm.jsonio import read_jsonl
from culturellm.llm.base import ScoreRequest
from culturellm.llm.modelref import read_modelref

OPTIONS, fast, records = ft.OPTIONS, ft.fast, ft.records
train_file = ft.train_file  # the same fixture (tiny_base: tests/conftest.py)


def _score(spec: str) -> tuple[float, ...]:
    from culturellm.llm import load_model

    req = [ScoreRequest(messages=records()[0]["messages"][:-1], candidates=tuple(OPTIONS))]
    return load_model(spec, cache=False).score(req)[0].logprobs


def _adapter_shapes(d: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(d / "adapter_model.safetensors"), "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118


# --- QLoRA ---------------------------------------------------------------------------------------------


def test_paper_presets_follow_the_reference_script():
    """`paper` is the CultureLLM reference script's LoRA (llama_finetune.py: r 64, alpha 16, dropout 0.1,
    lr 2e-4 constant, 6 epochs, batch 4, weight decay 0.001, clip 0.3); `paper-qlora` adds a 4-bit
    NF4 base with double quantisation and bf16 compute, and the paged AdamW of that script."""
    paper = FinetuneConfig.from_preset("paper")
    assert (paper.lora_r, paper.lora_alpha, paper.lora_dropout, paper.lr, paper.epochs) == (
        64, 16, 0.1, 2e-4, 6.0,
    )  # fmt: skip
    assert (paper.batch_size, paper.weight_decay, paper.max_grad_norm) == (4, 0.001, 0.3)
    assert paper.lr_scheduler == "constant_with_warmup" and paper.quantize == "none"
    q = FinetuneConfig.from_preset("paper-qlora")
    assert (q.quantize, q.quant_type, q.double_quant, q.dtype, q.optim) == (
        "4bit", "nf4", True, "bfloat16", "paged_adamw_32bit",
    )  # fmt: skip
    assert q.model_dump(exclude={"preset", "quantize", "quant_type", "double_quant", "dtype", "optim"}) == (
        paper.model_dump(exclude={"preset", "quantize", "quant_type", "double_quant", "dtype", "optim"})
    )
    assert q.fingerprint() != q.model_copy(update={"quantize": "8bit"}).fingerprint()
    assert q.fingerprint() == q.model_copy(update={"report_to": "tensorboard"}).fingerprint()


def test_run_toml_sets_quantisation_tracker_device(tmp_path):
    """`culturellm run`'s TOML: [finetune] is the FinetuneConfig, so QLoRA, trackers, device and dtype
    are set there; a bad value is one line naming the file and field."""
    from culturellm.config import load_config
    from culturellm.errors import DataError

    good = tmp_path / "run.toml"
    good.write_text('[finetune]\npreset = "paper-qlora"\nreport_to = "tensorboard"\ndevice = "cpu"\n')
    ft_cfg = load_config(good).finetune
    assert (ft_cfg.quantize, ft_cfg.dtype, ft_cfg.lora_r) == ("4bit", "bfloat16", 64)  # from the preset
    assert (ft_cfg.report_to, ft_cfg.device) == ("tensorboard", "cpu")
    bad = tmp_path / "bad.toml"
    bad.write_text('[finetune]\nquantize = "3bit"\n')
    with pytest.raises(DataError, match=r"bad.toml: field 'finetune.quantize': Input should be 'none'"):
        load_config(bad)


def test_bitsandbytes_config_objects():
    import torch

    from culturellm.finetune.local import quantization_config

    assert quantization_config(FinetuneConfig()) is None
    q4 = quantization_config(FinetuneConfig.from_preset("paper-qlora"))
    assert q4.load_in_4bit and q4.bnb_4bit_quant_type == "nf4" and q4.bnb_4bit_use_double_quant
    assert q4.bnb_4bit_compute_dtype == torch.bfloat16 and q4.bnb_4bit_quant_storage == torch.bfloat16
    q8 = quantization_config(FinetuneConfig.from_preset("cpu-small", quantize="8bit"))
    assert q8.load_in_8bit and not q8.load_in_4bit


def test_missing_bitsandbytes_is_one_clear_line(monkeypatch, tiny_base, train_file, tmp_path):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import bitsandbytes -> ImportError
    out = tmp_path / "o"
    with pytest.raises(CultureLLMError, match=r"^--quantize 4bit needs bitsandbytes: pip install"):
        finetune(train_file, tiny_base, out, fast(quantize="4bit"), progress=False)
    assert not out.exists()  # nothing written
    res = ft.finetune_cli(train_file, tiny_base, out, "--quantize", "4bit")
    assert isinstance(res.exception, CultureLLMError)  # cli.main: one line, exit 2
    res = ft.finetune_cli(train_file, tiny_base, out, "--quantize", "3bit")
    assert res.exit_code == 2 and "3bit" in res.output  # not one of none|4bit|8bit: usage error


@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["4bit", "8bit"])
def test_quantised_base_trains_an_adapter_that_loads_and_scores(quantize, tiny_base, train_file, tmp_path):
    """A real QLoRA run on this CPU (bitsandbytes' CPU kernels): the frozen base is Linear4bit/Linear8bitLt,
    the loss is finite, the adapter is written, and it loads (on the unquantised base) and scores."""
    pytest.importorskip("bitsandbytes")
    from culturellm.finetune.local import load_base

    preset = "paper-qlora" if quantize == "4bit" else "cpu-small"
    cfg = FinetuneConfig.from_preset(
        preset, quantize=quantize, max_steps=3, batch_size=4, lr=0.01, merge=quantize == "4bit" or None
    )
    model, tok = load_base(tiny_base, cfg)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert type(q_proj).__name__ == ("Linear4bit" if quantize == "4bit" else "Linear8bitLt")
    del model, tok

    out = tmp_path / quantize
    ref = read_modelref(finetune(train_file, tiny_base, out, cfg, progress=False))
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 3
    assert all(math.isfinite(r["loss"]) for r in read_jsonl(out / "loss.jsonl") if "loss" in r)
    want = "4bit nf4 double-quant" if quantize == "4bit" else "8bit"
    assert summary["quantization"] == want and ref.extra["quantization"] == want
    from culturellm.llm.loading import cpu_has_native_bf16

    bf16 = quantize == "4bit" or cpu_has_native_bf16()  # 8bit: cpu-small's dtype auto
    assert summary["precision"] == ref.extra["precision"] == ("bf16 mixed" if bf16 else "fp32")
    assert f"| base weights while training | {want} |" in (out / "README.md").read_text()
    shapes = _adapter_shapes(out)
    if quantize == "4bit":  # paper preset: r 64 on q_proj and v_proj only
        assert {k.split(".")[-3] for k in shapes} == {"q_proj", "v_proj"}
        assert all(64 in s for s in shapes.values())
    assert _score(str(out)) != pytest.approx(_score(tiny_base), abs=1e-6)
    if quantize == "4bit":  # merged into the unquantised base: a plain fp32 model, same outputs
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        assert "quantization_config" not in json.loads((out / "merged" / "config.json").read_text())
        merged = AutoModelForCausalLM.from_pretrained(out / "merged")
        tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base[3:]), out)
        ids = torch.tensor([[5, 6, 7, 8, 9]])
        torch.testing.assert_close(merged(ids).logits, tuned(ids).logits, atol=1e-4, rtol=1e-4)


def test_accelerate_configs_parse():
    """The shipped multi-GPU / multi-node / FSDP / DeepSpeed configs are valid accelerate configs."""
    from accelerate.commands.config.config_args import ClusterConfig

    d = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
    kinds = {p.name: ClusterConfig.from_yaml_file(p).distributed_type for p in d.glob("*.yaml")}
    assert {k: str(v).split(".")[-1] for k, v in kinds.items()} == {
        "multi-gpu.yaml": "MULTI_GPU",
        "multi-node.yaml": "MULTI_GPU",
        "fsdp-70b.yaml": "FSDP",
        "deepspeed-zero3-70b.yaml": "DEEPSPEED",
    }
    fsdp = ClusterConfig.from_yaml_file(d / "fsdp-70b.yaml").fsdp_config
    assert fsdp["fsdp_sharding_strategy"] == "FULL_SHARD" and fsdp["fsdp_cpu_ram_efficient_loading"]
    assert ClusterConfig.from_yaml_file(d / "deepspeed-zero3-70b.yaml").deepspeed_config["zero_stage"] == 3


def test_device_and_dtype_options(tiny_base, train_file, tmp_path):
    """--device cuda without CUDA is one line before anything is loaded or written; bad values are
    refused by the config; cpu and bf16 are what the training arguments get."""
    import torch

    from culturellm.finetune.local import _precision

    if not torch.cuda.is_available():
        with pytest.raises(CultureLLMError, match=r"^device cuda: no CUDA device is available"):
            finetune(train_file, tiny_base, tmp_path / "o", fast(device="cuda"), progress=False)
        assert not (tmp_path / "o").exists()
        for var, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
            with pytest.MonkeyPatch.context() as mp:  # what `accelerate launch --config_file fsdp...` sets
                mp.setenv(var, "true")
                with pytest.raises(CultureLLMError, match=f"^{name} shards the model over GPUs"):
                    finetune(train_file, tiny_base, tmp_path / "o", fast(), progress=False)
        assert not (tmp_path / "o").exists()
    with pytest.raises(CultureLLMError, match="device"):
        fast(device="tpu")
    with pytest.raises(CultureLLMError, match="dtype"):
        fast(dtype="fp8")
    assert _precision(fast(device="cpu", dtype="bfloat16")) == {"bf16": True, "fp16": False, "use_cpu": True}
    from culturellm.llm.loading import cpu_has_native_bf16

    # auto on a CPU: bf16 mixed precision where the CPU computes bf16 natively, else fp32
    assert _precision(fast(device="cpu"))["bf16"] is cpu_has_native_bf16()
    assert fast().fingerprint() == fast(device="cpu").fingerprint() != fast(dtype="bfloat16").fingerprint()


# --- trackers -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_to_tensorboard_writes_the_training_loss(tiny_base, train_file, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "model"
    res = ft.finetune_cli(train_file, tiny_base, out, "--max-steps", "3", "--batch-size", "4", "--lr", "0.01",
                          "--report-to", "tensorboard", "--no-progress")  # fmt: skip
    assert res.exit_code == 0, res.output
    events = list((out / "logs").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(out / "logs"))
    acc.Reload()
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    logged = [(r["step"], r["loss"]) for r in read_jsonl(out / "loss.jsonl") if "loss" in r]
    assert [s for s, _ in loss] == [1, 2, 3]
    assert [v for _, v in loss] == pytest.approx([v for _, v in logged], rel=1e-6)
    assert "train/learning_rate" in acc.Tags()["scalars"]
    assert json.loads((out / "train_summary.json").read_text())["report_to"] == "tensorboard"


@pytest.mark.slow
def test_report_to_wandb_offline(tiny_base, train_file, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wb").mkdir()
    out = tmp_path / "model"
    finetune(train_file, tiny_base, out, fast(max_steps=2, report_to="wandb"), progress=False)
    import wandb

    wandb.finish()  # in-process the run stays open until exit; the CLI's process exit flushes it
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    data = runs[0].read_bytes()
    assert b"train/loss" in data and b"model" in data  # history rows; run name = DIR name


def test_unknown_tracker_is_refused():
    with pytest.raises(CultureLLMError, match="--report-to: Input should be"):
        FinetuneConfig.from_preset("cpu-small", report_to="mlflow")


# --- several processes -------------------------------------------------------------------------------


def _launch(tmp_path: Path, base: str, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2` on this CPU: torchrun starts two processes
    that train together over gloo (culturellm sets use_cpu when there is no GPU)."""
    port = str(29500 + os.getpid() % 1000)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", port,
           "-m", "culturellm.finetune", "--data", str(data), "--base", base, "--out", str(out),
           "--batch-size", "2", "--lr", "0.01", "--no-progress", *extra]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml"),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_two_processes_train_one_adapter_resume_and_match_one_process(tiny_base, train_file, tmp_path):
    out = tmp_path / "ddp"
    res = _launch(tmp_path, tiny_base, train_file, out, "--max-steps", "2", "--save-steps", "2",
                  "--keep-checkpoints")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == str(out / "culturellm.json")  # printed by rank 0 only
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["world_size"], summary["steps"]) == (2, 2)
    assert summary["epochs"] == pytest.approx(1.0)  # 2 steps x 2 processes x batch 2 = the 8 records
    assert (out / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").is_file()

    res = _launch(tmp_path, tiny_base, train_file, out, "--max-steps", "4", "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("fine-tuned 4 steps") == 1  # the main process reports; the other does not
    summary = json.loads((out / "train_summary.json").read_text())
    assert (summary["world_size"], summary["steps"], summary["resumed_from"]) == (2, 4, "checkpoint-2")
    assert [r["step"] for r in read_jsonl(out / "loss.jsonl") if "loss" in r] == [1, 2, 3, 4]  # one writer
    assert read_modelref(out / "culturellm.json").kind == "peft-adapter"

    one = tmp_path / "one"
    finetune(train_file, tiny_base, one, fast(max_steps=4, batch_size=2, lr=0.01), progress=False)
    assert _adapter_shapes(out) == _adapter_shapes(one)
    assert (
        json.loads((one / "adapter_config.json").read_text())["r"]
        == json.loads((out / "adapter_config.json").read_text())["r"]
    )
    assert _score(str(out)) != pytest.approx(_score(tiny_base), abs=1e-6)  # loads and scores
