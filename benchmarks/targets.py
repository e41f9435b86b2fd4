"""Training targets compared on one held-out split: majority (the paper), sampled codes, soft labels.

    python benchmarks/targets.py --out runs/targets            # augment (bundled), 3 sets, 3 models, align
    python benchmarks/targets.py --out runs/targets --augmented FILE   # reuse an augmented.jsonl

One augmented set (the bundled augmenter by default: first 40 seeds, n 4, m 6, one re-ask), one split
(`--holdout-questions 10 --holdout-variants 0.3`, seed 0: the same for every target), one preset. One
training set per registered target (culturellm.dataset.targets; `--targets` picks some) differs only
in its answers, e.g.:

- majority: every wording answered with the survey's majority code (the CultureLLM paper);
- sampled: each wording of a question gets a code drawn so that the codes follow the survey
  distribution (hard labels: what the OpenAI fine-tuning API can take);
- distribution: the majority code plus the survey distribution; local training minimises the
  cross-entropy against the distribution on the answer token (soft labels).

Each model is aligned (majority agreement, 1 - Jensen-Shannon distance to the survey distribution) on
the held-out paraphrases of trained questions and on the held-out questions, beside the base model,
the base model with the culture prompt, the uniform answer and another culture's survey. Every step
resumes (augmentation per seed, fine-tuning from checkpoints, alignment per model), so the script can
be killed and rerun. Writes OUT/results.json and OUT/table.md and prints the table.

Measured numbers (the command in docs/finetuning.md, "Targets"): benchmarks/results/targets-2026-11-26.*
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import align_bench
from align_bench import write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/targets"))
    ap.add_argument("--augmented", type=Path, help="an augmented.jsonl to use instead of augmenting")
    ap.add_argument("--culture", default="arabic")
    ap.add_argument("--other", default="german", help="the other culture whose survey is a baseline")
    ap.add_argument("--seeds", type=int, default=40, help="augment the first N seeds")
    ap.add_argument(
        "--wordings", choices=("bundled", "templates"), default="bundled",
        help="bundled: augment with the bundled LLM; templates: three fixed wordings per seed (no LLM)",
    )  # fmt: skip
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--m", type=int, default=6)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--holdout-questions", type=int, default=10)
    ap.add_argument("--holdout-variants", type=float, default=0.3)
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--epochs", type=float)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--base", default="bundled")
    ap.add_argument(
        "--targets", default=",".join(align_bench.registered_targets()),
        help="comma-separated target names (default: every registered target, its default parameters)",
    )  # fmt: skip
    ap.add_argument(
        "--train-only", action="store_true",
        help="train and align the --targets models only (to run targets in parallel processes; a final "
        "run without it reuses their models and alignments and writes the table)",
    )  # fmt: skip
    return ap.parse_args(argv)


TEMPLATES = (
    "Do you agree with the following statement? {text}",
    "Here is a statement: {text}. How do you feel about it?",
    "Please give your opinion on this: {text}",
)


def template_set(args: argparse.Namespace) -> Path:
    """Seeds plus three fixed template wordings each (no LLM): the cheap stand-in for paraphrases."""
    from culturellm.augment.pipeline import record_id
    from culturellm.jsonio import write_jsonl
    from culturellm.wvs import load_questions

    rows = []
    for q in load_questions()[: args.seeds]:
        sid = record_id(q.id, "seed", q.text)
        rows.append({"id": sid, "question_id": q.id, "step": "seed", "text": q.text, "parent": None})
        for t in TEMPLATES:
            text = t.format(text=q.text.rstrip(".?"))
            rows.append(
                {"id": record_id(q.id, "template", text), "question_id": q.id, "step": "template",
                 "text": text, "parent": sid}
            )  # fmt: skip
    path = args.out / "templates" / "augmented.jsonl"
    write_jsonl(path, rows)
    return path


def augmented_file(args: argparse.Namespace) -> Path:
    if args.augmented:
        return args.augmented
    if args.wordings == "templates":
        return template_set(args)
    from culturellm.augment import AugmentConfig, augment
    from culturellm.embed import load_embedder
    from culturellm.llm import load_model
    from culturellm.wvs import load_questions

    out = args.out / "augment"
    cfg = AugmentConfig(n=args.n, m=args.m, retries=args.retries, seed=0)
    augment(load_questions()[: args.seeds], load_model("bundled"), load_embedder("bundled"), cfg, out)
    return out / "augmented.jsonl"


def train(args: argparse.Namespace, target: str, augmented: Path) -> tuple[Path, Path, dict]:
    from culturellm.dataset import DatasetConfig, build_training_set, split_manifest_path
    from culturellm.finetune import FinetuneConfig, finetune

    data = args.out / "data" / target / "train.jsonl"
    dataset = DatasetConfig.model_validate(
        {"target": target, "holdout_questions": args.holdout_questions,
         "holdout_variants": args.holdout_variants, "seed": 0}
    )  # fmt: skip
    manifest = build_training_set([args.culture], augmented, data, dataset)
    cfg = FinetuneConfig.from_preset(
        args.preset, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, seed=0
    )
    model_dir = args.out / "models" / target
    finetune(data, args.base, model_dir, cfg, progress=False)
    summary = json.loads((model_dir / "train_summary.json").read_text())
    return model_dir, split_manifest_path(data), {"counts": manifest["counts"], "train": summary}


def aligned(args: argparse.Namespace, label: str, spec: str, split: Path, system: str | None) -> dict:
    return align_bench.aligned(args.out, label, spec, args.culture, split, system)


def row(res: dict, label: str, other_fn=None) -> dict:
    from culturellm.evaluate.baselines import by_kind, heldout_columns

    return {"model": label, **heldout_columns(res, other_fn or by_kind)}


def table(rows: list[dict]) -> str:
    head = (
        "| model | held-out paraphrases: agreement | 1 − JSD | held-out questions: agreement | 1 − JSD |\n"
        "| --- | --- | --- | --- | --- |\n"
    )

    def f(x):
        return "–" if x is None else f"{x:.3f}"

    return head + "".join(
        f"| {r['model']} | {f(r['paraphrase_agreement'])} | {f(r['paraphrase_1_jsd'])} | "
        f"{f(r['question_agreement'])} | {f(r['question_1_jsd'])} |\n"
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    from culturellm.evaluate.baselines import other_survey, uniform

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    augmented = augmented_file(args)
    models, info, split = {}, {}, None
    for target in args.targets.split(","):
        models[target], split, info[target] = train(args, target, augmented)
        print(f"trained {target}: {info[target]['train']['steps']} steps", file=sys.stderr, flush=True)
    if args.train_only:
        for target, d in models.items():
            aligned(args, target, str(d), split, "culture")
        return 0
    base = aligned(args, "base", args.base, split, None)
    rows = [
        row(base, "uniform answer", uniform),
        row(base, f"{args.other} survey", lambda r, k: other_survey(r, args.other, k)),
        row(base, "base"),
        row(aligned(args, "base+culture-prompt", args.base, split, "culture"), "base + culture prompt"),
    ]
    for target, d in models.items():
        rows.append(row(aligned(args, target, str(d), split, "culture"), f"tuned: {target}"))
    md = table(rows)
    counts = next(iter(info.values()))["counts"]
    result = {
        "culture": args.culture,
        "args": {k: str(v) for k, v in vars(args).items()},
        "split": counts,
        "training": {t: v["train"] for t, v in info.items()},
    }
    write_results(args.out, result, rows, md, t0)
    print(f"split: {counts}; wrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
