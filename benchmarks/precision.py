"""Scoring in bf16 vs fp32 with the bundled model on the same examples: does bf16 keep the answers?

    python benchmarks/precision.py [--culture arabic] [--limit 10] [--data-dir DATA] [--json FILE]

The bundled SmolLM2-135M is loaded twice, in float32 and in bfloat16 (the response cache off, so
every score is computed), and both score the same stratified examples of every task of the culture
(label scoring as `culturellm evaluate` does it, with and without contextual calibration) and the
culture's WVS seed questions (`culturellm align`: 1 - JSD and majority agreement). Printed side by
side: seconds and examples/s of each dtype, the share of examples whose predicted label is the same
(the quality bar for `--dtype auto` choosing bf16 is >= 99 %), and the difference of the alignment
figures (bar: within 0.005). Training's side is `benchmarks/finetune.py --precision`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DTYPES = ("float32", "bfloat16")


def _labels(model, data) -> tuple[list, list, float]:
    """Uncalibrated and calibrated predictions over all tasks' examples, and the seconds they took."""
    from culturellm.evaluate.scoring import calibrated_predictions, predict_score

    raw, cal = [], []
    t0 = time.perf_counter()
    for t, ex in data:
        preds, scores = predict_score(model, t, [e.text for e in ex], None)
        raw += preds
        cal += calibrated_predictions(model, t, scores, None)[0]
    return raw, cal, time.perf_counter() - t0


def _alignment(dtype: str, culture: str) -> tuple[dict, float]:
    from culturellm.evaluate.align import align
    from culturellm.evaluate.variant import ModelVariant
    from culturellm.llm.placement import local_defaults_applied

    t0 = time.perf_counter()
    with local_defaults_applied(dtype=dtype, device="cpu"):
        row = align(ModelVariant("bundled", "bundled", system="culture", cache=False), culture)
    return row, time.perf_counter() - t0


def main() -> None:
    import torch

    from culturellm.evaluate.data import load_task, stratified_sample
    from culturellm.evaluate.tasks import list_tasks
    from culturellm.llm import load_model
    from culturellm.llm.loading import cpu_has_native_bf16

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--culture", default="arabic")
    ap.add_argument("--limit", type=int, default=10, help="examples per task")
    ap.add_argument("--data-dir", type=Path, default=None, help="release data/ (default: bundled sample)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = ap.parse_args()
    data = [
        (t, stratified_sample(load_task(t, a.data_dir).examples, a.limit, 0)) for t in list_tasks(a.culture)
    ]
    n = sum(len(ex) for _, ex in data)
    print(
        f"{n} examples: {len(data)} {a.culture} tasks x <= {a.limit}, bundled SmolLM2-135M, CPU, torch "
        f"threads {torch.get_num_threads()}, native bf16: {cpu_has_native_bf16()}"
    )
    res: dict[str, dict] = {}
    for dtype in DTYPES:
        model = load_model("bundled", cache=False, device="cpu", dtype=dtype)
        _labels(model, data[:1])  # warm-up: first-call allocations are not what is measured
        raw, cal, secs = _labels(model, data)
        row, align_s = _alignment(dtype, a.culture)
        res[dtype] = {"raw": raw, "cal": cal, "seconds": secs, "align_seconds": align_s, "align": row}
    fp, bf = res["float32"], res["bfloat16"]
    same_raw = sum(x == y for x, y in zip(fp["raw"], bf["raw"], strict=True)) / n
    same_cal = sum(x == y for x, y in zip(fp["cal"], bf["cal"], strict=True)) / n
    print(f"{'':<28} {'float32':>10} {'bfloat16':>10}  difference")
    print(f"{'label scoring seconds':<28} {fp['seconds']:10.1f} {bf['seconds']:10.1f}  "
          f"bf16 {fp['seconds'] / bf['seconds']:.2f}x fp32's speed")  # fmt: skip
    print(f"{'alignment seconds':<28} {fp['align_seconds']:10.1f} {bf['align_seconds']:10.1f}")
    summary = {"n": n, "labels_same_uncalibrated": same_raw, "labels_same_calibrated": same_cal}
    for key in ("one_minus_jsd", "majority_agreement"):
        x, y = fp["align"][key], bf["align"][key]
        summary[f"{key}_diff"] = abs(x - y)
        print(f"{'alignment ' + key:<28} {x:10.4f} {y:10.4f}  {abs(x - y):.4f} (bar <= 0.005)")
    print(f"labels the same, uncalibrated: {same_raw:.1%}; calibrated: {same_cal:.1%} (bar >= 99 %)")
    if a.json:
        summary |= {d: {k: res[d][k] for k in ("seconds", "align_seconds")} for d in DTYPES}
        a.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
