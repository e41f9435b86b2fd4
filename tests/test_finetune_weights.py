"""Per-example loss weights (`[dataset] weight`, issue 29): a weight of 0 removes an example's
gradient exactly (the LoRA gradients equal those of training without it), weights of 1 leave the
loss as it is without weights, the dataset writes the gate's P(faithful), 1 - p_changed, as each row's weight,
and the OpenAI backend refuses weighted data. A tiny random Llama with the bundled tokenizer (no
bundled model is loaded)."""

from __future__ import annotations

import pytest
import torch

from culturellm.dataset import DatasetConfig, build_training_set
from culturellm.errors import DataError
from culturellm.finetune import FinetuneConfig, finetune
from culturellm.finetune.data import load_records, to_prompt_completion
from culturellm.jsonio import read_jsonl, write_jsonl
from culturellm.prompts import culture_system_prompt, survey_messages
from culturellm.wvs import load_questions

OPTIONS = {"1": "Strongly agree", "2": "Agree", "3": "Disagree", "4": "Strongly disagree"}
TEXTS = ["Family is very important in life", "Work should always come first", "Leisure matters a lot"]
ANSWERS = ["1", "3", "2"]


def rows(weights: list[float | None], soft: bool = True) -> list[dict]:
    out = []
    for text, answer, w in zip(TEXTS, ANSWERS, weights, strict=False):
        msgs = survey_messages(text, OPTIONS, culture_system_prompt("Arabic"))
        r: dict = {"messages": [*msgs, {"role": "assistant", "content": answer}]}
        if soft:
            r["target_distribution"] = {"1": 0.2, "2": 0.3, "3": 0.4, "4": 0.1} | {answer: 0.5}
        if w is not None:
            r["weight"] = w
        out.append(r)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_model_dir, tmp_path_factory) -> str:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny"), boost=(*OPTIONS, "<|im_end|>"))


def _trainer(model, tok, data: list[dict], path):
    from culturellm.finetune.local import build_trainer

    write_jsonl(path.with_suffix(".jsonl"), data)
    cfg = FinetuneConfig.from_preset("smoke")
    return build_trainer(model, tok, load_records(path.with_suffix(".jsonl")), path, cfg)


def _loss_and_grads(trainer, n: int, state: dict | None = None) -> tuple[float, dict[str, torch.Tensor]]:
    """The trainer's loss on its first n examples (one batch, the Trainer's own token count) and the
    gradients of the LoRA parameters; `state` sets the LoRA parameters first (the same for both)."""
    model = trainer.model
    if state is not None:
        model.load_state_dict(state, strict=False)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    batch = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}
    count = trainer._get_num_items_in_batch([batch], model.device)
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=count)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if "lora_" in k}
    return loss.item(), grads


def _lora_state(model) -> dict[str, torch.Tensor]:
    """The LoRA parameters, B made non-zero (PEFT starts B at 0, so A would get no gradient)."""
    torch.manual_seed(1)
    return {k: torch.randn_like(p) * 0.1 for k, p in model.named_parameters() if "lora_" in k}


def _unload(trainer):
    return trainer.model.unload()


@pytest.mark.parametrize("soft", [True, False])
def test_weight_zero_gives_the_gradient_of_training_without_the_example(tiny, tmp_path, soft):
    from culturellm.finetune.local import load_base

    model, tok = load_base(tiny)
    t = _trainer(model, tok, rows([1.0, 0.0, 1.0], soft), tmp_path / "weighted")
    state = _lora_state(t.model)
    _, weighted = _loss_and_grads(t, 3, state)
    model = _unload(t)
    # the same examples without the zero-weight one (second), and without any weight
    t = _trainer(model, tok, [rows([None, None, None], soft)[i] for i in (0, 2)], tmp_path / "without")
    _, without = _loss_and_grads(t, 2, state)
    model = _unload(t)
    t = _trainer(model, tok, rows([None, None, None], soft), tmp_path / "all")
    _, everything = _loss_and_grads(t, 3, state)
    assert weighted.keys() == without.keys() and weighted
    # equal up to float rounding (a batch of 3 pads differently from a batch of 2)
    diff = max(float((weighted[k] - without[k]).abs().max() / without[k].abs().max()) for k in weighted)
    assert diff < 1e-5
    # the example does move the gradient when it counts (so the check above could fail)
    moved = max(float((everything[k] - without[k]).abs().max() / without[k].abs().max()) for k in weighted)
    assert moved > 1e-2, moved


def test_weight_one_leaves_the_loss_as_without_weights(tiny, tmp_path):
    from culturellm.finetune.local import load_base

    model, tok = load_base(tiny)
    losses = {}
    for name, data in (
        ("soft-plain", rows([None, None, None])),
        ("soft-one", rows([1.0, 1.0, 1.0])),
        ("hard-plain", rows([None, None, None], soft=False)),  # TRL's own loss
        ("hard-one", rows([1.0, 1, 1.0], soft=False)),  # the soft-label trainer with one-hot targets
    ):
        t = _trainer(model, tok, data, tmp_path / name)
        state = _lora_state(t.model)
        losses[name], _ = _loss_and_grads(t, 3, state)
        model = _unload(t)
    assert losses["soft-one"] == losses["soft-plain"]  # exactly: the same computation times 1
    assert losses["hard-one"] == pytest.approx(losses["hard-plain"], rel=1e-5)
    assert "weight" in to_prompt_completion(load_records(tmp_path / "hard-one.jsonl"), tok)[0]
    assert "weight" not in to_prompt_completion(load_records(tmp_path / "hard-plain.jsonl"), tok)[0]


def test_a_bad_weight_is_one_clear_error(tmp_path):
    for bad in (-1, "0.5", float("nan"), True):
        data = rows([1.0, bad, 1.0])
        write_jsonl(tmp_path / "t.jsonl", data)
        with pytest.raises(DataError, match=r"t.jsonl:2: weight must be a number >= 0"):
            load_records(tmp_path / "t.jsonl")


def test_openai_backend_refuses_weighted_data(tmp_path, cli):
    write_jsonl(tmp_path / "w.jsonl", rows([1.0, 0.5, 1.0], soft=False) * 4)
    cfg = FinetuneConfig.from_preset("cpu-small", backend="openai", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(
        DataError, match=r"w.jsonl:1: per-example loss weights; the openai fine-tuning backend takes none"
    ):
        finetune(tmp_path / "w.jsonl", "openai:gpt-4o-mini-2024-07-18", tmp_path / "o", cfg, progress=False)
    assert not (tmp_path / "o").exists()
    p = cli("finetune", "--backend", "openai", "--dry-run",
            "--base", "openai:gpt-4o-mini-2024-07-18", "--data", str(tmp_path / "w.jsonl"))  # fmt: skip
    assert p.code == 2 and "per-example loss weight" in p.err and "Traceback" not in p.err


def _augmented(tmp_path, scores: dict[int, float | None]) -> tuple:
    qs = load_questions()[:4]
    aug = []
    for q in qs:
        aug.append({"id": f"{q.id}-s", "question_id": q.id, "step": "seed", "text": q.text})
        for i in range(3):
            r = {"id": f"{q.id}-i{i}", "question_id": q.id, "step": "imported", "text": f"{q.text} ({i})"}
            if scores.get(i) is not None:
                r["p_changed"] = round(1.0 - scores[i], 6)  # the gate's score, P(meaning changed)
            aug.append(r)
    (tmp_path / "aug").mkdir()
    write_jsonl(tmp_path / "aug" / "augmented.jsonl", aug)
    return tmp_path / "aug" / "augmented.jsonl", qs


def test_dataset_weight_writes_one_minus_p_changed_into_the_rows(tmp_path):
    aug, qs = _augmented(tmp_path, {0: 0.9, 1: 0.25, 2: None})
    # the third rewording has no p_changed of its own: the verdicts file beside the set gives it
    verdicts = [{"kind": "culturellm.verdict", "id": f"{q.id}-i2", "p_changed": 0.4} for q in qs]
    write_jsonl(tmp_path / "aug" / "verdicts.jsonl", verdicts)
    cfg = DatasetConfig(target="majority", weight="verifier")
    m = build_training_set(["arabic"], aug, tmp_path / "w.jsonl", cfg)
    got = sorted({r["weight"] for r in read_jsonl(tmp_path / "w.jsonl")})
    assert got == [0.25, 0.6, 0.9, 1.0]  # seeds weigh 1
    assert m["weight"]["kind"] == "verifier" and 0.25 < m["weight"]["mean"] < 1
    plain = build_training_set(["arabic"], aug, tmp_path / "p.jsonl", DatasetConfig(target="majority"))
    assert "weight" not in plain and all("weight" not in r for r in read_jsonl(tmp_path / "p.jsonl"))
    # the key of the dataset stage sees the option (its section hash)
    from culturellm.config import RunConfig

    a = RunConfig().section_hash("dataset")
    b = RunConfig(dataset={"weight": "verifier"}).section_hash("dataset")
    assert a != b


def test_dataset_weight_without_scores_is_one_clear_error(tmp_path, cli):
    aug, _ = _augmented(tmp_path, {})
    with pytest.raises(DataError, match=r"has no meaning-gate score for \[dataset\] weight"):
        build_training_set(["arabic"], aug, tmp_path / "w.jsonl", DatasetConfig(weight="verifier"))
    assert not (tmp_path / "w.jsonl").exists()
    p = cli("dataset", "--culture", "arabic", "--augmented", str(aug), "--out", str(tmp_path / "x.jsonl"),
            "--weight", "verifier")  # fmt: skip
    assert p.code == 2 and "no meaning-gate score" in p.err and "Traceback" not in p.err


class _SameEmbedder:
    """Every text the same unit vector: every pair passes the similarity checks (no bundled embedder)."""

    name = "same"

    def encode(self, texts):
        import numpy as np

        return np.ones((len(texts), 4), dtype=np.float32) / 2.0


def test_an_import_filters_p_changed_is_written_on_the_kept_records_and_weighs_them(tmp_path):
    """A filter that scores pairs exposes `p_changed` (as the meaning gate does); the kept records carry
    it and `[dataset] weight = "verifier"` weighs each 1 - p_changed."""
    from culturellm.augment.config import AugmentConfig
    from culturellm.augment.importer import IMPORT_FILTERS, import_release, register_import_filter

    q = load_questions()[0]
    lines = [{"q_id": q.id[1:], "q_content": f"{q.text}, truly {i}", "ori_content": q.text} for i in range(3)]
    write_jsonl(tmp_path / "release.jsonl", lines)

    class Scores:  # rejects the second pair, scores every pair
        def __init__(self):
            self.p_changed = []

        def __call__(self, pairs):
            self.p_changed = [round(0.9 - 0.1 * i, 6) for i in range(len(pairs))]
            return ["made-up reason" if i == 1 else None for i in range(len(pairs))]

    def scores(embedder, options):
        return Scores()

    register_import_filter("test-scores", scores)
    try:
        cfg = AugmentConfig(import_filter="test-scores")
        m = import_release(tmp_path / "release.jsonl", tmp_path / "aug", _SameEmbedder(), cfg)
    finally:
        IMPORT_FILTERS.pop("test-scores")
    rows = read_jsonl(tmp_path / "aug" / "augmented.jsonl")
    assert [r.get("p_changed") for r in rows] == [None, 0.9, 0.7]  # the seed, then the kept two
    assert m["rejection_reasons"] == {"made-up reason": 1}
    cfg = DatasetConfig(target="majority", weight="verifier")
    build_training_set(["arabic"], tmp_path / "aug" / "augmented.jsonl", tmp_path / "w.jsonl", cfg)
    assert sorted(r["weight"] for r in read_jsonl(tmp_path / "w.jsonl")) == [0.1, 0.3, 1.0]
