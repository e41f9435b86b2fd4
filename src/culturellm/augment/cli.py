"""CLI commands of culturellm.augment: `culturellm augment` and `culturellm dataset`."""

from __future__ import annotations

from pathlib import Path

import typer

AUGMENT_HELP = """Augment the WVS seed questions with any LLM: paraphrase -> similarity filter ->
synonym swap -> similarity filter (-> translation). Writes OUT/augmented.jsonl (one record per
variant) and OUT/manifest.json (counts, rejections, LLM requests, tokens, cost, data metrics).
Resumable: run again with the same --out to finish an interrupted run."""

DATASET_HELP = """Turn augmented questions into an OpenAI-format chat fine-tuning JSONL for one or more
cultures (several / 'all' = CultureLLM-One). Writes OUT and OUT's .manifest.json (split, counts, sha256)."""


def augment_command(
    llm: str = typer.Option("bundled", "--llm", help="LLM spec: bundled, gemma3-270m, hf:DIR, openai:MODEL"),
    n: int = typer.Option(5, "--n", min=0, help="paraphrases kept per seed (step 1)"),
    m: int = typer.Option(10, "--m", min=0, help="synonym variants kept per seed (step 2)"),
    out: Path = typer.Option(..., "--out", "-o", help="output directory"),
    limit_seeds: int | None = typer.Option(None, "--limit-seeds", min=1, help="only the first N seeds"),
    questions: list[str] | None = typer.Option(None, "--question", "-q", help="only these question ids"),
    embedder: str = typer.Option("bundled", "--embedder", help="sentence embedder spec"),
    t1: float | None = typer.Option(None, "--t1", help="min cosine(paraphrase, seed)"),
    t2: float | None = typer.Option(None, "--t2", help="min cosine(synonym variant, seed)"),
    k: int | None = typer.Option(None, "--k", min=1, help="rewrites asked per paraphrase request (n + 2)"),
    max_words: int | None = typer.Option(
        None, "--max-words", min=1, help="content words per synonym request (6)"
    ),
    retries: int | None = typer.Option(None, "--retries", min=0, help="re-asks for seeds short of n"),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, help="sampling temperature"),
    translate: str | None = typer.Option(None, "--translate", help="also translate into this language"),
    synonym_requests: str | None = typer.Option(
        None,
        "--synonym-requests",
        help="sentence (one request per paraphrase, default) or seed (one per seed)",
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="seeds per LLM batch"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="use the LLM response cache"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible base URL"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    from rich.console import Console
    from rich.table import Table

    from culturellm.augment import AugmentConfig, augment
    from culturellm.embed import load_embedder
    from culturellm.errors import CultureLLMError
    from culturellm.llm import load_model
    from culturellm.wvs import load_questions

    opts = {"n": n, "m": m, "seed": seed}
    for key, v in {
        "t1": t1, "t2": t2, "retries": retries, "temperature": temperature,
        "translate": translate, "batch_size": batch_size, "synonym_requests": synonym_requests,
        "k": k, "max_words": max_words,
    }.items():  # fmt: skip
        if v is not None:
            opts[key] = v
    from pydantic import ValidationError

    try:
        config = AugmentConfig(**opts)
    except ValidationError as e:
        why = "; ".join(
            f"--{'-'.join(str(x) for x in err['loc']).replace('_', '-')}: {err['msg']}" for err in e.errors()
        )
        raise CultureLLMError(f"invalid option: {why}") from None
    seeds = load_questions()
    if questions:
        known = {q.id for q in seeds}
        bad = [q for q in questions if q not in known]
        if bad:
            raise CultureLLMError(
                f"unknown question id(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
            )
        seeds = [q for q in seeds if q.id in set(questions)]
    if limit_seeds:
        seeds = seeds[:limit_seeds]
    console = Console(stderr=True)
    console.print(f"loading {llm} and the {embedder} embedder ...")
    model = load_model(llm, base_url=base_url, cache=cache)
    emb = load_embedder(embedder)
    manifest = augment(seeds, model, emb, config, out, progress=progress)

    table = Table(title=f"augmentation: {out}")
    for col in ("step", "requests", "candidates", "accepted", "rejection rate", "top rejection reasons"):
        table.add_column(col)
    for step, d in manifest["steps"].items():
        if not d["requests"] and not d["candidates"]:
            continue
        reasons = sorted(d["reasons"].items(), key=lambda kv: -kv[1])[:3]
        rate = d["rejection_rate"]
        table.add_row(
            step,
            str(d["requests"]),
            str(d["candidates"]),
            str(d["accepted"]),
            "-" if rate is None else f"{rate:.0%}",
            ", ".join(f"{k} {v}" for k, v in reasons),
        )
    Console().print(table)
    c, u = manifest["counts"], manifest["usage"]
    per = manifest["llm_requests_per_accepted"]
    Console().print(
        f"{c['seeds']} seeds -> {c['accepted']} new samples "
        f"({c['paraphrase']} paraphrases, {c['synonym']} synonym variants, {c['translation']} translations); "
        f"{manifest['llm_requests']} LLM requests ({'-' if per is None else per} per sample), "
        f"{u['requests']} paid, {u['cache_hits']} cache hits, {manifest['tokens']} tokens, "
        f"${manifest['cost_usd']:.4f}; {manifest['elapsed_s']:.0f} s. "
        f"diversity gain {manifest['metrics']['diversity_gain']}, "
        f"distinct-2 {manifest['metrics']['distinct_2_seeds']} -> {manifest['metrics']['distinct_2_all']}"
    )


def dataset_command(
    culture: list[str] = typer.Option(..., "--culture", "-c", help="culture name (repeat) or 'all'"),
    augmented: Path = typer.Option(
        ..., "--augmented", "-a", help="augmented.jsonl from `culturellm augment`"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="output training JSONL"),
    target: str = typer.Option("majority", "--target", help="majority or distribution"),
    holdout_questions: int = typer.Option(0, "--holdout-questions", min=0, help="hold out K whole questions"),
    holdout_fraction: float = typer.Option(
        0.0, "--holdout-fraction", help="hold out this fraction of questions"
    ),
    holdout_variants: float = typer.Option(
        0.0, "--holdout-variants", help="hold out this fraction of each question's variants"
    ),
    seed: int = typer.Option(0, "--seed", help="random seed of the split and of distribution targets"),
) -> None:
    from rich.console import Console

    from culturellm.augment import build_training_set, split_manifest_path

    manifest = build_training_set(
        culture,
        augmented,
        out,
        target=target,  # type: ignore[arg-type]
        holdout_questions=holdout_questions,
        holdout_fraction=holdout_fraction,
        seed=seed,
        holdout_variants=holdout_variants,
    )
    c = manifest["counts"]
    per = ", ".join(f"{k} {v}" for k, v in c["per_culture"].items())
    Console().print(
        f"wrote {out}: {c['records']} records ({per}); {c['train_questions']} training questions, "
        f"{c['heldout_questions']} held-out questions, {c['heldout_variants']} held-out variants; "
        f"split in {split_manifest_path(out)}"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("augment", help=AUGMENT_HELP)(augment_command)
    app.command("dataset", help=DATASET_HELP)(dataset_command)
