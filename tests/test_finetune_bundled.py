"""ONE short fine-tuning run of the bundled SmolLM2-135M-Instruct: the adapter raises the
log-probability of its training answers (scored with ChatModel.score), and it reloads through the
model reference (`load_model(DIR)`, what `chat`, `serve` and `evaluate` use)."""

from __future__ import annotations

import pytest

from culturellm.finetune import FinetuneConfig, finetune
from culturellm.jsonio import write_jsonl
from culturellm.llm.base import ScoreRequest
from culturellm.llm.modelref import read_modelref
from culturellm.prompts import culture_system_prompt, survey_messages

pytestmark = pytest.mark.slow

OPTIONS = {"1": "Strongly agree", "2": "Agree", "3": "Disagree", "4": "Strongly disagree"}
# Targets the untuned model gets wrong (it prefers "1" on survey questions).
TRAIN = {
    "Family is very important in life": "3",
    "Work should always come first": "4",
    "Religion gives meaning to life": "2",
    "Men make better political leaders": "3",
}
WORDINGS = ("{t}", "Do you agree with the following statement? {t}")


def test_bundled_adapter_learns_its_answers_and_reloads_by_reference(bundled_model, tmp_path):
    from culturellm.llm import load_model

    system = culture_system_prompt("Arabic")
    rows = [
        {"messages": [*survey_messages(w.format(t=t), OPTIONS, system), {"role": "assistant", "content": a}]}
        for w in WORDINGS
        for t, a in TRAIN.items()
    ]
    data = tmp_path / "train.jsonl"
    write_jsonl(data, rows)
    out = tmp_path / "arabic"
    # cpu-small's lr (the bundled model needs >= 2e-3, docs/finetuning.md); 8 steps x 4 = 4 epochs of 8 rows.
    # (Measured: 10 steps raised the target log-prob by 2.5 to 4.1 nats on every question.)
    cfg = FinetuneConfig.from_preset("cpu-small", max_steps=8, batch_size=4, save_steps=1000)
    ref_path = finetune(data, "bundled", out, cfg, progress=False)

    ref = read_modelref(ref_path)
    assert (ref.kind, ref.base, ref.cultures) == ("peft-adapter", "bundled", ["arabic"])
    assert (out / "adapter_model.safetensors").is_file()

    requests = [
        ScoreRequest(messages=survey_messages(t, OPTIONS, system), candidates=tuple(OPTIONS)) for t in TRAIN
    ]
    targets = [list(OPTIONS).index(a) for a in TRAIN.values()]
    before = [r.logprobs[i] for r, i in zip(bundled_model.score(requests), targets, strict=True)]

    tuned = load_model(str(out), cache=False)  # the model reference, as chat/serve/evaluate load it
    scored = tuned.score(requests)
    after = [r.logprobs[i] for r, i in zip(scored, targets, strict=True)]
    gains = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(gains) / len(gains) > 1.0, (before, after)
    assert all(g > 0 for g in gains), (before, after)
    # The adapter's answer through generation (what `culturellm chat --model DIR` does).
    (reply,) = tuned.generate([requests[0].messages])
    assert reply.strip()
