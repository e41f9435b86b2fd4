"""Leave-one-culture-out CultureLLM-One (issue 29): does a culture-conditioned One carry to a culture
it never trained on (as SubPOP, Suh et al. 2025, reports for survey fine-tuning)?

    python benchmarks/loo_one.py --config configs/experiments/loo-one.toml --out runs/loo-one
    python benchmarks/loo_one.py --held-out arabic,german,portuguese,spanish     # a subset
    python benchmarks/loo_one.py --held-out arabic --cultures arabic,bengali,turkish --limit-seeds 8 \\
        --holdout-questions 2 --max-steps 2 --limit 1 --out runs/loo-one-pilot      # a pilot

For each held-out culture H: a `culturellm run` of the config with the other eight cultures and
`train = "one"` (OUT/without-H/: One only, its records naming their culture in the system prompt;
the runs share one import), then on the run's held-out items (held-out questions and held-out
wordings of trained questions) that H's survey answered, against H's survey:

- One asked with H's culture prompt (a culture it never saw), and the base model with it;
- the mean of the eight training cultures' surveys (per item, the average distribution), and the
  nearest training survey — the one closest to H's on these items (chosen with H's survey: an
  oracle, the best any single other culture's answers could do).

Majority agreement, 1 − JSD and 1 − W1 with 95% bootstrap CIs over questions, and One minus each
baseline with a paired CI: OUT/loo.md, OUT/loo.json. The alignments are kept in
OUT/without-H/loo/ (resumed by key), so the script can be killed and rerun.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from experiments import (
    MEASURES,
    NINE,
    SHORT,
    add_size_flags,
    augment_source,
    ci,
    merge,
    run_setting,
    setting_config,
    size_overrides,
    write_outputs,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/experiments/loo-one.toml"))
    ap.add_argument("--out", type=Path, default=Path("runs/loo-one"))
    ap.add_argument("--held-out", default=",".join(NINE), help="comma-separated cultures held out in turn")
    ap.add_argument("--cultures", default=",".join(NINE), help="the cultures One is trained on, less one")
    ap.add_argument("--table-only", action="store_true", help="no training: the table of finished runs")
    add_size_flags(ap)
    return ap.parse_args(argv)


def survey_rows(rows: list[dict[str, Any]], training: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per-item answers of the survey baselines, in `align`'s row shape: "mean of the 8" (the average
    distribution of the training surveys that answered the item) and each training survey."""
    from culturellm.seeds import seed_set

    surveys = {c: {s.question_id: s.distribution for s in seed_set(c)} for c in training}
    out: dict[str, list[dict[str, Any]]] = {"mean": [], **{c: [] for c in training}}
    for r in rows:
        codes = list(r["survey_distribution"])
        have = []
        for c in training:
            d = surveys[c].get(r["question_id"])
            if d and sum(d.get(k, 0.0) for k in codes) > 0:
                total = sum(d.get(k, 0.0) for k in codes)
                dist = {k: d.get(k, 0.0) / total for k in codes}
                have.append(dist)
                out[c].append(_row(r, dist))
        if have:
            out["mean"].append(_row(r, {k: sum(h[k] for h in have) / len(have) for k in codes}))
    return out


def _row(r: dict[str, Any], dist: dict[str, float]) -> dict[str, Any]:
    return {"question_id": r["question_id"], "kind": r["kind"], "model_distribution": dist,
            "model_answer": max(dist, key=dist.__getitem__)}  # fmt: skip


def scores(rows: list[dict[str, Any]], culture: str) -> dict[str, Any]:
    """Rows (align's shape) against `culture`'s survey: per-item scores and the measures with CIs."""
    from culturellm.evaluate.matrix import rescore

    return rescore({"questions": rows}, culture)


def paired(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """a − b per measure over a's items, paired: b's item at the same place when it is the same
    question (the same rows scored twice), else b's mean on that question (a survey baseline, whose
    score is the same for every wording of a question); items of questions b lacks are left out."""
    from culturellm.evaluate.bootstrap import difference_ci

    by_q: dict[str, list[dict[str, float]]] = {}
    for q, v in b["items"].values():
        by_q.setdefault(q, []).append(v)
    out = {}
    for m in MEASURES:
        xs, ys, qs = [], [], []
        for i, (q, v) in a["items"].items():
            same = b["items"].get(i)
            if same is not None and same[0] == q:
                ys.append(same[1][m])
            elif q in by_q:
                ys.append(sum(w[m] for w in by_q[q]) / len(by_q[q]))
            else:
                continue
            xs.append(v[m])
            qs.append(q)
        out[m] = difference_ci(xs, ys, qs)
    return out


def held_out(args: argparse.Namespace, culture: str, common: dict, done: dict) -> dict[str, Any]:
    """Train (resume) One without `culture`, align it and the base model on it, score the baselines."""
    from culturellm.evaluate import ModelVariant
    from culturellm.evaluate.align import AlignJob, align_all
    from culturellm.runlayout import ONE, RunLayout

    training = [c for c in args.cultures.split(",") if c != culture]
    out = args.out / f"without-{culture}"
    cfg = setting_config(args.config, merge(common, {"cultures": training, "train": "one"}))
    if not args.table_only:
        t = time.monotonic()
        run_setting(cfg, out, augment_source(done, cfg, out), progress=not args.no_progress)
        print(f"{out}: One trained ({time.monotonic() - t:.0f} s this call)", flush=True)
    lay = RunLayout(out)
    jobs = [
        AlignJob(
            ModelVariant("culturellm-one", str(lay.model_dir(ONE)), "culture", cfg.models.access),
            lay.split(ONE),
            "held-out",
        ),
        AlignJob(
            ModelVariant("base+culture-prompt", cfg.models.base, "culture", cfg.models.access),
            lay.split(ONE),
            "held-out",
        ),
    ]
    one, base = align_all(jobs, culture, out / "loo")
    res = {"one": scores(one["questions"], culture), "base": scores(base["questions"], culture)}
    surveys = survey_rows(one["questions"], training)
    res["mean"] = scores(surveys.pop("mean"), culture)
    near = {c: scores(rows, culture) for c, rows in surveys.items() if rows}
    nearest = max(near, key=lambda c: near[c]["one_minus_jsd"])
    res["nearest"] = near[nearest]
    diffs = {k: paired(res["one"], res[k]) for k in ("base", "mean", "nearest")}
    return {"culture": culture, "nearest": nearest, "result": res, "one_minus": diffs}


def tables(found: list[dict[str, Any]]) -> list[str]:
    lines = []
    heads = (
        "One (never saw it)",
        "base + culture prompt",
        "mean of the training surveys",
        "nearest training survey",
    )
    for m in ("one_minus_jsd", "majority_agreement", "one_minus_wasserstein"):
        lines += [
            f"**{SHORT[m]}** on the held-out culture's survey (held-out items; 95% CIs over questions)",
            "",
        ]
        diffs = " | One − base + prompt | One − mean | One − nearest |"
        lines += ["| held out | " + " | ".join(heads) + diffs, "| --- |" + " --- |" * 7]
        for f in found:
            r, d = f["result"], f["one_minus"]
            cells = [ci(r[k]["ci"][m]) for k in ("one", "base", "mean")]
            cells.append(f"{ci(r['nearest']['ci'][m])} ({f['nearest']})")
            cells += [ci(d[k][m], True) for k in ("base", "mean", "nearest")]
            lines.append(f"| {f['culture']} | " + " | ".join(cells) + " |")
        wins = sum(f["one_minus"]["base"][m]["lo"] > 0 for f in found)
        lines += ["", f"One above base + culture prompt with a CI above 0: {wins} of {len(found)}", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common, done, found = size_overrides(args), {}, []
    for culture in args.held_out.split(","):
        f = held_out(args, culture, common, done)
        for k in ("one", "base", "mean", "nearest"):
            f["result"][k].pop("items", None)
        found.append(f)
    write_outputs(args.out, "loo", tables(found), found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
