"""Soft-label (distribution) training through TRL: the loss equals the hand-computed soft
cross-entropy on a tiny random Llama with the bundled model's real tokenizer, a one-hot target gives
TRL's own loss, and a few steps move the answer distribution toward the survey's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from culturellm.errors import CultureLLMError, DataError
from culturellm.finetune import FinetuneConfig, finetune
from culturellm.finetune.data import load_records, to_prompt_completion
from culturellm.finetune.soft import node_targets
from culturellm.jsonio import write_jsonl
from culturellm.prompts import culture_system_prompt, survey_messages

OPTIONS = {"1": "Strongly agree", "2": "Agree", "3": "Disagree", "4": "Strongly disagree"}
TEN = {str(i): f"point {i}" for i in range(1, 11)}
TARGET = {"1": 0.5, "2": 0.3, "3": 0.2, "4": 0.0}
STATEMENTS = ["Family is very important in life", "Work should always come first"]


def soft_records(copies: int = 4) -> list[dict]:
    rows = []
    for _ in range(copies):
        for text in STATEMENTS:
            msgs = survey_messages(text, OPTIONS, culture_system_prompt("Arabic"))
            rows.append(
                {"messages": [*msgs, {"role": "assistant", "content": "1"}], "target_distribution": TARGET}
            )
    return rows


@pytest.fixture(scope="module")
def tiny_base(tiny_model_dir, tmp_path_factory) -> str:
    """A tiny random Llama (2 layers, width 32) with the bundled SmolLM2 tokenizer, as an HF directory.
    Longer (tied) embeddings for the answer tokens, so a 32-wide random model can put its mass on
    them: otherwise no logit it can reach stands out of a 49k vocabulary, and every objective only
    sharpens the codes' relative distribution (the mass term of the cross-entropy dominates)."""
    return tiny_model_dir(tmp_path_factory.mktemp("tiny"), boost=(*OPTIONS, "<|im_end|>"))


def test_node_targets_split_multi_token_codes_over_the_trie():
    # "10" = "1" then "0": at the first position "1" carries the mass of both codes; after "1" the
    # target splits between ending the answer (code 1) and "0" (code 10).
    toks = {"1": [11], "2": [12], "10": [11, 10]}
    dist = {"1": 0.2, "2": 0.5, "10": 0.3}
    t = node_targets(toks, dist, [11, 2], eot=2)
    assert t[0] == pytest.approx({11: 0.5, 12: 0.5})
    assert t[1] == pytest.approx({2: 0.4, 10: 0.6})
    # a completion that is no code keeps its hard label
    assert node_targets(toks, dist, [99, 2], eot=2)[1] == {2: 1.0}


def test_soft_records_validated_and_shown_to_trl(tmp_path):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, soft_records(1))
    recs = load_records(path)
    assert recs[0].target == pytest.approx(TARGET)
    bad = soft_records(1)
    bad[1]["target_distribution"] = {"2": 1.0}
    write_jsonl(path, bad)
    with pytest.raises(DataError, match=r"t.jsonl:2: the assistant answer '1' is not a code"):
        load_records(path)
    bad[1]["target_distribution"] = {"1": -1}
    write_jsonl(path, bad)
    with pytest.raises(DataError, match=r"t.jsonl:2: target_distribution\['1'\] must be a number >= 0"):
        load_records(path)


def _batch(trainer, n: int):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    return {k: v.to(trainer.model.device) if hasattr(v, "to") else v for k, v in batch.items()}


def _code_ids(tok) -> list[int]:
    return [tok.convert_tokens_to_ids(c) for c in OPTIONS]


def test_loss_equals_hand_computed_soft_cross_entropy(tiny_base, tmp_path):
    from culturellm.finetune.local import build_trainer, load_base

    model, tok = load_base(tiny_base)
    write_jsonl(tmp_path / "t.jsonl", soft_records(1))
    recs = load_records(tmp_path / "t.jsonl")
    assert "soft_target" in to_prompt_completion(recs, tok)[0]
    trainer = build_trainer(model, tok, recs, tmp_path / "o", FinetuneConfig.from_preset("smoke"))
    batch = _batch(trainer, 2)
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch)).item()
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    terms = []
    for i in range(2):
        pos = (batch["labels"][i] != -100).nonzero().flatten().tolist()
        assert tok.decode(batch["labels"][i, pos]) == "1<|im_end|>"
        logp = torch.log_softmax(logits[i].float(), -1)
        answer = logp[pos[0] - 1]  # the logits before the answer token predict it
        terms.append(
            -sum(q * answer[cid].item() for q, cid in zip(TARGET.values(), _code_ids(tok), strict=True))
        )
        terms.append(-logp[pos[1] - 1, eot].item())  # end of turn after a single-token code: hard
    assert loss == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_one_hot_target_gives_trls_own_loss(tiny_base, tmp_path):
    from culturellm.finetune.local import build_trainer, load_base

    model, tok = load_base(tiny_base)
    rows = soft_records(1)
    write_jsonl(tmp_path / "hard.jsonl", [{"messages": r["messages"]} for r in rows])
    for r in rows:
        r["target_distribution"] = {"1": 1.0, "2": 0.0}
    write_jsonl(tmp_path / "soft.jsonl", rows)
    cfg = FinetuneConfig.from_preset("smoke")
    losses = []
    for name in ("hard", "soft"):
        trainer = build_trainer(model, tok, load_records(tmp_path / f"{name}.jsonl"), tmp_path / name, cfg)
        trainer.model.eval()
        with torch.no_grad():
            losses.append(trainer.compute_loss(trainer.model, dict(_batch(trainer, 2))).item())
        model = trainer.model.unload() if hasattr(trainer.model, "unload") else model
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def _answer_distribution(model_dir: Path, tiny_base: str) -> list[float]:
    from culturellm.evaluate.scoring import softmax
    from culturellm.llm import ScoreRequest, load_model

    m = load_model(str(model_dir) if model_dir else tiny_base, cache=False)
    msgs = survey_messages(STATEMENTS[0], OPTIONS, culture_system_prompt("Arabic"))
    res = m.score([ScoreRequest(msgs, tuple(OPTIONS), end_of_turn=True)])[0]
    return softmax(list(res.logprobs))


def _jsd(p: list[float], q: list[float]) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(p, q, base=2))


def test_a_few_steps_move_the_answer_distribution_toward_the_target(tiny_base, tmp_path):
    write_jsonl(tmp_path / "soft.jsonl", soft_records(4))
    write_jsonl(tmp_path / "hard.jsonl", [{"messages": r["messages"]} for r in soft_records(4)])
    target = list(TARGET.values())
    before = _jsd(_answer_distribution(None, tiny_base), target)
    cfg = FinetuneConfig.from_preset("cpu-small", lr=1e-2, max_steps=30, batch_size=4)
    finetune(tmp_path / "soft.jsonl", tiny_base, tmp_path / "soft", cfg, progress=False)
    finetune(tmp_path / "hard.jsonl", tiny_base, tmp_path / "hard", cfg, progress=False)
    soft = _answer_distribution(tmp_path / "soft", tiny_base)
    hard = _answer_distribution(tmp_path / "hard", tiny_base)
    assert _jsd(soft, target) < 0.3 < before  # measured: 0.95 -> 0.21
    assert max(range(4), key=soft.__getitem__) == 0  # still the majority answer
    assert hard[0] > 0.9 and _jsd(hard, target) > 2 * _jsd(soft, target)  # majority: collapses (0.56)
    summary = json.loads((tmp_path / "soft" / "train_summary.json").read_text())
    assert math.isfinite(summary["final_loss"])


def test_openai_backend_refuses_soft_labels(tmp_path, cli):
    write_jsonl(tmp_path / "soft.jsonl", soft_records(6))
    cfg = FinetuneConfig.from_preset("cpu-small", backend="openai", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(CultureLLMError, match=r"hard labels only.*--target sampled"):
        finetune(
            tmp_path / "soft.jsonl", "openai:gpt-4o-mini-2024-07-18", tmp_path / "o", cfg, progress=False
        )
    assert not (tmp_path / "o").exists()  # refused before anything is written or uploaded
    p = cli("finetune", "--backend", "openai", "--dry-run",
            "--base", "openai:gpt-4o-mini-2024-07-18", "--data", str(tmp_path / "soft.jsonl"))  # fmt: skip
    assert p.code == 2 and "soft.jsonl:1: a soft-label record" in p.err
    assert "Traceback" not in p.err
