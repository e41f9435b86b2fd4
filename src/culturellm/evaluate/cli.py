"""CLI commands of culturellm.evaluate: tasks, evaluate, align, report."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import typer

from culturellm.config_cli import MODELS, Endpoint, Force, Placement, Progress, config_command
from culturellm.errors import CultureLLMError
from culturellm.evaluate.config import EvaluateConfig
from culturellm.evaluate.variant import RETRIEVE, ModelVariant, Retrieval, System
from culturellm.llm.access import ModelAccess, access_of
from culturellm.names import check_name
from culturellm.regularfiles import check_input

CONTEXT_HELP = (
    "A file whose text is the system message, or retrieve:K: the culture prompt plus the culture's "
    "survey answers to the K training questions nearest each asked one (MiniLM)."
)


def _variants(
    models: list[str],
    labels: list[str] | None,
    baselines: bool,
    context: Path | None,
    culture_prompt: bool,
    access: ModelAccess,
) -> list[ModelVariant]:
    """The compared variants; `access` is how every model is reached and placed."""

    def variant(label: str, spec: str, system: System) -> ModelVariant:
        return ModelVariant(label, spec, system, access)

    if not models:
        raise CultureLLMError("give at least one --model SPEC (e.g. --model bundled)")
    labels = labels or []
    if len(labels) > len(models):
        raise CultureLLMError(f"{len(labels)} --label for {len(models)} --model")
    out = []
    for i, spec in enumerate(models):
        label = check_name(labels[i], "--label") if i < len(labels) else spec
        out.append(variant(label, spec, "culture" if culture_prompt else None))
        if baselines and not culture_prompt:
            out.append(variant(f"{label}+culture-prompt", spec, "culture"))
        if context is not None:
            out.append(variant(f"{label}+context", spec, context))
    return out


def tasks_command(
    culture: str | None = typer.Option(None, "--culture", "-c", help="Only this culture's tasks."),
    type_: str | None = typer.Option(None, "--type", help="Only this task type (offensive, hate...)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line (every field)."),
) -> None:
    """List the evaluation tasks (bundled registry + the user's tasks.toml)."""
    from culturellm.evaluate.tasks import list_tasks

    if culture is not None:
        from culturellm.cultures import get_culture

        culture = get_culture(culture).name
    tasks = list_tasks(culture=culture, type=type_)
    if as_json:
        for t in tasks:
            d = t.to_dict()
            d["labels"] = list(t.labels)
            d["verbalizations"] = dict(t.labels)
            print(json.dumps(d, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Column, Table

    # The name is what --task takes: never wrapped or cut; the labels wrap; the path is in --json.
    width = max((len(t.name) for t in tasks), default=4)
    table = Table(
        Column("name", no_wrap=True, min_width=width),
        Column("type", no_wrap=True),
        Column("labels", overflow="fold"),
        title=f"{len(tasks)} tasks (--json: data paths and every field)",
        box=None,
        pad_edge=False,
    )
    for t in tasks:
        table.add_row(t.name, t.type, ", ".join(t.verbalizations))
    Console(markup=False, emoji=False).print(table)


@config_command(EvaluateConfig, "evaluate")
@config_command(Endpoint, panel=MODELS)
@config_command(Placement, panel=MODELS)
def evaluate_command(
    cfg: EvaluateConfig,
    endpoint: Endpoint,
    placement: Placement,
    model: list[str] = typer.Option([], "--model", "-m", help="Model spec (repeatable)."),
    label: list[str] = typer.Option([], "--label", help="Name of the matching --model in reports."),
    culture: list[str] = typer.Option([], "--culture", "-c", help="Culture (repeatable)."),
    out: Path = typer.Option(Path("eval-out"), "--out", "-o", help="Output directory."),
    culture_prompt: bool = typer.Option(
        False, "--culture-prompt", help="Give every model the culture prompt."
    ),
    context: Path | None = typer.Option(None, "--context", help="Also each model + this context as system."),
    progress: Progress = True,
    force: Force = False,
) -> None:
    """Evaluate models on the culture datasets (and with --general on general-ability tasks):
    OUT/results.jsonl, OUT/general.jsonl, OUT/report.md, OUT/plots/*.png."""
    from culturellm.evaluate.runner import evaluate
    from culturellm.outdir import check_claim

    if not culture and not cfg.general:
        raise CultureLLMError("give at least one --culture (see `culturellm cultures`) or --general")
    if cfg.mode != "generate" and (cfg.temperature is not None or cfg.max_tokens is not None):
        raise CultureLLMError("--temperature and --max-tokens apply to --mode generate only")
    if context is not None and str(context).startswith(RETRIEVE):
        raise CultureLLMError(
            f"--context {context}: retrieval asks the WVS survey questions; use it with `culturellm align`"
        )
    access = access_of(endpoint, placement)  # every model below is loaded with it (--timeout included)
    variants = _variants(model, label, cfg.baselines, context, culture_prompt, access)
    check_claim(out, "evaluate", force=force)  # before any model runs
    with _claimed(out, force):
        if cfg.general:
            _general(variants, cfg, out, report=not culture, access=access)
        if not culture:
            return
        rows = evaluate(variants, culture, cfg, out, progress=progress)
    _print_f1_table(rows, out)


def _general(variants, config, out: Path, report: bool, access: ModelAccess) -> None:
    """The forgetting check of `culturellm evaluate --general`, its table on the terminal."""
    from rich.console import Console

    from culturellm.evaluate.general import GeneralOptions, general_table, run_general

    options = GeneralOptions(config.general_limit, config.seed, device=access.device, dtype=access.dtype)
    rows = run_general(variants, config.general, out, options)
    if report:
        from culturellm.evaluate.report import write_report

        write_report([out], out)
    con = Console()
    con.print(general_table(rows))
    con.print(f"wrote {out / 'general.jsonl'}" + (f", {out / 'report.md'}" if report else ""))


@contextlib.contextmanager
def _claimed(out: Path, force: bool):
    """Claim `out` (culturellm.outdir) for the evaluation; when it fails and `out` was created for it
    and holds nothing else, remove it again (a failed evaluation leaves no empty output behind)."""
    from culturellm.outdir import MARKER, claim

    created = not out.exists()
    claim(out, "evaluate", force=force)
    try:
        yield
    except BaseException:
        if created and [p.name for p in out.iterdir()] == [MARKER]:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _print_f1_table(rows: list[dict], out: Path) -> None:
    from rich.console import Console

    from culturellm.evaluate.report import summarize
    from culturellm.tables import print_table

    s = summarize(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    body = []
    for c, d in sorted(s["culture"].items()):
        rnd = [x for x in s["random"][c].values() if x is not None]
        mean_rnd = f"{sum(rnd) / len(rnd):.3f}" if rnd else "–"
        body.append([c, *(f"{d.get(m, float('nan')):.3f}" for m in models), mean_rnd])
    con = Console(markup=False, emoji=False)
    print_table(con, ["culture", *models, "random"], body, title="mean macro-F1", right=[*models, "random"])
    con.print(f"wrote {out / 'results.jsonl'}, {out / 'report.md'}, {out / 'plots'}/", soft_wrap=True)


@config_command(Endpoint, panel=MODELS)
@config_command(Placement, panel=MODELS)
def align_command(
    endpoint: Endpoint,
    placement: Placement,
    model: list[str] = typer.Option(..., "--model", "-m", help="Model spec (repeat for a matrix)."),
    culture: list[str] = typer.Option(
        ..., "--culture", "-c", help="Culture whose WVS answers are the target (repeat for a matrix)."
    ),
    split: Path | None = typer.Option(None, "--split", help="A <train>.manifest.json: held-out items only."),
    culture_prompt: bool = typer.Option(
        False, "--culture-prompt", help="Ask with the culture system prompt."
    ),
    context: str | None = typer.Option(None, "--context", help=CONTEXT_HELP),
    label: str | None = typer.Option(None, "--label", help="The model's name in the output."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Record it in OUT/align.jsonl (+ OUT/align/); a finished one is reused."
    ),
    progress: Progress = True,
    force: bool = typer.Option(
        False, "--force", help="Write into an --out directory culturellm did not make."
    ),
) -> None:
    """WVS alignment: majority agreement and 1 - Jensen-Shannon distance to the culture's answers.
    Several --model and/or --culture: a model x culture matrix (JSON, tables, OUT/align_matrix.png)."""
    import contextlib

    from rich.console import Console
    from rich.text import Text

    from culturellm.evaluate.align import AlignJob, align, align_all

    if culture_prompt and context:
        raise CultureLLMError("give --culture-prompt or --context, not both")
    access = access_of(endpoint, placement)
    claim_out = _align_claim(out, force)  # refuses a directory of the user's files before any model runs
    system: System = "culture" if culture_prompt else _context(context)
    context_file = system if isinstance(system, Path) else None
    _check_inputs((split, "json"), (context_file, "text"))  # a FIFO, /dev/zero: one line, nothing claimed
    if len(model) > 1 or len(culture) > 1:
        if label:
            raise CultureLLMError("--label names a single --model; omit it for a matrix")
        variants = [ModelVariant(m, m, system, access) for m in model]
        _matrix_command(variants, culture, split, as_json, out, claim_out)
        return
    model, culture = model[0], culture[0]
    label = check_name(label, "--label") if label is not None else None
    variant = ModelVariant(label or model, model, system, access)
    status = Console(stderr=True).status(Text(f"aligning {variant.label} with {culture}"))
    with status if progress else contextlib.nullcontext():
        if out is not None:
            claim_out()
            (res,) = align_all([AlignJob(variant, split)], culture, out)
        else:
            res = align(variant, culture, split=split)
    if as_json:
        print(json.dumps(res, ensure_ascii=False))
        return
    _print_alignment(res)


def _context(value: str | None) -> System:
    """`align --context`: retrieve:K (a Retrieval) or a file whose text is the system message."""
    if value is None:
        return None
    return Retrieval.parse(value) if value.startswith(RETRIEVE) else Path(value)


def _check_inputs(*files: tuple[Path | None, str]) -> None:
    """Each given input file that exists is a regular file within its kind's size limit
    (culturellm.regularfiles); a missing one is reported by its reader."""
    for path, kind in files:
        if path is not None and path.exists():
            check_input(path, kind)


def _align_claim(out: Path | None, force: bool):
    """Check `align --out` now (culturellm.outdir); the returned function claims it once results exist."""
    from culturellm.outdir import check_claim, claim

    if out is not None:
        check_claim(out, "align", force=force, accept=("evaluate", "run"))
    return lambda: claim(out, "align", force=force, accept=("evaluate", "run")) if out is not None else None


def _matrix_command(
    variants: list, cultures: list[str], split: Path | None, as_json: bool, out: Path | None, claim_out
) -> None:
    from culturellm.evaluate.matrix import align_matrix, matrix_markdown, plot_matrix

    matrix = align_matrix(variants, cultures, split)
    if out is not None:
        from culturellm.jsonio import write_json
        from culturellm.runlayout import ALIGN_MATRIX

        claim_out()
        write_json(out / ALIGN_MATRIX, matrix)
        matrix["plot"] = str(plot_matrix(matrix, out / "align_matrix.png"))
    if as_json:
        print(json.dumps(matrix, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(matrix_markdown(matrix)))
    if out is not None:
        Console().print(f"wrote {out / 'align_matrix.json'}, {out / 'align_matrix.png'}")


def _print_alignment(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "question", "kind", "model", "majority", "1-JSD", title=f"{res['model']} · {res['culture']}"
    )
    for q in res["questions"]:
        table.add_row(
            q["question_id"], q["kind"], q["model_answer"], q["majority"], f"{q['one_minus_jsd']:.3f}"
        )
    con = Console(markup=False, emoji=False)
    con.print(table)
    con.print(
        f"majority agreement {res['majority_agreement']:.3f} (chance {res['chance_agreement']:.3f}) · "
        f"1-JSD {res['one_minus_jsd']:.3f} (uniform {res['uniform_one_minus_jsd']:.3f}) · "
        f"1-W1 {res['one_minus_wasserstein']:.3f} (uniform {res['uniform_one_minus_wasserstein']:.3f}) · "
        f"{res['n_questions']} items · scoring {res['scoring']}"
    )


def report_command(
    results: list[Path] = typer.Argument(..., help="results.jsonl files or directories holding one."),
    out: Path = typer.Option(..., "--out", "-o", help="Where report.md, plots/ and the merged results go."),
    force: bool = typer.Option(
        False, "--force", help="Write into an existing --out directory that culturellm did not make."
    ),
) -> None:
    """Merge evaluation runs into one report (later files win for the same model x task)."""
    from culturellm.evaluate.report import load_rows, write_report
    from culturellm.jsonio import write_jsonl
    from culturellm.outdir import claim
    from culturellm.runlayout import RESULTS

    rows, _ = load_rows(results)
    # never over a user's own report.md: OUT is new, or an output culturellm made
    claim(out, "report", force=force, accept=("evaluate", "run"))
    merged = out / RESULTS
    if not any(Path(p).resolve() in (merged.resolve(), out.resolve()) for p in results):
        write_jsonl(merged, rows)
    path = write_report(results, out)
    print(path)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("tasks")(tasks_command)
    app.command("evaluate")(evaluate_command)
    app.command("align")(align_command)
    app.command("report")(report_command)
