"""Label scoring vs generate-and-parse with the bundled model on the same examples: examples/s, macro-F1.

    python benchmarks/evaluate.py [--culture arabic] [--limit 10] [--json FILE]

Protocols, all on the same stratified examples (no response cache, so every example is computed):
  score            label scoring as `culturellm evaluate` does it (shared prefix computed once,
                   length-bucketed batches, contextual calibration: 3 content-free texts per task)
  score (uncalibrated) the same label scores, the highest log-probability taken as it is
  score (plain)    uncalibrated, fixed batches of 16 and no prefix reuse (the earlier engine)
  generate (paper) the paper's generate-and-parse: sampled at temperature 0.7, top-p 0.9, up to 200
                   new tokens (the reference's getResponse), parsed by `parse_answer`
  generate (greedy-16) greedy, at most 16 new tokens: the cheapest generate-and-parse
The speed-up goal (>= 10x) is label scoring against the paper's generate-and-parse.

    python benchmarks/evaluate.py --engines [--culture arabic] [--limit 5] [--threads 1]

Engines, on the same examples (uncalibrated label scores, so every engine sees the same question):
  local            culturellm's local label scoring (shared prefix, length buckets, KV reuse)
  http exact       `culturellm serve` on 127.0.0.1, scored over HTTP with /tokenize + echoed
                   prompt log-probs (the vLLM request shape): should equal local
  http first-token the same server, first-token top-20 log-probs (what OpenAI offers)
  lm-eval hf       lm-evaluation-harness's own `hf` model on the examples exported as a
                   multiple_choice task: context = the chat-templated prompt, choices = each label
                   plus the end-of-turn token (what culturellm scores), batch 16
Printed: examples/s, macro-F1, agreement of predictions with local, and the achieved GFLOP/s of
local scoring next to the CPU's peak for its dtype (benchmarks/cpu_peak.py says how both are
computed); the goal is local >= 4x lm-eval with identical predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from cpu_peak import FlopCounter, cores_used, peak_gflops

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from culturellm.evaluate.data import load_task, stratified_sample
    from culturellm.evaluate.metrics import classification_metrics
    from culturellm.evaluate.scoring import (
        calibrated_predictions,
        generation_params,
        predict_generate,
        predict_score,
    )
    from culturellm.evaluate.tasks import list_tasks
    from culturellm.llm import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--culture", default="arabic")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--data-dir", type=Path, default=None, help="release data/ (default: bundled sample)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--engines", action="store_true", help="local vs HTTP (exact, first-token) vs lm-eval")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (here and in the server)")
    a = ap.parse_args()
    if a.engines:
        engines(a)
        return
    model = load_model("bundled", cache=False)
    data = [
        (t, stratified_sample(load_task(t, a.data_dir).examples, a.limit, 0)) for t in list_tasks(a.culture)
    ]
    n = sum(len(ex) for _, ex in data)
    print(f"{n} examples: {len(data)} {a.culture} tasks x <= {a.limit}, bundled SmolLM2-135M, CPU")

    def scored(max_pad, min_prefix, calibrated=False):
        def run(t, texts):
            model.score_max_pad, model.score_min_prefix = max_pad, min_prefix
            preds, scores = predict_score(model, t, texts, None)
            if calibrated:
                preds, _ = calibrated_predictions(model, t, scores, None)
            return preds, None

        return run

    def generated(temperature, max_tokens):
        params = generation_params(temperature, max_tokens, seed=0)
        return lambda t, texts: predict_generate(model, t, texts, None, params=params)

    default_pad, default_prefix = model.score_max_pad, model.score_min_prefix
    protocols = {
        "score": scored(default_pad, default_prefix, calibrated=True),
        "score (uncalibrated)": scored(default_pad, default_prefix),
        "score (plain)": scored(None, 0),
        "generate (paper)": generated(0.7, 200),
        "generate (greedy-16)": generated(0.0, 16),
    }
    results = {}
    print(f"{'protocol':<22} {'seconds':>8} {'ex/s':>7} {'macro-F1':>9} {'unparsed':>9} {'reply tokens':>13}")
    for name, fn in protocols.items():
        t0 = time.perf_counter()
        f1s, unparsed, tokens = [], 0, []
        for t, ex in data:
            preds, replies = fn(t, [e.text for e in ex])
            y = [e.label for e in ex]
            f1s.append(classification_metrics(y, preds, t.label_names, n_boot=0)["macro_f1"])
            unparsed += sum(p is None for p in preds)
            if replies is not None:
                tokens += [model.count_tokens(r) for r in replies]
        dt = time.perf_counter() - t0
        r = {
            "seconds": dt,
            "examples_per_s": n / dt,
            "macro_f1": sum(f1s) / len(f1s),
            "unparseable_rate": unparsed / n,
            "mean_reply_tokens": sum(tokens) / len(tokens) if tokens else None,
        }
        results[name] = r
        rt = f"{r['mean_reply_tokens']:.1f}" if tokens else "-"
        print(
            f"{name:<22} {dt:8.1f} {r['examples_per_s']:7.2f} {r['macro_f1']:9.3f} "
            f"{r['unparseable_rate']:9.2f} {rt:>13}"
        )
    s = results["score"]["examples_per_s"]
    for other in ("generate (paper)", "generate (greedy-16)", "score (plain)"):
        print(f"score vs {other}: {s / results[other]['examples_per_s']:.1f}x")
    print("goal: score >= 10x the paper's generate-and-parse")
    if a.json:
        a.json.write_text(json.dumps({"n": n, "culture": a.culture, "limit": a.limit, **results}, indent=2))


def _serve(threads: int | None) -> tuple[subprocess.Popen, str]:
    import socket
    import sys
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    cmd = [sys.executable, "-m", "culturellm.cli", "serve", "--model", "bundled", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("culturellm serve did not start")


def _lm_eval_task(d: Path, model, data) -> list[str]:
    """Each culturellm task as an lm-eval multiple_choice task over a JSONL file: context = the exact
    chat-templated prompt culturellm scores, choices = label + end-of-turn token."""
    from culturellm.evaluate.scoring import build_messages

    tok = model.tokenizer
    eot = tok.decode(model.eot_ids)
    names = []
    for i, (t, ex) in enumerate(data):
        rows = []
        for e in ex:
            prompt = tok.apply_chat_template(
                build_messages(t, e.text, None), add_generation_prompt=True, tokenize=False
            )
            rows.append(
                {
                    "context": prompt,
                    "choices": [v + eot for v in t.verbalizations],
                    "gold": t.label_names.index(e.label),
                }
            )
        (d / f"t{i}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        (d / f"t{i}.yaml").write_text(
            f"task: cllm_t{i}\ndataset_path: json\n"
            f"dataset_kwargs:\n  data_files:\n    test: {d / f't{i}.jsonl'}\n"
            "test_split: test\noutput_type: multiple_choice\ndoc_to_text: context\ndoc_to_choice: choices\n"
            'doc_to_target: gold\ntarget_delimiter: ""\nmetric_list:\n  - metric: acc\n'
        )
        names.append(f"cllm_t{i}")
    return names


def engines(a: argparse.Namespace) -> None:
    """Local vs HTTP exact vs HTTP first-token vs lm-eval's hf model on the same examples."""

    import torch

    from culturellm.evaluate.data import load_task, stratified_sample
    from culturellm.evaluate.metrics import classification_metrics
    from culturellm.evaluate.scoring import predict_score
    from culturellm.evaluate.tasks import list_tasks
    from culturellm.llm import load_model

    if a.threads:
        torch.set_num_threads(a.threads)
    local = load_model("bundled", cache=False)
    data = [
        (t, stratified_sample(load_task(t, a.data_dir).examples, a.limit, 0)) for t in list_tasks(a.culture)
    ]
    n = sum(len(ex) for _, ex in data)
    print(
        f"{n} examples: {len(data)} {a.culture} tasks x <= {a.limit}, bundled SmolLM2-135M, CPU, "
        f"torch threads {torch.get_num_threads()}"
    )

    def measure(model) -> tuple[float, list[list[str | None]], float, list[str]]:
        t0, preds, f1s, methods = time.perf_counter(), [], [], []
        for t, ex in data:
            p, _ = predict_score(model, t, [e.text for e in ex], None, methods=methods)
            preds.append(p)
            f1s.append(classification_metrics([e.label for e in ex], p, t.label_names, n_boot=0)["macro_f1"])
        return time.perf_counter() - t0, preds, sum(f1s) / len(f1s), methods

    results: dict[str, dict] = {}
    ref = None
    proc, url = _serve(a.threads)
    try:
        runs = {
            "local": local,
            "http exact": load_model("openai:bundled", base_url=url, cache=False, score_mode="exact"),
            "http first-token": load_model(
                "openai:bundled", base_url=url, cache=False, score_mode="first-token"
            ),
        }
        for name, model in runs.items():
            if name == "local":
                with FlopCounter(local.model) as flops:
                    cpu0 = time.process_time()
                    dt, preds, f1, methods = measure(model)
                    cpu_s = time.process_time() - cpu0
            else:
                dt, preds, f1, methods = measure(model)
            flat = [p for ps in preds for p in ps]
            ref = ref or flat
            agree = sum(x == y for x, y in zip(flat, ref, strict=True)) / n
            results[name] = {
                "seconds": dt,
                "examples_per_s": n / dt,
                "macro_f1": f1,
                "agreement_with_local": agree,
                "scoring": sorted(set(methods)),
            }
    finally:
        proc.kill()
        proc.wait()
    results["lm-eval hf"] = _lm_eval_run(local, data, ref, n)
    print(f"{'engine':<18} {'seconds':>8} {'ex/s':>7} {'macro-F1':>9} {'agree':>6}")
    for name, r in results.items():
        print(
            f"{name:<18} {r['seconds']:8.1f} {r['examples_per_s']:7.2f} {r['macro_f1']:9.3f} "
            f"{r['agreement_with_local']:6.2f}"
        )
    for other in ("http exact", "http first-token", "lm-eval hf"):
        print(
            f"local vs {other}: {results['local']['examples_per_s'] / results[other]['examples_per_s']:.2f}x"
        )
    results["local"]["gflops"] = _print_gflops(local, flops, results["local"]["seconds"], cpu_s)
    print("goal: local >= 4x lm-eval hf with identical predictions; http exact agrees 1.00 with local")
    if a.json:
        a.json.write_text(json.dumps({"n": n, "culture": a.culture, "limit": a.limit, **results}, indent=2))


def _print_gflops(local, flops: FlopCounter, seconds: float, cpu_s: float) -> dict:
    """Achieved GFLOP/s of local scoring next to the CPU's peak for the model's dtype; also per
    CPU-second of this process (what a shared machine left it: the wall figure falls with the load)."""
    import torch

    achieved = flops.flops / seconds / 1e9
    per_core = flops.flops / max(cpu_s, 1e-9) / 1e9
    cores = cores_used(torch.get_num_threads())
    peak, how = peak_gflops(local.dtype_name, cores)
    print(
        f"local scoring: {flops.tokens} tokens run (padding included) x 2 x {flops.body / 1e6:.1f}M matmul "
        f"parameters + {flops.logit_rows} logit rows x 2 x {flops.head / 1e6:.1f}M output layer = "
        f"{flops.flops / 1e9:.0f} GFLOP in {seconds:.1f} s = {achieved:.1f} GFLOP/s ({local.dtype_name})"
    )
    print(f"CPU peak: {how} GFLOP/s; local scoring reaches {achieved / peak:.0%} of it")
    print(
        f"per CPU-second of this process: {per_core:.1f} GFLOP/s ({cpu_s:.1f} CPU-s), "
        f"{per_core / (peak / cores):.0%} of one core's peak"
    )
    return {
        "achieved": achieved,
        "peak": peak,
        "peak_how": how,
        "tokens": flops.tokens,
        "per_cpu_s": per_core,
    }


def _lm_eval_run(local, data, ref, n) -> dict:
    import tempfile

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from culturellm.evaluate.metrics import classification_metrics

    with tempfile.TemporaryDirectory() as d:
        names = _lm_eval_task(Path(d), local, data)
        lm = HFLM(pretrained=local.model, tokenizer=local.tokenizer, batch_size=16, device="cpu")
        t0 = time.perf_counter()
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=names,
            task_manager=TaskManager(include_path=d),
            log_samples=True,
            verbosity="ERROR",
        )
        dt = time.perf_counter() - t0
    flat, f1s = [], []
    for name, (t, ex) in zip(names, data, strict=True):
        samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
        preds = [
            t.label_names[max(range(len(s["filtered_resps"])), key=lambda i: s["filtered_resps"][i][0])]
            for s in samples
        ]
        flat += preds
        f1s.append(classification_metrics([e.label for e in ex], preds, t.label_names, n_boot=0)["macro_f1"])
    agree = sum(x == y for x, y in zip(flat, ref, strict=True)) / n
    return {
        "seconds": dt,
        "examples_per_s": n / dt,
        "macro_f1": sum(f1s) / len(f1s),
        "agreement_with_local": agree,
    }


if __name__ == "__main__":
    main()
