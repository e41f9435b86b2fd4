"""report.md and plots from one or more results.jsonl files (and the align.jsonl files beside them)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.jsonio import atomic_write_text, iter_jsonl, numbered_jsonl
from culturellm.names import check_name, child
from culturellm.numbers import check_number, plain
from culturellm.runlayout import ALIGN, GENERAL, PLOTS, REPORT, RESULTS
from culturellm.safewrite import target

NEAR_CHANCE = 0.05  # a model whose mean macro-F1 is within this of the random baseline is "near chance"


def load_rows(results: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Result rows (later files win for the same model x task) and alignment rows (align.jsonl next to
    each results file; later win for the same model x culture)."""
    res: dict[tuple[str, str], dict[str, Any]] = {}
    al: dict[tuple[str, str], dict[str, Any]] = {}
    for p in results:
        p = Path(p)
        if p.is_dir():
            p = p / RESULTS
        if not p.exists() and (p.parent / GENERAL).exists():
            continue  # a forgetting check alone (evaluate --general without --culture)
        if not p.exists():
            raise DataError(f"{p}: results file not found")
        for i, r in numbered_jsonl(p, tolerate_torn_tail=True):
            check_row(r, f"{p}:{i}")
            res[(r["model"], r["task"])] = r
        a = p.parent / ALIGN
        if a.exists():
            for r in iter_jsonl(a, tolerate_torn_tail=True):
                if "model" in r and "majority_agreement" in r:
                    al[(r["model"], r.get("culture", ""))] = r
    return list(res.values()), list(al.values())


def check_row(r: dict[str, Any], where: str) -> None:
    """A result row's names are text, its culture (which names a plot file) a safe name, and its
    numbers finite and in range (macro-F1 in [0, 1], n >= 0); DataError naming `where` otherwise."""
    for key in ("task", "model", "macro_f1"):
        if key not in r:
            raise DataError(f"{where}: result row without '{key}'")
    for key in ("task", "model"):
        if not isinstance(r[key], str):
            raise DataError(f"{where}: '{key}' must be text, got {plain(r[key])}")
    if "culture" in r:
        check_name(r["culture"], "field 'culture'", where)
    for key in ("macro_f1", "accuracy"):
        if r.get(key) is not None:
            check_number(r[key], f"{where}: '{key}'", lo=0.0, hi=1.0)
    if r.get("n") is not None:
        check_number(r["n"], f"{where}: 'n'", lo=0, integer=True)
    for name, v in (r.get("baselines") or {}).items() if isinstance(r.get("baselines"), dict) else ():
        if v is not None:
            check_number(v, f"{where}: baseline '{name}'", lo=0.0, hi=1.0)


def _f(x: Any, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _models(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in rows))


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means per culture x model and per type x model, with the baselines' means on the same tasks."""
    by_culture: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_type: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    base_c: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_culture[r.get("culture", "?")][r["model"]].append(r["macro_f1"])
        by_type[r.get("type", "?")][r["model"]].append(r["macro_f1"])
        b = r.get("baselines") or {}
        base_c[r.get("culture", "?")][r["model"]].append(b.get("random"))
    return {
        "culture": {c: {m: _mean(v) for m, v in d.items()} for c, d in by_culture.items()},
        "type": {t: {m: _mean(v) for m, v in d.items()} for t, d in by_type.items()},
        "random": {c: {m: _mean(v) for m, v in d.items()} for c, d in base_c.items()},
    }


def _table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def render_markdown(
    rows: list[dict[str, Any]],
    align_rows: list[dict[str, Any]],
    plots: list[Path],
    general: list[dict[str, Any]] | None = None,
) -> str:
    from culturellm.evaluate.general import general_section

    models = _models(rows)
    summary = summarize(rows)
    out = ["# CultureLLM evaluation report"]
    if rows:
        out = _intro(rows, models) + _notes(rows, models) + _overall(rows, models, summary)
    for c in sorted(summary["culture"]):
        out += _culture_section(rows, models, c)
    out += _align_section(align_rows)
    out += general_section(general or [])
    if plots:
        out += ["", "## Plots", ""]
        out += [f"![{p.stem}]({PLOTS}/{p.name})" for p in plots]
    return "\n".join(out) + "\n"


def _intro(rows: list[dict[str, Any]], models: list[str]) -> list[str]:
    modes = sorted({r.get("mode", "score") for r in rows})
    calibrated = any((r.get("calibration") or {}).get("method") == "contextual" for r in rows)
    gens = sorted({json.dumps(r["generation"], sort_keys=True) for r in rows if r.get("generation")})
    limits = sorted({str(r.get("limit")) for r in rows})
    seeds = sorted({str(r.get("seed")) for r in rows})
    data_dirs = sorted({str(r.get("data_dir")) for r in rows})
    out = ["# CultureLLM evaluation report", ""]
    out += [
        f"Models: {', '.join(models) or 'none'}. Tasks: {len({r['task'] for r in rows})}. "
        f"Mode: {', '.join(modes)} (score = each label's verbalization scored by log-probability"
        + (
            ", contextually calibrated: the label prior the model shows on content-free texts "
            "(N/A, empty, [MASK]) is divided out, Zhao et al. 2021"
            if calibrated
            else ""
        )
        + "; generate = a reply parsed to a label"
        + (f", sampling {', '.join(gens)}" if gens else "")
        + "). "
        f"Examples per task: limit {', '.join(limits)} (stratified, seed {', '.join(seeds)}).",
        "",
        "Metric: macro-F1 over each task's full label set (scikit-learn, zero_division=0) with a 95% "
        "bootstrap CI (1000 resamples of the examples). Baselines: *majority* = always the most frequent "
        "label of these examples; *random* = expected macro-F1 of uniform guessing (exact). Every model "
        "ran once under the same protocol; no best-of-n.",
        "",
        f"Data: {', '.join(data_dirs)}.",
    ]
    scoring = {
        m: sorted({str(r["scoring"]) for r in rows if r["model"] == m and r.get("scoring")}) for m in models
    }
    if any(scoring.values()):
        out += [
            "",
            "Label scoring: "
            + "; ".join(f"{m}: {', '.join(v)}" for m, v in scoring.items() if v)
            + " (*exact* = every token of each label, and the end of the turn, as the assistant reply; "
            "*first-token* = an HTTP server's top-20 log-probabilities of the first token only; *parse* = "
            "a generated reply naming one label).",
        ]
    if any(r.get("bundled_sample") for r in rows):
        out += [
            "",
            "> **Note:** these numbers come from the bundled *release sample* (at most 30 rows per dataset, "
            "class-balanced), not the benchmark. They exercise the pipeline; CIs are wide. Point "
            "`--data-dir` at the release's `data/` folder for real numbers.",
        ]
    return out


def _notes(rows: list[dict[str, Any]], models: list[str]) -> list[str]:
    """Honest notes: near-chance models, calibrated vs uncalibrated, unparseable replies."""
    notes = []
    for m in models:
        mr = [r for r in rows if r["model"] == m]
        f1 = _mean([r["macro_f1"] for r in mr])
        rnd = _mean([(r.get("baselines") or {}).get("random") for r in mr])
        maj = _mean([(r.get("baselines") or {}).get("majority") for r in mr])
        if f1 is not None and rnd is not None and f1 - rnd < NEAR_CHANCE:
            notes.append(
                f"- **{m}** is near chance: mean macro-F1 {_f(f1)} vs. {_f(rnd)} for random guessing "
                f"and {_f(maj)} for the majority class. Differences between such models are noise."
            )
        raw = _mean([r.get("macro_f1_uncalibrated") for r in mr])
        if raw is not None:
            notes.append(
                f"- **{m}**: mean macro-F1 {_f(f1)} with contextual calibration, {_f(raw)} without "
                "(the uncalibrated label with the highest log-probability)."
            )
        up = _mean([r.get("unparseable_rate") for r in mr])
        if up:
            notes.append(
                f"- **{m}**: {100 * up:.1f}% of replies could not be mapped to a label (counted wrong)."
            )
    return ["", "## Read this first", "", *notes] if notes else []


def _overall(rows: list[dict[str, Any]], models: list[str], summary: dict[str, Any]) -> list[str]:
    out = ["", "## Mean macro-F1 per culture", ""]
    body = []
    for c in sorted(summary["culture"]):
        d = summary["culture"][c]
        rnd = _mean(list(summary["random"][c].values()))
        body.append(
            [c, str(len({r["task"] for r in rows if r.get("culture") == c}))]
            + [_f(d.get(m)) for m in models]
            + [_f(rnd)]
        )
    out.append(_table(["culture", "tasks", *models, "random"], body))

    out += ["", "## Mean macro-F1 per task type", ""]
    body = [[t, *(_f(summary["type"][t].get(m)) for m in models)] for t in sorted(summary["type"])]
    out.append(_table(["type", *models], body))
    return out


def _culture_section(rows: list[dict[str, Any]], models: list[str], c: str) -> list[str]:
    out = ["", f"## {c}", ""]
    crow = [r for r in rows if r.get("culture") == c]
    tasks = list(dict.fromkeys(r["task"] for r in crow))
    idx = {(r["model"], r["task"]): r for r in crow}
    body = []
    for t in tasks:
        any_row = next(r for r in crow if r["task"] == t)
        cells = []
        for m in models:
            r = idx.get((m, t))
            if r is None:
                cells.append("–")
                continue
            ci = r.get("macro_f1_ci") or [None, None]
            cells.append(f"{_f(r['macro_f1'])} [{_f(ci[0], 2)}, {_f(ci[1], 2)}]")
        b = any_row.get("baselines") or {}
        extra = ""
        present = [k for k, v in (any_row.get("label_counts") or {}).items() if v]
        if len(present) < len(any_row.get("labels") or present):
            extra = " (one class)" if len(present) == 1 else " (classes missing)"
        body.append(
            [
                t.split("/", 1)[-1] + extra,
                any_row.get("type", ""),
                str(any_row.get("n")),
                *cells,
                _f(b.get("majority")),
                _f(b.get("random")),
            ]
        )
    out.append(_table(["task", "type", "n", *models, "majority", "random"], body))
    skipped = sum(r.get("skipped_empty", 0) for r in crow if r["model"] == models[0])
    if skipped:
        out += ["", f"Rows with an empty label or text skipped: {skipped}."]
    return out


def _align_section(align_rows: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    if align_rows:
        out += ["", "## WVS alignment", ""]
        out += [
            "Each seed question asked with the training wording; answer distribution = softmax over the "
            "option codes' log-probabilities. *agreement* = most likely code is the survey majority; "
            "*1−JSD* = 1 − Jensen–Shannon distance (base 2) to the survey distribution (ignores the "
            "order of the options); *1−W1* = 1 − Wasserstein-1 (earth mover's) distance over the "
            "ordered options divided by the scale's span (SubPOP's ordinal measure: answering "
            "'strongly agree' for 'agree' costs less than 'strongly disagree'). Brackets: 95% "
            "bootstrap CI resampling questions. Chance = uniform answer distribution. Reference rows: "
            "*uniform answer* (every option equally likely) and "
            "*another culture's survey* used as the answer (how far apart the two cultures are on these "
            "items).",
            "",
        ]
        body = []
        for r in _with_reference_rows(align_rows):
            body.append(
                [
                    r.get("culture", ""),
                    r["model"],
                    str(r.get("n_questions", "")),
                    _with_ci(r, "majority_agreement"),
                    _f(r.get("chance_agreement")),
                    _with_ci(r, "one_minus_jsd"),
                    _f(r.get("uniform_one_minus_jsd")),
                    _with_ci(r, "one_minus_wasserstein"),
                    _f(r.get("uniform_one_minus_wasserstein")),
                    "held-out" if r.get("split") else "all seeds",
                    str(r.get("scoring", "exact")),
                ]
            )
        out.append(
            _table(
                [
                    "culture",
                    "model",
                    "questions",
                    "agreement",
                    "chance",
                    "1−JSD",
                    "uniform 1−JSD",
                    "1−W1",
                    "uniform 1−W1",
                    "items",
                    "scoring",
                ],
                body,
            )
        )
    return out


def _with_ci(row: dict[str, Any], measure: str) -> str:
    """'0.812 [0.770, 0.851]' when the row has a CI for the measure (`align` rows do), else the value."""
    ci = (row.get("ci") or {}).get(measure)
    if not ci or ci.get("lo") is None:
        return _f(row.get(measure))
    return f"{_f(row.get(measure))} [{_f(ci['lo'])}, {_f(ci['hi'])}]"


def _with_reference_rows(align_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alignment rows grouped by culture (models in file order), each culture followed by its reference
    rows: the uniform answer and another culture's survey on the same items (from the first row that
    carries them, culturellm.evaluate.baselines.annotate)."""
    out: list[dict[str, Any]] = []
    cultures = list(dict.fromkeys(r.get("culture", "") for r in align_rows))
    for c in cultures:
        rows = [r for r in align_rows if r.get("culture", "") == c]
        out += rows
        ref = next((r for r in rows if r.get("uniform")), None)
        if ref is None:
            continue
        base = {"culture": c, "split": ref.get("split"), "items": ref.get("items")}
        u = ref["uniform"]
        out.append({**base, **u, "model": "reference: uniform answer"})
        k = ref.get("contrast") or {}
        if k.get("n_questions"):
            out.append({**base, **k, "model": f"reference: {k['culture']} survey"})
    return out


def make_plots(rows: list[dict[str, Any]], align_rows: list[dict[str, Any]], plot_dir: Path) -> list[Path]:
    """Per-culture grouped bars (models side by side, 95% CI error bars, random baseline marked), a radar
    of mean macro-F1 per task type, and an alignment bar chart when alignment rows exist."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    models = _models(rows)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    cultures = sorted({r.get("culture", "?") for r in rows})
    made = [
        _culture_plot(c, [r for r in rows if r.get("culture", "?") == c], models, colors, plot_dir)
        for c in cultures
    ]
    for plot in (_types_plot(rows, models, colors, plot_dir), _align_plot(align_rows, plot_dir)):
        if plot is not None:
            made.append(plot)
    return made


def _culture_plot(
    c: str, crow: list[dict[str, Any]], models: list[str], colors: list[str], plot_dir: Path
) -> Path:
    """plots/f1_<culture>.png: macro-F1 per task, one bar per model with its 95% CI, random dashed."""
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = list(dict.fromkeys(r["task"] for r in crow))
    idx = {(r["model"], r["task"]): r for r in crow}
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(tasks) + 2), 4.2))
    x = np.arange(len(tasks))
    for j, m in enumerate(models):
        vals, lo, hi = [], [], []
        for t in tasks:
            r = idx.get((m, t))
            v = r["macro_f1"] if r and r["macro_f1"] is not None else np.nan
            ci = (r.get("macro_f1_ci") if r else None) or [v, v]
            vals.append(v)
            lo.append(max(v - ci[0], 0) if not np.isnan(v) else 0)
            hi.append(max(ci[1] - v, 0) if not np.isnan(v) else 0)
        ax.bar(
            x + (j - (len(models) - 1) / 2) * width,
            vals,
            width,
            yerr=[lo, hi],
            capsize=2,
            label=m,
            color=colors[j % len(colors)],
        )
    for i, t in enumerate(tasks):
        b = (next(r for r in crow if r["task"] == t).get("baselines") or {}).get("random")
        if b is not None:
            ax.hlines(
                b,
                i - 0.45,
                i + 0.45,
                colors="black",
                linestyles="dashed",
                linewidth=1,
                label="random" if i == 0 else None,
            )
    ax.set_xticks(x)
    ax.set_xticklabels([t.split("/", 1)[-1] for t in tasks], rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("macro-F1 (95% CI)")
    ax.set_title(f"{c}: macro-F1 per task")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = (
        plot_dir / "f1_unknown.png"
        if c == "?"
        else child(plot_dir, c, "culture", prefix="f1_", suffix=".png")
    )
    with target(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _types_plot(
    rows: list[dict[str, Any]], models: list[str], colors: list[str], plot_dir: Path
) -> Path | None:
    """Mean macro-F1 per task type: a radar (three types or more) or bars."""
    import matplotlib.pyplot as plt
    import numpy as np

    summary = summarize(rows)["type"]
    types = sorted(summary)
    if not types:
        return None
    path = plot_dir / "task_types.png"
    if len(types) >= 3:
        ang = np.linspace(0, 2 * np.pi, len(types), endpoint=False).tolist()
        fig = plt.figure(figsize=(5.5, 5.5))
        ax = fig.add_subplot(111, polar=True)
        for j, m in enumerate(models):
            vals = [summary[t].get(m) or 0.0 for t in types]
            ax.plot(ang + ang[:1], vals + vals[:1], label=m, color=colors[j % len(colors)])
            ax.fill(ang + ang[:1], vals + vals[:1], alpha=0.1, color=colors[j % len(colors)])
        ax.set_xticks(ang)
        ax.set_xticklabels(types)
        ax.set_ylim(0, 1)
        ax.set_title("mean macro-F1 per task type")
        ax.legend(loc="lower right", bbox_to_anchor=(1.25, -0.05), fontsize=8)
    else:  # a radar needs three axes: bars instead
        fig, ax = plt.subplots(figsize=(5, 4))
        width = 0.8 / max(len(models), 1)
        for j, m in enumerate(models):
            ax.bar(
                np.arange(len(types)) + j * width,
                [summary[t].get(m) or 0.0 for t in types],
                width,
                label=m,
            )
        ax.set_xticks(np.arange(len(types)) + 0.4 - width / 2)
        ax.set_xticklabels(types)
        ax.set_ylim(0, 1)
        ax.set_title("mean macro-F1 per task type")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with target(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _align_plot(align_rows: list[dict[str, Any]], plot_dir: Path) -> Path | None:
    """Majority agreement, 1 - JSD and 1 - W1 per culture x model."""
    import matplotlib.pyplot as plt
    import numpy as np

    if not align_rows:
        return None
    labels = [f"{r.get('culture', '')}\n{r['model']}" for r in align_rows]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(align_rows) + 2), 4))
    x = np.arange(len(align_rows))
    w1 = [r.get("one_minus_wasserstein") for r in align_rows]
    ax.bar(x - 0.27, [r["majority_agreement"] for r in align_rows], 0.27, label="majority agreement")
    ax.bar(x, [r["one_minus_jsd"] for r in align_rows], 0.27, label="1 − JSD")
    ax.bar(x + 0.27, [v if v is not None else 0.0 for v in w1], 0.27, label="1 − W1")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("WVS alignment")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = plot_dir / "alignment.png"
    with target(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def write_report(results: list[Path], out: Path) -> Path:
    """Merge result files (later files win for the same model x task), read align.jsonl beside each
    and general.jsonl (the forgetting check) beside each and in `out`, write out/report.md and
    out/plots/*.png; returns the report path. A place with general.jsonl needs no results file."""
    from culturellm.evaluate.general import general_plot, load_general

    out = Path(out)
    places = [Path(p) for p in results]
    general = load_general([*places, out])
    rows, align_rows = load_rows(places)
    plots = make_plots(rows, align_rows, out / PLOTS) if rows or align_rows else []
    plots += [p for p in [general_plot(general, out / PLOTS)] if p is not None]
    path = out / REPORT
    atomic_write_text(path, render_markdown(rows, align_rows, plots, general))
    return path
