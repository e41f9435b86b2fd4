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
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

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
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
