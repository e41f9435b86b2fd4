"""CLI commands of culturellm.augment: `culturellm augment` (with `import` and `check`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from culturellm.augment.config import IMPORT_FIELDS, AugmentConfig
from culturellm.config_cli import MODELS, Endpoint, Force, Placement, Progress, config_command

AUGMENT_HELP = """Augment the WVS seed questions with any LLM: paraphrase -> similarity filter ->
synonym swap -> similarity filter (-> translation). Writes OUT/augmented.jsonl (one record per
variant) and OUT/manifest.json (counts, rejections, LLM requests, tokens, cost, data metrics).
Resumable: run again with the same --out to finish an interrupted run."""


@config_command(AugmentConfig, "augment")
@config_command(Endpoint, panel=MODELS)
def augment_command(
    config: AugmentConfig,
    endpoint: Endpoint,
    ctx: typer.Context,
    llm: str = typer.Option("bundled", "--llm", help="LLM spec: bundled, gemma3-270m, hf:DIR, openai:MODEL"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output directory (required)"),
    embedder: str = typer.Option("bundled", "--embedder", help="sentence embedder spec"),
    progress: Progress = True,
    force: Force = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from culturellm.augment import augment
    from culturellm.augment.state import OURS
    from culturellm.embed import load_embedder
    from culturellm.errors import CultureLLMError
    from culturellm.llm import load_model
    from culturellm.llm.access import access_of
    from culturellm.outdir import check_claim
    from culturellm.wvs import load_questions

    if out is None:
        raise CultureLLMError("give --out DIR (where augmented.jsonl and manifest.json go)")
    if config.import_file is not None:
        raise CultureLLMError(
            "--import-file is read by `culturellm run` ([augment] import_file); "
            "here use `culturellm augment import FILE --out DIR`"
        )
    seeds = config.select(load_questions())
    check_claim(out, "augment", force=force, ours=OURS)  # refuse before loading anything
    console = Console(stderr=True, emoji=False)
    console.print(f"loading {llm} and the {embedder} embedder ...", markup=False)
    access = access_of(endpoint)
    model = load_model(llm, access)
    emb = load_embedder(embedder)
    judge_model = load_model(config.judge, access) if config.judge else None
    manifest = augment(
        seeds, model, emb, config, out, progress=progress, force=force, judge=judge_model, access=access
    )
    _print_augment_summary(out, manifest)


def _print_augment_summary(out: Path, manifest: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"augmentation: {out}"))
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
    _print_estimate(manifest.get("meaning_estimate"))
    if manifest.get("judge"):
        j = manifest["judge"]
        per = "-" if j.get("requests_per_kept") is None else j["requests_per_kept"]
        band = (
            f"; verifier unsure band [{j['band'][0]:.3f}, {j['band'][1]:.3f}): {j['unsure']} judged, "
            f"{j['sure_kept']} kept and {j['sure_rejected']} rejected without the judge"
            if "band" in j
            else ""
        )
        Console().print(
            f"judge {j['model']}: {j['requests']} scoring requests ({per} per kept sample), "
            f"{j['rejected']} candidates rejected{band}"
        )


def _print_estimate(est: dict[str, Any] | None) -> None:
    """The estimated share of kept samples that change the meaning (a warning in red when high)."""
    from rich.console import Console

    from culturellm.meaning.estimate import describe

    style = "bold red" if est and est.get("warn") else None
    Console().print(describe(est), style=style, markup=False, highlight=False, soft_wrap=True)


IMPORT_HELP = """Import a published augmented set in the CultureLLM release's format (JSONL with q_id =
WVS question number without the Q, q_content = new wording, ori_content = the seed wording, option;
or the pooled rewordings' source, q_id, seed, candidate) into OUT/augmented.jsonl (similarities
recomputed with the embedder; lines that fit no seed are
rejected with a reason, counted in OUT/manifest.json). `culturellm dataset` reads the result."""


@config_command(
    AugmentConfig, "augment", "Import options (also in a run TOML's [augment])", fields=IMPORT_FIELDS
)
@config_command(Placement, panel=MODELS, fields=("device", "dtype"))
def import_command(
    config: AugmentConfig,
    placement: Placement,
    file: Path = typer.Argument(..., help="release-format JSONL"),
    out: Path = typer.Option(..., "--out", "-o", help="output directory"),
    embedder: str = typer.Option("bundled", "--embedder", help="sentence embedder spec"),
    force: bool = typer.Option(
        False, "--force", help="write into an --out directory culturellm did not make"
    ),
) -> None:
    from rich.console import Console

    from culturellm.augment.importer import check_import_filter, import_release
    from culturellm.embed import load_embedder
    from culturellm.errors import DataError
    from culturellm.llm.access import access_of
    from culturellm.outdir import check_claim

    check_claim(out, "augment-import", force=force)  # refuse before loading the embedder
    if not file.exists():  # a FIFO or a device is refused by the reader, by name
        raise DataError(f"{file}: file not found")
    check_import_filter(config.import_filter)  # an unknown name: before loading the embedder
    access = access_of(placement)
    manifest = import_release(file, out, load_embedder(embedder), config, force=force, access=access)
    c = manifest["counts"]
    reasons = ", ".join(
        f"{k} {v}" for k, v in sorted(manifest["rejection_reasons"].items(), key=lambda x: -x[1])
    )
    Console().print(
        f"wrote {Path(out) / 'augmented.jsonl'}: {c['accepted']} of {c['lines']} lines kept for {c['seeds']} "
        f"seed questions; {c['rejected']} rejected{f' ({reasons})' if reasons else ''}"
    )
    _print_estimate(manifest.get("meaning_estimate"))


CHECK_HELP = """Score every row of an augmented set with the meaning verifier: ours (augmented.jsonl or its
directory) or the CultureLLM release's format (q_id, q_content, ori_content). Prints a summary (kept,
rejected by reason) and writes one verdict per row (verdict, p_changed, reasons, feature values): by
default verdicts.jsonl beside an augmented.jsonl (read by `dataset --drop-rejected` and `review`),
FILE.verdicts.jsonl beside any other file."""


def check_command(
    file: Path = typer.Argument(..., help="augmented.jsonl (or its directory) or a release-format JSONL"),
    out: Path | None = typer.Option(None, "--out", "-o", help="verdict file (default: beside FILE)"),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, max=1.0, help="reject when P(changed) >= this (default: shipped)"
    ),
    embedder: str = typer.Option("bundled", "--embedder", help="sentence embedder spec"),
    device: str = typer.Option("cpu", "--device", help="device of the bundled model (fluency features)"),
    dtype: str = typer.Option("float32", "--dtype", help="dtype of the bundled model"),
    force: bool = typer.Option(False, "--force", help="replace an --out file culturellm did not write"),
    progress: Progress = True,
) -> None:
    from rich.console import Console

    from culturellm.embed import load_embedder
    from culturellm.meaning import verdicts as vd
    from culturellm.meaning.features import load_lm
    from culturellm.meaning.verifier import Verifier
    from culturellm.progress import progress_bar
    from culturellm.runlayout import RECORDS
    from culturellm.safewrite import check_output_file

    fmt, rows = vd.read_rows(file)
    out = out or vd.default_out(file, fmt)
    src = file / RECORDS if file.is_dir() else file
    check_output_file(out, inputs=[src], force=force, ours=vd.is_ours)  # before loading models
    verifier = Verifier(load_embedder(embedder), load_lm(device=device, dtype=dtype), threshold=threshold)
    with progress_bar(progress, console=Console(stderr=True), transient=False, rate="rows") as bar:
        result = vd.score(rows, verifier, progress=bar)
    vd.write(out, result)
    s = vd.summary(result)
    reasons = ", ".join(f"{k} {v}" for k, v in s["reasons"].items())
    skipped = f", {s['skipped']} skipped (translations)" if s["skipped"] else ""
    Console().print(
        f"{file} ({fmt} format): {s['rows']} rows, {s['kept']} kept, {s['rejected']} rejected"
        f"{f' ({reasons})' if reasons else ''}{skipped}; threshold {verifier.threshold:.3f}; wrote {out}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    _print_estimate(s["estimate"])


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    group = typer.Typer(help=AUGMENT_HELP, invoke_without_command=True, add_completion=False)
    group.callback()(augment_command)
    group.command("import", help=IMPORT_HELP)(import_command)
    group.command("check", help=CHECK_HELP)(check_command)
    app.add_typer(group, name="augment")
