"""The agreement / distribution frontier on real rewordings (issue 23): every training target on one split.

    python benchmarks/frontier.py --config configs/experiments/frontier-small.toml \
        --import-file ../shared/data/release-rewordings/rewordings.jsonl --out runs/frontier-small-bench

The run config gives the culture, the imported rewordings (`[augment] import_file`, `import_source`,
`import_filter`), the split (`[dataset]` holdout_questions, holdout_variants, seed) and the fine-tuning
preset. The rewordings are imported once; one training set per target differs only in its answers:
every registered target (culturellm.dataset.targets: majority (the paper), sampled, distribution (soft
labels), mixed (w 0.25, 0.5), sharpened (T 0.5, 0.7) and any target registered since). Each model
is aligned on the held-out items (held-out wordings of trained questions and held-out questions) beside
the base model, base + culture prompt and the uniform answer: majority agreement, 1 − JSD and 1 − W1,
each with a 95% bootstrap CI resampling questions. Writes OUT/results.json, OUT/table.md and the plot
(--plot, default OUT/frontier.png). Every step resumes (a finished model or alignment is reused),
so the script can be killed and rerun, one target at a time with --targets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from align_bench import aligned, registered_targets, write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The values swept of a target with a parameter (mixed: majority_weight, sharpened:
# sharpen_temperature); every registered target is trained (align_bench.registered_targets).
SWEEP = {"mixed": (0.25, 0.5), "sharpened": (0.5, 0.7)}
MEASURES = ("majority_agreement", "one_minus_jsd", "one_minus_wasserstein")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/experiments/frontier-small.toml"))
    ap.add_argument("--import-file", type=Path, help="overrides the config's [augment] import_file")
    ap.add_argument("--out", type=Path, default=Path("runs/frontier-bench"))
    ap.add_argument(
        "--targets", default=",".join(registered_targets(SWEEP)),
        help="comma-separated, e.g. mixed:0.25 (default: every registered target, SWEEP's values)",
    )  # fmt: skip
    ap.add_argument("--max-steps", type=int, help="fine-tuning steps (overrides epochs)")
    ap.add_argument("--plot", type=Path, help="where the plot goes (default OUT/frontier.png)")
    ap.add_argument("--no-table", action="store_true", help="train and align only (no table, no plot)")
    return ap.parse_args(argv)


def dataset_config(base: Any, target: str) -> Any:
    """The run's [dataset] with this target; NAME:X sets the target's first parameter (registry:
    "mixed:0.25" sets majority_weight, "sharpened:0.5" the sharpen_temperature)."""
    from culturellm.dataset.targets import get_target

    name, _, param = target.partition(":")
    update: dict[str, Any] = {"target": name}
    params = get_target(name).params  # the registry says which option a target's number sets
    if param and params:
        update[params[0]] = float(param)
    return type(base).model_validate(base.model_dump() | update)


def imported(cfg: Any, out: Path) -> Path:
    from culturellm.augment.importer import import_release
    from culturellm.embed import load_embedder
    from culturellm.hashing import sha256_file, stable_hash
    from culturellm.runlayout import RECORDS

    path, a = out / "augment" / RECORDS, cfg.augment
    key = stable_hash({"augment": a.model_dump(mode="json"), "embedder": cfg.models.embedder,
                       "file": sha256_file(a.import_file)})  # fmt: skip
    stamp = out / "augment" / "import_key.json"  # reused only when what made it is unchanged
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == key:
        return path
    m = import_release(a.import_file, out / "augment", load_embedder(cfg.models.embedder), a)
    stamp.write_text(json.dumps(key))
    print(f"imported: {m['counts']}", file=sys.stderr, flush=True)
    return path


def train(cfg: Any, target: str, augmented: Path, out: Path, max_steps: int | None) -> dict[str, Any]:
    from culturellm.dataset import build_training_set, split_manifest_path
    from culturellm.finetune import finetune

    label = target.replace(":", "-")
    data = out / "data" / label / "train.jsonl"
    manifest = build_training_set(
        cfg.cultures[:1], augmented, data, dataset_config(cfg.dataset, target), force=True
    )
    model_dir = out / "models" / label
    t = time.monotonic()
    ft = cfg.finetune if max_steps is None else cfg.finetune.model_copy(update={"max_steps": max_steps})
    # finetune() reuses a finished model only for the same data, base and config (its fingerprint)
    finetune(data, cfg.models.base, model_dir, ft, progress=False)
    return {
        "model": str(model_dir),
        "split": split_manifest_path(data),
        "counts": manifest["counts"],
        "train_s": round(time.monotonic() - t, 1),
    }


def summary(label: str, res: dict) -> dict[str, Any]:
    """Measures with CIs over all held-out items, and per item kind (means)."""
    from culturellm.evaluate.align import summarise

    row: dict[str, Any] = {"model": label, "n_items": res["n_questions"]}
    for m in MEASURES:
        row[m] = res["ci"][m]
    for kind in ("heldout_variant", "heldout_question"):
        rows = [q for q in res["questions"] if q["kind"] == kind]
        if rows:
            s = summarise(rows)
            row[kind] = {m: s[m] for m in MEASURES} | {"n": len(rows)}
    a, j = row["majority_agreement"]["mean"], row["one_minus_jsd"]["mean"]
    row["distance_to_1_1"] = ((1 - a) ** 2 + (1 - j) ** 2) ** 0.5
    return row


def uniform_row(res: dict) -> dict[str, Any]:
    from culturellm.evaluate.bootstrap import mean_ci

    qids = [q["question_id"] for q in res["questions"]]
    row: dict[str, Any] = {"model": "uniform answer", "n_items": len(qids)}
    row["majority_agreement"] = mean_ci([1.0 / q["n_options"] for q in res["questions"]], qids)
    for m in ("one_minus_jsd", "one_minus_wasserstein"):
        row[m] = mean_ci([q[f"uniform_{m}"] for q in res["questions"]], qids)
    a, j = row["majority_agreement"]["mean"], row["one_minus_jsd"]["mean"]
    row["distance_to_1_1"] = ((1 - a) ** 2 + (1 - j) ** 2) ** 0.5
    return row


def table(rows: list[dict]) -> str:
    from culturellm.evaluate.bootstrap import format_ci

    head = "| model | agreement | 1 − JSD | 1 − W1 | distance to (1, 1) |\n| --- | --- | --- | --- | --- |\n"
    return head + "".join(
        f"| {r['model']} | {format_ci(r['majority_agreement'])} | {format_ci(r['one_minus_jsd'])} | "
        f"{format_ci(r['one_minus_wasserstein'])} | {r['distance_to_1_1']:.3f} |\n"
        for r in rows
    )


def plot(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for r in rows:
        a, j = r["majority_agreement"], r["one_minus_jsd"]
        tuned = r["model"].startswith("tuned")
        ax.errorbar(
            a["mean"], j["mean"],
            xerr=[[a["mean"] - a["lo"]], [a["hi"] - a["mean"]]],
            yerr=[[j["mean"] - j["lo"]], [j["hi"] - j["mean"]]],
            fmt="o" if tuned else "s", capsize=3, alpha=0.9 if tuned else 0.6,
        )  # fmt: skip
        ax.annotate(r["model"].removeprefix("tuned: "), (a["mean"], j["mean"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    ax.plot([1.0], [1.0], "k*", markersize=10)
    ax.set_xlabel("held-out agreement with the survey majority")
    ax.set_ylabel("held-out 1 − JSD to the survey distribution")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    from culturellm.config import load_config
    from culturellm.settings import flags

    args = parse_args(argv)
    over = flags({"augment": {"import_file": str(args.import_file)}}) if args.import_file else None
    cfg = load_config(args.config, over)
    culture = cfg.cultures[0]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    augmented = imported(cfg, args.out)
    info = {}
    for target in args.targets.split(","):
        info[target] = train(cfg, target, augmented, args.out, args.max_steps)
        res = aligned(args.out, target, info[target]["model"], culture, info[target]["split"], "culture")
        dist = summary(target, res)["distance_to_1_1"]
        print(f"{target}: trained in {info[target]['train_s']} s; {dist:.3f} from (1, 1)", file=sys.stderr,
              flush=True)  # fmt: skip
    if args.no_table:
        return 0
    split = next(iter(info.values()))["split"]
    base = aligned(args.out, "base", cfg.models.base, culture, split, None)
    rows = [uniform_row(base), summary("base", base)]
    rows.append(summary("base + culture prompt", aligned(args.out, "base+prompt", cfg.models.base, culture,
                                                         split, "culture")))  # fmt: skip
    for target in info:
        res = aligned(args.out, target, info[target]["model"], culture, info[target]["split"], "culture")
        rows.append(summary(f"tuned: {target}", res))
    md = table(rows)
    counts = next(iter(info.values()))["counts"]
    png = plot(rows, args.plot or args.out / "frontier.png",
               f"{culture}, held-out items of {args.config.name} (95% CIs over questions)")  # fmt: skip
    result = {
        "config": str(args.config),
        "culture": culture,
        "split": counts,
        "training": {t: {k: v for k, v in i.items() if k != "split"} | {"split": str(i["split"])}
                     for t, i in info.items()},
    }  # fmt: skip
    write_results(args.out, result, rows, md, t0)
    print(f"split: {counts}; plot {png}; wrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
