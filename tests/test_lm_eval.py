"""The real lm-evaluation-harness against `culturellm serve` on 127.0.0.1: `local-completions`
(log-likelihood and generation, the server's remote tokenizer) and `local-chat-completions`
(generation with the chat template) give what lm-eval's own `hf` model gives on the same tiny model.

Tolerance: per-choice log-likelihoods within 1e-4 (float32; the server pads batches differently from
lm-eval's `hf` model), accuracies and generated texts identical."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from serve_helpers import start_server, stop, torch_threads

pytestmark = pytest.mark.slow
lm_eval = pytest.importorskip("lm_eval")

LL_TOL = 1e-4


def write_tasks(d: Path) -> Path:
    """A multiple_choice and a generate_until task over local JSONL files."""
    d.mkdir(parents=True, exist_ok=True)
    mc = [
        {
            "question": f"What is {a} plus {b}?",
            "choices": [str(a + b), str(a + b + 1), "seven"],
            "answer": i % 3,
        }
        for i, (a, b) in enumerate([(1, 2), (3, 4), (5, 5), (2, 7)])
    ]
    gen = [{"question": "Capital of France?", "answer": "Paris"}, {"question": "2 + 2 =", "answer": "4"}]
    (d / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    (d / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gen))
    common = "dataset_path: json\ntest_split: test\n"
    (d / "mc.yaml").write_text(
        f"task: cllm_mc\n{common}dataset_kwargs:\n  data_files:\n    test: {d / 'mc.jsonl'}\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        "doc_to_target: answer\n"
        "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
    )
    (d / "gen.yaml").write_text(
        f"task: cllm_gen\n{common}dataset_kwargs:\n  data_files:\n    test: {d / 'gen.jsonl'}\n"
        "output_type: generate_until\n"
        'doc_to_text: "Q: {{question}}\\nA:"\n'
        'doc_to_target: "{{answer}}"\n'
        'generation_kwargs:\n  until: ["\\n\\n"]\n  max_gen_toks: 6\n  do_sample: false\n'
        "metric_list:\n  - metric: exact_match\n"
    )
    return d


def run(tasks_dir: Path, model: str, model_args: str, tasks: list[str], chat: bool = False) -> dict[str, Any]:
    from lm_eval.tasks import TaskManager

    with torch_threads(1):  # as the server runs (serve_helpers.start_server)
        return lm_eval.simple_evaluate(
            model=model,
            model_args=model_args,
            tasks=tasks,
            task_manager=TaskManager(include_path=str(tasks_dir)),
            log_samples=True,
            batch_size=1,
            device="cpu",
            apply_chat_template=chat,
        )


def per_sample(res: dict[str, Any], task: str) -> list[Any]:
    return [s["filtered_resps"] for s in sorted(res["samples"][task], key=lambda s: s["doc_id"])]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> Path:
    return Path(tiny_model_dir(tmp_path_factory.mktemp("lmeval") / "tiny", max_position_embeddings=2048)[3:])


@pytest.fixture(scope="module")
def served(tiny):
    proc, url = start_server("--model", f"hf:{tiny}", "--name", "tiny")
    yield url
    stop(proc)


def test_lm_eval_against_serve_equals_hf(tiny, served, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    tasks = write_tasks(tmp_path / "tasks")
    ref = run(tasks, "hf", f"pretrained={tiny},dtype=float32", ["cllm_mc", "cllm_gen"])
    api = run(
        tasks,
        "local-completions",
        f"model=tiny,base_url={served}/completions,tokenizer_backend=remote,num_concurrent=1,max_retries=1",
        ["cllm_mc", "cllm_gen"],
    )
    # log-likelihood task: every choice's log-likelihood, then the metrics
    ll_ref, ll_api = per_sample(ref, "cllm_mc"), per_sample(api, "cllm_mc")
    assert len(ll_ref) == len(ll_api) == 4
    for choices_ref, choices_api in zip(ll_ref, ll_api, strict=True):
        assert [c[0] for c in choices_api] == pytest.approx([c[0] for c in choices_ref], abs=LL_TOL)
        assert [c[1] for c in choices_api] == [c[1] for c in choices_ref]  # is_greedy
    for metric in ("acc,none", "acc_norm,none"):
        assert api["results"]["cllm_mc"][metric] == ref["results"]["cllm_mc"][metric]
    # generation task: the same greedy texts
    assert per_sample(api, "cllm_gen") == per_sample(ref, "cllm_gen")
    assert api["results"]["cllm_gen"]["exact_match,none"] == ref["results"]["cllm_gen"]["exact_match,none"]


def test_lm_eval_chat_completions_equals_hf_with_chat_template(tiny, served, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    tasks = write_tasks(tmp_path / "tasks")
    ref = run(tasks, "hf", f"pretrained={tiny},dtype=float32", ["cllm_gen"], chat=True)
    api = run(
        tasks,
        "local-chat-completions",
        f"model=tiny,base_url={served}/chat/completions,num_concurrent=1,max_retries=1",
        ["cllm_gen"],
        chat=True,
    )
    texts = per_sample(api, "cllm_gen")
    assert len(texts) == 2 and texts == per_sample(ref, "cllm_gen")
