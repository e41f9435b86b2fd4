"""Model backend benchmark: the bundled SmolLM2-135M-Instruct on this CPU.

Prints: model load time (converted cache), generated tokens/s at batch 1 and 8 (greedy), scored
prompts/s at batch 16 with ~60-token survey prompts (KV-reuse vs full-sequence scoring), and the
response cache's hit latency. Optionally bfloat16 (--bf16) for comparison, with answer agreement.

    python benchmarks/backends.py [--bf16] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUESTIONS = [
    "How important is family in your life?",
    "How important are friends in your life?",
    "How important is leisure time in your life?",
    "How important is politics in your life?",
    "How important is work in your life?",
    "How important is religion in your life?",
    "Would you say that most people can be trusted?",
    "How interested would you say you are in politics?",
]
OPTIONS = {
    "1": "Very important",
    "2": "Rather important",
    "3": "Not very important",
    "4": "Not at all important",
}


def survey_requests(n: int):
    from culturellm.llm import ScoreRequest
    from culturellm.prompts import culture_system_prompt, survey_messages

    cultures = ["Arabic", "Chinese", "German", "Korean"]
    reqs = []
    for i in range(n):
        q = QUESTIONS[i % len(QUESTIONS)]
        system = culture_system_prompt(cultures[(i // len(QUESTIONS)) % len(cultures)])
        reqs.append(ScoreRequest(survey_messages(q, OPTIONS, system), tuple(OPTIONS)))
    return reqs


def timed(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_generate(model, batch: int, max_tokens: int = 32) -> tuple[float, list[str]]:
    from culturellm.llm import SamplingParams

    chats = [
        [{"role": "user", "content": f"Tell me one fact about {t}."}]
        for t in ["France", "tea", "the moon", "rivers", "music", "bread", "winter", "cats"][:batch]
    ]
    before = model.usage.completion_tokens
    secs, out = timed(lambda: model.generate(chats, SamplingParams(max_tokens=max_tokens)))
    toks = model.usage.completion_tokens - before
    return toks / secs, out


def bench_score(model, n: int, mode: str) -> tuple[float, list]:
    reqs = survey_requests(n)
    secs, out = timed(lambda: [s.result for s in model.score_detailed(reqs, mode=mode)])
    return n / secs, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bf16", action="store_true", help="also measure bfloat16 and its agreement with fp32")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from culturellm.llm import SamplingParams, load_model, parse_spec
    from culturellm.llm.cache import CachingBackend, ResponseCache
    from culturellm.llm.local_pool import load_local_chat

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} (other processes share these cores)"
    )
    t0 = time.perf_counter()
    model = load_local_chat(parse_spec("bundled"))
    print(f"load (converted safetensors cache): {time.perf_counter() - t0:.1f} s")
    prompt_len = statistics.mean(len(model.prompt_ids(r.messages)) for r in survey_requests(16))
    print(f"survey prompt length: {prompt_len:.0f} tokens (chat template, culture system prompt)")

    model.generate([[{"role": "user", "content": "warm up"}]], SamplingParams(max_tokens=4))
    g1, _ = bench_generate(model, 1)
    g8, out8 = bench_generate(model, 8)
    print(f"generate, greedy, 32 new tokens: batch 1 {g1:.1f} tok/s | batch 8 {g8:.1f} tok/s")

    bench_score(model, 4, "kv")  # warm up
    s_kv, res_kv = bench_score(model, 16, "kv")
    s_full, res_full = bench_score(model, 16, "full")
    diff = max(
        abs(a - b)
        for x, y in zip(res_kv, res_full, strict=True)
        for a, b in zip(x.logprobs, y.logprobs, strict=True)
    )
    print(
        f"score, batch 16 x 4 candidates (+<|im_end|>): KV reuse {s_kv:.1f} prompts/s | "
        f"full sequences {s_full:.1f} prompts/s | max |difference| {diff:.1e}"
    )

    with tempfile.TemporaryDirectory() as d:
        cached = CachingBackend(model, ResponseCache(os.path.join(d, "r.sqlite")))
        chat = [[{"role": "user", "content": "Name a colour."}]]
        p = SamplingParams(max_tokens=8)
        miss, _ = timed(lambda: cached.generate(chat, p))
        hit, _ = timed(lambda: cached.generate(chat, p), repeat=20)
        reqs = survey_requests(16)
        cached.score(reqs)
        hit16, _ = timed(lambda: cached.score(reqs), repeat=5)
        print(
            f"response cache: miss {miss * 1000:.0f} ms, hit {hit * 1000:.2f} ms (generate, 1 request); "
            f"score hit for 16 requests {hit16 * 1000:.2f} ms"
        )

    if args.bf16:
        bf = load_local_chat(parse_spec("bundled"), dtype="bfloat16")
        bf.generate([[{"role": "user", "content": "warm up"}]], SamplingParams(max_tokens=4))
        b1, _ = bench_generate(bf, 1)
        b8, bout8 = bench_generate(bf, 8)
        sb, res_bf = bench_score(bf, 16, "kv")
        same_text = sum(a == b for a, b in zip(out8, bout8, strict=True))
        same_top = sum(
            max(range(4), key=lambda i, r=x: r.logprobs[i]) == max(range(4), key=lambda i, r=y: r.logprobs[i])
            for x, y in zip(res_kv, res_bf, strict=True)
        )
        print(
            f"bfloat16: generate batch 1 {b1:.1f} tok/s | batch 8 {b8:.1f} tok/s | score {sb:.1f} prompts/s; "
            f"same greedy text {same_text}/8, same top answer {same_top}/16"
        )
    _ = load_model  # the public entry point wraps the same objects


if __name__ == "__main__":
    main()
