"""`culturellm ablate`: the paper's ablations in one command, on one held-out split.

From one augmented set (ours, an imported release set, or template wordings), training sets that
grow by augmentation step (seeds only -> + paraphrases -> + synonyms -> + translations; an arm that
adds nothing to the previous one is skipped) and by size (seeded subsamples of the full set, e.g.
50 -> 150 -> 1000 records). Every set shares the split (held-out questions and held-out paraphrases
of trained questions), every model is trained with the same preset and target and aligned on the
held-out items; the base model is the first row. Writes OUT/ablation.jsonl (one row per set),
OUT/ablation.md (the table) and OUT/ablation.png (held-out agreement and 1 - JSD per set), and
resumes by key: each row carries `key`, the stable hash of what made it (the dataset options, the
set, the fine-tuning config, the base, the culture and the augmented file's sha256), and a finished
row is reused only when its key is unchanged (another --target or --base retrains; the models resume
by their own fine-tuning fingerprint). The dataset options are `DatasetConfig`'s (`culturellm
dataset`'s flags, or a TOML's [dataset] table with --config) over ablate's own preset `SPLIT` (10
held-out questions, 30% of each trained question's wordings: an ablation needs a held-out split);
the fine-tuning options are `FinetuneConfig`'s (`FINETUNE_FIELDS` as flags, its preset cpu-small).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from culturellm.config_cli import config_command
from culturellm.dataset.config import DatasetConfig
from culturellm.errors import CultureLLMError
from culturellm.finetune.config import FinetuneConfig
from culturellm.jsonio import atomic_write_text, read_jsonl, write_jsonl
from culturellm.safewrite import target

# ablate's preset of the dataset options, beneath --config's [dataset] and the flags (DatasetConfig's
# own defaults hold nothing out, and an ablation is measured on held-out items).
SPLIT = {"holdout_questions": 10, "holdout_variants": 0.3}
# The fine-tuning options ablate offers as flags (every set is trained with the same FinetuneConfig;
# its seed is the dataset's).
FINETUNE_FIELDS = (
    "preset",
    "epochs",
    "lr",
    "batch_size",
    "max_steps",
    "lora_r",
    "lora_alpha",
    "dtype",
    "device",
)

# Each arm adds the steps of its line to the previous arm's ("imported"/"template": other sources of
# rewordings, counted with paraphrases).
ARMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("seeds", ("seed",)),
    ("+paraphrases", ("paraphrase", "imported", "template")),
    ("+synonyms", ("synonym",)),
    ("+translations", ("translation",)),
)


def plan_sets(steps_present: set[str], total: int, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """The training sets: cumulative step arms (skipping arms that add nothing), then size subsamples of
    the full set (sizes below the full set's record count; the full set itself is the last arm)."""
    sets, cum = [], []
    for name, steps in ARMS:
        added = [s for s in steps if s in steps_present]
        cum += list(steps)
        if added or name == "seeds":
            sets.append({"name": name, "steps": list(cum), "max_records": None})
    for n in sorted(set(sizes)):
        if 0 < n < total:
            sets.append({"name": f"all, {n} records", "steps": None, "max_records": n})
    return sets


def _row(label: str, res: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    from culturellm.evaluate.baselines import heldout_columns

    return {"set": label, **extra, **heldout_columns(res)}


def ablate(
    augmented: Path,
    culture: str,
    out: Path,
    dataset: Any = None,
    *,
    base: str = "bundled",
    finetune_config: Any = None,
    sizes: Sequence[int] = (50, 150, 1000),
    progress: bool = True,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Train and align every planned set; return the rows (also in OUT/ablation.jsonl). `dataset`: a
    DatasetConfig (None: its defaults with ablate's `SPLIT`; the split must hold something out);
    `finetune_config`: a FinetuneConfig (None: its defaults, preset cpu-small), its seed the dataset's.
    OUT is claimed (culturellm.outdir): new, an earlier ablation's, or --force.

    Long because: one loop that builds, trains, aligns and records each set, resuming by key."""
    from culturellm.dataset import DatasetConfig, build_training_set, split_manifest_path
    from culturellm.dataset.build import read_augmented
    from culturellm.evaluate import ModelVariant, align
    from culturellm.finetune import FinetuneConfig, finetune
    from culturellm.hashing import sha256_file, stable_hash
    from culturellm.outdir import claim

    dataset = dataset or DatasetConfig(**SPLIT)
    steps_present = {r.get("step") for rows in read_augmented(augmented).values() for r in rows}
    claim(out, "ablate", force=force)
    full = build_training_set([culture], augmented, out / "data" / "full.jsonl", dataset)
    split = split_manifest_path(out / "data" / "full.jsonl")
    if not full["counts"]["heldout_variants"] and not full["counts"]["heldout_questions"]:
        raise CultureLLMError(
            f"{augmented}: the split holds nothing out; give --holdout-variants (e.g. 0.3) "
            "and/or --holdout-questions (e.g. 10)"
        )
    cfg = (finetune_config or FinetuneConfig()).model_copy(update={"seed": dataset.seed})
    made = {"base": base, "culture": culture, "augmented": sha256_file(augmented), "split": full["split"]}
    done = {r.get("key"): r for r in _rows(out)}
    key = stable_hash(made)
    base_row = done.get(key) or _row("base", align(ModelVariant("base", base), culture, split=split), {})
    rows = [base_row | {"key": key}]
    write_jsonl(out / "ablation.jsonl", rows)
    made |= {"dataset": dataset.keyed(), "finetune": cfg.fingerprint()}
    for i, s in enumerate(plan_sets(steps_present, full["counts"]["records"], sizes)):
        key = stable_hash(made | {"set": s})
        if key in done:
            rows.append(done[key])
            write_jsonl(out / "ablation.jsonl", rows)
            continue
        data = out / "data" / f"set{i}.jsonl"
        man = build_training_set(
            [culture], augmented, data, dataset, steps=s["steps"], max_records=s["max_records"]
        )
        model_dir = out / "models" / f"set{i}"
        finetune(data, base, model_dir, cfg, progress=progress)
        res = align(ModelVariant(s["name"], str(model_dir), "culture"), culture, split=split)
        extra = {"records": man["counts"]["records"], "steps": s["steps"], "key": key}
        rows.append(_row(s["name"], res, extra))
        write_jsonl(out / "ablation.jsonl", rows)
    atomic_write_text(out / "ablation.md", ablation_markdown(rows, full["counts"]))
    plot_ablation(rows, out / "ablation.png")
    return rows


def _rows(out: Path) -> list[dict[str, Any]]:
    """The rows of an earlier ablation in OUT (none yet: [])."""
    path = out / "ablation.jsonl"
    return read_jsonl(path) if path.exists() else []


def ablation_markdown(rows: list[dict[str, Any]], counts: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return "–" if x is None else f"{x:.3f}"

    lines = [
        f"Held-out split: {counts['heldout_questions']} questions, {counts['heldout_variants']} paraphrases "
        "of trained questions (the same for every set).",
        "",
        "| training set | records | held-out paraphrases: agreement | 1 − JSD | held-out questions: "
        "agreement | 1 − JSD |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r.get('records', '–')} | {f(r['paraphrase_agreement'])} | "
            f"{f(r['paraphrase_1_jsd'])} | {f(r['question_agreement'])} | {f(r['question_1_jsd'])} |"
        )
    return "\n".join(lines) + "\n"


def plot_ablation(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [r["set"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(rows) + 2), 4))
    for off, key, name in ((-0.2, "paraphrase_agreement", "agreement"), (0.2, "paraphrase_1_jsd", "1 − JSD")):
        ax.bar(x + off, [r[key] if r[key] is not None else 0.0 for r in rows], 0.4, label=name)
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title("ablation: held-out paraphrases of trained questions")
    ax.legend()
    fig.tight_layout()
    with target(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


@config_command(DatasetConfig, "dataset", defaults=SPLIT)
@config_command(FinetuneConfig, panel="Fine-tuning options", fields=FINETUNE_FIELDS)
def ablate_command(
    dataset: DatasetConfig,
    finetune_config: FinetuneConfig,
    augmented: Path = typer.Option(
        ..., "--augmented", "-a", help="augmented.jsonl (augment or augment import)"
    ),
    culture: str = typer.Option("arabic", "--culture", "-c"),
    out: Path = typer.Option(..., "--out", "-o", help="output directory"),
    base: str = typer.Option("bundled", "--base", help="model to fine-tune (spec)"),
    sizes: str = typer.Option("50,150,1000", "--sizes", help="record counts of the size arms (comma list)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    force: bool = typer.Option(
        False, "--force", help="write into an --out directory culturellm did not make"
    ),
) -> None:
    """Ablation in one command: seeds only / + paraphrases / + synonyms (/ + translations) and growing
    sizes, one held-out split (the dataset options are `culturellm dataset`'s; ablate's preset holds out
    10 questions and 30% of the wordings); writes OUT/ablation.jsonl, ablation.md and ablation.png."""
    try:
        size_list = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise CultureLLMError(f"--sizes must be a comma list of integers, got {sizes!r}") from None
    rows = ablate(
        augmented, culture, out, dataset, base=base, finetune_config=finetune_config, sizes=size_list,
        progress=progress, force=force,
    )  # fmt: skip
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown((out / "ablation.md").read_text(encoding="utf-8")))
    Console().print(
        f"{len(rows)} rows; wrote {out / 'ablation.jsonl'}, {out / 'ablation.md'}, {out / 'ablation.png'}"
    )


def register(app: typer.Typer) -> None:
    app.command("ablate")(ablate_command)
