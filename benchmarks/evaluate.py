"""Label scoring vs generate-and-parse with the bundled model on the same examples: examples/s and macro-F1.

python benchmarks/evaluate.py [--culture arabic] [--limit 10]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from culturellm.evaluate.data import load_task, stratified_sample
    from culturellm.evaluate.metrics import classification_metrics
    from culturellm.evaluate.scoring import predict_generate, predict_score
    from culturellm.evaluate.tasks import list_tasks
    from culturellm.llm import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--culture", default="arabic")
    ap.add_argument("--limit", type=int, default=10)
    a = ap.parse_args()
    model = load_model("bundled", cache=False)
    data = [(t, stratified_sample(load_task(t, None).examples, a.limit, 0)) for t in list_tasks(a.culture)]
    n = sum(len(ex) for _, ex in data)
    for mode, fn in (("score", predict_score), ("generate", predict_generate)):
        t0 = time.perf_counter()
        f1s = []
        for t, ex in data:
            preds, _ = fn(model, t, [e.text for e in ex], None)
            f1s.append(
                classification_metrics([e.label for e in ex], preds, t.label_names, n_boot=0)["macro_f1"]
            )
        dt = time.perf_counter() - t0
        print(
            f"{mode:9s} {n} examples in {dt:.1f} s = {n / dt:.2f} examples/s, "
            f"mean macro-F1 {sum(f1s) / len(f1s):.3f}"
        )


if __name__ == "__main__":
    main()
